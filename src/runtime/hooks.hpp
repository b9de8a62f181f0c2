// OCI lifecycle hooks: running config.json's hooks with the container state on their stdin.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::runtime {

// How much of a hook's stdout and of its stderr is kept (the tail) for error messages.
inline constexpr size_t kHookOutputCap = 64 * 1024;

// Whether a failing hook of `phase` fails the operation. The spec: prestart, createRuntime, createContainer and
// startContainer failures stop the container; poststart and poststop failures are logged and the remaining hooks
// still run. Unknown phases count as fatal.
bool hook_failure_is_fatal(std::string_view phase);

// Runs one hook and waits for it: execve(path, args, env) with args[0] as given (path when args is empty) and
// exactly `env` as environment; `state_json` written to its stdin (a hook that does not read it is fine); stdout
// and stderr captured (last kHookOutputCap bytes of each). The hook runs in its own process group with default
// signal dispositions, an empty signal mask and only fds 0, 1 and 2 open. When hook.timeout (seconds) passes, the
// whole group gets SIGKILL. Errors read like
//   createRuntime hook /x/y: timed out after 2s
//   poststop hook /x/y: exit status 3 (stderr: no such network)
// A hook whose exit leaves descendants holding its stdout/stderr is not waited for past its own exit.
// SIGPIPE is blocked in the calling thread while the state is written.
[[nodiscard]] Result<void> run_hook(const spec::Hook& hook, std::string_view state_json, std::string_view phase);

// Runs `hooks` in order. For a fatal phase (hook_failure_is_fatal) the first failure stops the rest and is
// returned. Otherwise every hook runs and the failures, if any, come back joined with "; " for the caller to log.
[[nodiscard]] Result<void> run_hooks(const std::vector<spec::Hook>& hooks, std::string_view state_json,
                                     std::string_view phase);

}  // namespace berth::runtime
