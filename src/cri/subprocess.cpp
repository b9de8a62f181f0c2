#include "cri/subprocess.hpp"

#include <sys/wait.h>

#include <chrono>

#include "common/spawn.hpp"

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
    if (argv.empty()) return fail("spawn: no command");
    std::function<void()> hook;
    if (on_timeout) hook = [on_timeout, arg] { on_timeout(arg); };
    return capture({.spawn = {.path = argv[0], .argv = argv},
                    .label = argv[0],
                    .input = input,
                    .timeout = std::chrono::milliseconds(timeout_ms),
                    .cap = cap,
                    .on_timeout = std::move(hook)});
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
