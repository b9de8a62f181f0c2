#include "common/capture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "common/unique_fd.hpp"
#include "linux/pidfd.hpp"
#include "linux/sigpipe.hpp"

namespace berth {
namespace {

// The spawned child until it is reaped; one that is not reaped by then is killed and reaped on destruction, so an
// early return leaves neither a running child nor a zombie.
class Child {
public:
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ <= 0) return;
        kill();
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
    }

    // pidfd_open(2) of the child; false with errno set when it failed.
    bool open_pidfd() {
        pidfd_.reset(sys::pidfd_open(pid_));
        return pidfd_.valid();
    }
    int pidfd() const { return pidfd_.get(); }

    // SIGKILL; nothing when it has exited already. Until it is reaped its pid cannot name another process, so
    // kill(2) is safe where there is no pidfd.
    void kill() const {
        if (pidfd_) {
            sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
        } else {
            ::kill(pid_, SIGKILL);
        }
    }

    // Waits for the exit; the exit status, or 128+signal.
    Result<int> reap(const std::string& label) {
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0) {
            if (errno == EINTR) continue;
            pid_ = -1;  // not ours to wait for any more (ECHILD): the destructor must not try again
            return fail_sys("wait for {}", label);
        }
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }

private:
    pid_t pid_;
    UniqueFd pidfd_;
};

// One non-blocking write of (the start of) `data` to the child's stdin; what write(2) returns, errno as it left
// it. Never SIGPIPE: a socket is written with MSG_NOSIGNAL, a pipe under sys::SigpipeBlock.
ssize_t write_input(int fd, bool socket, std::string_view data) {
    if (socket) return ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    sys::SigpipeBlock quiet;
    return ::write(fd, data.data(), data.size());
}

}  // namespace

Result<CaptureResult> capture(const CaptureRequest& r) {
    int p[2];
    UniqueFd in_r, in_w;
    if (r.stdin_socket) {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
            return fail_sys("socketpair for the stdin of {}", r.label);
        in_r.reset(p[0]), in_w.reset(p[1]);
        ::shutdown(in_r.get(), SHUT_WR);  // the child's end is for reading only
    } else {
        if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe for the stdin of {}", r.label);
        in_r.reset(p[0]), in_w.reset(p[1]);
    }
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe for the stdout of {}", r.label);
    UniqueFd out_r(p[0]), out_w(p[1]);
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe for the stderr of {}", r.label);
    UniqueFd err_r(p[0]), err_w(p[1]);

    SpawnRequest s = r.spawn;
    s.stdin_fd = in_r.get();
    s.stdout_fd = out_w.get();
    s.stderr_fd = err_w.get();
    auto pid = spawn(s);
    if (!pid) {
        if (pid.error().code() == 0)
            return std::unexpected(std::move(pid).error().wrap(fmt::format("start {}", r.label)));
        return fail_errno(pid.error().code(), "start {}", r.label);
    }
    in_r.reset(), out_w.reset(), err_w.reset();
    Child child(*pid);
    if (!child.open_pidfd()) return fail_sys("pidfd_open {} (pid {})", r.label, *pid);

    for (int fd : {in_w.get(), out_r.get(), err_r.get()}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
    std::string_view input = r.input;
    if (input.empty()) in_w.reset();
    const bool has_deadline = r.timeout.count() > 0;
    const auto deadline = std::chrono::steady_clock::now() + r.timeout;
    auto poll_ms = [&]() -> int {
        if (!has_deadline) return -1;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        return left.count() > 0 ? static_cast<int>(std::min<long long>(left.count(), 1 << 30)) : 0;
    };

    CaptureResult res;
    char buf[65536];
    while (out_r || err_r) {
        struct pollfd fds[3];
        nfds_t n = 0;
        if (in_w) fds[n++] = {in_w.get(), POLLOUT, 0};
        if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
        if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
        int rc = ::poll(fds, n, poll_ms());
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return fail_sys("poll on {}", r.label);
        if (rc == 0) {
            res.timed_out = true;
            break;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (!fds[i].revents) continue;
            if (in_w && fds[i].fd == in_w.get()) {
                ssize_t w = write_input(in_w.get(), r.stdin_socket, input);
                if (w > 0) input.remove_prefix(static_cast<size_t>(w));
                // All written (EOF for the child), or the child stopped reading (EPIPE): the input ends.
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || input.empty()) in_w.reset();
                continue;
            }
            const bool is_out = out_r && fds[i].fd == out_r.get();
            std::string& dst = is_out ? res.out : res.err;
            ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got <= 0) {
                (is_out ? out_r : err_r).reset();
                continue;
            }
            const size_t room = r.cap > dst.size() ? r.cap - dst.size() : 0;
            dst.append(buf, std::min(static_cast<size_t>(got), room));
        }
    }
    in_w.reset();
    // The output ended, but the child may run on (it closed its stdout and stderr): the deadline holds for it too.
    while (has_deadline && !res.timed_out) {
        struct pollfd exited = {child.pidfd(), POLLIN, 0};
        int rc = ::poll(&exited, 1, poll_ms());
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return fail_sys("poll on {}", r.label);
        res.timed_out = rc == 0;
        break;
    }
    if (res.timed_out) {
        if (r.on_timeout) r.on_timeout();
        child.kill();
    }
    BERTH_ASSIGN(res.exit_code, child.reap(r.label));
    return res;
}

}  // namespace berth
