// /proc/<pid>/mountinfo parsing (proc(5)): one entry per mount of the reader's mount namespace.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace berth::sys {

struct MountInfo {
    int id = 0;
    int parent_id = 0;
    unsigned major = 0, minor = 0;
    std::string root;                          // the mount's root within its filesystem ("/" for a whole filesystem)
    std::string mount_point;                   // relative to the reader's root, octal escapes (\040 ...) decoded
    std::string options;                       // per-mount options: "rw,nosuid,relatime"
    std::vector<std::string> optional_fields;  // "shared:1", "master:2", ...
    std::string fstype;
    std::string source;
    std::string super_options;  // per-superblock options: "rw,cpu" for a cgroup v1 hierarchy

    // True when `name` is one of the comma-separated per-mount options.
    bool has_option(std::string_view name) const;
    bool has_super_option(std::string_view name) const;
};

// Parses mountinfo text; a malformed line is an error quoting it.
[[nodiscard]] Result<std::vector<MountInfo>> parse_mountinfo(std::string_view text);
// Reads and parses /proc/self/mountinfo.
[[nodiscard]] Result<std::vector<MountInfo>> read_mountinfo();

// The entry of the mount `path` is on: the last-mounted entry whose mount point is the longest prefix of `path`
// (lexically; `path` should be absolute and clean). nullptr when nothing matches.
const MountInfo* find_mount_for(const std::vector<MountInfo>& mounts, std::string_view path);

// True when `option` appears in the comma-separated list `list`.
bool option_list_has(std::string_view list, std::string_view option);

}  // namespace berth::sys
