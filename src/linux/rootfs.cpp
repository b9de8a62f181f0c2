#include "linux/rootfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <string_view>
#include <vector>

#include "common/fs.hpp"
#include "linux/lsm.hpp"
#include "linux/mount_options.hpp"
#include "linux/mountinfo.hpp"
#include "linux/safe_path.hpp"

namespace berth::sys {

namespace {

constexpr unsigned long kAtimeFlags = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;

std::unexpected<Error> errno_error(int err) {
    return std::unexpected(Error(err, std::system_category().message(err)));
}

bool is_under(std::string_view path, std::string_view dir) {
    if (dir == "/") return true;
    return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

std::string_view base_name(std::string_view p) {
    auto slash = p.find_last_of('/');
    return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

std::string_view dir_name(std::string_view p) {
    auto slash = p.find_last_of('/');
    if (slash == std::string_view::npos) return ".";
    if (slash == 0) return "/";
    return p.substr(0, slash);
}

// A mount's id and whether `fd` is the root of its mount.
struct MountIdentity {
    uint64_t mnt_id = 0;
    bool mount_root = false;
};

Result<MountIdentity> mount_identity(int fd) {
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0) return fail_sys("statx");
    MountIdentity id;
    if (stx.stx_mask & STATX_MNT_ID) id.mnt_id = stx.stx_mnt_id;
    id.mount_root = (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
    return id;
}

// After mounting on `before_fd` (the object under the new mount), resolves `dest` again to reach the new mount's
// root, which is what remounts, propagation changes and mount_setattr need. The result must be the root of a
// mount other than the one below: anything else means the path changed under us.
Result<UniqueFd> reopen_mounted(int root_fd, std::string_view dest, int before_fd) {
    BERTH_ASSIGN(UniqueFd fresh, open_in_root(root_fd, dest, O_PATH));
    BERTH_ASSIGN(MountIdentity now, mount_identity(fresh.get()));
    MountIdentity before;
    if (before_fd >= 0) {
        BERTH_ASSIGN(before, mount_identity(before_fd));
    }
    if (!now.mount_root || (before_fd >= 0 && now.mnt_id == before.mnt_id))
        return fail_errno(EXDEV, "{} is not the new mount after mounting: it changed meanwhile", dest);
    return fresh;
}

// The per-mount MS_* flags the mount `fd` is on has now.
Result<unsigned long> current_mount_flags(int fd) {
    struct statvfs sv {};
    if (::fstatvfs(fd, &sv) < 0) return fail_sys("statvfs");
    unsigned long out = 0;
    constexpr std::array<std::pair<unsigned long, unsigned long>, 8> map = {{
        {ST_RDONLY, MS_RDONLY},
        {ST_NOSUID, MS_NOSUID},
        {ST_NODEV, MS_NODEV},
        {ST_NOEXEC, MS_NOEXEC},
        {ST_NOATIME, MS_NOATIME},
        {ST_NODIRATIME, MS_NODIRATIME},
        {ST_RELATIME, MS_RELATIME},
        {256 /* ST_NOSYMFOLLOW */, MS_NOSYMFOLLOW},
    }};
    for (auto [st, ms] : map)
        if (sv.f_flag & st) out |= ms;
    return out;
}

// Bind-remounts the mount whose root is `fd` with `set` on and `clear` off, keeping its other per-mount flags:
// a bind remount replaces them all, in a user namespace the kernel refuses one that drops a flag it locked (those
// inherited from a more privileged namespace), and elsewhere keeping them preserves what the source had unless
// the config says otherwise. Skipped when nothing would change.
Result<void> remount_bind(int fd, unsigned long set, unsigned long clear) {
    constexpr unsigned long kPerMount =
        MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME | MS_NOSYMFOLLOW | kAtimeFlags;
    set &= kPerMount;
    clear &= kPerMount;
    BERTH_ASSIGN(unsigned long current, current_mount_flags(fd));
    unsigned long keep = current & ~clear;
    if ((set | clear) & kAtimeFlags) keep &= ~kAtimeFlags;
    unsigned long flags = set | keep;
    if (flags == current) return {};
    if (::mount(nullptr, fd_path(fd).c_str(), nullptr, MS_BIND | MS_REMOUNT | flags, nullptr) < 0)
        return fail_sys("remount with flags {:#x}", flags);
    return {};
}

// Propagation options and recursive attributes, applied to the mount whose root is `fd`.
Result<void> apply_propagation_and_attrs(int fd, const MountFlags& mf) {
    if (mf.propagation != 0 && ::mount(nullptr, fd_path(fd).c_str(), nullptr, mf.propagation, nullptr) < 0)
        return fail_sys("set propagation {:#x}", mf.propagation);
    if (mf.has_recursive_attrs()) {
        struct mount_attr attr {};
        attr.attr_set = mf.attr_set;
        attr.attr_clr = mf.attr_clr;
        if (::mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
            return fail_sys("mount_setattr recursive set {:#x} clear {:#x}", mf.attr_set, mf.attr_clr);
    }
    return {};
}

// Files procfs lets a container see through a bind (LXCFS-style virtualisation). Anything else mounted on top of
// procfs could hide what the kernel exposes there for a reason, or replace it with a host file.
constexpr std::array<std::string_view, 10> kProcBindAllowed = {
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo",  "/proc/stat",    "/proc/swaps",
    "/proc/uptime",  "/proc/loadavg",   "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
};

bool on_procfs(int fd) {
    struct statfs sfs {};
    return ::fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

struct Ctx {
    const spec::Config& config;
    const RootfsOptions& opts;
    std::string rootfs_real;  // opts.rootfs with host symlinks resolved, to compare with mountinfo
    UniqueFd root;            // O_PATH to the root of the rootfs self-bind mount
};

Result<void> check_target(const std::string& dest, int target_fd) {
    if (on_procfs(target_fd)) {
        for (auto allowed : kProcBindAllowed)
            if (dest == allowed) return {};
        return fail_errno(EPERM, "{} lies inside procfs, where only a few files may be mounted over", dest);
    }
    return {};
}

Result<void> mount_bind(Ctx& ctx, const std::string& source, const std::string& dest, const MountFlags& mf,
                        bool recursive) {
    struct stat st {};
    if (::stat(source.c_str(), &st) < 0) return fail_sys("stat source {}", source);
    UniqueFd target;
    if (S_ISDIR(st.st_mode)) {
        BERTH_ASSIGN(target, mkdir_all_in_root(ctx.root.get(), dest, 0755));
    } else {
        BERTH_ASSIGN(target, create_file_in_root(ctx.root.get(), dest, 0644));
    }
    BERTH_TRY(check_target(dest, target.get()));
    if (dest == "/proc") {
        UniqueFd src(::open(source.c_str(), O_PATH | O_CLOEXEC));
        if (!src || !on_procfs(src.get())) return fail_errno(EPERM, "only procfs may be mounted on /proc");
    }
    unsigned long bind_flags = MS_BIND | (recursive ? MS_REC : 0);
    if (::mount(source.c_str(), fd_path(target.get()).c_str(), nullptr, bind_flags, nullptr) < 0)
        return errno_error(errno);
    if (mf.flags == 0 && mf.clear == 0 && mf.propagation == 0 && !mf.has_recursive_attrs()) return {};
    BERTH_ASSIGN(UniqueFd fresh, reopen_mounted(ctx.root.get(), dest, target.get()));
    BERTH_TRY(remount_bind(fresh.get(), mf.flags, mf.clear));
    return apply_propagation_and_attrs(fresh.get(), mf);
}

struct CgroupLine {
    std::string controllers;  // "cpu,cpuacct", "name=systemd"; empty for the cgroup2 line "0::"
    std::string path;
};

Result<std::vector<CgroupLine>> read_self_cgroup() {
    BERTH_ASSIGN(std::string text, read_file("/proc/self/cgroup"));
    std::vector<CgroupLine> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        std::string_view line(text.data() + pos, eol - pos);
        pos = eol + 1;
        if (line.empty()) continue;
        auto c1 = line.find(':');
        auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) return fail("/proc/self/cgroup: malformed line \"{}\"", line);
        out.push_back(CgroupLine{std::string(line.substr(c1 + 1, c2 - c1 - 1)), std::string(line.substr(c2 + 1))});
    }
    return out;
}

// The /proc/self/cgroup line of a cgroup v1 hierarchy: the one whose controllers are all among the hierarchy's
// superblock options.
const CgroupLine* line_for_hierarchy(const std::vector<CgroupLine>& lines, const MountInfo& h) {
    for (const auto& l : lines) {
        if (l.controllers.empty()) continue;
        bool all = true;
        size_t i = 0;
        while (i <= l.controllers.size()) {
            size_t j = l.controllers.find(',', i);
            if (j == std::string::npos) j = l.controllers.size();
            if (!h.has_super_option(std::string_view(l.controllers).substr(i, j - i))) all = false;
            i = j + 1;
        }
        if (all) return &l;
    }
    return nullptr;
}

// Host directory of cgroup `path` in hierarchy mount `h`.
Result<std::string> cgroup_host_dir(const MountInfo& h, const std::string& path) {
    std::string rel;
    if (h.root == "/") {
        rel = path;
    } else if (is_under(path, h.root)) {
        rel = path.substr(h.root.size());
    } else {
        return fail("cgroup {} is outside the root {} of the {} mount at {}", path, h.root, h.fstype, h.mount_point);
    }
    return clean_path(path_join(h.mount_point, rel));
}

Result<void> mount_cgroup2(Ctx& ctx, const std::string& dest, const MountFlags& mf,
                           const std::vector<const MountInfo*>& v2, const std::vector<CgroupLine>& lines) {
    if (ctx.opts.new_cgroup_namespace) {
        BERTH_ASSIGN(UniqueFd target, mkdir_all_in_root(ctx.root.get(), dest, 0755));
        if (::mount("cgroup2", fd_path(target.get()).c_str(), "cgroup2", mf.flags,
                    mf.data.empty() ? nullptr : mf.data.c_str()) < 0)
            return errno_error(errno);
        if (mf.propagation || mf.has_recursive_attrs()) {
            BERTH_ASSIGN(UniqueFd fresh, reopen_mounted(ctx.root.get(), dest, target.get()));
            BERTH_TRY(apply_propagation_and_attrs(fresh.get(), mf));
        }
        return {};
    }
    if (v2.empty()) return fail("the host has no cgroup2 mount to bind from");
    const CgroupLine* line = nullptr;
    for (const auto& l : lines)
        if (l.controllers.empty()) line = &l;
    if (!line) return fail("/proc/self/cgroup has no cgroup2 (0::) line");
    BERTH_ASSIGN(std::string host_dir, cgroup_host_dir(*v2.front(), line->path));
    return mount_bind(ctx, host_dir, dest, mf, true);
}

// cgroup v1 (or hybrid) the way runc does it: a tmpfs at the destination holding, per hierarchy, the container's
// own cgroup directory bind-mounted from the host (or, in a new cgroup namespace, that hierarchy mounted afresh,
// which the namespace roots at the container's cgroup), plus the host's symlinks between hierarchy names.
Result<void> mount_cgroup_v1(Ctx& ctx, const std::string& dest, const MountFlags& mf,
                             const std::vector<const MountInfo*>& v1, const std::vector<const MountInfo*>& v2,
                             const std::vector<CgroupLine>& lines) {
    BERTH_ASSIGN(UniqueFd target, mkdir_all_in_root(ctx.root.get(), dest, 0755));
    if (::mount("tmpfs", fd_path(target.get()).c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
        return fail_sys("mount tmpfs");
    BERTH_ASSIGN(UniqueFd tmpfs, reopen_mounted(ctx.root.get(), dest, target.get()));

    std::string host_cgroup_root(dir_name(v1.front()->mount_point));
    MountFlags sub = mf;
    sub.propagation = 0;
    sub.attr_set = sub.attr_clr = 0;
    std::vector<std::string> names;

    auto add = [&](const MountInfo& h, const CgroupLine& line, bool v2_hierarchy) -> Result<void> {
        std::string name(base_name(h.mount_point));
        std::string subdest = path_join(dest, name);
        names.push_back(name);
        if (ctx.opts.new_cgroup_namespace) {
            BERTH_ASSIGN(UniqueFd dir, mkdir_all_in_root(ctx.root.get(), subdest, 0755));
            const char* type = v2_hierarchy ? "cgroup2" : "cgroup";
            if (::mount(type, fd_path(dir.get()).c_str(), type, mf.flags,
                        v2_hierarchy ? nullptr : line.controllers.c_str()) < 0)
                return fail_sys("mount {} {} on {}", type, line.controllers, subdest);
            return {};
        }
        BERTH_ASSIGN(std::string host_dir, cgroup_host_dir(h, line.path));
        BERTH_TRY_CTX(mount_bind(ctx, host_dir, subdest, sub, true), "bind {} on {}", host_dir, subdest);
        return {};
    };

    for (const MountInfo* h : v1) {
        if (dir_name(h->mount_point) != host_cgroup_root) continue;
        const CgroupLine* line = line_for_hierarchy(lines, *h);
        if (!line) return fail("no /proc/self/cgroup line for the hierarchy at {}", h->mount_point);
        BERTH_TRY(add(*h, *line, false));
    }
    for (const MountInfo* h : v2) {
        if (dir_name(h->mount_point) != host_cgroup_root) continue;
        for (const auto& l : lines)
            if (l.controllers.empty()) BERTH_TRY(add(*h, l, true));
    }

    // Host symlinks such as cpu -> cpu,cpuacct.
    UniqueFd host_dir(::open(host_cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!host_dir) return fail_sys("open {}", host_cgroup_root);
    DIR* dir = ::fdopendir(host_dir.get());
    if (!dir) return fail_sys("opendir {}", host_cgroup_root);
    host_dir.release();
    std::vector<std::pair<std::string, std::string>> links;
    while (struct dirent* de = ::readdir(dir)) {
        if (de->d_type != DT_LNK) continue;
        char buf[256];
        ssize_t n = ::readlinkat(::dirfd(dir), de->d_name, buf, sizeof buf - 1);
        if (n <= 0) continue;
        std::string to(buf, static_cast<size_t>(n));
        for (const auto& name : names)
            if (name == to) links.emplace_back(de->d_name, to);
    }
    ::closedir(dir);
    for (const auto& [from, to] : links)
        if (::symlinkat(to.c_str(), tmpfs.get(), from.c_str()) < 0 && errno != EEXIST)
            return fail_sys("symlink {}/{} -> {}", dest, from, to);

    BERTH_TRY_CTX(remount_bind(tmpfs.get(), mf.flags, mf.clear), "tmpfs");
    return apply_propagation_and_attrs(tmpfs.get(), mf);
}

Result<void> mount_cgroup(Ctx& ctx, const spec::Mount& m, const std::string& dest, const MountFlags& mf) {
    BERTH_ASSIGN(std::vector<MountInfo> mounts, read_mountinfo());
    std::vector<const MountInfo*> v1, v2;
    for (const auto& mi : mounts) {
        if (is_under(mi.mount_point, ctx.rootfs_real)) continue;
        if (mi.fstype == "cgroup") v1.push_back(&mi);
        if (mi.fstype == "cgroup2") v2.push_back(&mi);
    }
    BERTH_ASSIGN(std::vector<CgroupLine> lines, read_self_cgroup());
    if (m.type == "cgroup2" || v1.empty()) return mount_cgroup2(ctx, dest, mf, v2, lines);
    return mount_cgroup_v1(ctx, dest, mf, v1, v2, lines);
}

// Copies the tree under the directory `from` into the directory `to` (both O_RDONLY|O_DIRECTORY fds): files,
// directories, symlinks, device nodes, fifos and sockets, with their owner, mode and times; hard links become
// separate files. Symlinks are copied, never followed: `from` is container content.
Result<void> copy_tree(int from, int to) {
    UniqueFd list(::openat(from, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!list) return fail_sys("open directory");
    DIR* dir = ::fdopendir(list.get());
    if (!dir) return fail_sys("fdopendir");
    (void)list.release();
    struct DirCloser {
        DIR* d;
        ~DirCloser() { ::closedir(d); }
    } closer{dir};
    while (struct dirent* de = ::readdir(dir)) {
        std::string_view name = de->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(from, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) return fail_sys("stat {}", name);
        auto copied = [&]() -> Result<void> {
            if (S_ISDIR(st.st_mode)) {
                if (::mkdirat(to, de->d_name, 0700) < 0) return fail_sys("mkdir");
                UniqueFd src(::openat(from, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                UniqueFd dst(::openat(to, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (!src || !dst) return fail_sys("open");
                return copy_tree(src.get(), dst.get());
            }
            if (S_ISREG(st.st_mode)) {
                UniqueFd src(::openat(from, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
                if (!src) return fail_sys("open");
                UniqueFd dst(::openat(to, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
                if (!dst) return fail_sys("create");
                char buf[65536];
                for (;;) {
                    ssize_t n = ::read(src.get(), buf, sizeof buf);
                    if (n < 0 && errno == EINTR) continue;
                    if (n < 0) return fail_sys("read");
                    if (n == 0) break;
                    for (ssize_t done = 0; done < n;) {
                        ssize_t w = ::write(dst.get(), buf + done, static_cast<size_t>(n - done));
                        if (w < 0 && errno == EINTR) continue;
                        if (w < 0) return fail_sys("write");
                        done += w;
                    }
                }
                return {};
            }
            if (S_ISLNK(st.st_mode)) {
                std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
                ssize_t n = ::readlinkat(from, de->d_name, target.data(), target.size());
                if (n < 0) return fail_sys("readlink");
                target.resize(static_cast<size_t>(n));
                if (::symlinkat(target.c_str(), to, de->d_name) < 0) return fail_sys("symlink");
                return {};
            }
            if (::mknodat(to, de->d_name, st.st_mode, st.st_rdev) < 0) return fail_sys("mknod");
            return {};
        }();
        if (!copied) return std::unexpected(copied.error().wrap(std::string(name)));
        // Owner before mode: chown clears set-id bits.
        if (::fchownat(to, de->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
            return fail_sys("chown {}", name);
        if (!S_ISLNK(st.st_mode) && ::fchmodat(to, de->d_name, st.st_mode & 07777, 0) < 0)
            return fail_sys("chmod {}", name);
        const struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (::utimensat(to, de->d_name, times, AT_SYMLINK_NOFOLLOW) < 0) return fail_sys("set times of {}", name);
    }
    return {};
}

// A tmpfs with "tmpcopyup": `below` (opened before the mount) still reaches the directory the tmpfs now hides;
// its contents are copied into the fresh tmpfs, which is made read-only only afterwards if asked to be.
Result<void> copy_up(Ctx& ctx, const std::string& dest, int target_fd, int below, const MountFlags& mf) {
    BERTH_ASSIGN(UniqueFd fresh, reopen_mounted(ctx.root.get(), dest, target_fd));
    UniqueFd above(::openat(fresh.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!above) return fail_sys("open the new tmpfs");
    BERTH_TRY_CTX(copy_tree(below, above.get()), "tmpcopyup: copy the contents of {}", dest);
    if (mf.flags & MS_RDONLY) BERTH_TRY_CTX(remount_bind(fresh.get(), mf.flags, mf.clear), "tmpcopyup");
    return {};
}

Result<void> mount_filesystem(Ctx& ctx, const spec::Mount& m, const std::string& dest, const MountFlags& mf) {
    BERTH_ASSIGN(UniqueFd target, mkdir_all_in_root(ctx.root.get(), dest, 0755));
    BERTH_TRY(check_target(dest, target.get()));
    if (dest == "/proc" && m.type != "proc") return fail_errno(EPERM, "only procfs may be mounted on /proc");
    const std::string& source = m.source.empty() ? m.type : m.source;
    const char* data = mf.data.empty() ? nullptr : mf.data.c_str();

    if (mf.flags & MS_REMOUNT) {
        BERTH_ASSIGN(UniqueFd fresh, open_in_root(ctx.root.get(), dest, O_PATH));
        if (::mount(nullptr, fd_path(fresh.get()).c_str(), m.type.c_str(), mf.flags, data) < 0)
            return errno_error(errno);
        return apply_propagation_and_attrs(fresh.get(), mf);
    }

    UniqueFd below;
    unsigned long flags = mf.flags;
    if (mf.tmpcopyup) {
        below = UniqueFd(::openat(target.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!below) return fail_sys("tmpcopyup: open {}", dest);
        flags &= ~MS_RDONLY;  // filled first, made read-only after
    }
    if (::mount(source.c_str(), fd_path(target.get()).c_str(), m.type.c_str(), flags, data) < 0) {
        int err = errno;
        // Without its own network namespace a user namespace may not mount sysfs, nor mqueue without its own IPC
        // namespace: bind the host's instead, as runc does.
        if (err == EPERM && ctx.opts.in_user_namespace && m.type == "sysfs") {
            BERTH_TRY_CTX(mount_bind(ctx, "/sys", dest, mf, true),
                          "sysfs not permitted in this user namespace, rbind of /sys");
            return {};
        }
        if (err == EPERM && ctx.opts.in_user_namespace && m.type == "mqueue") {
            BERTH_TRY_CTX(mount_bind(ctx, "/dev/mqueue", dest, mf, true),
                          "mqueue not permitted in this user namespace, bind of /dev/mqueue");
            return {};
        }
        return errno_error(err);
    }
    if (mf.tmpcopyup) BERTH_TRY(copy_up(ctx, dest, target.get(), below.get(), mf));
    if (mf.propagation || mf.has_recursive_attrs()) {
        BERTH_ASSIGN(UniqueFd fresh, reopen_mounted(ctx.root.get(), dest, target.get()));
        BERTH_TRY(apply_propagation_and_attrs(fresh.get(), mf));
    }
    return {};
}

// Cleans a mount destination: "/a/../../b" is "/b" (inside the rootfs); a destination that still leads up or
// is relative after cleaning is an error.
Result<std::string> clean_destination(const std::string& destination) {
    std::string dest = clean_path(destination);
    if (dest == ".." || dest.starts_with("../"))
        return fail("mount destination \"{}\" escapes the rootfs", destination);
    if (dest.empty() || dest.front() != '/') return fail("mount destination \"{}\" is not absolute", destination);
    if (dest == "/") return fail("mount destination \"{}\" would cover the whole rootfs", destination);
    return dest;
}

Result<void> mount_entry(Ctx& ctx, const spec::Mount& m) {
    BERTH_ASSIGN(std::string dest, clean_destination(m.destination));
    BERTH_ASSIGN(MountFlags mf, parse_mount_options(m.options));
    if (!m.uid_mappings.empty() || !m.gid_mappings.empty())
        return fail("uidMappings/gidMappings on a mount (id-mapped mounts) are not supported");
    if (mf.tmpcopyup && m.type != "tmpfs")
        return fail("mount option \"tmpcopyup\" is only for tmpfs mounts, not {}", m.type.empty() ? "bind" : m.type);
    if (mf.bind || m.type == "bind") {
        std::string source = m.source;
        if (source.empty()) return fail("bind mount without a source");
        if (source.front() != '/') {
            if (ctx.opts.bundle.empty()) return fail("relative bind source \"{}\" and no bundle directory", source);
            source = path_join(ctx.opts.bundle, source);
        }
        return mount_bind(ctx, source, dest, mf, mf.rbind);
    }
    if (m.type == "cgroup" || m.type == "cgroup2") return mount_cgroup(ctx, m, dest, mf);
    if (m.type.empty()) return fail("mount has no type and is not a bind mount");
    // linux.mountLabel labels the filesystems that take a context= option (tmpfs, devpts, ...), as runc does.
    if (!ctx.opts.mount_label.empty() && mount_takes_label(m.type))
        mf.data = with_mount_label(mf.data, ctx.opts.mount_label);
    return mount_filesystem(ctx, m, dest, mf);
}

// --- devices ---

struct DefaultDevice {
    std::string_view path;
    unsigned major, minor;
};

constexpr std::array<DefaultDevice, 6> kDefaultDevices = {{
    {"/dev/null", 1, 3},
    {"/dev/zero", 1, 5},
    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8},
    {"/dev/urandom", 1, 9},
    {"/dev/tty", 5, 0},
}};

Result<void> create_device(Ctx& ctx, const spec::Device& d) {
    std::string path = clean_path(d.path);
    if (path.empty() || path.front() != '/' || path == "/") return fail("device path \"{}\" is not absolute", d.path);
    mode_t type = 0;
    if (d.type == "c" || d.type == "u") {
        type = S_IFCHR;
    } else if (d.type == "b") {
        type = S_IFBLK;
    } else if (d.type == "p") {
        type = S_IFIFO;
    } else {
        return fail("device {}: unknown type \"{}\"", d.path, d.type);
    }
    if (d.major < 0 || d.minor < 0 || d.major > 0xfff || d.minor > 0xfffff)
        return fail("device {}: major:minor {}:{} out of range", d.path, d.major, d.minor);
    dev_t rdev = type == S_IFIFO ? 0 : makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
    mode_t perm = static_cast<mode_t>(d.file_mode.value_or(0666) & 07777);
    uid_t uid = d.uid.value_or(0);
    gid_t gid = d.gid.value_or(0);

    if (ctx.opts.in_user_namespace && type != S_IFIFO) {
        // mknod is never allowed in a user namespace: bind the host's node of the same path instead.
        struct stat host {};
        if (::stat(path.c_str(), &host) < 0) return fail_sys("device {}: stat host node to bind", path);
        if ((host.st_mode & S_IFMT) != type || host.st_rdev != rdev)
            return fail("device {}: the host node is not {} {}:{}, cannot bind it in a user namespace", path, d.type,
                        d.major, d.minor);
        BERTH_ASSIGN(UniqueFd target, create_file_in_root(ctx.root.get(), path, 0600));
        if (::mount(path.c_str(), fd_path(target.get()).c_str(), nullptr, MS_BIND, nullptr) < 0)
            return fail_sys("device {}: bind host node", path);
        return {};
    }

    std::string_view base = base_name(path);
    BERTH_ASSIGN(UniqueFd parent, mkdir_all_in_root(ctx.root.get(), dir_name(path), 0755));
    std::string name(base);
    if (::mknodat(parent.get(), name.c_str(), type | perm, rdev) < 0) {
        if (errno != EEXIST) return fail_sys("device {}: mknod {} {}:{}", path, d.type, d.major, d.minor);
        struct stat st {};
        if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
            return fail_sys("device {}: stat existing", path);
        if ((st.st_mode & S_IFMT) != type || (type != S_IFIFO && st.st_rdev != rdev))
            return fail_errno(EEXIST, "device {}: a different file exists there", path);
    }
    // mknod's mode went through the umask, so set it again. fchmod refuses O_PATH fds, glibc 2.36's fchmodat has no
    // AT_EMPTY_PATH and opening a device node for real could have side effects: chmod the O_PATH handle's magic
    // link instead.
    UniqueFd node(::openat(parent.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!node) return fail_sys("device {}: open", path);
    struct stat st {};
    if (::fstat(node.get(), &st) < 0 || (st.st_mode & S_IFMT) != type)
        return fail_errno(EEXIST, "device {}: replaced while being created", path);
    if (::chmod(fd_path(node.get()).c_str(), perm) < 0) return fail_sys("device {}: chmod {:o}", path, perm);
    if (::fchownat(node.get(), "", uid, gid, AT_EMPTY_PATH) < 0)
        return fail_sys("device {}: chown {}:{}", path, uid, gid);
    return {};
}

bool mounts_dev_from_host(const spec::Config& config) {
    for (const auto& m : config.mounts) {
        if (clean_path(m.destination) != "/dev") continue;
        if (m.type == "bind") return true;
        for (const auto& o : m.options)
            if (o == "bind" || o == "rbind") return true;
    }
    return false;
}

Result<void> setup_dev(Ctx& ctx) {
    const spec::Config& config = ctx.config;
    std::vector<spec::Device> devices;
    for (const auto& dd : kDefaultDevices) {
        bool overridden = false;
        if (config.linux)
            for (const auto& d : config.linux->devices)
                if (clean_path(d.path) == dd.path) overridden = true;
        if (overridden) continue;
        spec::Device d;
        d.type = "c";
        d.path = std::string(dd.path);
        d.major = dd.major;
        d.minor = dd.minor;
        d.file_mode = 0666;
        devices.push_back(std::move(d));
    }
    if (config.linux) devices.insert(devices.end(), config.linux->devices.begin(), config.linux->devices.end());
    for (const auto& d : devices) BERTH_TRY(create_device(ctx, d));

    BERTH_ASSIGN(UniqueFd dev, mkdir_all_in_root(ctx.root.get(), "/dev", 0755));
    std::vector<std::pair<std::string_view, std::string_view>> links = {
        {"fd", "/proc/self/fd"},
        {"stdin", "/proc/self/fd/0"},
        {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"},
    };
    if (::access("/proc/kcore", F_OK) == 0) links.emplace_back("core", "/proc/kcore");
    for (auto [name, to] : links) {
        std::string n(name), t(to);
        if (::symlinkat(t.c_str(), dev.get(), n.c_str()) < 0 && errno != EEXIST)
            return fail_sys("symlink /dev/{} -> {}", name, to);
    }

    bool devpts = false;
    for (const auto& m : config.mounts)
        if (m.type == "devpts" && clean_path(m.destination) == "/dev/pts") devpts = true;
    if (devpts) {
        if (::unlinkat(dev.get(), "ptmx", 0) < 0 && errno != ENOENT) return fail_sys("remove /dev/ptmx");
        if (::symlinkat("pts/ptmx", dev.get(), "ptmx") < 0) return fail_sys("symlink /dev/ptmx -> pts/ptmx");
    }

    if (::mkdirat(dev.get(), "shm", 01777) == 0) {
        UniqueFd shm(::openat(dev.get(), "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!shm || ::chmod(fd_path(shm.get()).c_str(), 01777) < 0) return fail_sys("chmod /dev/shm 1777");
    } else if (errno != EEXIST) {
        return fail_sys("mkdir /dev/shm");
    }
    return {};
}

// --- after the pivot ---

// Mount target for `fd` once "/" is the container's root: /proc/self/fd/N through the container's procfs, or, with
// no procfs there, the path itself, which can no longer resolve outside the container's root.
std::string target_path(int fd, const std::string& path, bool have_proc) {
    return have_proc ? fd_path(fd) : path;
}

Result<void> make_readonly(int root_fd, const std::string& path, bool have_proc) {
    auto fd = open_in_root(root_fd, path, O_PATH);
    if (!fd) {
        if (fd.error().code() == ENOENT) return {};
        return std::unexpected(std::move(fd).error());
    }
    std::string target = target_path(fd->get(), path, have_proc);
    if (::mount(target.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) return fail_sys("bind");
    BERTH_ASSIGN(UniqueFd fresh, reopen_mounted(root_fd, path, fd->get()));
    BERTH_ASSIGN(unsigned long current, current_mount_flags(fresh.get()));
    std::string fresh_target = target_path(fresh.get(), path, have_proc);
    if (::mount(nullptr, fresh_target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | current, nullptr) < 0)
        return fail_sys("remount read-only");
    return {};
}

Result<void> mask(int root_fd, const std::string& path, bool have_proc) {
    auto fd = open_in_root(root_fd, path, O_PATH);
    if (!fd) {
        if (fd.error().code() == ENOENT) return {};
        return std::unexpected(std::move(fd).error());
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) < 0) return fail_sys("stat");
    std::string target = target_path(fd->get(), path, have_proc);
    if (S_ISDIR(st.st_mode)) {
        if (::mount("tmpfs", target.c_str(), "tmpfs", MS_RDONLY, nullptr) < 0) return fail_sys("mount read-only tmpfs");
    } else if (::mount("/dev/null", target.c_str(), nullptr, MS_BIND, nullptr) < 0) {
        return fail_sys("bind /dev/null");
    }
    return {};
}

}  // namespace

Result<void> prepare_rootfs(const spec::Config& config, const RootfsOptions& opts) {
    if (opts.rootfs.empty() || opts.rootfs.front() != '/' || clean_path(opts.rootfs) != opts.rootfs)
        return fail("rootfs \"{}\" is not an absolute, clean path", opts.rootfs);
    const spec::Linux empty_linux;
    const spec::Linux& lx = config.linux ? *config.linux : empty_linux;
    BERTH_ASSIGN(unsigned long propagation, parse_propagation(lx.rootfs_propagation));

    // Until the pivot, mounts made here must not reach the host: "/" becomes a slave (or what the config asks,
    // for its type only: unbindable would forbid the bind below, so it waits for finish_rootfs).
    unsigned long root_type = propagation & ~static_cast<unsigned long>(MS_REC);
    if (root_type == 0) root_type = MS_SLAVE;
    if (root_type == MS_UNBINDABLE) root_type = MS_PRIVATE;
    if (::mount(nullptr, "/", nullptr, root_type | MS_REC, nullptr) < 0)
        return fail_sys("set propagation {:#x} on / recursively", root_type);

    char real[PATH_MAX];
    if (!::realpath(opts.rootfs.c_str(), real)) return fail_sys("rootfs {}", opts.rootfs);
    std::string rootfs_real = real;

    if (root_type == MS_SHARED) {
        // pivot_root refuses a shared new root or parent; a private parent makes the self-bind below private
        // while mounts bound in from shared host mounts keep their peers.
        BERTH_ASSIGN(std::vector<MountInfo> mounts, read_mountinfo());
        const MountInfo* parent = find_mount_for(mounts, rootfs_real);
        if (!parent) return fail("no mount holds the rootfs {}", rootfs_real);
        if (::mount(nullptr, parent->mount_point.c_str(), nullptr, MS_PRIVATE, nullptr) < 0)
            return fail_sys("make {} (the mount holding the rootfs) private", parent->mount_point);
    }

    if (::mount(opts.rootfs.c_str(), opts.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
        return fail_sys("bind mount the rootfs {} onto itself", opts.rootfs);

    Ctx ctx{config, opts, rootfs_real, UniqueFd(::open(opts.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC))};
    if (!ctx.root) return fail_sys("open rootfs {}", opts.rootfs);

    for (const auto& m : config.mounts) {
        std::string_view what = m.type.empty() || m.type == "bind" ? std::string_view(m.source) : m.type;
        for (const auto& o : m.options)
            if (o == "bind" || o == "rbind") what = m.source;
        BERTH_TRY_CTX(mount_entry(ctx, m), "mount {} on {} (rootfs {})", what, m.destination, opts.rootfs);
    }

    if (!mounts_dev_from_host(config)) BERTH_TRY_CTX(setup_dev(ctx), "set up /dev (rootfs {})", opts.rootfs);
    return {};
}

Result<void> finish_rootfs(const spec::Config& config, const RootfsOptions& opts) {
    const spec::Linux empty_linux;
    const spec::Linux& lx = config.linux ? *config.linux : empty_linux;
    BERTH_ASSIGN(unsigned long propagation, parse_propagation(lx.rootfs_propagation));

    UniqueFd newroot(::open(opts.rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!newroot) return fail_sys("open rootfs {}", opts.rootfs);
    if (opts.no_pivot) {
        if (::fchdir(newroot.get()) < 0) return fail_sys("chdir {}", opts.rootfs);
        if (::mount(opts.rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0)
            return fail_sys("move the rootfs {} onto /", opts.rootfs);
        if (::chroot(".") < 0) return fail_sys("chroot {}", opts.rootfs);
    } else {
        UniqueFd oldroot(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!oldroot) return fail_sys("open /");
        if (::fchdir(newroot.get()) < 0) return fail_sys("chdir {}", opts.rootfs);
        // pivot_root(".", ".") stacks the old root on top of the new one; no directory for it is needed.
        if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail_sys("pivot_root into {}", opts.rootfs);
        if (::fchdir(oldroot.get()) < 0) return fail_sys("chdir to the old root");
        // Detaching the old root must not unmount anything on the host through shared peers.
        if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) return fail_sys("make the old root rslave");
        if (::umount2(".", MNT_DETACH) < 0) return fail_sys("detach the old root");
    }
    if (::chdir("/") < 0) return fail_sys("chdir /");

    if (propagation != 0 && ::mount(nullptr, "/", nullptr, propagation, nullptr) < 0)
        return fail_sys("linux.rootfsPropagation {}: set on /", lx.rootfs_propagation);

    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return fail_sys("open / after pivot");
    struct statfs proc_fs {};
    bool have_proc = ::statfs("/proc", &proc_fs) == 0 && proc_fs.f_type == PROC_SUPER_MAGIC;

    for (const auto& p : lx.readonly_paths)
        BERTH_TRY_CTX(make_readonly(root.get(), p, have_proc), "linux.readonlyPaths {}", p);
    for (const auto& p : lx.masked_paths) BERTH_TRY_CTX(mask(root.get(), p, have_proc), "linux.maskedPaths {}", p);

    if (config.root && config.root->readonly) {
        BERTH_ASSIGN(unsigned long current, current_mount_flags(root.get()));
        if (::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | current, nullptr) < 0)
            return fail_sys("root.readonly: remount / read-only");
    }
    if (::chdir("/") < 0) return fail_sys("chdir /");
    return {};
}

}  // namespace berth::sys
