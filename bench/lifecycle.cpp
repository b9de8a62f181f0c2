// berth_bench: container lifecycle cost of berth against crun and runc, measured side by side.
//
// One busybox bundle (scripts/make-bundle.sh ... /bin/true). For each runtime, rounds x iterations of
//   create -> start -> (container exits) -> delete      and, separately,      run (foreground)
// interleaved: every iteration runs each runtime once, in an order rotated per iteration, so drift in the
// host's load hits all of them alike. Each command's wall time, CPU time (user + sys from wait4: the command and
// the descendants it reaped; a container process it leaves running is not counted) and peak RSS are recorded.
// The "floor" row is the kernel's share of `run`: a forked child clone()s into new pid/mount/uts/ipc/net
// namespaces, pivot_roots into the same rootfs, mounts /proc and execs /bin/true.
//
// Two more measurements, same interleaving:
//   exec     `exec ID /bin/true` into a running container (one long-lived `sleep` container per runtime);
//   limited  the create -> start -> exit -> delete cycle of a container with memory, pids and cpu limits and a
//            default seccomp profile (podman's /usr/share/containers/seccomp.json, from containers-common, resolved
//            for x86_64 and the bundle's capabilities as podman resolves it; without that file, limits only).
//
// Host quirk handled here: on a hybrid cgroup host (v1 controllers + a cgroup2 mount at /sys/fs/cgroup/unified)
// crun refuses to run. The driver therefore moves itself into a private mount namespace (/ made rslave) and
// bind-mounts an empty file over /sys/fs/cgroup/unified/cgroup.controllers; every runtime runs in that same
// namespace, so the conditions are equal.
//
// The driver is a child subreaper: a container process orphaned by its runtime's exit (after `create`) is
// reparented to it and reaped as soon as it exits, as a real host's init would, instead of lingering as a zombie
// under whatever init this host has.
//
// Must run as root. Stdio of the runtimes goes to /dev/null (stderr is kept for failure reports).
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fs.hpp"
#include "common/unique_fd.hpp"
#include "linux/pidfd.hpp"

extern char** environ;

namespace {

using namespace berth;

constexpr unsigned long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC
constexpr const char* kUnifiedControllers = "/sys/fs/cgroup/unified/cgroup.controllers";

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) {
    g_stop = 1;
}

struct Options {
    int rounds = 2;
    int iterations = 50;
    std::vector<std::string> runtimes = {"berth", "crun", "runc"};
    std::string berth = BERTH_BIN;
    std::string make_bundle = "scripts/make-bundle.sh";
    int timeout_s = 30;
    bool floor = true;
};

struct Sample {
    double wall_ms = 0;
    double cpu_ms = 0;
    long max_rss_kib = 0;
};

struct CommandResult {
    bool ok = false;
    Sample sample;
    std::string error;   // why it failed: exit status and the command's stderr
    std::string output;  // stdout, when asked for
};

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s;
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
    return fmt::format("wait status {:#x}", status);
}

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

double cpu_ms(const struct rusage& ru) {
    auto tv = [](const struct timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + t.tv_usec / 1e3; };
    return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// Waits for our child `pid` (at most timeout_s, then SIGKILL) and fills wall time from `start`, CPU and RSS.
CommandResult wait_measured(pid_t pid, std::chrono::steady_clock::time_point start, int timeout_s) {
    CommandResult res;
    UniqueFd pidfd(sys::pidfd_open(pid));
    bool timed_out = false;
    if (pidfd) {
        struct pollfd p {
            pidfd.get(), POLLIN, 0
        };
        auto deadline = start + std::chrono::seconds(timeout_s);
        for (;;) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                timed_out = true;
                ::kill(pid, SIGKILL);
                break;
            }
            int n = ::poll(&p, 1, static_cast<int>(left.count()));
            if (n > 0) break;
            // EINTR (a stop signal): keep waiting, the command gets the terminal's signal itself.
        }
    }
    int status = 0;
    struct rusage ru {};
    while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    auto end = std::chrono::steady_clock::now();
    res.sample = {ms_between(start, end), cpu_ms(ru), ru.ru_maxrss};
    res.ok = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (timed_out) {
        res.error = fmt::format("timed out after {}s", timeout_s);
    } else if (!res.ok) {
        res.error = describe_status(status);
    }
    return res;
}

UniqueFd make_memfd(const char* name) {
    return UniqueFd(::memfd_create(name, MFD_CLOEXEC));
}

std::string read_memfd(int fd) {
    if (fd < 0 || ::lseek(fd, 0, SEEK_SET) < 0) return {};
    auto r = read_fd(fd);
    return r ? trim(*r) : std::string();
}

// Runs argv with stdin and stdout on /dev/null (stdout captured when capture_stdout) and stderr captured.
CommandResult run_command(const std::vector<std::string>& argv, int timeout_s, bool capture_stdout = false) {
    CommandResult res;
    UniqueFd err = make_memfd("stderr");
    UniqueFd out = capture_stdout ? make_memfd("stdout") : UniqueFd();
    if (!err || (capture_stdout && !out)) {
        res.error = fmt::format("memfd_create: {}", std::strerror(errno));
        return res;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (capture_stdout) {
        posix_spawn_file_actions_adddup2(&fa, out.get(), 1);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa, err.get(), 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    pid_t pid = -1;
    auto start = std::chrono::steady_clock::now();
    int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        res.error = fmt::format("exec {}: {}", argv[0], std::strerror(rc));
        return res;
    }
    res = wait_measured(pid, start, timeout_s);
    if (!res.ok) {
        std::string e = read_memfd(err.get());
        if (!e.empty()) res.error += ": " + e;
    }
    if (capture_stdout) res.output = read_memfd(out.get());
    return res;
}

// ---- the floor: namespaces + pivot_root + /proc + exec, nothing else ------------------------------------------

struct FloorArgs {
    const char* rootfs;
};

// Exit codes 120+ name the step that failed.
int floor_init(void* arg) {
    const char* rootfs = static_cast<FloorArgs*>(arg)->rootfs;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) ::_exit(120);
    if (::mount(rootfs, rootfs, nullptr, MS_BIND | MS_REC, nullptr) < 0) ::_exit(121);
    if (::chdir(rootfs) < 0) ::_exit(122);
    if (::syscall(SYS_pivot_root, ".", ".") < 0) ::_exit(123);
    if (::umount2(".", MNT_DETACH) < 0) ::_exit(124);
    if (::chdir("/") < 0) ::_exit(125);
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0) ::_exit(126);
    if (::sethostname("berth-demo", 10) < 0) ::_exit(127);
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    char path[] = "PATH=/bin";
    char* envp[] = {path, nullptr};
    ::execve("/bin/true", argv, envp);
    ::_exit(128);
}

const char* floor_step(int code) {
    switch (code) {
        case 120:
            return "make / private";
        case 121:
            return "bind the rootfs";
        case 122:
            return "chdir to the rootfs";
        case 123:
            return "pivot_root";
        case 124:
            return "detach the old root";
        case 125:
            return "chdir /";
        case 126:
            return "mount /proc";
        case 127:
            return "sethostname";
        case 128:
            return "exec /bin/true";
        case 129:
            return "clone";
        default:
            return "unknown step";
    }
}

CommandResult run_floor(const std::string& rootfs, int timeout_s) {
    CommandResult res;
    auto start = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid < 0) {
        res.error = fmt::format("fork: {}", std::strerror(errno));
        return res;
    }
    if (pid == 0) {
        static char stack[64 * 1024];
        FloorArgs args{rootfs.c_str()};
        int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
        pid_t init = ::clone(floor_init, stack + sizeof stack, flags, &args);
        if (init < 0) ::_exit(129);
        int status = 0;
        while (::waitpid(init, &status, 0) < 0 && errno == EINTR) {
        }
        ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    res = wait_measured(pid, start, timeout_s);
    if (!res.ok && res.error.starts_with("exit status ")) {
        int code = std::atoi(res.error.c_str() + std::strlen("exit status "));
        if (code >= 120) res.error += fmt::format(" ({} failed)", floor_step(code));
    }
    return res;
}

// ---- runtimes -------------------------------------------------------------------------------------------------

struct Runtime {
    std::string name;
    std::string path;
    std::string version;
    std::string root;                 // its --root state dir
    std::optional<std::string> skip;  // why it does not take part (missing binary, earlier failure)
    std::set<std::string> live;       // containers that may exist and must be deleted at exit
    bool failed = false;
};

std::string find_in_path(const std::string& name) {
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : std::string();
    const char* p = std::getenv("PATH");
    std::string path = p ? p : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t i = 0;
    while (i <= path.size()) {
        size_t j = path.find(':', i);
        if (j == std::string::npos) j = path.size();
        std::string candidate = path_join(path.substr(i, j - i), name);
        if (j > i && ::access(candidate.c_str(), X_OK) == 0) return candidate;
        i = j + 1;
    }
    return {};
}

using Key = std::pair<std::string, std::string>;  // (operation, runtime)

class Bench {
public:
    Bench(Options opts, std::string tmp) : opts_(std::move(opts)), tmp_(std::move(tmp)) {}

    std::map<Key, std::vector<Sample>>& samples() { return samples_; }
    const std::string& seccomp_note() const { return seccomp_note_; }
    std::vector<Runtime>& runtimes() { return runtimes_; }
    const std::string& bundle() const { return bundle_; }

    bool setup_runtimes() {
        for (const auto& name : opts_.runtimes) {
            Runtime rt;
            rt.name = name;
            rt.path = find_in_path(name == "berth" ? opts_.berth : name);
            rt.root = tmp_ + "/" + name + "-root";
            if (rt.path.empty()) {
                rt.skip = fmt::format("{} not found", name == "berth" ? opts_.berth : name);
            } else {
                auto v = run_command({rt.path, "--version"}, opts_.timeout_s, true);
                std::string first = v.output.substr(0, v.output.find('\n'));
                rt.version = v.ok ? first : "version unknown";
                if (auto r = mkdir_all(rt.root, 0700); !r) {
                    std::fprintf(stderr, "berth_bench: %s\n", r.error().message().c_str());
                    return false;
                }
            }
            runtimes_.push_back(std::move(rt));
        }
        return true;
    }

    bool make_bundles() {
        bundle_ = tmp_ + "/bundle";
        sleeper_ = tmp_ + "/sleeper";
        limited_ = tmp_ + "/limited";
        for (const auto& [dir, arg] :
             {std::pair{bundle_, "/bin/true"}, {sleeper_, "/bin/sleep"}, {limited_, "/bin/true"}}) {
            std::vector<std::string> argv = {"/bin/bash", opts_.make_bundle, dir, arg};
            if (dir == sleeper_) argv.push_back("1000000");
            auto r = run_command(argv, 120);
            if (!r.ok) {
                std::fprintf(stderr, "berth_bench: %s %s: %s\n", opts_.make_bundle.c_str(), dir.c_str(),
                             r.error.c_str());
                return false;
            }
        }
        if (auto r = add_limits(limited_); !r) {
            std::fprintf(stderr, "berth_bench: %s\n", r.error().message().c_str());
            return false;
        }
        return true;
    }

    // Starts the long-lived container that `exec` runs in, for each runtime.
    void start_sleepers() {
        for (auto& rt : runtimes_) {
            if (rt.skip) continue;
            std::string id = "bench-exec-" + rt.name;
            rt.live.insert(id);
            auto r =
                run_command({rt.path, "--root", rt.root, "run", "--detach", "--bundle", sleeper_, id}, opts_.timeout_s);
            if (!r.ok) fail(rt, "run --detach (for exec)", r.error);
        }
    }

    void exec(Runtime& rt) {
        auto r =
            run_command({rt.path, "--root", rt.root, "exec", "bench-exec-" + rt.name, "/bin/true"}, opts_.timeout_s);
        if (!r.ok) return fail(rt, "exec", r.error);
        samples_[{"exec", rt.name}].push_back(r.sample);
    }

    void lifecycle(Runtime& rt, const std::string& id) { cycle(rt, id, bundle_, ""); }
    void limited(Runtime& rt, const std::string& id) { cycle(rt, id, limited_, "limited"); }

private:
    // Memory, pids and cpu limits and the default seccomp profile, added to the bundle's config.json.
    Result<void> add_limits(const std::string& dir) {
        std::string path = dir + "/config.json";
        BERTH_ASSIGN(std::string text, read_file(path));
        nlohmann::json cfg = nlohmann::json::parse(text, nullptr, false);
        if (cfg.is_discarded()) return berth::fail("{}: not JSON", path);
        cfg["linux"]["resources"] = {{"memory", {{"limit", 256 << 20}}},
                                     {"pids", {{"limit", 1024}}},
                                     {"cpu", {{"shares", 512}, {"quota", 50000}, {"period", 100000}}}};
        auto profile = read_file(kDefaultSeccomp);
        if (!profile) {
            seccomp_note_ =
                fmt::format("limited: no seccomp profile ({} missing; package containers-common)", kDefaultSeccomp);
        } else {
            nlohmann::json p = nlohmann::json::parse(*profile, nullptr, false);
            if (p.is_discarded()) return berth::fail("{}: not JSON", kDefaultSeccomp);
            cfg["linux"]["seccomp"] = resolve_profile(p, cfg["process"]["capabilities"]["bounding"]);
            seccomp_note_ = fmt::format("limited: seccomp profile {} ({} rules for x86_64)", kDefaultSeccomp,
                                        cfg["linux"]["seccomp"]["syscalls"].size());
        }
        return write_file(path, cfg.dump());
    }

    // containers-common's profile format -> linux.seccomp: keep the rules whose includes/excludes (arches, caps)
    // hold for an amd64 container with capabilities `caps`, as podman does when it generates a config.
    static nlohmann::json resolve_profile(const nlohmann::json& p, const nlohmann::json& caps) {
        auto has = [](const nlohmann::json& list, const std::string& v) {
            return list.is_array() && std::find(list.begin(), list.end(), v) != list.end();
        };
        auto all_caps = [&](const nlohmann::json& want) {
            for (const auto& c : want)
                if (!has(caps, c.get<std::string>())) return false;
            return true;
        };
        nlohmann::json out = {{"defaultAction", p.value("defaultAction", "SCMP_ACT_ERRNO")},
                              {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
                              {"syscalls", nlohmann::json::array()}};
        if (p.contains("defaultErrnoRet")) out["defaultErrnoRet"] = p["defaultErrnoRet"];
        for (const auto& rule : p.value("syscalls", nlohmann::json::array())) {
            nlohmann::json inc = rule.value("includes", nlohmann::json::object());
            nlohmann::json exc = rule.value("excludes", nlohmann::json::object());
            if (inc.contains("arches") && !has(inc["arches"], "amd64")) continue;
            if (inc.contains("caps") && !all_caps(inc["caps"])) continue;
            if (exc.contains("arches") && has(exc["arches"], "amd64")) continue;
            if (exc.contains("caps") && all_caps(exc["caps"])) continue;
            nlohmann::json r = {{"names", rule["names"]}, {"action", rule["action"]}};
            for (const char* k : {"args", "errnoRet"})
                if (rule.contains(k) && !rule[k].is_null()) r[k] = rule[k];
            out["syscalls"].push_back(std::move(r));
        }
        return out;
    }

    static constexpr const char* kDefaultSeccomp = "/usr/share/containers/seccomp.json";

    // One create/start/exit/delete cycle. Records samples only when every step succeeded: with an empty `op`
    // each step and the total ("lifecycle"), else the total alone under `op`.
    void cycle(Runtime& rt, const std::string& id, const std::string& bundle, const std::string& op) {
        std::string pid_file = fmt::format("{}/{}.pid", tmp_, id);
        rt.live.insert(id);
        auto create = run_command(
            {rt.path, "--root", rt.root, "create", "--bundle", bundle, "--pid-file", pid_file, id}, opts_.timeout_s);
        if (!create.ok) return fail(rt, "create", create.error);

        auto pid_text = read_file(pid_file);
        if (!pid_text) return fail(rt, "create", "no pid file: " + pid_text.error().message());
        pid_t pid = std::atoi(pid_text->c_str());
        UniqueFd pidfd(sys::pidfd_open(pid));
        if (!pidfd) return fail(rt, "create", fmt::format("container pid {}: {}", pid, std::strerror(errno)));

        auto start = run_command({rt.path, "--root", rt.root, "start", id}, opts_.timeout_s);
        if (!start.ok) return fail(rt, "start", start.error);

        auto wait_from = std::chrono::steady_clock::now();
        struct pollfd p {
            pidfd.get(), POLLIN, 0
        };
        int n;
        while ((n = ::poll(&p, 1, opts_.timeout_s * 1000)) < 0 && errno == EINTR && !g_stop) {
        }
        if (n <= 0) return fail(rt, "start", fmt::format("container pid {} did not exit", pid));
        double exit_ms = ms_between(wait_from, std::chrono::steady_clock::now());
        siginfo_t si{};
        (void)::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &si, WEXITED | WNOHANG);  // ours if orphaned

        auto del = run_command({rt.path, "--root", rt.root, "delete", id}, opts_.timeout_s);
        if (!del.ok) return fail(rt, "delete", del.error);
        rt.live.erase(id);
        ::unlink(pid_file.c_str());

        Sample total{create.sample.wall_ms + start.sample.wall_ms + exit_ms + del.sample.wall_ms,
                     create.sample.cpu_ms + start.sample.cpu_ms + del.sample.cpu_ms,
                     std::max({create.sample.max_rss_kib, start.sample.max_rss_kib, del.sample.max_rss_kib})};
        if (!op.empty()) {
            samples_[{op, rt.name}].push_back(total);
            return;
        }
        samples_[{"create", rt.name}].push_back(create.sample);
        samples_[{"start", rt.name}].push_back(start.sample);
        samples_[{"delete", rt.name}].push_back(del.sample);
        samples_[{"lifecycle", rt.name}].push_back(total);
    }

public:
    void run(Runtime& rt, const std::string& id) {
        rt.live.insert(id);
        auto r = run_command({rt.path, "--root", rt.root, "run", "--bundle", bundle_, id}, opts_.timeout_s);
        if (!r.ok) return fail(rt, "run", r.error);
        rt.live.erase(id);
        samples_[{"run", rt.name}].push_back(r.sample);
    }

    void floor() {
        if (floor_failed_) return;
        auto r = run_floor(bundle_ + "/rootfs", opts_.timeout_s);
        if (!r.ok) {
            floor_failed_ = true;
            std::printf("floor: failed: %s\n", r.error.c_str());
            return;
        }
        samples_[{"run", "floor"}].push_back(r.sample);
    }

    // Deletes (--force) whatever a failure or an interruption left behind.
    void cleanup() {
        for (auto& rt : runtimes_) {
            for (const auto& id : rt.live)
                (void)run_command({rt.path, "--root", rt.root, "delete", "--force", id}, opts_.timeout_s);
            rt.live.clear();
        }
    }

private:
    void fail(Runtime& rt, const std::string& op, const std::string& error) {
        if (g_stop) return;  // an interrupted command is not the runtime's failure
        rt.failed = true;
        rt.skip = fmt::format("{}: {}", op, error);
        std::printf("%s: failed: %s\n", rt.name.c_str(), rt.skip->c_str());
        std::fflush(stdout);
    }

    Options opts_;
    std::string tmp_;
    std::string bundle_, sleeper_, limited_;
    std::string seccomp_note_;
    std::vector<Runtime> runtimes_;
    std::map<Key, std::vector<Sample>> samples_;
    bool floor_failed_ = false;
};

// ---- set-up and report ----------------------------------------------------------------------------------------

// Private mount namespace; on a hybrid cgroup host, hides the cgroup2 controllers file. Returns a note or an error.
Result<std::string> enter_private_mount_ns(const std::string& tmp) {
    if (::unshare(CLONE_NEWNS) < 0) return fail_sys("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0) return fail_sys("make / rslave");
    struct statfs root {
    }, unified{};
    if (::statfs("/sys/fs/cgroup", &root) < 0) return std::string("no /sys/fs/cgroup");
    if (static_cast<unsigned long>(root.f_type) == kCgroup2Magic) return std::string("cgroup v2 host");
    if (::statfs("/sys/fs/cgroup/unified", &unified) < 0 || static_cast<unsigned long>(unified.f_type) != kCgroup2Magic)
        return std::string("cgroup v1 host");
    std::string empty = tmp + "/empty-cgroup.controllers";
    BERTH_TRY(write_file(empty, ""));
    if (::mount(empty.c_str(), kUnifiedControllers, nullptr, MS_BIND, nullptr) < 0)
        return fail_sys("bind {} over {}", empty, kUnifiedControllers);
    return std::string("hybrid cgroup host: cgroup2 controllers hidden in a private mount namespace");
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

struct Stats {
    size_t n = 0;
    double wall_med = NAN, wall_p95 = NAN, cpu_med = NAN;
    long rss_max = 0;
};

Stats stats_of(const std::vector<Sample>& s) {
    Stats st;
    st.n = s.size();
    std::vector<double> wall, cpu;
    for (const auto& x : s) {
        wall.push_back(x.wall_ms);
        cpu.push_back(x.cpu_ms);
        st.rss_max = std::max(st.rss_max, x.max_rss_kib);
    }
    st.wall_med = percentile(wall, 0.5);
    st.wall_p95 = percentile(wall, 0.95);
    st.cpu_med = percentile(cpu, 0.5);
    return st;
}

void report(Bench& bench) {
    const std::vector<std::string> ops = {"create", "start", "delete", "lifecycle", "run", "exec", "limited"};
    std::vector<std::string> names;
    for (const auto& rt : bench.runtimes()) names.push_back(rt.name);
    names.push_back("floor");

    std::printf("\n%-10s %-7s %5s %10s %10s %10s %11s\n", "operation", "runtime", "n", "wall med", "wall p95",
                "cpu med", "max rss");
    std::printf("%-10s %-7s %5s %10s %10s %10s %11s\n", "", "", "", "ms", "ms", "ms", "KiB");
    for (const auto& op : ops) {
        for (const auto& name : names) {
            auto it = bench.samples().find({op, name});
            if (it == bench.samples().end() || it->second.empty()) continue;
            Stats st = stats_of(it->second);
            std::printf("%-10s %-7s %5zu %10.2f %10.2f %10.2f %11ld\n", op.c_str(), name.c_str(), st.n, st.wall_med,
                        st.wall_p95, st.cpu_med, st.rss_max);
        }
    }
    std::printf(
        "(lifecycle = create + start + wait for exit + delete; its cpu is the three commands' sum;\n"
        " limited = the same cycle with memory, pids and cpu limits and a default seccomp profile)\n");
    if (!bench.seccomp_note().empty()) std::printf("%s\n", bench.seccomp_note().c_str());

    bool berth_has_results = false;
    for (const auto& op : ops) berth_has_results |= bench.samples().contains({op, "berth"});
    if (!berth_has_results) {
        std::printf("\nratios: n/a (no berth results)\n");
    } else {
        std::printf("\nratios, medians:  %-12s %8s %8s\n", "", "wall", "cpu");
        for (const auto& op : ops) {
            for (const char* other : {"crun", "runc"}) {
                auto b = bench.samples().find({op, "berth"});
                auto o = bench.samples().find({op, other});
                if (o == bench.samples().end()) continue;
                std::string label = fmt::format("berth/{}", other);
                if (b == bench.samples().end()) {
                    std::printf("  %-15s %-12s %8s %8s\n", op.c_str(), label.c_str(), "n/a", "n/a");
                    continue;
                }
                Stats sb = stats_of(b->second), so = stats_of(o->second);
                std::printf("  %-15s %-12s %8.2f %8.2f\n", op.c_str(), label.c_str(), sb.wall_med / so.wall_med,
                            sb.cpu_med / so.cpu_med);
            }
        }
    }
    for (const auto& rt : bench.runtimes()) {
        if (rt.skip) std::printf("%s: %s%s\n", rt.name.c_str(), rt.failed ? "failed: " : "skipped: ", rt.skip->c_str());
    }
}

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [--rounds N] [--iterations N] [--runtimes berth,crun,runc] [--berth PATH]\n"
                 "          [--make-bundle PATH] [--timeout SECONDS] [--no-floor]\n"
                 "Defaults: 2 rounds x 50 iterations, all three runtimes, berth = %s.\n",
                 argv0, BERTH_BIN);
}

std::optional<Options> parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= argc) return std::nullopt;
            return std::string(argv[++i]);
        };
        auto number = [&](int& out) {
            auto v = value();
            if (!v) return false;
            char* end = nullptr;
            long n = std::strtol(v->c_str(), &end, 10);
            if (*end != '\0' || n < 1 || n > 100000) return false;
            out = static_cast<int>(n);
            return true;
        };
        if (a == "--rounds") {
            if (!number(o.rounds)) return std::nullopt;
        } else if (a == "--iterations") {
            if (!number(o.iterations)) return std::nullopt;
        } else if (a == "--timeout") {
            if (!number(o.timeout_s)) return std::nullopt;
        } else if (a == "--runtimes") {
            auto v = value();
            if (!v) return std::nullopt;
            o.runtimes.clear();
            size_t s = 0;
            while (s <= v->size()) {
                size_t e = v->find(',', s);
                if (e == std::string::npos) e = v->size();
                if (e > s) o.runtimes.push_back(v->substr(s, e - s));
                s = e + 1;
            }
            if (o.runtimes.empty()) return std::nullopt;
        } else if (a == "--berth") {
            auto v = value();
            if (!v) return std::nullopt;
            o.berth = *v;
        } else if (a == "--make-bundle") {
            auto v = value();
            if (!v) return std::nullopt;
            o.make_bundle = *v;
        } else if (a == "--no-floor") {
            o.floor = false;
        } else {
            return std::nullopt;
        }
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    auto opts = parse_args(argc, argv);
    if (!opts) {
        usage(argv[0]);
        return 2;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "berth_bench: containers need root\n");
        return 1;
    }
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        std::fprintf(stderr, "berth_bench: PR_SET_CHILD_SUBREAPER: %s\n", std::strerror(errno));
        return 1;
    }
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;  // no SA_RESTART: a blocking wait returns and the loop checks g_stop
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);

    char tmpl[] = "/tmp/berth-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::fprintf(stderr, "berth_bench: mkdtemp: %s\n", std::strerror(errno));
        return 1;
    }
    std::string tmp = tmpl;
    int rc = 0;
    {
        Bench bench(*opts, tmp);
        auto ns = enter_private_mount_ns(tmp);
        if (!ns) {
            std::fprintf(stderr, "berth_bench: %s\n", ns.error().message().c_str());
            rc = 1;
        } else if (!bench.setup_runtimes() || !bench.make_bundles()) {
            rc = 1;
        } else {
            std::printf("berth_bench: %d rounds x %d iterations, interleaved; %s\n", opts->rounds, opts->iterations,
                        ns->c_str());
            for (const auto& rt : bench.runtimes()) {
                if (rt.skip)
                    std::printf("  %-6s skipped: %s\n", rt.name.c_str(), rt.skip->c_str());
                else
                    std::printf("  %-6s %s (%s)\n", rt.name.c_str(), rt.path.c_str(), rt.version.c_str());
            }
            std::fflush(stdout);

            auto& rts = bench.runtimes();
            auto each_rotated = [&](int i, auto&& fn) {
                for (size_t k = 0; k < rts.size() && !g_stop; ++k) {
                    Runtime& rt = rts[(k + static_cast<size_t>(i)) % rts.size()];
                    if (!rt.skip) fn(rt);
                }
            };
            bench.start_sleepers();
            for (int round = 0; round < opts->rounds && !g_stop; ++round) {
                for (int i = 0; i < opts->iterations && !g_stop; ++i)
                    each_rotated(
                        i, [&](Runtime& rt) { bench.lifecycle(rt, fmt::format("bench-{}-{}-{}", rt.name, round, i)); });
                for (int i = 0; i < opts->iterations && !g_stop; ++i)
                    each_rotated(i, [&](Runtime& rt) {
                        bench.limited(rt, fmt::format("bench-lim-{}-{}-{}", rt.name, round, i));
                    });
                for (int i = 0; i < opts->iterations && !g_stop; ++i)
                    each_rotated(i, [&](Runtime& rt) { bench.exec(rt); });
                for (int i = 0; i < opts->iterations && !g_stop; ++i) {
                    each_rotated(
                        i, [&](Runtime& rt) { bench.run(rt, fmt::format("bench-run-{}-{}-{}", rt.name, round, i)); });
                    if (opts->floor && !g_stop) bench.floor();
                }
            }
            bench.cleanup();
            if (g_stop) std::printf("berth_bench: interrupted; partial results\n");
            report(bench);
            for (const auto& rt : bench.runtimes())
                if (rt.failed) rc = 1;
        }
        bench.cleanup();
        // Orphaned container processes that were ours to reap (the forced deletes above killed any left).
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
    }
    if (auto r = remove_all(tmp); !r) {
        std::fprintf(stderr, "berth_bench: clean up: %s\n", r.error().message().c_str());
        rc = 1;
    }
    return g_stop ? 130 : rc;
}
