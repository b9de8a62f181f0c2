// Parsing of an OCI mount's `options` list (runtime-spec config.md "mounts", and the option names of
// features.md "mountOptions") into what mount(2) and mount_setattr(2) take.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace berth::sys {

struct MountFlags {
    // MS_* per-mount and superblock flags to set (MS_RDONLY, MS_NOSUID, ..., MS_REMOUNT). Never holds MS_BIND,
    // MS_REC or a propagation flag: those are `bind`/`rbind` and `propagation`.
    unsigned long flags = 0;
    // MS_* flags the options explicitly turn off ("rw" -> MS_RDONLY, "suid" -> MS_NOSUID, "atime" -> MS_NOATIME).
    // A later option wins over an earlier one, so a bit is never in both `flags` and `clear`.
    unsigned long clear = 0;
    // One of MS_PRIVATE, MS_SHARED, MS_SLAVE, MS_UNBINDABLE, or'ed with MS_REC for the r* forms; 0 when none.
    // Two different propagation options in one list are an error rather than one silently winning.
    unsigned long propagation = 0;
    // Recursive attributes for mount_setattr(2) with AT_RECURSIVE (MOUNT_ATTR_*), from rro, rnosuid, ratime, ...
    // attr_clr carries MOUNT_ATTR__ATIME whenever an r*atime option is given, as the kernel requires.
    uint64_t attr_set = 0;
    uint64_t attr_clr = 0;
    bool recursive_readonly = false;  // "rro" (also in attr_set)
    bool bind = false;                // "bind" or "rbind"
    bool rbind = false;               // "rbind": bind with MS_REC
    // "tmpcopyup" (runc's and crun's extension, sent by podman for --read-only's tmpfs mounts): the new tmpfs
    // starts with a copy of what the mount point held.
    bool tmpcopyup = false;
    // Options that are not generic mount flags, comma-joined in their original order (e.g. "mode=755,size=65536k"),
    // passed to mount(2) as the filesystem-specific data.
    std::string data;

    bool has_recursive_attrs() const { return attr_set != 0 || attr_clr != 0; }
};

// Parses an options list. Errors, naming the option: "idmap"/"ridmap" (not supported), conflicting propagation options,
// an empty option.
[[nodiscard]] Result<MountFlags> parse_mount_options(const std::vector<std::string>& options);

// Every option name parse_mount_options() interprets itself (features.md "mountOptions"): generic flags, their
// recursive forms, propagation, bind/rbind and "defaults". Filesystem-specific data options are not listed.
std::vector<std::string> known_mount_options();

// Parses linux.rootfsPropagation: "" -> 0, "private" -> MS_PRIVATE, "rprivate" -> MS_PRIVATE|MS_REC, and likewise
// for shared, slave and unbindable. Anything else is an error naming the value.
[[nodiscard]] Result<unsigned long> parse_propagation(std::string_view value);

}  // namespace berth::sys
