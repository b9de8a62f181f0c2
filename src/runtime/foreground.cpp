// The foreground side of `run` and `exec`: signal forwarding, the pty proxy, and the exit code.
#include "runtime/foreground.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <optional>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "runtime/sync.hpp"

namespace berth::runtime {
namespace {

// Puts a terminal in raw mode for the lifetime of the object.
class RawMode {
public:
    explicit RawMode(int fd) : fd_(fd) {
        if (!::isatty(fd) || ::tcgetattr(fd, &saved_) < 0) return;
        struct termios raw = saved_;
        ::cfmakeraw(&raw);
        if (::tcsetattr(fd, TCSANOW, &raw) == 0) active_ = true;
    }
    ~RawMode() {
        if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
    }

private:
    int fd_;
    struct termios saved_{};
    bool active_ = false;
};

void copy_window_size(int from, int to) {
    struct winsize ws{};
    if (::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(to, TIOCSWINSZ, &ws);
}

// Copies what is readable on `from` to `to`; false on EOF or error.
bool pump(int from, int to) {
    char buf[16384];
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n <= 0) return n < 0 && (errno == EAGAIN || errno == EINTR);
    return static_cast<bool>(write_all(to, std::string_view(buf, static_cast<size_t>(n))));
}

int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 255;
}

}  // namespace

sigset_t forwarded_signals() {
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, SIGKILL);
    sigdelset(&set, SIGSTOP);
    sigdelset(&set, SIGSEGV);
    sigdelset(&set, SIGBUS);
    sigdelset(&set, SIGILL);
    sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGTTIN);
    sigdelset(&set, SIGTTOU);
    sigdelset(&set, SIGTSTP);
    return set;
}

Result<int> wait_foreground(pid_t init, int master, UniqueFd& sync, const std::string& id) {
    sigset_t set = forwarded_signals();
    int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) return fail_sys("signalfd");
    UniqueFd sigfd(sfd);

    bool stdin_open = master >= 0;
    std::optional<RawMode> raw;
    if (master >= 0) {
        raw.emplace(STDIN_FILENO);
        copy_window_size(STDIN_FILENO, master);
    }
    std::optional<int> status;
    bool master_open = master >= 0;
    bool sync_open = sync.valid();
    while (!status || master_open) {
        struct pollfd fds[4];
        nfds_t n = 0;
        fds[n++] = {sigfd.get(), POLLIN, 0};
        int i_master = -1, i_stdin = -1, i_sync = -1;
        if (master_open) {
            i_master = static_cast<int>(n);
            fds[n++] = {master, POLLIN, 0};
        }
        if (stdin_open && !status) {
            i_stdin = static_cast<int>(n);
            fds[n++] = {STDIN_FILENO, POLLIN, 0};
        }
        if (sync_open) {
            i_sync = static_cast<int>(n);
            fds[n++] = {sync.get(), POLLIN, 0};
        }
        // Once init has exited, drain the pty without blocking forever on a leaked slave holder.
        int r = ::poll(fds, n, status ? 200 : -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            return fail_sys("poll");
        }
        if (r == 0) break;
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
                int sig = static_cast<int>(si.ssi_signo);
                if (sig == SIGCHLD) {
                    int st = 0;
                    pid_t p;
                    while ((p = ::waitpid(-1, &st, WNOHANG)) > 0)
                        if (p == init) status = st;
                } else if (sig == SIGWINCH) {
                    if (master >= 0) copy_window_size(STDIN_FILENO, master);
                } else {
                    ::kill(init, sig);
                }
            }
        }
        if (i_master >= 0 && fds[i_master].revents) {
            if (!pump(master, STDOUT_FILENO)) master_open = false;
        }
        if (i_stdin >= 0 && fds[i_stdin].revents) {
            if (!pump(STDIN_FILENO, master)) {
                // EOF on our stdin: the terminal's EOF character tells the container's reader.
                char eof = 4;
                (void)write_all(master, std::string_view(&eof, 1));
                stdin_open = false;
            }
        }
        if (i_sync >= 0 && fds[i_sync].revents) {
            auto msg = sync_recv(sync.get());
            if (msg && msg->type == SyncType::error) log::error("container \"{}\": {}", id, msg->text);
            sync_open = false;
            sync.reset();
        }
    }
    if (!status) {
        int st = 0;
        if (::waitpid(init, &st, 0) == init) status = st;
    }
    return exit_code(status.value_or(0));
}

}  // namespace berth::runtime
