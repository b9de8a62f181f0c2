// Name tables the runtime spec refers to by string: rlimits and capabilities, resolved to kernel numbers.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace berth::spec {

// "RLIMIT_NOFILE" -> RLIMIT_NOFILE; covers all 16 Linux rlimits. nullopt for any other name.
std::optional<int> rlimit_from_name(std::string_view name);

// "CAP_CHOWN" -> 0 ... "CAP_CHECKPOINT_RESTORE" -> 40 (the kernel's numbering). nullopt for any other name.
std::optional<int> capability_from_name(std::string_view name);

// Every capability name this build knows, indexed by capability number.
std::span<const std::string_view> capability_names();

}  // namespace berth::spec
