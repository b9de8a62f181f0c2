// Child processes berthd starts: berth-monitor, an OCI runtime binary for delete/exec/update, the namespace pinner.
// Kept free of <signal.h> so the gRPC code can include it (see cri/api.hpp).
//
// Every child starts with the default signal mask and dispositions (berthd blocks SIGTERM/SIGINT and ignores
// SIGPIPE, which exec would otherwise pass on) and with no fd of berthd's but the ones it is given.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/capture.hpp"
#include "common/error.hpp"

namespace berth::cri {

struct SpawnOptions {
    std::vector<std::string> argv;  // argv[0] is an absolute path
    int stdin_fd = -1;              // -1: /dev/null
    int stdout_fd = -1;
    int stderr_fd = -1;
    std::vector<std::pair<int, int>> extra_fds;  // (fd in berthd, fd number in the child), numbers above 2
};

// Spawns the child (common/spawn.hpp: posix_spawn, no fork of berthd); its pid. A program that cannot be executed
// is an error here.
[[nodiscard]] Result<pid_t> spawn_process(const SpawnOptions& o);
// Waits for `pid`; its exit code, or 128+signal.
[[nodiscard]] Result<int> wait_process(pid_t pid);

// exit_code (or 128+signal), out, err, timed_out.
using CapturedRun = CaptureResult;

// Runs argv through common/capture with `input` on a pipe as stdin, collecting stdout and stderr (each capped at
// `cap` bytes; the rest is read and dropped). timeout_ms <= 0: no timeout. On timeout, `on_timeout` runs (it kills
// what must die, e.g. what the runtime started), then the child is killed and reaped; timed_out is set. Errors
// name argv[0].
[[nodiscard]] Result<CapturedRun> run_captured(const std::vector<std::string>& argv, const std::string& input,
                                               long timeout_ms, size_t cap, void (*on_timeout)(void*) = nullptr,
                                               void* arg = nullptr);

// Runs argv, waits, and fails with its stderr (or exit code) unless it exits 0.
[[nodiscard]] Result<void> run_checked(const std::vector<std::string>& argv, const std::string& input = {});

}  // namespace berth::cri
