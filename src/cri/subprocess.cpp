#include "cri/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "common/fs.hpp"
#include "common/spawn.hpp"
#include "common/unique_fd.hpp"
#include "linux/pidfd.hpp"

namespace berth::cri {
Result<pid_t> spawn_process(const SpawnOptions& o) {
    if (o.argv.empty()) return fail("spawn: no command");
    return spawn({.path = o.argv[0],
                  .argv = o.argv,
                  .stdin_fd = o.stdin_fd,
                  .stdout_fd = o.stdout_fd,
                  .stderr_fd = o.stderr_fd,
                  .extra_fds = o.extra_fds});
}

Result<int> wait_process(pid_t pid) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return fail_sys("wait for process {}", pid);
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

Result<CapturedRun> run_captured(const std::vector<std::string>& argv, const std::string& input, long timeout_ms,
                                 size_t cap, void (*on_timeout)(void*), void* arg) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
    UniqueFd out_r(p[0]), out_w(p[1]);
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
    UniqueFd err_r(p[0]), err_w(p[1]);
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
    UniqueFd in_r(p[0]), in_w(p[1]);
    SpawnOptions so{.argv = argv, .stdin_fd = in_r.get(), .stdout_fd = out_w.get(), .stderr_fd = err_w.get()};
    BERTH_ASSIGN(pid_t pid, spawn_process(so));
    in_r.reset(), out_w.reset(), err_w.reset();
    UniqueFd pidfd(sys::pidfd_open(pid));
    // The input is small (a resources JSON); a child that does not read it gets EOF when we close.
    // berthd ignores SIGPIPE: a child that exits early makes this EPIPE, not a crash.
    if (!input.empty()) (void)write_all(in_w.get(), input);
    in_w.reset();
    for (int fd : {out_r.get(), err_r.get()}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
    CapturedRun r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    while (out_r || err_r) {
        struct pollfd fds[2];
        int n = 0;
        if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
        if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
        int wait_ms = -1;
        if (timeout_ms > 0) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            wait_ms = left.count() > 0 ? static_cast<int>(left.count()) : 0;
        }
        int rc = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return fail_sys("poll on the output of {}", argv[0]);
        if (rc == 0) {
            r.timed_out = true;
            if (on_timeout) on_timeout(arg);
            if (pidfd) sys::pidfd_send_signal(pidfd.get(), SIGKILL);
            break;
        }
        for (int i = 0; i < n; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            bool is_out = fds[i].fd == out_r.get();
            std::string& dst = is_out ? r.out : r.err;
            ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got <= 0) {
                (is_out ? out_r : err_r).reset();
                continue;
            }
            size_t room = cap > dst.size() ? cap - dst.size() : 0;
            dst.append(buf, static_cast<size_t>(got) < room ? static_cast<size_t>(got) : room);
        }
    }
    BERTH_ASSIGN(r.exit_code, wait_process(pid));
    return r;
}

Result<void> run_checked(const std::vector<std::string>& argv, const std::string& input) {
    BERTH_ASSIGN(CapturedRun r, run_captured(argv, input, 0, 1 << 16));
    if (r.exit_code == 0) return {};
    std::string why = r.err;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    if (why.empty()) why = fmt::format("exit status {}", r.exit_code);
    return fail("{} {}: {}", argv[0], argv.size() > 3 ? argv[3] : "", why);
}

}  // namespace berth::cri
