// User and group lookup in a container image's rootfs: /etc/passwd and /etc/group parsed directly, never through
// NSS (the host's databases say nothing about the image's users).
//
// The files are opened with sys::open_in_root, so a hostile image cannot make berthd read a host file: a symlinked
// /etc/passwd resolves inside the rootfs like any path the container itself would open. A missing file (or one
// whose symlink leads nowhere inside the rootfs) is an empty database, as for an image without /etc/passwd.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace berth::cri {

struct PasswdEntry {
    std::string name;
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string home;
};

struct GroupEntry {
    std::string name;
    uint32_t gid = 0;
    std::vector<std::string> members;
};

// Parses passwd(5) text. Lines that are empty, comments ("#"), NIS entries ("+"/"-") or malformed (too few fields,
// non-numeric ids) are skipped: the C library skips them too.
std::vector<PasswdEntry> parse_passwd(std::string_view text);
// Parses group(5) text with the same tolerance.
std::vector<GroupEntry> parse_group(std::string_view text);

// The user and group databases of one rootfs, read once.
class RootfsUsers {
public:
    // Reads <rootfs>/etc/passwd and <rootfs>/etc/group confined to the rootfs. Fails only when the rootfs itself
    // cannot be opened or a file exists but cannot be read (EACCES, EIO, a directory, more than 16 MiB).
    [[nodiscard]] static Result<RootfsUsers> load(const std::string& rootfs);

    RootfsUsers() = default;
    RootfsUsers(std::vector<PasswdEntry> passwd, std::vector<GroupEntry> groups)
        : passwd_(std::move(passwd)), groups_(std::move(groups)) {}

    // The first entry with that name / uid, as getpwnam/getpwuid return.
    const PasswdEntry* user_by_name(std::string_view name) const;
    const PasswdEntry* user_by_uid(uint32_t uid) const;
    const GroupEntry* group_by_name(std::string_view name) const;
    // The gids of every group listing `user` as a member, in file order, without duplicates.
    std::vector<uint32_t> groups_of(std::string_view user) const;

private:
    std::vector<PasswdEntry> passwd_;
    std::vector<GroupEntry> groups_;
};

// A decimal uid or gid (0 .. 2^32-2; 2^32-1 is the kernel's "no id"), nullopt for anything else.
std::optional<uint32_t> parse_id(std::string_view s);

}  // namespace berth::cri
