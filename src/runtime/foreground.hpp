// Waiting in the foreground for a container process that berth started (`run`, `exec`).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::runtime {

// The signals a foreground berth forwards to its process. The caller blocks them before it clones, so none is
// lost, and the cloned child unblocks them for itself.
sigset_t forwarded_signals();

// Forwards signals to `pid`, proxies `master` (a pty master, or -1) to our stdin/stdout (raw mode when stdin is a
// terminal, SIGWINCH resizes), reports a late error arriving on `sync` (may be invalid), reaps children, and
// returns pid's exit code (128+signal when killed). `pid` must be our child or reparented to us as subreaper.
[[nodiscard]] Result<int> wait_foreground(pid_t pid, int master, UniqueFd& sync, const std::string& id);

}  // namespace berth::runtime
