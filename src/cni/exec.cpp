#include "cni/exec.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.hpp"
#include "common/unique_fd.hpp"
#include "linux/pidfd.hpp"

namespace berth::cni {
namespace {

constexpr size_t kOutputCap = 1 << 20;

}  // namespace

Result<ExecOutput> exec_plugin(const ExecRequest& r) {
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : r.env) env_strings.push_back(k + "=" + v);
    int p[2];
    // stdin is a socket: send(MSG_NOSIGNAL) to a plugin that exits without reading is EPIPE, never SIGPIPE, in
    // whatever process (berthd, a test, the benchmark) runs this.
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0) return fail_sys("socketpair");
    UniqueFd in_r(p[0]), in_w(p[1]);
    ::shutdown(in_r.get(), SHUT_WR);
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
    UniqueFd out_r(p[0]), out_w(p[1]);
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
    UniqueFd err_r(p[0]), err_w(p[1]);

    // Spawned (no copy of berthd's page tables per plugin, as a fork of the daemon would make on every ADD/DEL):
    // 0-2 and nothing else, the default signal mask and dispositions.
    auto pid = spawn({.path = r.binary,
                      .env = &env_strings,
                      .stdin_fd = in_r.get(),
                      .stdout_fd = out_w.get(),
                      .stderr_fd = err_w.get(),
                      .default_signals = true});
    if (!pid) return fail_errno(pid.error().code(), "start plugin {}", r.binary);
    in_r.reset(), out_w.reset(), err_w.reset();
    UniqueFd pidfd(sys::pidfd_open(*pid));

    for (int fd : {in_w.get(), out_r.get(), err_r.get()}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
    ExecOutput o;
    size_t written = 0;
    if (r.stdin_data.empty()) in_w.reset();
    const auto deadline = std::chrono::steady_clock::now() + r.timeout;
    char buf[65536];
    while (out_r || err_r) {
        struct pollfd fds[3];
        int n = 0;
        if (in_w) fds[n++] = {in_w.get(), POLLOUT, 0};
        if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
        if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        int rc = ::poll(fds, static_cast<nfds_t>(n), left.count() > 0 ? static_cast<int>(left.count()) : 0);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return fail_sys("poll on plugin {}", r.binary);
        if (rc == 0) {
            o.timed_out = true;
            if (pidfd) sys::pidfd_send_signal(pidfd.get(), SIGKILL);
            break;
        }
        for (int i = 0; i < n; ++i) {
            if (!fds[i].revents) continue;
            if (in_w && fds[i].fd == in_w.get()) {
                ssize_t w = ::send(in_w.get(), r.stdin_data.data() + written, r.stdin_data.size() - written,
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) written += static_cast<size_t>(w);
                // A plugin that exits without reading all of it: EPIPE, stop writing.
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == r.stdin_data.size()) in_w.reset();
                continue;
            }
            bool is_out = out_r && fds[i].fd == out_r.get();
            std::string& dst = is_out ? o.out : o.err;
            ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got <= 0) {
                (is_out ? out_r : err_r).reset();
                continue;
            }
            size_t room = kOutputCap > dst.size() ? kOutputCap - dst.size() : 0;
            dst.append(buf, std::min(static_cast<size_t>(got), room));
        }
    }
    in_w.reset();
    int st = 0;
    while (::waitpid(*pid, &st, 0) < 0) {
        if (errno != EINTR) return fail_sys("wait for plugin {}", r.binary);
    }
    o.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return o;
}

}  // namespace berth::cni
