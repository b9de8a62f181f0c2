#include "monitor/exec_reaper.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/fs.hpp"
#include "common/spawn.hpp"

namespace berth::monitor {

namespace {

constexpr int kReaperFailed = 255;

int fail_with(const std::string& msg) {
    std::fprintf(stderr, "berth-monitor: %s\n", msg.c_str());
    return kReaperFailed;
}

int status_code(int st) {
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Reaps whatever has exited already (the runtime's helpers), without waiting.
void reap_exited() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}

}  // namespace

int run_exec_reaper(const std::string& pid_file, const std::vector<std::string>& runtime_argv) {
    if (runtime_argv.empty()) return fail_with("--reap-exec: no runtime command after --");
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return fail_with(fmt::format("prctl(PR_SET_CHILD_SUBREAPER): {}", std::strerror(errno)));
    auto runtime =
        spawn({.path = runtime_argv[0], .argv = runtime_argv, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2});
    if (!runtime) return fail_with(runtime.error().message());
    int st = 0;
    while (::waitpid(*runtime, &st, 0) < 0) {
        if (errno != EINTR) return fail_with(fmt::format("wait for {}: {}", runtime_argv[0], std::strerror(errno)));
    }
    if (int code = status_code(st); code != 0) {
        reap_exited();
        return code;  // the runtime failed: its message is on stderr
    }
    auto text = read_file(pid_file);
    pid_t pid = text ? static_cast<pid_t>(std::atoi(text->c_str())) : 0;
    if (pid <= 0)
        return fail_with(fmt::format("{} exited without writing the process's pid to {}", runtime_argv[0], pid_file));
    // Our child by now (re-parented when the runtime's intermediate processes exited), else not ours to wait for:
    // a runtime that keeps a waiter of its own, or a pid from another namespace. Waiting on a pid that is not our
    // child could mean waiting on, and letting berthd kill, an unrelated process: fail at once.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) {
        reap_exited();
        return fail_with(fmt::format("process {} (from {}) was not re-parented to the reaper: its exit status is unknown",
                                     pid, pid_file));
    }
    for (;;) {
        pid_t w = ::waitpid(-1, &st, 0);
        if (w == pid) {
            reap_exited();
            return status_code(st);
        }
        if (w > 0 || errno == EINTR) continue;  // another orphan
        return fail_with(fmt::format("wait for process {}: {}", pid, std::strerror(errno)));
    }
}

}  // namespace berth::monitor
