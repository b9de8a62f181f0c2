#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "common/spawn.hpp"
#include "common/unique_fd.hpp"
#include "linux/pidfd.hpp"
#include "linux/sigpipe.hpp"

namespace berth::runtime {

bool hook_failure_is_fatal(std::string_view phase) {
    return phase != "poststart" && phase != "poststop";
}

namespace {

constexpr size_t kMessageTail = 2048;  // of the captured output, quoted in an error message

// Appends, keeping only the last kHookOutputCap bytes.
void append_capped(std::string& buf, const char* data, size_t n) {
    if (n >= kHookOutputCap) {
        buf.assign(data + (n - kHookOutputCap), kHookOutputCap);
        return;
    }
    if (buf.size() + n > kHookOutputCap) buf.erase(0, buf.size() + n - kHookOutputCap);
    buf.append(data, n);
}

std::string tail_for_message(const std::string& s) {
    std::string_view v = s;
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ' || v.back() == '\r' || v.back() == '\t'))
        v.remove_suffix(1);
    if (v.size() > kMessageTail) v.remove_prefix(v.size() - kMessageTail);
    return std::string(v);
}

struct Pipe {
    UniqueFd read, write;
};

// Both ends above 2: with a closed stdio in our process a pipe end could land on 0-2, and the child's dup2s onto
// 0, 1 and 2 would then overwrite one another's sources.
Result<Pipe> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return fail_sys("pipe");
    Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
    for (UniqueFd* end : {&p.read, &p.write}) {
        if (end->get() > 2) continue;
        int moved = ::fcntl(end->get(), F_DUPFD_CLOEXEC, 3);
        if (moved < 0) return fail_sys("pipe: move fd above 2");
        end->reset(moved);
    }
    return p;
}

Result<void> set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return fail_sys("set O_NONBLOCK");
    return {};
}

// Starts the hook with its stdio on the given pipe ends, in a process group of its own, every signal at its
// default, with exactly the hook's environment. Returns the pid.
Result<pid_t> spawn_hook(const spec::Hook& hook, int in, int out, int err) {
    auto pid = spawn({.path = hook.path,
                      .argv = hook.args,
                      .env = &hook.env,
                      .stdin_fd = in,
                      .stdout_fd = out,
                      .stderr_fd = err,
                      .default_signals = true,
                      .new_process_group = true});
    if (!pid) return fail_errno(pid.error().code(), "exec");
    return *pid;
}

// Reads what is available without blocking. Returns false once the pipe reports EOF or an error.
bool drain(int fd, std::string& buf) {
    char chunk[8192];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n > 0) {
            append_capped(buf, chunk, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && errno == EAGAIN;
    }
}

Result<int> reap(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return fail_sys("wait for pid {}", pid);
    }
    return status;
}

Result<void> run_hook_impl(const spec::Hook& hook, std::string_view state_json) {
    if (hook.path.empty() || hook.path.front() != '/') return fail("path is not absolute");
    if (hook.timeout && *hook.timeout <= 0) return fail("timeout must be positive, got {}", *hook.timeout);

    BERTH_ASSIGN(Pipe in, make_pipe());
    BERTH_ASSIGN(Pipe out, make_pipe());
    BERTH_ASSIGN(Pipe err, make_pipe());
    BERTH_ASSIGN(pid_t pid, spawn_hook(hook, in.read.get(), out.write.get(), err.write.get()));
    in.read.reset();
    out.write.reset();
    err.write.reset();

    // From here on the hook runs: every return path below reaps it (and on failure kills its group first).
    UniqueFd pidfd(sys::pidfd_open(pid));
    if (!pidfd) {
        int e = errno;
        ::kill(-pid, SIGKILL);
        (void)reap(pid);
        return fail_errno(e, "pidfd_open {}", pid);
    }
    auto kill_and_reap = [&] {
        ::kill(-pid, SIGKILL);  // the group is ours while its leader is unreaped, so the id cannot be reused
        (void)sys::pidfd_send_signal(pidfd.get(), SIGKILL);
        (void)reap(pid);
    };
    for (int fd : {in.write.get(), out.read.get(), err.read.get()}) {
        if (auto r = set_nonblocking(fd); !r) {
            kill_and_reap();
            return std::unexpected(std::move(r).error());
        }
    }

    using Clock = std::chrono::steady_clock;
    const bool has_deadline = hook.timeout.has_value();
    const auto deadline = Clock::now() + std::chrono::seconds(hook.timeout.value_or(0));

    sys::SigpipeBlock sigpipe;
    std::string_view pending = state_json;
    if (pending.empty()) in.write.reset();
    std::string out_buf, err_buf;
    bool out_open = true, err_open = true, exited = false;

    while (!exited) {
        int wait_ms = -1;
        if (has_deadline) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) {
                kill_and_reap();
                return fail("timed out after {}s", *hook.timeout);
            }
            wait_ms = static_cast<int>(std::min<long long>(left, 1 << 30));
        }
        std::array<struct pollfd, 4> p{{
            {in.write ? in.write.get() : -1, POLLOUT, 0},
            {out_open ? out.read.get() : -1, POLLIN, 0},
            {err_open ? err.read.get() : -1, POLLIN, 0},
            {pidfd.get(), POLLIN, 0},
        }};
        int n = ::poll(p.data(), p.size(), wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            kill_and_reap();
            return fail_errno(e, "poll");
        }
        if (p[0].revents) {
            ssize_t w = ::write(in.write.get(), pending.data(), pending.size());
            if (w > 0) pending.remove_prefix(static_cast<size_t>(w));
            // EPIPE or any other error: the hook does not read its stdin, which it is free not to.
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || pending.empty()) in.write.reset();
        }
        if (p[1].revents) out_open = drain(out.read.get(), out_buf);
        if (p[2].revents) err_open = drain(err.read.get(), err_buf);
        if (p[3].revents) exited = true;
    }
    // Everything the hook itself wrote is in the pipes now; descendants still writing are not waited for.
    if (out_open) drain(out.read.get(), out_buf);
    if (err_open) drain(err.read.get(), err_buf);
    BERTH_ASSIGN(int status, reap(pid));

    std::string output;
    if (std::string e = tail_for_message(err_buf); !e.empty()) {
        output = fmt::format(" (stderr: {})", e);
    } else if (std::string o = tail_for_message(out_buf); !o.empty()) {
        output = fmt::format(" (stdout: {})", o);
    }
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) == 0) return {};
        return fail("exit status {}{}", WEXITSTATUS(status), output);
    }
    if (WIFSIGNALED(status)) {
        return fail("killed by signal {} ({}){}", WTERMSIG(status), ::strsignal(WTERMSIG(status)), output);
    }
    return fail("ended with wait status {:#x}{}", status, output);
}

}  // namespace

Result<void> run_hook(const spec::Hook& hook, std::string_view state_json, std::string_view phase) {
    BERTH_TRY_CTX(run_hook_impl(hook, state_json), "{} hook {}", phase, hook.path);
    return {};
}

Result<void> run_hooks(const std::vector<spec::Hook>& hooks, std::string_view state_json, std::string_view phase) {
    const bool fatal = hook_failure_is_fatal(phase);
    std::optional<Error> failures;
    for (const auto& hook : hooks) {
        auto r = run_hook(hook, state_json, phase);
        if (r) continue;
        if (fatal) return r;
        if (!failures) {
            failures = std::move(r).error();
        } else {
            failures = Error(failures->code(), fmt::format("{}; {}", failures->message(), r.error().message()));
        }
    }
    if (failures) return std::unexpected(std::move(*failures));
    return {};
}

}  // namespace berth::runtime
