// Process capabilities: the five sets of process.capabilities, applied with libcap.
//
// Applying is split around the uid switch: the bounding set is reduced while still root (dropping needs
// CAP_SETPCAP), PR_SET_KEEPCAPS keeps the permitted set across setresuid, and after the switch the effective,
// permitted and inheritable sets are set and the ambient set is raised.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::sys {

struct CapabilitySets {
    std::vector<int> bounding, effective, inheritable, permitted, ambient;
};

// Resolves capability names; an unknown name is an error naming its field (`process.capabilities.bounding[2]:
// unknown capability "CAP_FOO"`). Capabilities the running kernel does not know are dropped silently from the
// list (a newer config on an older kernel), as runc does.
[[nodiscard]] Result<CapabilitySets> resolve_capabilities(const spec::Capabilities& caps,
                                                          std::string_view path = "process.capabilities");

// Before the uid switch: drop every capability not in the bounding set and set PR_SET_KEEPCAPS.
[[nodiscard]] Result<void> prepare_capabilities(const CapabilitySets& sets);
// After the uid switch: effective, permitted and inheritable sets, then the ambient set.
[[nodiscard]] Result<void> apply_capabilities(const CapabilitySets& sets);

// The highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap).
int last_capability();

}  // namespace berth::sys
