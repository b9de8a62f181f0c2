// The berthd daemon loop: claim the socket, serve RuntimeService and ImageService on it, stop on SIGTERM/SIGINT.
#pragma once

#include "common/error.hpp"
#include "cri/log_control.hpp"
#include "cri/runtime_state.hpp"

namespace berth::cri {

// Serves until SIGTERM or SIGINT, then stops accepting, lets running calls finish (bounded), and removes the
// socket. The socket is created with mode 0660. Logs "serving CRI on <path>" once it accepts connections (after
// "serving metrics on http://<address>/metrics" when metrics_address is set), and tells systemd READY=1.
// SIGUSR1 toggles debug logging; SIGHUP re-reads the log settings of `file` (log_control.hpp).
// Must be called before any other thread exists: it blocks the stop signals in the calling thread, and every
// thread gRPC starts inherits that mask, so only sigwaitinfo() here ever sees them.
[[nodiscard]] Result<void> run_daemon(const DaemonConfig& config, const ConfigFile& file = {});

}  // namespace berth::cri
