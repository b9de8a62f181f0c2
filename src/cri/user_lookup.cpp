#include "cri/user_lookup.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>

#include "common/fs.hpp"
#include "common/unique_fd.hpp"
#include "linux/safe_path.hpp"

namespace berth::cri {

namespace {

constexpr off_t kMaxDatabaseSize = 16 << 20;

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (;;) {
        size_t pos = s.find(sep, start);
        if (pos == std::string_view::npos) {
            out.push_back(s.substr(start));
            return out;
        }
        out.push_back(s.substr(start, pos - start));
        start = pos + 1;
    }
}

// Calls f(fields) for every line worth parsing.
template <typename F>
void for_each_record(std::string_view text, F&& f) {
    for (std::string_view line : split(text, '\n')) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') continue;
        f(split(line, ':'));
    }
}

// The file `path` inside the rootfs, "" when it does not exist there.
Result<std::string> read_database(int root_fd, const std::string& rootfs, std::string_view path) {
    auto fd = sys::open_in_root(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (!fd) {
        if (fd.error().code() == ENOENT || fd.error().code() == ENOTDIR || fd.error().code() == ELOOP)
            return std::string();
        return std::unexpected(std::move(fd).error().wrap(fmt::format("read {} in rootfs {}", path, rootfs)));
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return fail_sys("stat {} in rootfs {}", path, rootfs);
    if (!S_ISREG(st.st_mode)) return fail("read {} in rootfs {}: not a regular file", path, rootfs);
    if (st.st_size > kMaxDatabaseSize)
        return fail("read {} in rootfs {}: larger than {} bytes", path, rootfs, kMaxDatabaseSize);
    auto text = read_fd(fd->get());
    if (!text) return std::unexpected(std::move(text).error().wrap(fmt::format("read {} in rootfs {}", path, rootfs)));
    return std::move(*text);
}

}  // namespace

std::optional<uint32_t> parse_id(std::string_view s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v >= 0xffffffffULL) return std::nullopt;
    return static_cast<uint32_t>(v);
}

std::vector<PasswdEntry> parse_passwd(std::string_view text) {
    std::vector<PasswdEntry> out;
    for_each_record(text, [&](const std::vector<std::string_view>& f) {
        // name:password:uid:gid:gecos:home:shell
        if (f.size() < 4 || f[0].empty()) return;
        auto uid = parse_id(f[2]);
        auto gid = parse_id(f[3]);
        if (!uid || !gid) return;
        out.push_back({std::string(f[0]), *uid, *gid, f.size() > 5 ? std::string(f[5]) : std::string()});
    });
    return out;
}

std::vector<GroupEntry> parse_group(std::string_view text) {
    std::vector<GroupEntry> out;
    for_each_record(text, [&](const std::vector<std::string_view>& f) {
        // name:password:gid:member,member
        if (f.size() < 3 || f[0].empty()) return;
        auto gid = parse_id(f[2]);
        if (!gid) return;
        GroupEntry g{std::string(f[0]), *gid, {}};
        if (f.size() > 3 && !f[3].empty())
            for (std::string_view m : split(f[3], ','))
                if (!m.empty()) g.members.emplace_back(m);
        out.push_back(std::move(g));
    });
    return out;
}

Result<RootfsUsers> RootfsUsers::load(const std::string& rootfs) {
    BERTH_ASSIGN(UniqueFd root, open_fd(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC));
    BERTH_ASSIGN(std::string passwd, read_database(root.get(), rootfs, "/etc/passwd"));
    BERTH_ASSIGN(std::string group, read_database(root.get(), rootfs, "/etc/group"));
    return RootfsUsers(parse_passwd(passwd), parse_group(group));
}

const PasswdEntry* RootfsUsers::user_by_name(std::string_view name) const {
    auto it = std::find_if(passwd_.begin(), passwd_.end(), [&](const PasswdEntry& e) { return e.name == name; });
    return it == passwd_.end() ? nullptr : &*it;
}

const PasswdEntry* RootfsUsers::user_by_uid(uint32_t uid) const {
    auto it = std::find_if(passwd_.begin(), passwd_.end(), [&](const PasswdEntry& e) { return e.uid == uid; });
    return it == passwd_.end() ? nullptr : &*it;
}

const GroupEntry* RootfsUsers::group_by_name(std::string_view name) const {
    auto it = std::find_if(groups_.begin(), groups_.end(), [&](const GroupEntry& g) { return g.name == name; });
    return it == groups_.end() ? nullptr : &*it;
}

std::vector<uint32_t> RootfsUsers::groups_of(std::string_view user) const {
    std::vector<uint32_t> out;
    for (const auto& g : groups_) {
        if (std::find(g.members.begin(), g.members.end(), user) == g.members.end()) continue;
        if (std::find(out.begin(), out.end(), g.gid) == out.end()) out.push_back(g.gid);
    }
    return out;
}

}  // namespace berth::cri
