// Test implementations of cri::ExecSession and cri::AttachSession over real host processes: fork/exec with pipes
// or a pseudo-terminal, so the streaming server's protocol code is tested against processes that really read
// stdin, exit with codes and die by signals.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"
#include "cri/stream_targets.hpp"

namespace berth::testing {

// A process started with `cmd` (execvp), stdio on pipes or on a pty.
class HostProcess {
public:
    static Result<std::unique_ptr<HostProcess>> start(const std::vector<std::string>& cmd, bool tty) {
        auto p = std::unique_ptr<HostProcess>(new HostProcess);
        p->tty_ = tty;
        int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
        std::string slave;
        if (tty) {
            p->master_ = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
            if (!p->master_ || ::grantpt(p->master_.get()) || ::unlockpt(p->master_.get())) return fail_sys("openpt");
            slave = ::ptsname(p->master_.get());
        } else if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
            return fail_sys("pipe2");
        }
        std::vector<char*> argv;
        for (const auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        pid_t pid = ::fork();
        if (pid < 0) return fail_sys("fork");
        if (pid == 0) {
            ::setsid();
            if (tty) {
                int s = ::open(slave.c_str(), O_RDWR);
                ::ioctl(s, TIOCSCTTY, 0);
                ::dup2(s, 0);
                ::dup2(s, 1);
                ::dup2(s, 2);
            } else {
                ::dup2(in[0], 0);
                ::dup2(out[1], 1);
                ::dup2(err[1], 2);
            }
            ::execvp(argv[0], argv.data());
            ::_exit(127);
        }
        p->pid_ = pid;
        p->pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
        if (!tty) {
            ::close(in[0]);
            ::close(out[1]);
            ::close(err[1]);
            p->in_ = UniqueFd(in[1]);
            p->out_ = UniqueFd(out[0]);
            p->err_ = UniqueFd(err[0]);
        } else {
            p->in_ = UniqueFd(::dup(p->master_.get()));
            p->out_ = UniqueFd(::dup(p->master_.get()));
        }
        return p;
    }

    ~HostProcess() {
        kill();
        (void)wait();
    }

    pid_t pid() const { return pid_; }

    Result<cri::OutputChunk> read() {
        char buf[32 * 1024];
        for (;;) {
            pollfd fds[2];
            int n = 0;
            int which[2];
            if (out_) which[n] = 1, fds[n++] = {out_.get(), POLLIN, 0};
            if (err_) which[n] = 2, fds[n++] = {err_.get(), POLLIN, 0};
            if (n == 0) return cri::OutputChunk{1, ""};
            if (::poll(fds, n, -1) < 0) {
                if (errno == EINTR) continue;
                return fail_sys("poll");
            }
            for (int i = 0; i < n; ++i) {
                if (!fds[i].revents) continue;
                UniqueFd& fd = which[i] == 1 ? out_ : err_;
                ssize_t r = ::read(fd.get(), buf, sizeof buf);
                if (r > 0) return cri::OutputChunk{which[i], std::string(buf, r)};
                if (r < 0 && errno == EINTR) continue;
                fd.reset();  // EOF (EIO on a pty whose slave is gone)
            }
        }
    }

    Result<void> write_stdin(std::span<const char> data) {
        std::lock_guard lock(in_mu_);
        if (!in_) return fail_errno(EPIPE, "stdin closed");
        size_t off = 0;
        while (off < data.size()) {
            ssize_t r = ::write(in_.get(), data.data() + off, data.size() - off);
            if (r < 0) {
                if (errno == EINTR) continue;
                return fail_sys("write stdin");
            }
            off += static_cast<size_t>(r);
        }
        return {};
    }

    void close_stdin() {
        std::lock_guard lock(in_mu_);
        if (tty_) {
            if (in_) (void)!::write(in_.get(), "\x04", 1);  // VEOF at the start of a line
        }
        in_.reset();
    }

    Result<void> resize(uint16_t w, uint16_t h) {
        if (!tty_) return fail_errno(EINVAL, "resize without a tty");
        winsize ws{};
        ws.ws_col = w;
        ws.ws_row = h;
        if (::ioctl(master_.get(), TIOCSWINSZ, &ws) < 0) return fail_sys("TIOCSWINSZ");
        return {};
    }

    Result<int> wait() {
        std::lock_guard lock(wait_mu_);
        if (status_) return *status_;
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0)
            if (errno != EINTR) return fail_sys("waitpid");
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return *status_;
    }

    void kill() {
        if (pidfd_) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    }

private:
    HostProcess() = default;
    bool tty_ = false;
    pid_t pid_ = -1;
    UniqueFd pidfd_, master_, in_, out_, err_;
    std::mutex in_mu_, wait_mu_;
    std::optional<int> status_;
};

class HostExecSession final : public cri::ExecSession {
public:
    explicit HostExecSession(std::unique_ptr<HostProcess> p) : p_(std::move(p)) {}
    Result<cri::OutputChunk> read() override { return p_->read(); }
    Result<void> write_stdin(std::span<const char> d) override { return p_->write_stdin(d); }
    void close_stdin() override { p_->close_stdin(); }
    Result<void> resize(uint16_t w, uint16_t h) override { return p_->resize(w, h); }
    Result<int> wait() override { return p_->wait(); }
    void kill() override { p_->kill(); }

private:
    std::unique_ptr<HostProcess> p_;
};

// An "attach" to a host process the test owns: output read from its pipes, input written to it.
class HostAttachSession final : public cri::AttachSession {
public:
    HostAttachSession(HostProcess& p, std::atomic<int>* detached) : p_(p), detached_(detached) {}
    ~HostAttachSession() override {
        if (detached_) detached_->fetch_add(1);
    }
    Result<cri::OutputChunk> read() override {
        if (cancelled_) return cri::OutputChunk{1, ""};
        return p_.read();
    }
    Result<void> write_stdin(std::span<const char> d) override { return p_.write_stdin(d); }
    void close_stdin() override {}
    Result<void> resize(uint16_t w, uint16_t h) override { return p_.resize(w, h); }
    // The host process keeps running; a blocked read is woken by killing nothing: the test's process prints
    // periodically, so cancelled_ is seen at the next chunk.
    void cancel() override { cancelled_ = true; }

private:
    HostProcess& p_;
    std::atomic<int>* detached_;
    std::atomic<bool> cancelled_ = false;
};

}  // namespace berth::testing
