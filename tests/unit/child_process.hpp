// Runs test code in a forked child, for tests that change process-wide state (namespaces, mounts, rlimits, ids).
//
// The child reports through a pipe: the function returns "" on success or a description of every failed check.
// The parent never trusts the child's exit alone: a crash, a hang (killed after the timeout) or a missing report
// all fail the test.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

namespace berth::testing {

struct ChildOutcome {
    bool finished = false;  // exited on its own before the timeout
    int status = 0;         // wait status
    std::string report;     // what the child wrote
    bool ok() const { return finished && WIFEXITED(status) && WEXITSTATUS(status) == 0 && report == "OK"; }
    std::string describe() const {
        if (!finished) return "child timed out; report so far: " + report;
        if (WIFSIGNALED(status)) return "child killed by signal " + std::to_string(WTERMSIG(status)) + "; " + report;
        return "child exit " + std::to_string(WEXITSTATUS(status)) + ": " + report;
    }
};

// Collects failed checks inside the child.
class ChildChecks {
public:
    void expect(bool cond, const std::string& what) {
        if (!cond) failures_ += "\n  FAILED: " + what;
    }
    const std::string& failures() const { return failures_; }

private:
    std::string failures_;
};

// `fn` gets the report fd (it may dup2 it elsewhere and update the reference, for tests that close fds) and
// returns the failures. The child _exits without running the parent's atexit handlers or gtest teardown.
inline ChildOutcome run_in_child(const std::function<std::string(int& report_fd)>& fn, int timeout_seconds = 60) {
    ChildOutcome out;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) {
        out.report = "pipe failed";
        return out;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        out.report = "fork failed";
        return out;
    }
    if (pid == 0) {
        ::close(fds[0]);
        int report_fd = fds[1];
        std::string failures;
        try {
            failures = fn(report_fd);
        } catch (...) {
            failures = "exception escaped the child's test code";
        }
        std::string msg = failures.empty() ? "OK" : failures;
        const char* p = msg.data();
        size_t left = msg.size();
        while (left > 0) {
            ssize_t n = ::write(report_fd, p, left);
            if (n <= 0) break;
            p += n;
            left -= static_cast<size_t>(n);
        }
        ::_exit(failures.empty() ? 0 : 1);
    }
    ::close(fds[1]);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        struct pollfd pfd {
            fds[0], POLLIN, 0
        };
        int pr = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) break;
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            out.finished = true;
            break;
        }
        out.report.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    if (!out.finished) ::kill(pid, SIGKILL);
    while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
    }
    return out;
}

}  // namespace berth::testing
