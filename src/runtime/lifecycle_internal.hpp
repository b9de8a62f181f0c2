// Pieces shared by the lifecycle operations (not part of libberth's public API).
#pragma once

#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "runtime/container_state.hpp"
#include "runtime/runtime.hpp"

namespace berth::runtime {

// pidfd of the container's init, verified against the recorded start time (no signal to a reused pid).
[[nodiscard]] Result<UniqueFd> open_pidfd(const ContainerState& st);
// Waits until the pidfd's process exits; false on timeout.
bool wait_pidfd(int pidfd, int timeout_ms);
std::vector<pid_t> container_pids(const ContainerState& st);
// Runs poststop hooks (failures logged) and removes the state directory.
[[nodiscard]] Result<void> destroy_stopped(const GlobalOptions& g, const ContainerState& st);

}  // namespace berth::runtime
