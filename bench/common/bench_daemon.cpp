#include "bench_daemon.hpp"  // first: it includes cri/api.hpp, which must come before <signal.h>

#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/spawn.hpp"
#include "common/unique_fd.hpp"
#include "linux/mountinfo.hpp"
#include "linux/namespaces.hpp"

namespace berth::bench {
namespace {

enum class Phase { running, cleaning, done };

struct Harness {
    std::string program = "bench";
    pid_t owner = 0;  // the bench process; forked children never clean up
    sigset_t signals{};
    std::mutex mu;
    std::condition_variable cv;
    int active = 0;  // WorkScopes open, all threads together
    Phase phase = Phase::running;
    std::thread::id cleaner;
    std::string temp_dir;
    std::vector<std::unique_ptr<Daemon>> daemons;
    std::set<std::string> cgroup_parents;
    std::vector<std::function<void()>> steps;
};

// Never destroyed: at exit, threads may still wait on its mutex.
Harness& harness() {
    static Harness* h = new Harness;
    return *h;
}

thread_local int t_open = 0;  // WorkScopes open in this thread

void warn(const std::string& what) {
    std::fprintf(stderr, "%s: cleanup: %s\n", harness().program.c_str(), what.c_str());
}

// For a thread that must not go on while another one cleans up: gives back its WorkScopes (the cleaner waits for
// them) and sleeps until the cleaner ends the process.
[[noreturn]] void hold_forever(std::unique_lock<std::mutex>& lock) {
    Harness& h = harness();
    h.active -= t_open;
    t_open = 0;
    h.cv.notify_all();
    lock.unlock();
    for (;;) ::pause();
}

template <class Req, class Resp>
bool cleanup_call(Stub& stub, grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*), const char* name,
                  const Req& req, Resp* resp, const std::string& on) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status st = (stub.*rpc)(&ctx, req, resp);
    if (!st.ok()) warn(std::string(name) + " " + on + ": " + st.error_message());
    return st.ok();
}

// StopPodSandbox (which stops the containers with no grace period) and RemovePodSandbox for every pod; a few
// passes in case a pod appeared during one.
void remove_pods(Daemon& d) {
    for (int pass = 0; pass < 3; ++pass) {
        v1::ListPodSandboxResponse list;
        if (!cleanup_call(*d.stub, &Stub::ListPodSandbox, "ListPodSandbox", v1::ListPodSandboxRequest(), &list,
                          "on " + d.socket))
            return;
        if (list.items_size() == 0) return;
        for (const auto& p : list.items()) {
            v1::StopPodSandboxRequest stop;
            stop.set_pod_sandbox_id(p.id());
            v1::StopPodSandboxResponse stopped;
            cleanup_call(*d.stub, &Stub::StopPodSandbox, "StopPodSandbox", stop, &stopped, p.id());
            v1::RemovePodSandboxRequest remove;
            remove.set_pod_sandbox_id(p.id());
            v1::RemovePodSandboxResponse removed;
            cleanup_call(*d.stub, &Stub::RemovePodSandbox, "RemovePodSandbox", remove, &removed, p.id());
        }
    }
    warn("pods still listed by the berthd on " + d.socket + " after three passes");
}

// SIGTERM to every daemon, then waits for each; SIGKILL to one still running after 30 s.
void stop_daemons(std::vector<std::unique_ptr<Daemon>>& daemons) {
    for (auto& d : daemons) {
        // Its connection closed first: berthd's shutdown waits up to its grace period (5 s) for open ones.
        d->stub.reset();
        if (d->pid > 0) ::kill(d->pid, SIGTERM);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (auto& d : daemons) {
        if (d->pid <= 0) continue;
        for (;;) {
            pid_t r = ::waitpid(d->pid, nullptr, WNOHANG);
            if (r == d->pid || (r < 0 && errno != EINTR)) break;
            if (std::chrono::steady_clock::now() > deadline) {
                warn("berthd " + std::to_string(d->pid) + " still runs 30 s after SIGTERM: SIGKILL");
                ::kill(d->pid, SIGKILL);
                while (::waitpid(d->pid, nullptr, 0) < 0 && errno == EINTR) {
                }
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        d->pid = -1;
    }
}

// `parent` in every cgroup hierarchy the host mounts.
std::vector<std::string> cgroup_dirs(const std::string& parent) {
    std::vector<std::string> out;
    auto layout = cgroups::detect_layout();
    if (!layout) return out;
    std::set<std::string> mounts;
    for (const auto& [controller, mnt] : layout->v1) mounts.insert(mnt);
    if (!layout->unified.empty()) mounts.insert(layout->unified);
    for (const auto& m : mounts) out.push_back(path_join(m, parent));
    return out;
}

// `dir` and every directory below it (none when `dir` is missing), parents before children.
std::vector<std::string> tree(const std::string& dir) {
    std::vector<std::string> all;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return all;
    all.push_back(dir);
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        if (it->is_directory(ec) && !it->is_symlink(ec)) all.push_back(it->path());
    return all;
}

// The processes in the cgroup trees at `dirs`.
std::set<pid_t> cgroup_procs(const std::vector<std::string>& dirs) {
    std::set<pid_t> pids;
    for (const auto& dir : dirs)
        for (const auto& d : tree(dir)) {
            std::ifstream in(d + "/cgroup.procs");
            for (pid_t p; in >> p;) pids.insert(p);
        }
    return pids;
}

// berth's own processes (berth-monitor, berth, berthd, berth-pull) whose command line names `path`: monitors and
// runtime calls name the state dir.
std::set<pid_t> berth_procs_naming(const std::string& path) {
    std::set<pid_t> pids;
    DIR* d = ::opendir("/proc");
    if (!d) return pids;
    const pid_t self = ::getpid();
    while (struct dirent* e = ::readdir(d)) {
        pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
        if (pid <= 0 || pid == self || !read_text(std::string("/proc/") + e->d_name + "/comm").starts_with("berth"))
            continue;
        if (read_text(std::string("/proc/") + e->d_name + "/cmdline").find(path) != std::string::npos) pids.insert(pid);
    }
    ::closedir(d);
    return pids;
}

ino_t ns_inode(const std::string& pid, const char* kind) {
    struct stat st = {};
    return ::stat(("/proc/" + pid + "/ns/" + kind).c_str(), &st) == 0 ? st.st_ino : 0;
}

// Every process with a namespace of `kind` in `inodes`.
std::set<pid_t> procs_in(const char* kind, const std::set<ino_t>& inodes) {
    std::set<pid_t> pids;
    if (inodes.empty()) return pids;
    DIR* d = ::opendir("/proc");
    if (!d) return pids;
    while (struct dirent* e = ::readdir(d)) {
        pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
        if (pid > 0 && inodes.contains(ns_inode(e->d_name, kind))) pids.insert(pid);
    }
    ::closedir(d);
    return pids;
}

// The pods' processes the others lead to: those in a network, IPC or UTS namespace pinned (bind-mounted) below
// `dir`, and those in a PID namespace of one of `pids` (a pod's pause process is the init of its PID namespace and
// sits in no cgroup of the pod). Never the bench's own namespaces.
std::set<pid_t> pod_procs(const std::string& dir, const std::set<pid_t>& pids) {
    std::set<pid_t> out;
    const char* kinds[] = {"net", "ipc", "uts"};
    std::set<ino_t> own;
    for (const char* k : kinds) own.insert(ns_inode("self", k));
    own.insert(ns_inode("self", "pid"));
    if (auto mounts = sys::read_mountinfo()) {
        std::set<ino_t> pinned;
        for (const auto& m : *mounts) {
            struct stat st = {};
            if (m.fstype == "nsfs" && m.mount_point.starts_with(dir + "/") && ::stat(m.mount_point.c_str(), &st) == 0 &&
                !own.contains(st.st_ino))
                pinned.insert(st.st_ino);
        }
        for (const char* k : kinds) out.merge(procs_in(k, pinned));
    }
    std::set<ino_t> pid_namespaces;
    for (pid_t p : pids) pid_namespaces.insert(ns_inode(std::to_string(p), "pid"));
    for (pid_t p : out) pid_namespaces.insert(ns_inode(std::to_string(p), "pid"));
    pid_namespaces.erase(0);
    for (ino_t i : own) pid_namespaces.erase(i);
    out.merge(procs_in("pid", pid_namespaces));
    return out;
}

// What berthd did not take down (a pod the CRI could not remove, a daemon that was killed): SIGKILL, by PID, to
// the processes in its cgroup parents, berth's processes naming the temp dir, and the pods' processes these lead
// to; then waits up to 5 s for them to go.
void kill_leftovers(const std::vector<std::string>& cgroups, const std::string& temp_dir) {
    std::set<pid_t> pids = cgroup_procs(cgroups);
    if (!temp_dir.empty()) {
        pids.merge(berth_procs_naming(temp_dir));
        pids.merge(pod_procs(temp_dir, pids));
    }
    pids.erase(::getpid());
    if (pids.empty()) return;
    for (pid_t p : pids) ::kill(p, SIGKILL);
    warn("killed " + std::to_string(pids.size()) + " processes berthd left behind");
    auto alive = [&] {
        if (!cgroup_procs(cgroups).empty()) return true;
        for (pid_t p : pids)
            if (berth::sys::process_alive(p, 0)) return true;
        return false;
    };
    for (int i = 0; i < 50 && alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// Lazily unmounts every mount at or below `dir`, the latest first.
void unmount_below(const std::string& dir) {
    auto mounts = sys::read_mountinfo();
    if (!mounts) {
        warn(mounts.error().message());
        return;
    }
    int n = 0;
    for (auto it = mounts->rbegin(); it != mounts->rend(); ++it) {
        const std::string& mp = it->mount_point;
        if (mp != dir && !mp.starts_with(dir + "/")) continue;
        if (::umount2(mp.c_str(), MNT_DETACH) == 0)
            ++n;
        else if (errno != EINVAL && errno != ENOENT)
            warn("umount " + mp + ": " + std::strerror(errno));
    }
    if (n > 0) warn("unmounted " + std::to_string(n) + " mounts left under " + dir);
}

// rmdir of the cgroup trees at `dirs`, children first.
void remove_cgroups(const std::vector<std::string>& dirs) {
    for (const auto& dir : dirs) {
        auto all = tree(dir);
        for (auto it = all.rbegin(); it != all.rend(); ++it)
            if (::rmdir(it->c_str()) < 0 && errno != ENOENT) warn("rmdir " + *it + ": " + std::strerror(errno));
    }
}

void clean_up_everything() {
    Harness& h = harness();
    // Nothing registers anything now: registering takes a WorkScope, and those wait.
    for (auto& d : h.daemons) remove_pods(*d);
    stop_daemons(h.daemons);
    for (auto it = h.steps.rbegin(); it != h.steps.rend(); ++it) (*it)();
    std::vector<std::string> cgroups;
    for (const auto& parent : h.cgroup_parents)
        for (auto& d : cgroup_dirs(parent)) cgroups.push_back(std::move(d));
    kill_leftovers(cgroups, h.temp_dir);
    remove_cgroups(cgroups);
    if (h.temp_dir.empty()) return;
    unmount_below(h.temp_dir);
    // The bench's own threads may still add a file or two until they reach their next WorkScope.
    for (int i = 0; i < 5; ++i) {
        auto r = remove_all(h.temp_dir);
        if (r) return;
        if (i == 4) warn(r.error().message());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

enum class Begin { clean, already_done, other_thread };

// Takes the cleanup for this thread and waits until no other thread is inside a WorkScope.
Begin begin_cleanup(std::unique_lock<std::mutex>& lock) {
    Harness& h = harness();
    if (h.phase == Phase::done) return Begin::already_done;
    if (h.phase == Phase::cleaning)
        return h.cleaner == std::this_thread::get_id() ? Begin::already_done : Begin::other_thread;
    h.phase = Phase::cleaning;
    h.cleaner = std::this_thread::get_id();
    h.cv.wait(lock, [&] { return h.active == t_open; });
    return Begin::clean;
}

void end_cleanup() {
    Harness& h = harness();
    std::lock_guard lock(h.mu);
    h.phase = Phase::done;
    h.cv.notify_all();
}

// What the bench prints once the cleanup has begun would describe a half-removed run: stdout stays locked for
// this thread until the process exits.
void close_stdout_to_others() {
    std::fflush(stdout);
    ::flockfile(stdout);
}

[[noreturn]] void exit_now(int code) {
    std::fflush(nullptr);
    ::_exit(code);
}

void wait_for_signals() {
    Harness& h = harness();
    int sig = 0;
    while (::sigwait(&h.signals, &sig) != 0) {
    }
    close_stdout_to_others();
    std::fprintf(stderr, "%s: %s: cleaning up\n", h.program.c_str(), ::strsignal(sig));
    std::unique_lock lock(h.mu);
    Begin b = begin_cleanup(lock);
    if (b == Begin::other_thread) h.cv.wait(lock, [&] { return h.phase == Phase::done; });
    lock.unlock();
    if (b == Begin::clean) {
        clean_up_everything();
        end_cleanup();
    }
    exit_now(128 + sig);
}

}  // namespace

void init(const char* program) {
    Harness& h = harness();
    h.program = program;
    h.owner = ::getpid();
    sigemptyset(&h.signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old = {};
        if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_IGN) sigaddset(&h.signals, sig);
    }
    if (int rc = ::pthread_sigmask(SIG_BLOCK, &h.signals, nullptr); rc != 0)
        die(std::string("block signals: ") + std::strerror(rc));
    std::thread(wait_for_signals).detach();
}

void die(const std::string& what) {
    Harness& h = harness();
    if (::getpid() != h.owner) {
        std::fprintf(stderr, "%s: %s\n", h.program.c_str(), what.c_str());
        exit_now(1);
    }
    std::unique_lock lock(h.mu);
    // Failures caused by another thread's cleanup (the daemon going away) are not news; that thread ends the process.
    if (h.phase != Phase::running && h.cleaner != std::this_thread::get_id()) hold_forever(lock);
    std::fprintf(stderr, "%s: %s\n", h.program.c_str(), what.c_str());
    close_stdout_to_others();
    Begin b = begin_cleanup(lock);
    lock.unlock();
    if (b == Begin::clean) {
        clean_up_everything();
        end_cleanup();
    }
    exit_now(1);
}

void cleanup() {
    Harness& h = harness();
    if (::getpid() != h.owner) return;
    std::unique_lock lock(h.mu);
    Begin b = begin_cleanup(lock);
    if (b == Begin::other_thread) h.cv.wait(lock, [&] { return h.phase == Phase::done; });
    if (b != Begin::clean) return;
    lock.unlock();
    clean_up_everything();
    end_cleanup();
}

WorkScope::WorkScope() {
    Harness& h = harness();
    if (::getpid() != h.owner) return;  // a forked child: its copy of the harness is not the bench's
    std::unique_lock lock(h.mu);
    if (h.phase != Phase::running && h.cleaner != std::this_thread::get_id()) hold_forever(lock);
    ++h.active;
    ++t_open;
}

WorkScope::~WorkScope() {
    Harness& h = harness();
    if (::getpid() != h.owner) return;
    std::lock_guard lock(h.mu);
    --h.active;
    --t_open;
    h.cv.notify_all();
}

void parse_flags(int argc, char** argv, std::initializer_list<Flag> flags, std::string_view usage) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto f = std::find_if(flags.begin(), flags.end(), [&](const Flag& f) { return f.name == a; });
        if (f == flags.end()) die("unknown argument " + a);
        if (i + 1 >= argc) die(a + " needs a value");
        const std::string_view v = argv[++i];
        if (auto* text = std::get_if<std::string*>(&f->into)) {
            **text = v;
            continue;
        }
        int n = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size()) die(a + " needs a number, not \"" + std::string(v) + "\"");
        *std::get<int*>(f->into) = n;
    }
    for (const Flag& f : flags)
        if (auto* text = std::get_if<std::string*>(&f.into); text && (*text)->empty()) die(std::string(usage));
}

std::string read_text(const std::string& path) { return berth::read_file(path).value_or(""); }

const std::string& make_temp_dir(const std::string& prefix) {
    Harness& h = harness();
    WorkScope work;
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) die("mkdtemp " + tmpl + ": " + std::strerror(errno));
    std::lock_guard lock(h.mu);
    h.temp_dir = tmpl;
    return h.temp_dir;
}

int run(const std::vector<std::string>& argv, Quiet quiet) {
    WorkScope work;
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = ::fork();
    if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        if (quiet == Quiet::all) ::dup2(null, 2);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Daemon& start_berthd(const DaemonOptions& o) {
    Harness& h = harness();
    auto d = std::make_unique<Daemon>();
    d->dir = o.dir;
    d->socket = o.dir + "/b.sock";
    d->root = o.dir + "/root";
    d->state_dir = o.dir + "/state";
    d->log = o.dir + "/berthd.log";
    d->stub = v1::RuntimeService::NewStub(grpc::CreateChannel("unix:" + d->socket, grpc::InsecureChannelCredentials()));
    std::string cgroup_parent = o.cgroup_parent;
    if (cgroup_parent.empty()) cgroup_parent = "/" + std::filesystem::path(h.temp_dir).filename().string();
    if (cgroup_parent == "/") die("start berthd: no cgroup parent and no temp dir to name one after");

    std::error_code ec;
    std::filesystem::create_directories(o.dir, ec);
    if (ec) die("mkdir " + o.dir + ": " + ec.message());
    if (!o.busybox_from.empty()) {
        if (run({o.busybox_from + "/scripts/make-oci-busybox.sh", "--archive", o.dir + "/bb.tar", o.dir + "/layout"}) !=
            0)
            die("make-oci-busybox.sh failed");
        if (run({o.berthctl, "image", "import", "--root", d->root, o.dir + "/bb.tar"}) != 0) die("image import failed");
    }
    const std::string toml = o.dir + "/berth.toml";
    if (!(std::ofstream(toml) << o.config)) die("write " + toml);
    UniqueFd log(::open(d->log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log) die("open " + d->log + ": " + std::strerror(errno));

    Daemon* daemon = nullptr;
    pid_t pid = -1;
    {
        WorkScope work;  // started and registered, or neither
        auto spawned =
            spawn({.path = o.berthd,
                   .argv = {o.berthd, "--config", toml, "--socket", d->socket, "--root", d->root, "--state-dir",
                            d->state_dir, "--cgroup-parent", cgroup_parent, "--log-level", "warn"},
                   .stdout_fd = log.get(),
                   .stderr_fd = log.get(),
                   .new_process_group = true});
        if (!spawned) die("start " + o.berthd + ": " + spawned.error().message());
        pid = *spawned;
        std::lock_guard lock(h.mu);
        d->pid = pid;
        h.cgroup_parents.insert(cgroup_parent);
        h.daemons.push_back(std::move(d));
        daemon = h.daemons.back().get();
    }
    for (int i = 0; i < 200 && ::access(daemon->socket.c_str(), F_OK) != 0; ++i) {
        siginfo_t info{};
        // WNOWAIT: the cleanup reaps it.
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (::access(daemon->socket.c_str(), F_OK) != 0) die("berthd did not start: " + read_text(daemon->log));
    return *daemon;
}

void at_cleanup(std::function<void()> step) {
    Harness& h = harness();
    WorkScope work;
    std::lock_guard lock(h.mu);
    h.steps.push_back(std::move(step));
}

}  // namespace berth::bench
