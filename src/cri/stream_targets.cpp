// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/stream_targets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "cri/container_manager.hpp"
#include "cri/cri_context.hpp"
#include "cri/pod_manager.hpp"
#include "cri/subprocess.hpp"
#include "linux/namespaces.hpp"
#include "linux/pidfd.hpp"
#include "linux/terminal.hpp"
#include "monitor/monitor.hpp"

namespace berth::cri {
namespace {

// How long exec waits for the runtime to start the process (and to send a terminal), and attach for the
// monitor's hello: a hang guard, not a timing contract.
constexpr int kStartTimeoutMs = 30000;
constexpr size_t kReadChunk = 32 * 1024;

struct RunningContainer {
    store::ContainerRecord record;
    v1::ContainerConfig config;
};

// The record and config of `id` when it runs: ENOENT when unknown, EBUSY when it is not running.
Result<RunningContainer> running_container(CriContext& ctx, const std::string& id) {
    if (id.empty()) return cri_error(EINVAL, "container_id: empty");
    auto c = ctx.records->container(id);
    if (!c) {
        if (c.error().code() != ENOENT) return std::unexpected(c.error());
        return cri_error(ENOENT, "container {} not found", id);
    }
    if (c->state == store::ContainerState::creating) return cri_error(ENOENT, "container {} not found", id);
    if (c->state != store::ContainerState::running)
        return cri_error(EBUSY, "container {} is {}, not running", id, store::to_string(c->state));
    // The exit watcher may not have recorded an exit yet.
    if (c->pid <= 0 || !sys::process_alive(c->pid, c->pid_start))
        return cri_error(EBUSY, "container {} is not running: its process {} exited", id, c->pid);
    RunningContainer rc;
    rc.record = std::move(*c);
    if (!rc.config.ParseFromString(rc.record.config)) return fail("container {}: its stored config is unreadable", id);
    return rc;
}

Result<UniqueFd> listen_unix(const std::string& path) {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail("socket path {} is too long", path);
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_sys("socket");
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return fail_sys("bind {}", path);
    if (::listen(fd.get(), 1) < 0) return fail_sys("listen {}", path);
    return fd;
}

// Waits until `fd` is readable or `pidfd` (the runtime) exited: 1 for fd, 0 for the exit, an error on timeout.
Result<int> wait_readable_or_exit(int fd, int pidfd, const std::string& what) {
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
        int n = ::poll(p, 2, kStartTimeoutMs);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_sys("poll for {}", what);
        if (n == 0) return cri_error(ETIMEDOUT, "no {} after {} s", what, kStartTimeoutMs / 1000);
        if (p[0].revents) return 1;
        return 0;
    }
}

// The terminal's EOF character (VEOF), ^D when the terminal has none.
char terminal_eof(int master) {
    struct termios t {};
    if (::tcgetattr(master, &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE) return static_cast<char>(t.c_cc[VEOF]);
    return 4;
}

// Reads what is there (poll 0) from a pipe, up to `cap`.
std::string read_available(int fd, size_t cap) {
    std::string out;
    char buf[4096];
    while (out.size() < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (::poll(&p, 1, 0) != 1) break;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

// A process started by the handler's runtime (`<rt> --root R exec --pid-file F [--tty --console-socket S] ID
// cmd...`), which stays in the foreground: it exits with the process's exit code, so it is the one berthd waits
// for (its own child: nothing else is reaped). The process's pid (host view) is read from F to kill it. The pid
// file and the console socket live in a directory of the session's own, removed with it.
//
// A terminal exec through an external runtime runs `berth-monitor --reap-exec F -- <rt> ... exec --detach ...`
// instead (monitor/exec_reaper.hpp): runc hands the terminal to a console socket only when detached, and the
// reaper then waits for the process as the foreground runtime would, so the rest is the same.
class RuntimeExec final : public ExecSession {
public:
    ~RuntimeExec() override;
    [[nodiscard]] Result<OutputChunk> read() override;
    [[nodiscard]] Result<void> write_stdin(std::span<const char> data) override;
    void close_stdin() override;
    [[nodiscard]] Result<void> resize(uint16_t width, uint16_t height) override;
    [[nodiscard]] Result<int> wait() override;
    void kill() override;

    // Spawns the runtime (with a terminal: waits until the runtime sent it). The process may still be starting.
    // `reaper`: berth-monitor, for a terminal exec through a runtime detached under it (empty: the runtime in the
    // foreground).
    [[nodiscard]] Result<void> start(const std::vector<std::string>& runtime_argv, const ExecOptions& o,
                                     const std::string& reaper);

    std::string dir;  // the session's directory: pid, console

private:
    [[nodiscard]] Result<void> wait_pid_file();
    bool kill_process();  // false when the process's pid is not known

    std::string container_id_;
    bool tty_ = false, stdin_ = false;
    pid_t runtime_pid_ = 0;
    UniqueFd runtime_pidfd_;
    // Output: the pipes (stream 1, 2), or the pty master (stream 1; also the input) and the runtime's stderr.
    UniqueFd out_r_, err_r_, master_, runtime_err_;
    bool out_open_ = false, err_open_ = false, runtime_err_open_ = false, runtime_gone_ = false, ended_ = false;
    std::mutex in_mu_;
    UniqueFd in_w_;
    bool in_closed_ = false;
    char last_input_ = '\n';
    std::mutex wait_mu_;
    bool reaped_ = false;
    int exit_code_ = -1;
};

Result<void> RuntimeExec::start(const std::vector<std::string>& runtime_argv, const ExecOptions& o,
                                const std::string& reaper) {
    container_id_ = o.container_id;
    tty_ = o.tty;
    stdin_ = o.stdin;
    BERTH_TRY(mkdir_all(dir, 0700));
    const std::string pid_file = path_join(dir, "pid");
    std::vector<std::string> argv;
    const bool detached = tty_ && !reaper.empty();
    if (detached) argv = {reaper, "--reap-exec", pid_file, "--"};
    argv.insert(argv.end(), runtime_argv.begin(), runtime_argv.end());
    argv.insert(argv.end(), {"exec", "--pid-file", pid_file});
    if (detached) argv.push_back("--detach");
    UniqueFd console;
    if (tty_) {
        BERTH_ASSIGN(console, listen_unix(path_join(dir, "console")));
        argv.insert(argv.end(), {"--tty", "--console-socket", path_join(dir, "console")});
    }
    argv.push_back(o.container_id);
    argv.insert(argv.end(), o.cmd.begin(), o.cmd.end());

    SpawnOptions so{.argv = argv};
    UniqueFd in_r, out_w, err_w;
    int p[2];
    auto make_pipe = [&](UniqueFd& r, UniqueFd& w, const char* what) -> Result<void> {
        if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe for {}", what);
        r.reset(p[0]), w.reset(p[1]);
        return {};
    };
    if (tty_) {
        // The process's stdio is the terminal; the runtime's own stderr carries its failures.
        BERTH_TRY(make_pipe(runtime_err_, err_w, "the runtime's stderr"));
        so.stderr_fd = err_w.get();
    } else {
        if (o.stdin) {
            BERTH_TRY(make_pipe(in_r, in_w_, "stdin"));
            so.stdin_fd = in_r.get();
        }
        if (o.stdout) {
            BERTH_TRY(make_pipe(out_r_, out_w, "stdout"));
            so.stdout_fd = out_w.get();
        }
        if (o.stderr) {
            BERTH_TRY(make_pipe(err_r_, err_w, "stderr"));
            so.stderr_fd = err_w.get();
        }
    }
    BERTH_ASSIGN(runtime_pid_, spawn_process(so));
    runtime_pidfd_.reset(sys::pidfd_open(runtime_pid_));
    if (!runtime_pidfd_) {
        auto err = fail_sys("pidfd_open {} (the runtime)", runtime_pid_);
        ::kill(runtime_pid_, SIGKILL);
        (void)wait();
        return err;
    }
    in_r.reset(), out_w.reset(), err_w.reset();
    out_open_ = out_r_.valid();
    err_open_ = err_r_.valid();
    runtime_err_open_ = runtime_err_.valid();

    if (tty_) {
        BERTH_ASSIGN(int ready,
                     wait_readable_or_exit(console.get(), runtime_pidfd_.get(), "terminal from the runtime"));
        // The runtime's failure before it sent a terminal: its message.
        auto runtime_failed = [&]() -> Result<void> {
            BERTH_ASSIGN(int code, wait());
            std::string why = read_available(runtime_err_.get(), 1 << 16);
            while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
            if (why.empty()) why = fmt::format("exit status {}", code);
            return fail("{} exec: {}", argv[0], why);
        };
        if (ready == 0) return runtime_failed();
        UniqueFd conn(::accept4(console.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) return fail_sys("accept on the console socket {}", path_join(dir, "console"));
        auto master = sys::recv_fd(conn.get(), nullptr);
        if (!master) {
            // It hung up without a terminal: it is failing (else the destructor kills it).
            struct pollfd p = {runtime_pidfd_.get(), POLLIN, 0};
            if (::poll(&p, 1, kStartTimeoutMs) == 1) return runtime_failed();
            return std::unexpected(std::move(master).error());
        }
        master_ = std::move(*master);
        out_open_ = true;
    }
    // The pid file is waited for only by kill(), which is rare: an inotify instance costs 5-20 ms of kernel
    // synchronisation (adding the first watch, closing the instance), more than the whole exec of `true`.
    return {};
}

// Until the runtime wrote the pid file (the process runs) or exited (it failed; its error is on the process's
// stderr and in the exit code).
Result<void> RuntimeExec::wait_pid_file() {
    UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!in) return fail_sys("inotify_init1");
    if (::inotify_add_watch(in.get(), dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
        return fail_sys("inotify_add_watch {}", dir);
    const std::string pid_file = path_join(dir, "pid");
    for (;;) {
        if (auto text = read_file(pid_file); text && std::atoi(text->c_str()) > 0) return {};
        BERTH_ASSIGN(int ready,
                     wait_readable_or_exit(in.get(), runtime_pidfd_.get(), "process started by the runtime"));
        if (ready == 0) return {};
        char buf[4096];
        while (::read(in.get(), buf, sizeof buf) > 0) {
        }
    }
}

Result<OutputChunk> RuntimeExec::read() {
    char buf[kReadChunk];
    for (;;) {
        if (ended_) return OutputChunk{1, ""};
        struct pollfd p[4];
        int idx_out = -1, idx_err = -1, idx_rt = -1, idx_pid = -1;
        nfds_t n = 0;
        int out_fd = tty_ ? master_.get() : out_r_.get();
        if (out_open_) idx_out = static_cast<int>(n), p[n++] = {out_fd, POLLIN, 0};
        if (err_open_) idx_err = static_cast<int>(n), p[n++] = {err_r_.get(), POLLIN, 0};
        if (runtime_err_open_) idx_rt = static_cast<int>(n), p[n++] = {runtime_err_.get(), POLLIN, 0};
        if (idx_out < 0 && idx_err < 0 && idx_rt < 0) {
            ended_ = true;
            continue;
        }
        if (!runtime_gone_) idx_pid = static_cast<int>(n), p[n++] = {runtime_pidfd_.get(), POLLIN, 0};
        // Once the runtime exited (so did the process), what is in the pipes is read and the output ends, even if
        // a process the command left behind still holds them.
        int r = ::poll(p, n, runtime_gone_ ? 0 : -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_sys("poll on the output of exec in container {}", container_id_);
        if (r == 0) {
            ended_ = true;
            continue;
        }
        if (idx_pid >= 0 && p[idx_pid].revents) runtime_gone_ = true;
        auto take = [&](int idx, int fd, bool& open) -> ssize_t {
            if (idx < 0 || !p[idx].revents) return -1;
            ssize_t got = ::read(fd, buf, sizeof buf);
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) return -1;
            // EOF, or EIO from the pty master once every slave is closed.
            if (got <= 0) open = false;
            return got;
        };
        // With a terminal all output is stream 1: the runtime's own errors (a command it could not run) too.
        if (ssize_t got = take(idx_rt, runtime_err_.get(), runtime_err_open_); got > 0)
            return OutputChunk{1, std::string(buf, static_cast<size_t>(got))};
        if (ssize_t got = take(idx_out, out_fd, out_open_); got > 0)
            return OutputChunk{1, std::string(buf, static_cast<size_t>(got))};
        if (ssize_t got = take(idx_err, err_r_.get(), err_open_); got > 0)
            return OutputChunk{2, std::string(buf, static_cast<size_t>(got))};
    }
}

Result<void> RuntimeExec::write_stdin(std::span<const char> data) {
    if (!stdin_) return cri_error(EINVAL, "exec in container {}: started without stdin", container_id_);
    std::lock_guard lock(in_mu_);
    if (in_closed_) return cri_error(EPIPE, "exec in container {}: stdin is closed", container_id_);
    if (data.empty()) return {};
    int fd = tty_ ? master_.get() : in_w_.get();
    BERTH_TRY_CTX(write_all(fd, std::string_view(data.data(), data.size())), "stdin of exec in container {}",
                  container_id_);
    last_input_ = data.back();
    return {};
}

void RuntimeExec::close_stdin() {
    std::lock_guard lock(in_mu_);
    if (in_closed_ || !stdin_) return;
    in_closed_ = true;
    if (!tty_) {
        in_w_.reset();
        return;
    }
    // VEOF ends input only at the start of a line: a partial line takes one to be read, one more for the end.
    const char eof = terminal_eof(master_.get());
    const char eofs[2] = {eof, eof};
    size_t n = last_input_ == '\n' || last_input_ == '\r' ? 1 : 2;
    if (auto r = write_all(master_.get(), std::string_view(eofs, n)); !r)
        log::warn("exec in container {}: end of input: {}", container_id_, r.error().message());
}

Result<void> RuntimeExec::resize(uint16_t width, uint16_t height) {
    if (!tty_) return cri_error(EINVAL, "exec in container {}: no terminal to resize", container_id_);
    struct winsize ws {};
    ws.ws_col = width;
    ws.ws_row = height;
    if (::ioctl(master_.get(), TIOCSWINSZ, &ws) < 0)
        return fail_sys("resize the terminal of exec in container {}", container_id_);
    return {};
}

Result<int> RuntimeExec::wait() {
    std::lock_guard lock(wait_mu_);
    if (!reaped_) {
        BERTH_ASSIGN(exit_code_, wait_process(runtime_pid_));
        reaped_ = true;
    }
    return exit_code_;
}

bool RuntimeExec::kill_process() {
    auto text = read_file(path_join(dir, "pid"));
    if (!text || std::atoi(text->c_str()) <= 0) {
        // Not written yet: the runtime is still starting the process. Killing the runtime now could leave the
        // process behind, orphaned; so wait until it runs (or the runtime gave up).
        if (auto r = wait_pid_file(); !r) log::warn("exec in container {}: {}", container_id_, r.error().message());
        text = read_file(path_join(dir, "pid"));
    }
    if (!text) return false;
    pid_t pid = static_cast<pid_t>(std::atoi(text->c_str()));
    if (pid <= 0) return false;
    UniqueFd pidfd(sys::pidfd_open(pid));
    if (!pidfd) return true;  // gone already
    // The runtime waits for the process and exits right after it: while the runtime runs, `pid` is still the
    // process (or its zombie), never a reused pid.
    struct pollfd p = {runtime_pidfd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) sys::pidfd_send_signal(pidfd.get(), SIGKILL);
    return true;
}

// The process first: the runtime reaps it and exits. Killed before the runtime, the process would be orphaned to
// the host's init, which may not reap. The runtime itself only when the process is not known (yet).
void RuntimeExec::kill() {
    if (!runtime_pidfd_) return;
    if (!kill_process()) sys::pidfd_send_signal(runtime_pidfd_.get(), SIGKILL);
}

RuntimeExec::~RuntimeExec() {
    if (runtime_pid_ > 0) {
        bool reaped;
        {
            std::lock_guard lock(wait_mu_);
            reaped = reaped_;
        }
        if (!reaped) {
            kill();
            // A runtime that does not follow its process out within the grace time is killed as well.
            struct pollfd p = {runtime_pidfd_.get(), POLLIN, 0};
            while (::poll(&p, 1, 5000) < 0 && errno == EINTR) {
            }
            if (!(p.revents & POLLIN)) sys::pidfd_send_signal(runtime_pidfd_.get(), SIGKILL);
            if (auto r = wait(); !r) log::warn("exec in container {}: {}", container_id_, r.error().message());
        }
    }
    if (!dir.empty())
        if (auto r = remove_all(dir); !r) log::warn("{}", r.error().message());
}

// The client side of a monitor's attach socket (monitor/monitor.hpp).
class MonitorAttach final : public AttachSession {
public:
    MonitorAttach(UniqueFd fd, const AttachOptions& o, bool tty)
        : fd_(std::move(fd)), id_(o.container_id), tty_(tty), stdin_(o.stdin), stdout_(o.stdout), stderr_(o.stderr) {}
    [[nodiscard]] Result<OutputChunk> read() override;
    [[nodiscard]] Result<void> write_stdin(std::span<const char> data) override;
    void close_stdin() override;
    [[nodiscard]] Result<void> resize(uint16_t width, uint16_t height) override;
    // Shutting the socket down makes a blocked recv() return 0: read() then gives the end marker.
    void cancel() override { ::shutdown(fd_.get(), SHUT_RDWR); }

private:
    [[nodiscard]] Result<void> send_frame(char type, std::string_view payload);

    UniqueFd fd_;
    std::string id_;
    bool tty_, stdin_, stdout_, stderr_;
    bool ended_ = false;
    std::mutex send_mu_;
};

Result<OutputChunk> MonitorAttach::read() {
    char buf[monitor::kAttachMaxFrame + 1];
    for (;;) {
        if (ended_) return OutputChunk{1, ""};
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != ECONNRESET) return fail_sys("read from the monitor of container {}", id_);
        if (n <= 0 || buf[0] == monitor::kAttachEnd) {
            // The container exited (or its monitor went away): the end of its output.
            ended_ = true;
            continue;
        }
        std::string data(buf + 1, static_cast<size_t>(n) - 1);
        if (buf[0] == monitor::kAttachStdout && stdout_) return OutputChunk{1, std::move(data)};
        if (buf[0] == monitor::kAttachStderr && stderr_) return OutputChunk{2, std::move(data)};
    }
}

Result<void> MonitorAttach::send_frame(char type, std::string_view payload) {
    std::string frame(1, type);
    frame.append(payload);
    std::lock_guard lock(send_mu_);
    for (;;) {
        if (::send(fd_.get(), frame.data(), frame.size(), MSG_NOSIGNAL) >= 0) return {};
        if (errno != EINTR) return fail_sys("send to the monitor of container {}", id_);
    }
}

Result<void> MonitorAttach::write_stdin(std::span<const char> data) {
    if (!stdin_) return cri_error(EINVAL, "attach to container {}: attached without stdin", id_);
    const size_t max = monitor::kAttachMaxFrame - 1;
    for (size_t off = 0; off < data.size(); off += max)
        BERTH_TRY(
            send_frame(monitor::kAttachInput, std::string_view(data.data() + off, std::min(max, data.size() - off))));
    return {};
}

void MonitorAttach::close_stdin() {
    if (auto r = send_frame(monitor::kAttachCloseInput, {}); !r) log::warn("{}", r.error().message());
}

Result<void> MonitorAttach::resize(uint16_t width, uint16_t height) {
    if (!tty_) return cri_error(EINVAL, "attach to container {}: it has no terminal to resize", id_);
    const char size[4] = {static_cast<char>(width >> 8), static_cast<char>(width & 0xff),
                          static_cast<char>(height >> 8), static_cast<char>(height & 0xff)};
    return send_frame(monitor::kAttachResize, std::string_view(size, 4));
}

Result<UniqueFd> connect_loopback(uint16_t port) {
    struct timeval tv {
        10, 0
    };
    auto attempt = [&](int family) -> Result<UniqueFd> {
        UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) return fail_sys("socket");
        // connect(2) on a TCP socket is bounded by the send timeout (a full accept queue).
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int rc;
        if (family == AF_INET) {
            struct sockaddr_in a {};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        } else {
            struct sockaddr_in6 a {};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port);
            a.sin6_addr = in6addr_loopback;
            rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        }
        if (rc < 0) return fail_sys("connect {}:{}", family == AF_INET ? "127.0.0.1" : "[::1]", port);
        struct timeval none {};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
        return fd;
    };
    auto v4 = attempt(AF_INET);
    if (v4) return v4;
    auto v6 = attempt(AF_INET6);
    if (v6) return v6;
    return std::unexpected(Error(v4.error().code(), v4.error().message() + "; " + v6.error().message()));
}

}  // namespace

Result<void> StreamTargets::check_exec(const ExecOptions& o) {
    if (o.cmd.empty()) return cri_error(EINVAL, "cmd: empty");
    if (o.tty && o.stderr) return cri_error(EINVAL, "tty and stderr cannot both be true (a terminal merges them)");
    if (!o.stdin && !o.stdout && !o.stderr) return cri_error(EINVAL, "one of stdin, stdout and stderr must be true");
    BERTH_TRY(running_container(ctx_, o.container_id));
    return {};
}

Result<void> StreamTargets::check_attach(const AttachOptions& o) {
    if (o.tty && o.stderr) return cri_error(EINVAL, "tty and stderr cannot both be true (a terminal merges them)");
    if (!o.stdin && !o.stdout && !o.stderr) return cri_error(EINVAL, "one of stdin, stdout and stderr must be true");
    BERTH_ASSIGN(RunningContainer rc, running_container(ctx_, o.container_id));
    if (o.tty != rc.config.tty())
        return cri_error(EINVAL, "tty is {} but container {} was created with tty {}", o.tty, o.container_id,
                         rc.config.tty());
    if (o.stdin && !rc.config.stdin())
        return cri_error(EINVAL, "stdin: container {} was created without stdin", o.container_id);
    return {};
}

Result<void> StreamTargets::check_port_forward(const std::string& pod_id) {
    if (pod_id.empty()) return cri_error(EINVAL, "pod_sandbox_id: empty");
    auto pod = ctx_.records->pod(pod_id);
    if (!pod) {
        if (pod.error().code() != ENOENT) return std::unexpected(pod.error());
        return cri_error(ENOENT, "pod sandbox {} not found", pod_id);
    }
    BERTH_ASSIGN(PodContext pc, pods_.context_of(*pod));
    if (!pc.netns_path.empty() && !path_exists(pc.netns_path))
        return cri_error(EBUSY, "pod sandbox {}: its network namespace {} is gone", pod_id, pc.netns_path);
    return {};
}

Result<std::unique_ptr<ExecSession>> StreamTargets::exec(const ExecOptions& o) {
    BERTH_TRY(check_exec(o));
    BERTH_ASSIGN(RunningContainer rc, running_container(ctx_, o.container_id));
    BERTH_ASSIGN(RuntimeHandler h, ctx_.handler(rc.record.handler));
    auto session = std::make_unique<RuntimeExec>();
    // Short (sun_path): <state_dir>/x/<16 hex>/{pid,console}.
    session->dir = path_join(ctx_.config.state_dir, "x/" + new_id().substr(0, 16));
    // The handler's global flags (runtime_args, e.g. runsc's --platform) come before `exec`, as for every other
    // call of its runtime.
    // External runtimes get a terminal through the reaper (runc wants --detach with --console-socket); berth
    // takes one in the foreground.
    const std::string reaper = h.path.empty() ? std::string() : ctx_.monitor_binary();
    if (auto r = session->start(containers_.runtime_argv(h), o, reaper); !r)
        return std::unexpected(std::move(r).error().wrap(fmt::format("exec in container {}", o.container_id)));
    return std::unique_ptr<ExecSession>(std::move(session));
}

Result<std::unique_ptr<AttachSession>> StreamTargets::attach(const AttachOptions& o) {
    BERTH_TRY(check_attach(o));
    const std::string mdir = ctx_.monitor_dir(o.container_id);
    const std::string path = path_join(mdir, monitor::kAttachSocket);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail("attach socket path {} is too long", path);
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd) return fail_sys("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        if (errno == ENOENT && path_exists(path_join(mdir, "ctl")))
            return cri_error(ENOTSUP,
                             "attach to container {}: not supported by its berth-monitor (started by an older berthd "
                             "without an attach socket)",
                             o.container_id);
        if (errno == ENOENT || errno == ECONNREFUSED)
            return cri_error(EBUSY, "attach to container {}: it is not running (its monitor is gone)", o.container_id);
        return fail_sys("attach to container {}: connect {}", o.container_id, path);
    }
    const char hello[2] = {monitor::kAttachClientHello, static_cast<char>(o.stdin ? monitor::kAttachStdin : 0)};
    if (::send(fd.get(), hello, sizeof hello, MSG_NOSIGNAL) < 0)
        return fail_sys("attach to container {}: send to its monitor", o.container_id);
    struct timeval tv {
        kStartTimeoutMs / 1000, 0
    };
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char reply[8];
    ssize_t n;
    do {
        n = ::recv(fd.get(), reply, sizeof reply, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail_sys("attach to container {}: no hello from its monitor", o.container_id);
    if (n != 2 || reply[0] != monitor::kAttachHello)
        return cri_error(EBUSY, "attach to container {}: its monitor closed the connection (it exited?)",
                         o.container_id);
    struct timeval none {};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    const auto flags = static_cast<unsigned char>(reply[1]);
    const bool tty = flags & monitor::kAttachTerminal;
    if (tty != o.tty)
        return cri_error(EINVAL, "attach to container {}: tty is {} but its terminal is {}", o.container_id, o.tty,
                         tty);
    if (o.stdin && !(flags & monitor::kAttachStdin))
        return cri_error(EINVAL, "attach to container {}: its monitor holds no stdin", o.container_id);
    return std::unique_ptr<AttachSession>(std::make_unique<MonitorAttach>(std::move(fd), o, tty));
}

Result<UniqueFd> StreamTargets::dial(const std::string& pod_id, uint16_t port) {
    BERTH_TRY(check_port_forward(pod_id));
    BERTH_ASSIGN(store::PodRecord pod, ctx_.records->pod(pod_id));
    BERTH_ASSIGN(PodContext pc, pods_.context_of(pod));
    auto wrap = [&](Result<UniqueFd> r) -> Result<UniqueFd> {
        if (r) return r;
        return std::unexpected(std::move(r).error().wrap(fmt::format("port {} of pod sandbox {}", port, pod_id)));
    };
    if (pc.netns_path.empty()) return wrap(connect_loopback(port));
    BERTH_ASSIGN(UniqueFd ns, open_fd(pc.netns_path, O_RDONLY | O_CLOEXEC));
    // setns() changes only the calling thread's network namespace; a socket keeps the namespace it was made in.
    // The thread ends right after, so no other work of the daemon runs in the pod's namespace.
    Result<UniqueFd> r = fail("not connected");
    std::thread t([&] {
        if (::setns(ns.get(), CLONE_NEWNET) != 0) {
            r = fail_sys("join network namespace {}", pc.netns_path);
            return;
        }
        r = connect_loopback(port);
    });
    t.join();
    return wrap(std::move(r));
}

}  // namespace berth::cri
