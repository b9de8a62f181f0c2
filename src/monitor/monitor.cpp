#include "monitor/monitor.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
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

Result<UniqueFd> listen_unix(const std::string& path, int type = SOCK_STREAM, int backlog = 4) {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail("socket path {} is too long", path);
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return fail_sys("socket");
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return fail_sys("bind {}", path);
    if (::listen(fd.get(), backlog) < 0) return fail_sys("listen {}", path);
    return fd;
}

constexpr size_t kMaxAttachers = 32;

// A client of the attach socket.
struct Attacher {
    UniqueFd fd;
    bool uses_stdin = false;
    bool input_ended = false;       // it sent 'C': its later input is dropped
    std::deque<std::string> queue;  // frames the socket did not take yet
    size_t queued = 0;              // bytes in queue
};

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
    void drain(LineSplitter& s, UniqueFd& fd, char frame, bool to_eof);
    // Attach: the socket, its clients, and the container's input they send.
    Result<void> listen_attach();
    void accept_attacher();
    void serve_attacher(Attacher& a, uint32_t events);
    bool handle_frame(Attacher& a, const char* msg, size_t len);
    void broadcast(char frame, char* buf, size_t len);
    bool send_frame(Attacher& a, std::string_view frame);
    bool flush_queue(Attacher& a);
    void drop_attacher(Attacher& a);
    void reap_attachers();
    void watch_attacher(Attacher& a);
    int stdin_fd() const { return o_.terminal ? out_r_.get() : in_w_.get(); }
    void queue_stdin(const char* data, size_t len);
    void pump_stdin();
    void close_stdin_now();
    void watch_stdin();
    void resize(uint16_t cols, uint16_t rows);
    void end_attachers();
    bool epoll_set(int op, int fd, uint32_t events);
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
    UniqueFd epoll_, sigfd_, ctl_, console_, attach_;
    std::vector<std::unique_ptr<Attacher>> attachers_;
    std::string stdin_pending_;  // input the container has not taken yet; while set, clients are not read
    bool stdin_close_pending_ = false, stdin_closed_ = false, stdin_watched_ = false;
    char last_input_ = '\n';    // the last byte written to a terminal (VEOF ends input only at a line start)
    char io_[kAttachMaxFrame];  // output as read, behind its frame type byte
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
        // Our end only (the container's end is another open file): input never blocks the loop.
        if (::fcntl(in_w_.get(), F_SETFL, O_NONBLOCK) < 0) return fail_sys("make the stdin pipe non-blocking");
    } else {
        BERTH_ASSIGN(in_r_, open_dev_null(O_RDONLY));
    }
    for (int fd : {out_r_.get(), err_r_.get()})
        if (::fcntl(fd, F_SETFL, O_NONBLOCK) < 0) return fail_sys("make the container's output pipe non-blocking");
    return {};
}

Result<void> Monitor::run_runtime(const std::vector<std::string>& args, int in, int out, int err) {
    std::vector<std::string> argv = {o_.runtime, "--root", o_.root, "--log", file(kRuntimeLog), "--log-format", "json"};
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

Result<void> Monitor::listen_attach() {
    BERTH_ASSIGN(attach_, listen_unix(file(kAttachSocket), SOCK_SEQPACKET, 16));
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
    // Without it the container still runs and logs; attaching is what fails (a path too long for sun_path).
    if (auto r = listen_attach(); !r) log::warn("no attach socket: {}", r.error().message());
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

void Monitor::drain(LineSplitter& s, UniqueFd& fd, char frame, bool to_eof) {
    if (!fd) return;
    for (;;) {
        ssize_t n = ::read(fd.get(), io_ + 1, sizeof io_ - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            // EOF, or EIO from a pty master whose slaves are all closed: the end of the stream. Closing the fd
            // also removes it from the epoll set; a terminal takes no more input.
            fd.reset();
            if (o_.terminal && &fd == &out_r_) pump_stdin();  // drops pending input, resumes reading clients
            return;
        }
        // A log write that failed (disk full) loses those bytes in the log; the stream goes on.
        if (auto r = s.feed(std::string_view(io_ + 1, static_cast<size_t>(n)), *log_); !r)
            log::warn("{}", r.error().message());
        broadcast(frame, io_, static_cast<size_t>(n));
        if (!to_eof) return;
    }
}

bool Monitor::epoll_set(int op, int fd, uint32_t events) {
    struct epoll_event ev {};
    ev.events = events;
    ev.data.fd = fd;
    return ::epoll_ctl(epoll_.get(), op, fd, &ev) == 0;
}

void Monitor::accept_attacher() {
    UniqueFd fd(::accept4(attach_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) return;
    if (attachers_.size() >= kMaxAttachers) {
        log::warn("attach refused: {} clients are attached already", kMaxAttachers);
        return;
    }
    auto a = std::make_unique<Attacher>();
    a->fd = std::move(fd);
    unsigned char flags = 0;
    if (o_.stdin_pipe) flags |= kAttachStdin;
    if (o_.terminal) flags |= kAttachTerminal;
    if (o_.stdin_once) flags |= kAttachStdinOnce;
    if (stdin_closed_ || stdin_close_pending_) flags |= kAttachStdinClosed;
    const char hello[2] = {kAttachHello, static_cast<char>(flags)};
    if (::send(a->fd.get(), hello, sizeof hello, MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof hello) return;
    if (!epoll_set(EPOLL_CTL_ADD, a->fd.get(), stdin_pending_.empty() ? uint32_t{EPOLLIN} : 0u)) return;
    attachers_.push_back(std::move(a));
}

void Monitor::watch_attacher(Attacher& a) {
    if (!a.fd) return;
    uint32_t events = (stdin_pending_.empty() ? uint32_t{EPOLLIN} : 0u) | (a.queue.empty() ? 0u : uint32_t{EPOLLOUT});
    epoll_set(EPOLL_CTL_MOD, a.fd.get(), events);
}

void Monitor::drop_attacher(Attacher& a) {
    if (!a.fd) return;
    // stdin_once: the first attach session that took part in the input ends the container's input with it.
    if (a.uses_stdin && o_.stdin_once && o_.stdin_pipe && !stdin_closed_) {
        stdin_close_pending_ = true;
        pump_stdin();
    }
    a.fd.reset();
    a.queue.clear();
}

void Monitor::reap_attachers() {
    std::erase_if(attachers_, [](const std::unique_ptr<Attacher>& a) { return !a->fd; });
}

bool Monitor::flush_queue(Attacher& a) {
    while (!a.queue.empty()) {
        const std::string& f = a.queue.front();
        if (::send(a.fd.get(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) return errno == EAGAIN;
        a.queued -= f.size();
        a.queue.pop_front();
    }
    return true;
}

bool Monitor::send_frame(Attacher& a, std::string_view frame) {
    if (a.queue.empty()) {
        if (::send(a.fd.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return true;
        if (errno != EAGAIN) return false;
    }
    // A client that does not keep up gets a bounded backlog, then is disconnected.
    if (a.queued + frame.size() > kAttachQueueMax) {
        log::warn("attach client dropped: {} bytes of output not taken", a.queued);
        return false;
    }
    a.queue.emplace_back(frame);
    a.queued += frame.size();
    if (a.queue.size() == 1) watch_attacher(a);
    return true;
}

// `buf` holds `len` bytes of output behind one free byte for the frame type.
void Monitor::broadcast(char frame, char* buf, size_t len) {
    if (attachers_.empty()) return;
    buf[0] = frame;
    bool dropped = false;
    for (auto& a : attachers_) {
        if (a->fd && !send_frame(*a, std::string_view(buf, len + 1))) {
            drop_attacher(*a);
            dropped = true;
        }
    }
    if (dropped) reap_attachers();
}

void Monitor::serve_attacher(Attacher& a, uint32_t events) {
    if ((events & EPOLLOUT) && !flush_queue(a)) return drop_attacher(a);
    if (events & EPOLLOUT) watch_attacher(a);
    // Input is read while the container takes it; a client that hung up is read to its end regardless, so input
    // it sent before closing is not lost (bounded by its socket buffer).
    const bool hangup = events & (EPOLLHUP | EPOLLERR);
    if (!(events & EPOLLIN) && !hangup) return;
    char msg[kAttachMaxFrame];
    while (a.fd && (stdin_pending_.empty() || hangup)) {
        ssize_t n = ::recv(a.fd.get(), msg, sizeof msg, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0 || !handle_frame(a, msg, static_cast<size_t>(n))) return drop_attacher(a);
    }
}

bool Monitor::handle_frame(Attacher& a, const char* msg, size_t len) {
    if (len == 0) return false;
    switch (msg[0]) {
        case kAttachClientHello:
            a.uses_stdin = len > 1 && (msg[1] & kAttachStdin);
            return true;
        case kAttachInput:
            if (o_.stdin_pipe && !a.input_ended && !stdin_closed_ && !stdin_close_pending_) {
                a.uses_stdin = true;
                queue_stdin(msg + 1, len - 1);
            }
            return true;
        case kAttachCloseInput:
            if (a.uses_stdin && o_.stdin_once && o_.stdin_pipe && !stdin_closed_) {
                stdin_close_pending_ = true;
                pump_stdin();
            }
            a.uses_stdin = false;
            a.input_ended = true;
            return true;
        case kAttachResize:
            if (len != 5) return false;
            resize(
                static_cast<uint16_t>((static_cast<unsigned char>(msg[1]) << 8) | static_cast<unsigned char>(msg[2])),
                static_cast<uint16_t>((static_cast<unsigned char>(msg[3]) << 8) | static_cast<unsigned char>(msg[4])));
            return true;
        default:
            log::warn("attach client sent an unknown message type {}: disconnected", static_cast<int>(msg[0]));
            return false;
    }
}

void Monitor::resize(uint16_t cols, uint16_t rows) {
    if (!o_.terminal || !out_r_) return;
    struct winsize ws {};
    ws.ws_col = cols;
    ws.ws_row = rows;
    if (::ioctl(out_r_.get(), TIOCSWINSZ, &ws) < 0) log::warn("resize the terminal: {}", std::strerror(errno));
}

void Monitor::queue_stdin(const char* data, size_t len) {
    if (len == 0) return;
    stdin_pending_.append(data, len);
    pump_stdin();
}

void Monitor::pump_stdin() {
    const bool was_pending = !stdin_pending_.empty();
    int fd = stdin_fd();
    while (!stdin_pending_.empty()) {
        if (fd < 0) {
            stdin_pending_.clear();
            break;
        }
        ssize_t n = ::write(fd, stdin_pending_.data(), stdin_pending_.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) {
            // EPIPE: nobody in the container reads its stdin any more.
            stdin_pending_.clear();
            if (!o_.terminal) in_w_.reset(), stdin_closed_ = true;
            break;
        }
        last_input_ = stdin_pending_[static_cast<size_t>(n) - 1];
        stdin_pending_.erase(0, static_cast<size_t>(n));
    }
    if (stdin_pending_.empty() && stdin_close_pending_) close_stdin_now();
    watch_stdin();
    if (was_pending != !stdin_pending_.empty())
        for (auto& a : attachers_) watch_attacher(*a);
}

void Monitor::watch_stdin() {
    if (o_.terminal) {
        if (out_r_) epoll_set(EPOLL_CTL_MOD, out_r_.get(), EPOLLIN | (stdin_pending_.empty() ? 0u : uint32_t{EPOLLOUT}));
        return;
    }
    if (!in_w_) {
        stdin_watched_ = false;
        return;
    }
    // The pipe's write end is watched only while input waits (EPOLLERR would otherwise report a closed reader
    // over and over).
    if (!stdin_pending_.empty() && !stdin_watched_) {
        stdin_watched_ = epoll_set(EPOLL_CTL_ADD, in_w_.get(), EPOLLOUT);
    } else if (stdin_pending_.empty() && stdin_watched_) {
        epoll_set(EPOLL_CTL_DEL, in_w_.get(), 0);
        stdin_watched_ = false;
    }
}

void Monitor::close_stdin_now() {
    stdin_close_pending_ = false;
    if (stdin_closed_) return;
    stdin_closed_ = true;
    if (!o_.terminal) {
        in_w_.reset();
        stdin_watched_ = false;
        return;
    }
    if (!out_r_) return;
    // A terminal has no end of input but its EOF character, which ends input only at the start of a line: a
    // partial line needs one VEOF to be read and one more for the end.
    struct termios t {};
    char veof =
        ::tcgetattr(out_r_.get(), &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE ? static_cast<char>(t.c_cc[VEOF]) : 4;
    const char eofs[2] = {veof, veof};
    const size_t n = last_input_ == '\n' || last_input_ == '\r' ? 1 : 2;
    if (::write(out_r_.get(), eofs, n) < 0) log::warn("end the terminal's input: {}", std::strerror(errno));
}

// At the container's exit: what each client has not taken yet (bounded in time), then the end message.
void Monitor::end_attachers() {
    const char end[1] = {kAttachEnd};
    const int64_t deadline_ms = 2000;
    struct timespec t0 {};
    ::clock_gettime(CLOCK_MONOTONIC, &t0);
    for (auto& a : attachers_) {
        if (!a->fd || !send_frame(*a, std::string_view(end, 1))) continue;
        while (a->fd && !a->queue.empty()) {
            if (!flush_queue(*a)) break;
            if (a->queue.empty()) break;
            struct timespec now {};
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            int64_t left = deadline_ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
            struct pollfd p = {a->fd.get(), POLLOUT, 0};
            if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
        }
    }
    attachers_.clear();
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
    for (int fd : {out_r_.get(), err_r_.get(), sigfd_.get(), pidfd_.get(), ctl_.get(), attach_.get()}) {
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
                if (evs[i].events & EPOLLOUT) pump_stdin();
                if (evs[i].events & ~EPOLLOUT) drain(out_, out_r_, kAttachStdout, false);
            } else if (fd == err_r_.get()) {
                drain(err_, err_r_, kAttachStderr, false);
            } else if (fd == in_w_.get()) {
                pump_stdin();
            } else if (fd == attach_.get()) {
                accept_attacher();
            } else if (fd == pidfd_.get()) {
                reap();
            } else if (fd == ctl_.get()) {
                serve_ctl();
            } else if (auto it = std::find_if(attachers_.begin(), attachers_.end(),
                                              [fd](const auto& a) { return a->fd.get() == fd; });
                       it != attachers_.end()) {
                serve_attacher(**it, evs[i].events);
                reap_attachers();
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
    drain(out_, out_r_, kAttachStdout, true);
    drain(err_, err_r_, kAttachStderr, true);
    for (auto* s : {&out_, &err_})
        if (auto r = s->flush(*log_); !r) log::error("{}", r.error().message());
    end_attachers();
    if (attach_) ::unlink(file(kAttachSocket).c_str());
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
