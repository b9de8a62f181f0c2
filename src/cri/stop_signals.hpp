// The signals berthd handles, taken out of asynchronous delivery: SIGTERM and SIGINT stop it, SIGUSR1 toggles debug
// logging, SIGHUP re-reads the log settings of berth.toml.
//
// Kept apart from the gRPC code on purpose: this file includes <signal.h>, which must not meet the generated CRI
// headers (see cri/api.hpp).
#pragma once

#include "common/error.hpp"

namespace berth::cri {

// Blocks SIGTERM, SIGINT, SIGUSR1 and SIGHUP in the calling thread (threads started later inherit the mask) and
// ignores SIGPIPE. Call before any other thread exists.
[[nodiscard]] Result<void> block_stop_signals();

enum class DaemonSignal { stop, toggle_debug, reload };

struct ReceivedSignal {
    DaemonSignal what = DaemonSignal::stop;
    int signo = 0;
};

// Waits for one of the signals block_stop_signals blocked.
[[nodiscard]] Result<ReceivedSignal> wait_for_daemon_signal();

}  // namespace berth::cri
