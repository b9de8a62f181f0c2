// SIGTERM and SIGINT, the signals that stop berthd, taken out of asynchronous delivery.
//
// Kept apart from the gRPC code on purpose: this file includes <signal.h>, which must not meet the generated CRI
// headers (see cri/api.hpp).
#pragma once

#include "common/error.hpp"

namespace berth::cri {

// Blocks SIGTERM and SIGINT in the calling thread (threads started later inherit the mask) and ignores SIGPIPE.
// Call before any other thread exists.
[[nodiscard]] Result<void> block_stop_signals();

// Waits for SIGTERM or SIGINT (blocked by block_stop_signals) and returns its number.
[[nodiscard]] Result<int> wait_for_stop_signal();

}  // namespace berth::cri
