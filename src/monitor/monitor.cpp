#include "monitor/monitor.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"
#include "linux/pidfd.hpp"
#include "linux/terminal.hpp"
#include "monitor/cri_log.hpp"
#include "monitor/exit_record.hpp"
#include "runtime/runtime.hpp"

namespace berth::monitor {
namespace {

constexpr const char* kPidFile = "container.pid";
constexpr const char* kCtlSocket = "ctl";
constexpr const char* kRuntimeLog = "runtime.log";
constexpr const char* kMonitorLog = "monitor.log";
constexpr const char* kConsoleSocket = "console.sock";

Result<UniqueFd> open_dev_null(int flags) {
    UniqueFd fd(::open("/dev/null", flags | O_CLOEXEC));
    if (!fd) return fail_sys("open /dev/null");
    return fd;
}

// Puts /dev/null on 0, 1 and 2.
void null_stdio() {
    int fd = ::open("/dev/null", O_RDWR);
    if (fd < 0) return;
    for (int i = 0; i < 3; ++i) ::dup2(fd, i);
    if (fd > 2) ::close(fd);
}

// The last {"level":"error","msg":...} of a runc/crun --log-format json log, else its last line.
std::string runtime_error_message(const std::string& log_path) {
    auto text = read_file(log_path);
    if (!text) return {};
    std::string last_error, last_line;
    size_t pos = 0;
    while (pos < text->size()) {
        size_t nl = text->find('\n', pos);
        if (nl == std::string::npos) nl = text->size();
        std::string line = text->substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) continue;
        last_line = line;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.value("level", "") == "error" && j.contains("msg") && j["msg"].is_string())
            last_error = j["msg"].get<std::string>();
    }
    return last_error.empty() ? last_line : last_error;
}

// The cgroup directories of `pid` (controller -> directory, "unified" for v2), from /proc/<pid>/cgroup.
std::map<std::string, std::string> cgroup_dirs_of(pid_t pid) {
    std::map<std::string, std::string> dirs;
    auto layout = cgroups::detect_layout();
    auto text = read_file(fmt::format("/proc/{}/cgroup", pid));
    if (!layout || !text) return dirs;
    size_t pos = 0;
    while (pos < text->size()) {
        size_t nl = text->find('\n', pos);
        if (nl == std::string::npos) nl = text->size();
        std::string_view line(text->data() + pos, nl - pos);
        pos = nl + 1;
        size_t c1 = line.find(':'), c2 = line.find(':', c1 + 1);
        if (c1 == std::string_view::npos || c2 == std::string_view::npos) continue;
        std::string_view ctrls = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
        if (ctrls.empty()) {
            if (!layout->unified.empty()) dirs["unified"] = path_join(layout->unified, path);
            continue;
        }
        while (!ctrls.empty()) {
            size_t comma = ctrls.find(',');
            std::string c(ctrls.substr(0, comma));
            ctrls = comma == std::string_view::npos ? std::string_view{} : ctrls.substr(comma + 1);
            if (auto it = layout->v1.find(c); it != layout->v1.end()) dirs[c] = path_join(it->second, path);
        }
    }
    return dirs;
}

// Create and start run most of libberth once; the loop afterwards needs a small part of it. This drops the
// process's page-table entries for the binary's code and read-only data (the R E and R load segments, found by
// an address inside each), so only the pages the loop touches again count in its RSS and PSS. Those segments
// are private file mappings never written (checked: no anonymous pages), so MADV_DONTNEED loses nothing: a page touched
// later faults back in from the page cache. Best effort: a failure leaves the pages mapped.
void release_startup_pages() {
    auto smaps = read_file("/proc/self/smaps");
    if (!smaps) return;
    const uintptr_t code = reinterpret_cast<uintptr_t>(&release_startup_pages);
    const uintptr_t rodata = reinterpret_cast<uintptr_t>(kMonitorLog);
    unsigned long lo = 0, hi = 0;
    bool candidate = false;
    size_t pos = 0;
    while (pos < smaps->size()) {
        size_t nl = smaps->find('\n', pos);
        if (nl == std::string::npos) nl = smaps->size();
        std::string line = smaps->substr(pos, nl - pos);
        pos = nl + 1;
        char perms[8] = {};
        unsigned long a = 0, b = 0, anon = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx %7s", &a, &b, perms) == 3) {
            std::string_view p(perms);
            lo = a, hi = b;
            candidate = (p == "r-xp" && code >= lo && code < hi) || (p == "r--p" && rodata >= lo && rodata < hi);
        } else if (candidate && std::sscanf(line.c_str(), "Anonymous: %lu kB", &anon) == 1) {
            // A mapping with written (copied) pages, e.g. relocated data merged into it, must keep them.
            if (anon == 0) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
            candidate = false;
        }
    }
}

Result<UniqueFd> listen_unix(const std::string& path) {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail("socket path {} is too long", path);
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return fail_sys("socket");
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return fail_sys("bind {}", path);
    if (::listen(fd.get(), 4) < 0) return fail_sys("listen {}", path);
    return fd;
}

class Monitor {
public:
    explicit Monitor(const MonitorOptions& o) : o_(o) {}
    int run();

private:
    Result<void> setup();
    Result<void> make_pipes();
    Result<void> create();
    Result<void> start();
    // Runs the external runtime with `args` after its global flags, stdio on in/out/err; its error message when
    // it fails.
    Result<void> run_runtime(const std::vector<std::string>& args, int in, int out, int err);
    Result<void> read_pid();
    Result<void> listen_ctl();
    Result<void> receive_terminal();
    void report(const std::string& json_line);
    void undo();
    Result<void> loop();
    void reap();
    void serve_ctl();
    void drain(LineSplitter& s, UniqueFd& fd, bool to_eof);
    uint64_t oom_kills() const { return cgroups::CgroupManager::load(cgroup_dirs_).oom_kill_count(); }
    std::string file(const char* name) const { return path_join(o_.dir, name); }
    runtime::GlobalOptions global() const {
        runtime::GlobalOptions g;
        g.root = o_.root;
        return g;
    }

    const MonitorOptions& o_;
    UniqueFd sync_;
    bool dir_made_ = false, created_ = false, started_ = false;
    pid_t pid_ = 0;
    UniqueFd pidfd_;
    UniqueFd in_r_, in_w_, out_r_, out_w_, err_r_, err_w_;
    std::optional<CriLogFile> log_;
    LineSplitter out_{"stdout"}, err_{"stderr"};
    UniqueFd epoll_, sigfd_, ctl_, console_;
    std::map<std::string, std::string> cgroup_dirs_;
    uint64_t oom_before_ = 0;
    std::string started_at_;
    bool exited_ = false;
    int status_ = 0;
};

void Monitor::report(const std::string& json_line) {
    if (!sync_) return;
    auto r = write_all(sync_.get(), json_line + "\n");
    if (!r) log::warn("report to the starter: {}", r.error().message());
    sync_.reset();
}

Result<void> Monitor::make_pipes() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe for stdout");
    out_r_.reset(p[0]), out_w_.reset(p[1]);
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe for stderr");
    err_r_.reset(p[0]), err_w_.reset(p[1]);
    if (o_.stdin_pipe) {
        if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe for stdin");
        in_r_.reset(p[0]), in_w_.reset(p[1]);
    } else {
        BERTH_ASSIGN(in_r_, open_dev_null(O_RDONLY));
    }
    for (int fd : {out_r_.get(), err_r_.get()})
        if (::fcntl(fd, F_SETFL, O_NONBLOCK) < 0) return fail_sys("make the container's output pipe non-blocking");
    return {};
}

Result<void> Monitor::run_runtime(const std::vector<std::string>& args, int in, int out, int err) {
    std::vector<std::string> argv = {o_.runtime, "--root", o_.root, "--log", file(kRuntimeLog), "--log-format", "json"};
    argv.insert(argv.end(), o_.runtime_args.begin(), o_.runtime_args.end());
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return fail_sys("fork for {}", o_.runtime);
    if (pid == 0) {
        // Only dup2, close_range, sigprocmask and execv between fork and exec.
        ::dup2(in, 0), ::dup2(out, 1), ::dup2(err, 2);
        ::close_range(3, ~0U, 0);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execv(cargv[0], cargv.data());
        ::_exit(127);
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return fail_sys("wait for {}", o_.runtime);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return {};
    std::string why = runtime_error_message(file(kRuntimeLog));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && why.empty()) return fail("cannot execute {}", o_.runtime);
    if (why.empty())
        why = WIFEXITED(st) ? fmt::format("exit status {}", WEXITSTATUS(st))
                            : fmt::format("killed by signal {}", WTERMSIG(st));
    return fail("{} {}: {}", o_.runtime, args.front(), why);
}

Result<void> Monitor::create() {
    std::string pid_file = file(kPidFile);
    if (o_.runtime.empty()) {
        // The container's init inherits 0, 1 and 2 from the caller of create (as with `berth create`): put the
        // pipes there for the call, then /dev/null again.
        ::dup2(in_r_.get(), 0), ::dup2(out_w_.get(), 1), ::dup2(err_w_.get(), 2);
        runtime::CreateOptions co;
        co.id = o_.id;
        co.bundle = o_.bundle;
        co.pid_file = pid_file;
        if (o_.terminal) co.console_socket = file(kConsoleSocket);
        auto r = runtime::create_container(global(), co);
        null_stdio();
        BERTH_TRY(r);
    } else {
        std::vector<std::string> args = {"create", "--bundle", o_.bundle, "--pid-file", pid_file};
        if (o_.terminal) args.insert(args.end(), {"--console-socket", file(kConsoleSocket)});
        args.push_back(o_.id);
        BERTH_TRY(run_runtime(args, in_r_.get(), out_w_.get(), err_w_.get()));
    }
    created_ = true;
    // Only the container holds the write ends now: EOF on a pipe means every writer in the container is gone.
    out_w_.reset(), err_w_.reset(), in_r_.reset();
    return {};
}

Result<void> Monitor::read_pid() {
    BERTH_ASSIGN(std::string text, read_file(file(kPidFile)));
    char* end = nullptr;
    long pid = std::strtol(text.c_str(), &end, 10);
    if (pid <= 0 || end == text.c_str()) return fail("{}: no pid in \"{}\"", file(kPidFile), text);
    pid_ = static_cast<pid_t>(pid);
    // The init is our child (libberth) or was reparented to us, the subreaper, when the runtime exited: it stays
    // a zombie until reaped here, so the pid cannot be reused under the pidfd.
    pidfd_.reset(sys::pidfd_open(pid_));
    if (!pidfd_ && errno != ESRCH) return fail_sys("pidfd_open {}", pid_);
    cgroup_dirs_ = cgroup_dirs_of(pid_);
    return {};
}

Result<void> Monitor::start() {
    if (started_) return fail("container {} is already started", o_.id);
    oom_before_ = oom_kills();
    if (o_.runtime.empty()) {
        BERTH_TRY(runtime::start_container(global(), o_.id));
    } else {
        BERTH_ASSIGN(UniqueFd null, open_dev_null(O_RDWR));
        BERTH_TRY(run_runtime({"start", o_.id}, null.get(), null.get(), null.get()));
    }
    started_ = true;
    started_at_ = timestamp_now();
    return {};
}

Result<void> Monitor::listen_ctl() {
    BERTH_ASSIGN(ctl_, listen_unix(file(kCtlSocket)));
    return {};
}

Result<void> Monitor::receive_terminal() {
    // The runtime connected and sent the master during create: the connection is already queued.
    UniqueFd conn(::accept4(console_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return fail_sys("no terminal was sent to the console socket {}", file(kConsoleSocket));
    BERTH_ASSIGN(UniqueFd master, sys::recv_fd(conn.get(), nullptr));
    if (::fcntl(master.get(), F_SETFL, O_NONBLOCK) < 0) return fail_sys("make the pty master non-blocking");
    // The terminal is the container's stdout and stderr: its output is logged as stdout, as CRI wants.
    out_r_ = std::move(master);
    console_.reset();
    ::unlink(file(kConsoleSocket).c_str());
    return {};
}

Result<void> Monitor::setup() {
    BERTH_TRY(mkdir_all(std::string(clean_path(o_.dir + "/..")), 0755));
    if (::mkdir(o_.dir.c_str(), 0700) < 0) return fail_sys("make monitor dir {}", o_.dir);
    dir_made_ = true;
    log::init(file(kMonitorLog), log::Format::text, false);
    BERTH_TRY(make_pipes());
    if (o_.terminal) {
        BERTH_ASSIGN(console_, listen_unix(file(kConsoleSocket)));
    }
    BERTH_TRY_CTX(create(), "create container {}", o_.id);
    if (o_.terminal) BERTH_TRY_CTX(receive_terminal(), "create container {}", o_.id);
    BERTH_TRY(read_pid());
    BERTH_ASSIGN(CriLogFile lf, CriLogFile::open(o_.log_path));
    log_.emplace(std::move(lf));
    BERTH_TRY(listen_ctl());
    if (o_.start) BERTH_TRY_CTX(start(), "start container {}", o_.id);
    return {};
}

void Monitor::undo() {
    if (created_) {
        Result<void> r;
        if (o_.runtime.empty()) {
            r = runtime::delete_container(global(), o_.id, true);
        } else if (auto null = open_dev_null(O_RDWR)) {
            r = run_runtime({"delete", "--force", o_.id}, null->get(), null->get(), null->get());
        }
        if (!r) log::error("delete container {} after a failure: {}", o_.id, r.error().message());
        reap();
    }
    if (log_) {
        log_.reset();
        ::unlink(o_.log_path.c_str());
    }
    if (dir_made_) {
        log::init("", log::Format::text, false);
        if (auto r = remove_all(o_.dir); !r) log::error("{}", r.error().message());
    }
}

void Monitor::reap() {
    int st = 0;
    pid_t p;
    while ((p = ::waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == pid_) {
            exited_ = true;
            status_ = st;
        }
    }
}

void Monitor::drain(LineSplitter& s, UniqueFd& fd, bool to_eof) {
    if (!fd) return;
    for (;;) {
        auto n = s.read_from(fd.get(), *log_);
        if (!n) {
            // The log file failed (disk full): those bytes are lost, the stream goes on.
            log::warn("{}", n.error().message());
            continue;
        }
        if (*n == 0) {
            fd.reset();  // EOF: closing it also removes it from the epoll set
            return;
        }
        if (*n < 0 || !to_eof) return;
    }
}

void Monitor::serve_ctl() {
    UniqueFd c(::accept4(ctl_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    // A client that connects and says nothing must not stall the container's logs for long.
    struct timeval tv {
        2, 0
    };
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    size_t len = 0;
    while (len < sizeof buf) {
        ssize_t n = ::read(c.get(), buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += static_cast<size_t>(n);
        if (std::memchr(buf, '\n', len)) break;
    }
    std::string_view cmd(buf, len);
    if (size_t nl = cmd.find('\n'); nl != std::string_view::npos) cmd = cmd.substr(0, nl);
    Result<void> r;
    if (cmd == "start") {
        r = start();
        if (!r) r = std::unexpected(std::move(r).error().wrap(fmt::format("start container {}", o_.id)));
    } else if (cmd == "reopen") {
        r = log_->reopen();
    } else {
        r = fail("unknown command \"{}\" (start, reopen)", cmd);
    }
    std::string reply = r ? "ok\n" : "error " + r.error().message() + "\n";
    ::send(c.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
}

Result<void> Monitor::loop() {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return fail_sys("epoll_create1");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGUSR1);
    sigfd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd_) return fail_sys("signalfd");
    for (int fd : {out_r_.get(), err_r_.get(), sigfd_.get(), pidfd_.get(), ctl_.get()}) {
        if (fd < 0) continue;
        struct epoll_event ev {};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return fail_sys("epoll_ctl");
    }
    reap();  // an exit before the signalfd existed
    while (!exited_) {
        struct epoll_event evs[8];
        int n = ::epoll_wait(epoll_.get(), evs, 8, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            if (fd == out_r_.get()) {
                drain(out_, out_r_, false);
            } else if (fd == err_r_.get()) {
                drain(err_, err_r_, false);
            } else if (fd == pidfd_.get()) {
                reap();
            } else if (fd == ctl_.get()) {
                serve_ctl();
            } else if (fd == sigfd_.get()) {
                struct signalfd_siginfo si;
                while (::read(sigfd_.get(), &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGUSR1) {
                        if (auto r = log_->reopen(); !r) log::error("{}", r.error().message());
                    }
                }
                reap();
            }
        }
    }
    return {};
}

int Monitor::run() {
    if (o_.sync_fd >= 0) sync_.reset(o_.sync_fd);
    if (auto r = setup(); !r) {
        undo();
        report(nlohmann::json{{"error", r.error().message()}}.dump());
        return 1;
    }
    report(nlohmann::json{{"pid", ::getpid()}, {"container_pid", pid_}}.dump());
    release_startup_pages();
    ::malloc_trim(0);  // what create (and reading smaps) needed is not needed again
    if (auto r = loop(); !r) {
        log::error("{}", r.error().message());
        return 1;
    }
    ExitRecord rec = exit_record_from_status(status_);
    rec.finished_at = timestamp_now();
    rec.started_at = started_at_;
    rec.oom_killed = oom_kills() > oom_before_;
    // What the container wrote before it exited is in the pipes; processes left behind (host pid namespace) may
    // still hold them open, so read what is there rather than to EOF.
    drain(out_, out_r_, true);
    drain(err_, err_r_, true);
    for (auto* s : {&out_, &err_})
        if (auto r = s->flush(*log_); !r) log::error("{}", r.error().message());
    if (auto r = write_exit_record(o_.dir, rec); !r) {
        log::error("{}", r.error().message());
        return 1;
    }
    ::unlink(file(kCtlSocket).c_str());
    return 0;
}

}  // namespace

int spawn_monitor(const MonitorOptions& o) {
    if (o.sync_fd >= 0 && o.sync_fd <= 2) {
        std::fprintf(stderr, "berth-monitor: --sync-fd must be above 2\n");
        return 2;
    }
    if (o.sync_fd >= 0 && ::fcntl(o.sync_fd, F_SETFD, FD_CLOEXEC) < 0) {
        std::fprintf(stderr, "berth-monitor: --sync-fd %d: %s\n", o.sync_fd, std::strerror(errno));
        return 2;
    }
    std::fflush(nullptr);
    pid_t child = ::fork();
    if (child < 0) {
        std::fprintf(stderr, "berth-monitor: fork: %s\n", std::strerror(errno));
        return 1;
    }
    if (child > 0) {
        int st = 0;
        while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    // Intermediate: a new session without a terminal, then the monitor's own fork; its exit orphans the monitor.
    ::setsid();
    pid_t mon = ::fork();
    if (mon != 0) ::_exit(mon < 0 ? 1 : 0);
    // The monitor: nothing of the starter's (fds, cwd, terminal) stays open.
    null_stdio();
    if (::chdir("/") < 0) ::_exit(1);
    if (o.sync_fd > 3) ::close_range(3, static_cast<unsigned>(o.sync_fd) - 1, 0);
    ::close_range(o.sync_fd >= 3 ? static_cast<unsigned>(o.sync_fd) + 1 : 3, ~0U, 0);
    ::umask(022);
    // Orphans of the container (and an external runtime's init, once the runtime exits) become our children.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    // Read through a signalfd; SIGPIPE blocked so a closed reader is EPIPE. The container's init unblocks all.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGUSR1, SIGPIPE, SIGHUP, SIGINT, SIGTERM}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    Monitor m(o);
    ::_exit(m.run());
}

}  // namespace berth::monitor
