// Namespace helpers: CLONE_* flags, clone3, setns by path, uid/gid maps, time offsets, process identity.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "spec/config.hpp"

namespace berth::sys {

// CLONE_NEW* flag of a namespace type.
int clone_flag(spec::NamespaceType t);
// The /proc/<pid>/ns/<name> entry name of a namespace type ("net" for network, "mnt" for mount, ...).
const char* proc_ns_name(spec::NamespaceType t);

// clone3(2) without CLONE_VM: a fork that can create namespaces at once. Returns the child's pid in the parent and
// 0 in the child. `pidfd_out`, when given, receives a pidfd for the child (CLONE_PIDFD).
// With `cgroup_fd` >= 0 (a cgroup v2 directory), the child is born in that cgroup (CLONE_INTO_CGROUP).
[[nodiscard]] Result<pid_t> clone3_fork(uint64_t flags, int* pidfd_out = nullptr, int cgroup_fd = -1);

// Opens a namespace file and checks that it is one of the expected type (setns with nstype verifies).
[[nodiscard]] Result<UniqueFd> open_namespace(const std::string& path);
[[nodiscard]] Result<void> join_namespace(int fd, spec::NamespaceType t, const std::string& path_for_errors);

// Writes /proc/<pid>/uid_map or gid_map ("containerID hostID size" lines).
[[nodiscard]] Result<void> write_id_map(pid_t pid, const char* which, const std::vector<spec::IdMapping>& maps);
// Writes /proc/self/timens_offsets for a time namespace nobody has entered yet.
[[nodiscard]] Result<void> write_time_offsets(const std::map<std::string, spec::TimeOffset>& offsets);

// Numeric field `field` (1-based, as proc(5) counts; 3 or later) of /proc/<pid>/stat; 0 when the process does not
// exist or the field is missing.
uint64_t process_stat_number(pid_t pid, int field);
// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); pairs with a pid to detect
// pid reuse. Returns 0 when the process does not exist.
uint64_t process_start_time(pid_t pid);
// True when the process exists and is not a zombie.
bool process_alive(pid_t pid, uint64_t expected_start_time);

}  // namespace berth::sys
