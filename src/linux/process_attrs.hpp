// Process attributes the container's init sets on itself before exec: rlimits, oom_score_adj, sysctls,
// hostname, user and groups, no_new_privs, and the fd hygiene before exec.
//
// Each function does one thing and reports what it tried with the errno text; where the usual cause of a failure
// is a missing capability the message says so, because runc's equivalent failure ("can't get final child's PID
// from pipe: EOF") sends users looking in the wrong place.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::sys {

// setrlimit for each entry, in order. `resource` is used when >= 0, else the RLIMIT_* name in `type` is resolved.
// Error: "setrlimit RLIMIT_NOFILE soft=4096 hard=1048576: Operation not permitted (raising a hard limit needs
// CAP_SYS_RESOURCE, which this host does not grant)".
[[nodiscard]] Result<void> set_rlimits(const std::vector<spec::Rlimit>& rlimits);

// The RLIMIT_* number of a name such as "RLIMIT_NOFILE", or an error naming it.
[[nodiscard]] Result<int> rlimit_resource(std::string_view name);

// Writes /proc/self/oom_score_adj. Error: "oom_score_adj -998: Permission denied (a negative oom_score_adj needs
// CAP_SYS_RESOURCE)".
[[nodiscard]] Result<void> set_oom_score_adj(int value);

// Writes each value to /proc/sys/<key with '.' as '/'>. Keys containing "..", empty components or a leading '/'
// are rejected. Errors name the key.
[[nodiscard]] Result<void> apply_sysctl(const std::map<std::string, std::string>& sysctl);

// sethostname / setdomainname; meaningful in a new UTS namespace.
[[nodiscard]] Result<void> set_hostname(std::string_view name);
[[nodiscard]] Result<void> set_domainname(std::string_view name);

// setgroups(additionalGids), setresgid(gid), setresuid(uid), then umask when set. In a user namespace whose
// setgroups is "deny", an empty group list is skipped; requested additional gids are an error there. Changing
// from uid 0 to another uid clears the permitted capabilities unless the caller set PR_SET_KEEPCAPS first.
[[nodiscard]] Result<void> apply_user(const spec::User& user, bool in_user_namespace);

// prctl(PR_SET_NO_NEW_PRIVS, 1).
[[nodiscard]] Result<void> set_no_new_privs();

// Closes every fd above `keep_max`: close_range(2), or a /proc/self/fd walk where close_range is missing.
[[nodiscard]] Result<void> close_fds_above(int keep_max);

// Marks every fd >= first_fd close-on-exec: close_range(CLOSE_RANGE_CLOEXEC), or a /proc/self/fd walk.
[[nodiscard]] Result<void> set_cloexec_from(int first_fd);

}  // namespace berth::sys
