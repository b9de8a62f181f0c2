#include "linux/terminal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <vector>

#include "linux/pidfd.hpp"

namespace berth::sys {

Result<Pty> open_pty(const std::string& ptmx) {
    UniqueFd master(::open(ptmx.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master) return fail_sys("open {}", ptmx);
    int unlock = 0;
    if (::ioctl(master.get(), TIOCSPTLCK, &unlock) < 0) return fail_sys("unlock pty {}", ptmx);
    // TIOCGPTN rather than ptsname_r: glibc's ptsname_r stats /dev/pts/N in *our* mount namespace, which is the
    // wrong devpts (or none) when `ptmx` belongs to a container's devpts instance.
    unsigned int index = 0;
    if (::ioctl(master.get(), TIOCGPTN, &index) < 0) return fail_sys("get pty number of {}", ptmx);
    std::string name = fmt::format("/dev/pts/{}", index);

    UniqueFd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave) {
        if (errno != EINVAL && errno != ENOTTY) return fail_sys("open peer of pty {} ({})", ptmx, name);
        // Kernels before 4.13: the name is only meaningful when `ptmx` is the devpts mounted at /dev/pts.
        if (ptmx != "/dev/ptmx" && ptmx != "/dev/pts/ptmx")
            return fail_errno(ENOTSUP, "open peer of pty {}: TIOCGPTPEER unsupported and {} is not under /dev/pts",
                              ptmx, name);
        slave.reset(::open(name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
        if (!slave) return fail_sys("open {}", name);
    }
    return Pty{std::move(master), std::move(slave), std::move(name)};
}

Result<void> set_console_size(int fd, unsigned height, unsigned width) {
    if (height > 0xffff || width > 0xffff)
        return fail_errno(EINVAL, "set console size {}x{}: larger than 65535", height, width);
    struct winsize ws {};
    ws.ws_row = static_cast<unsigned short>(height);
    ws.ws_col = static_cast<unsigned short>(width);
    if (::ioctl(fd, TIOCSWINSZ, &ws) < 0) return fail_sys("set console size {}x{} on fd {}", height, width, fd);
    return {};
}

Result<ConsoleSize> get_console_size(int fd) {
    struct winsize ws {};
    if (::ioctl(fd, TIOCGWINSZ, &ws) < 0) return fail_sys("get console size of fd {}", fd);
    return ConsoleSize{ws.ws_row, ws.ws_col};
}

Result<void> make_controlling_terminal(int slave_fd) {
    if (::getsid(0) != ::getpid() && ::setsid() < 0) return fail_sys("setsid");
    if (::ioctl(slave_fd, TIOCSCTTY, 0) < 0) return fail_sys("make fd {} the controlling terminal", slave_fd);
    for (int target = 0; target <= 2; ++target) {
        if (target == slave_fd) {
            // dup2 onto itself keeps FD_CLOEXEC (open_pty sets it): clear it so the terminal survives exec.
            if (::fcntl(slave_fd, F_SETFD, 0) < 0) return fail_sys("clear close-on-exec on fd {}", slave_fd);
        } else if (::dup2(slave_fd, target) < 0) {
            return fail_sys("dup2 terminal fd {} onto {}", slave_fd, target);
        }
    }
    if (slave_fd > 2) ::close(slave_fd);
    return {};
}

Result<UniqueFd> connect_unix(const std::string& path) {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::string target = path;
    UniqueFd dir;  // keeps /proc/self/fd/N valid until connect returns
    if (path.empty()) return fail_errno(EINVAL, "connect to unix socket: empty path");
    if (path.size() >= sizeof addr.sun_path) {
        auto slash = path.find_last_of('/');
        std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
        std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
        dir.reset(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!dir) return fail_sys("connect to unix socket {}: open directory {}", path, parent);
        target = fmt::format("/proc/self/fd/{}/{}", dir.get(), base);
        if (target.size() >= sizeof addr.sun_path)
            return fail_errno(ENAMETOOLONG, "connect to unix socket {}: file name too long even via {}", path, target);
    }
    std::memcpy(addr.sun_path, target.data(), target.size());
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) return fail_sys("connect to unix socket {}: socket", path);
    socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + target.size() + 1);
    if (::connect(sock.get(), reinterpret_cast<const struct sockaddr*>(&addr), len) < 0)
        return fail_sys("connect to unix socket {}", path);
    return sock;
}

Result<void> send_fd(int sock, int fd, std::string_view name) {
    static constexpr char kNul = '\0';
    std::string_view payload = name.empty() ? std::string_view(&kNul, 1) : name;
    struct iovec iov {};
    iov.iov_base = const_cast<char*>(payload.data());
    iov.iov_len = payload.size();
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));

    ssize_t n;
    do {
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail_sys("send fd {} over socket {}", fd, sock);
    // The fd travelled with the first byte; a stream socket may take the rest of a long name separately.
    payload.remove_prefix(static_cast<size_t>(n));
    while (!payload.empty()) {
        n = ::send(sock, payload.data(), payload.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_sys("send name of fd {} over socket {}", fd, sock);
        payload.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

Result<UniqueFd> recv_fd(int sock, std::string* name) {
    static constexpr size_t kMaxFds = 8;  // room to see (and close) a sender's extra fds instead of truncating
    char data[4096];
    struct iovec iov {};
    iov.iov_base = data;
    iov.iov_len = sizeof data;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;

    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail_sys("receive fd over socket {}", sock);

    std::vector<UniqueFd> fds;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            fds.emplace_back(fd);
        }
    }
    if (n == 0 && fds.empty()) return fail_errno(ECONNRESET, "receive fd over socket {}: peer closed", sock);
    if (msg.msg_flags & MSG_CTRUNC)
        return fail_errno(EMSGSIZE, "receive fd over socket {}: control data truncated (too many fds)", sock);
    if (fds.size() != 1)
        return fail_errno(EBADMSG, "receive fd over socket {}: expected one fd, got {}", sock, fds.size());
    if (name) {
        name->assign(data, static_cast<size_t>(n));
        while (!name->empty() && name->back() == '\0') name->pop_back();
    }
    return std::move(fds.front());
}

namespace {

constexpr std::array kForwardedSignals = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
constexpr int kQuietAfterExitMs = 100;

// Blocks the proxy's signals in this thread and reads them from a signalfd; restores the old mask on scope exit
// after forwarding whatever arrived since the last read, so nothing blocked here is delivered later by surprise.
class ProxySignals {
public:
    ProxySignals(bool forward, int pidfd, pid_t child) : forward_(forward), pidfd_(pidfd), child_(child) {}
    ProxySignals(const ProxySignals&) = delete;
    ProxySignals& operator=(const ProxySignals&) = delete;
    ~ProxySignals() {
        if (!blocked_) return;
        if (fd_) drain(nullptr);
        // A SIGPIPE raised after the last read is still pending: take it so unblocking cannot kill us.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        struct timespec zero {};
        while (::sigtimedwait(&pipe, nullptr, &zero) > 0) {
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }

    Result<void> start() {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGWINCH);
        sigaddset(&set, SIGPIPE);
        if (forward_ && (pidfd_ >= 0 || child_ > 0))
            for (int s : kForwardedSignals) sigaddset(&set, s);
        int err = ::pthread_sigmask(SIG_BLOCK, &set, &old_);
        if (err != 0) return fail_errno(err, "terminal proxy: block signals");
        blocked_ = true;
        fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
        if (!fd_) return fail_sys("terminal proxy: signalfd");
        return {};
    }

    int fd() const { return fd_.get(); }

    // Reads every pending signal, forwards those that are to be forwarded and reports whether SIGWINCH came.
    void drain(bool* winch) {
        struct signalfd_siginfo si;
        while (::read(fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            int sig = static_cast<int>(si.ssi_signo);
            if (sig == SIGWINCH) {
                if (winch) *winch = true;
            } else if (sig != SIGPIPE && forward_) {
                // ESRCH (already gone) is fine: the master's EIO ends the proxy shortly.
                if (pidfd_ >= 0)
                    (void)pidfd_send_signal(pidfd_, sig);
                else if (child_ > 0)
                    (void)::kill(child_, sig);
            }
        }
    }

private:
    bool forward_;
    int pidfd_;
    pid_t child_;
    bool blocked_ = false;
    sigset_t old_{};
    UniqueFd fd_;
};

// Raw mode on the user's terminal for the proxy's lifetime.
class RawMode {
public:
    explicit RawMode(int fd) : fd_(fd) {}
    RawMode(const RawMode&) = delete;
    RawMode& operator=(const RawMode&) = delete;
    ~RawMode() {
        if (saved_) ::tcsetattr(fd_, TCSANOW, &*saved_);
    }
    Result<void> enter() {
        struct termios t {};
        if (::tcgetattr(fd_, &t) < 0) return fail_sys("terminal proxy: get attributes of fd {}", fd_);
        struct termios raw = t;
        ::cfmakeraw(&raw);
        if (::tcsetattr(fd_, TCSANOW, &raw) < 0) return fail_sys("terminal proxy: raw mode on fd {}", fd_);
        saved_ = t;
        return {};
    }

private:
    int fd_;
    std::optional<struct termios> saved_;
};

// O_NONBLOCK on the master while proxying (a full tty input queue must not stall the output copy).
class NonBlocking {
public:
    explicit NonBlocking(int fd) : fd_(fd) {}
    NonBlocking(const NonBlocking&) = delete;
    NonBlocking& operator=(const NonBlocking&) = delete;
    ~NonBlocking() {
        if (old_ >= 0) ::fcntl(fd_, F_SETFL, old_);
    }
    Result<void> enter() {
        int flags = ::fcntl(fd_, F_GETFL);
        if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0)
            return fail_sys("terminal proxy: set O_NONBLOCK on fd {}", fd_);
        old_ = flags;
        return {};
    }

private:
    int fd_;
    int old_ = -1;
};

Result<void> copy_window_size(int from, int to) {
    struct winsize ws {};
    if (::ioctl(from, TIOCGWINSZ, &ws) < 0) return fail_sys("terminal proxy: get window size of fd {}", from);
    if (::ioctl(to, TIOCSWINSZ, &ws) < 0) return fail_sys("terminal proxy: set window size of fd {}", to);
    return {};
}

// Writes all of `data` to `fd`, waiting when it is non-blocking. False on any error (EPIPE included).
bool write_out(int fd, const char* data, size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p {
                    fd, POLLOUT, 0
                };
                ::poll(&p, 1, -1);
                continue;
            }
            return false;
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

Result<size_t> proxy_terminal(int master_fd, pid_t child, const TerminalProxyOptions& options) {
    const int in_fd = options.in_fd;
    const int out_fd = options.out_fd;

    UniqueFd pidfd;
    bool child_exited = false;
    if (child > 0) {
        pidfd.reset(pidfd_open(child));
        if (!pidfd) {
            if (errno != ESRCH) return fail_sys("terminal proxy: pidfd_open {}", child);
            child_exited = true;
        }
    }

    ProxySignals signals(options.forward_signals, pidfd.get(), child);
    BERTH_TRY(signals.start());

    const bool in_is_tty = ::isatty(in_fd) == 1;
    RawMode raw(in_fd);
    if (in_is_tty) {
        BERTH_TRY(copy_window_size(in_fd, master_fd));
        BERTH_TRY(raw.enter());
    }
    NonBlocking nonblocking(master_fd);
    BERTH_TRY(nonblocking.enter());

    char veof = 4;  // ^D, unless the container's terminal says otherwise
    struct termios mt {};
    if (::tcgetattr(master_fd, &mt) == 0 && mt.c_cc[VEOF] != _POSIX_VDISABLE) veof = static_cast<char>(mt.c_cc[VEOF]);

    std::string to_master;  // read from in_fd, not yet accepted by the master
    bool in_open = true;
    bool out_ok = true;
    size_t written = 0;
    char buf[16384];

    for (;;) {
        enum { kSig, kMaster, kIn, kPid };
        std::array<struct pollfd, 4> p{};
        p[kSig] = {signals.fd(), POLLIN, 0};
        p[kMaster] = {master_fd, static_cast<short>(POLLIN | (to_master.empty() ? 0 : POLLOUT)), 0};
        p[kIn] = {in_open && to_master.empty() ? in_fd : -1, POLLIN, 0};
        p[kPid] = {child_exited ? -1 : pidfd.get(), POLLIN, 0};
        int n = ::poll(p.data(), p.size(), child_exited ? kQuietAfterExitMs : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("terminal proxy: poll");
        }
        if (n == 0) return written;  // child gone and the master quiet: someone else holds the slave

        // Signals before input: a resize that happened before a keystroke reaches the container before it.
        if (p[kSig].revents & POLLIN) {
            bool winch = false;
            signals.drain(&winch);
            if (winch && in_is_tty) (void)copy_window_size(in_fd, master_fd);
        }

        if (p[kMaster].revents & (POLLIN | POLLHUP | POLLERR)) {
            for (;;) {
                ssize_t r = ::read(master_fd, buf, sizeof buf);
                if (r > 0) {
                    if (out_ok) out_ok = write_out(out_fd, buf, static_cast<size_t>(r));
                    if (out_ok) written += static_cast<size_t>(r);
                    continue;
                }
                if (r < 0 && errno == EINTR) continue;
                if (r < 0 && errno == EAGAIN) break;
                if (r == 0 || errno == EIO) return written;  // every slave closed and all output read
                return fail_sys("terminal proxy: read terminal master");
            }
        }

        if (!to_master.empty() && (p[kMaster].revents & POLLOUT)) {
            ssize_t w = ::write(master_fd, to_master.data(), to_master.size());
            if (w > 0) {
                to_master.erase(0, static_cast<size_t>(w));
            } else if (w < 0 && errno == EIO) {
                to_master.clear();  // the slave is gone; its EIO on read ends the loop
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                return fail_sys("terminal proxy: write terminal master");
            }
        }

        if (p[kIn].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            ssize_t r = (p[kIn].revents & POLLNVAL) ? 0 : ::read(in_fd, buf, sizeof buf);
            if (r > 0) {
                to_master.assign(buf, static_cast<size_t>(r));
            } else if (r == 0 || errno == EIO || errno == EBADF) {
                in_open = false;
                to_master.assign(1, veof);
            } else if (errno != EINTR && errno != EAGAIN) {
                return fail_sys("terminal proxy: read fd {}", in_fd);
            }
        }

        if (p[kPid].revents & POLLIN) child_exited = true;
    }
}

}  // namespace berth::sys
