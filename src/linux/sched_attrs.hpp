// Scheduling attributes of a container process: process.scheduler (sched_setattr), process.ioPriority
// (ioprio_set), process.execCPUAffinity (sched_setaffinity) and linux.personality (personality).
//
// Each is applied by the process to itself before execve, while it still has its capabilities (a lower nice
// value, a real-time policy and the real-time I/O class need CAP_SYS_NICE or CAP_SYS_ADMIN). Errors name the
// config field and the kernel's errno text.
#pragma once

#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::sys {

// SCHED_* number of a policy name; SCHED_ISO (in the spec, never merged into Linux) is an error.
[[nodiscard]] Result<int> scheduler_policy(std::string_view name);
// SCHED_FLAG_* bit of a flag name.
[[nodiscard]] Result<uint64_t> scheduler_flag(std::string_view name);
// The ioprio value (class << 13 | priority) of an ioPriority.
[[nodiscard]] Result<int> io_priority_value(const spec::IoPriority& io);
// CPU numbers of a cpu list such as "0-2,7" (spaces ignored); an error names the list.
[[nodiscard]] Result<std::vector<int>> parse_cpu_list(std::string_view list);
// PER_LINUX / PER_LINUX32 of linux.personality.
[[nodiscard]] Result<unsigned long> personality_value(const spec::Personality& p);

// `path` prefixes the field in errors ("process" for config.json, "" for an exec process.json).
[[nodiscard]] Result<void> set_scheduler(const spec::Scheduler& s, std::string_view path = "process");
[[nodiscard]] Result<void> set_io_priority(const spec::IoPriority& io, std::string_view path = "process");
// `field` is the full field name used in errors, e.g. "process.execCPUAffinity.final".
[[nodiscard]] Result<void> set_cpu_affinity(std::string_view list, std::string_view field);
[[nodiscard]] Result<void> set_personality(const spec::Personality& p);

}  // namespace berth::sys
