// Linux security modules: the AppArmor profile (process.apparmorProfile, `exec --apparmor`) and the SELinux
// labels (process.selinuxLabel, `exec --process-label`, linux.mountLabel) of a container.
//
// What the host has decides what happens, as in runc: without AppArmor a profile is skipped silently (so the
// same config runs on hosts with and without it); without SELinux a process label is an error, because running
// a process unconfined that was meant to be confined must not pass unnoticed, while a mount label is ignored.
// The parent decides with resolve_lsm() (the host's /sys is not visible from inside the container); the process
// applies the result to itself just before execve, through the container's /proc.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::sys {

// /sys/module/apparmor/parameters/enabled reads "Y".
bool apparmor_enabled();
// selinuxfs is mounted at /sys/fs/selinux.
bool selinux_enabled();

struct LsmSettings {
    std::string apparmor_profile;  // empty: nothing to apply
    std::string selinux_label;     // empty: nothing to apply
    std::string mount_label;       // empty: no context= option on mounts
};

// What to apply on this host for `process` (and linux.mountLabel). `path` prefixes field names in errors:
// `process.selinuxLabel: SELinux is not enabled on this host (no selinuxfs at /sys/fs/selinux)`.
[[nodiscard]] Result<LsmSettings> resolve_lsm(const spec::Process& process, std::string_view mount_label,
                                              std::string_view path = "process");

// Writes "exec <profile>" to /proc/self/attr/apparmor/exec (or the older /proc/self/attr/exec): the profile
// takes effect at the next execve.
[[nodiscard]] Result<void> apply_apparmor_profile(const std::string& profile);
// Writes the label to /proc/self/attr/exec: the label takes effect at the next execve.
[[nodiscard]] Result<void> apply_selinux_label(const std::string& label);
// Mount data with the SELinux context option added: ("mode=755", "system_u:...") -> `mode=755,context="..."`.
std::string with_mount_label(const std::string& data, const std::string& label);
// Whether a mount of `type` takes a context= option (procfs, sysfs, cgroup and mqueue do not; binds never).
bool mount_takes_label(std::string_view type);

}  // namespace berth::sys
