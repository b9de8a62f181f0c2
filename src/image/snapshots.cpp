#include "image/snapshots.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "common/fs.hpp"
#include "image/snapshots_internal.hpp"

namespace berth::image {

namespace {

// The kernel copies at most one page of mount(2) options.
constexpr size_t kMountDataMax = 4095;

}  // namespace

namespace detail {

Result<UniqueFd> lock_file(const std::string& path, bool wait) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail_sys("open lock {}", path);
    UniqueFd lock(fd);
    while (::flock(lock.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        if (errno == EWOULDBLOCK && !wait) return fail_errno(EWOULDBLOCK, "lock {}", path);
        if (errno != EINTR) return fail_sys("lock {}", path);
    }
    return lock;
}

Result<void> sync_fs_of(const std::string& path) {
    BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (::syncfs(fd.get()) < 0) return fail_sys("syncfs {}", path);
    return {};
}

}  // namespace detail

using detail::lock_file;

namespace {

Result<std::vector<std::string>> list_dir(const std::string& dir) {
    DIR* dp = ::opendir(dir.c_str());
    if (!dp) return fail_sys("read directory {}", dir);
    std::vector<std::string> out;
    while (auto* e = ::readdir(dp)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(std::move(n));
    }
    ::closedir(dp);
    return out;
}

}  // namespace

Digest chain_id(const Digest& parent_chain, const Digest& diff_id) {
    if (!parent_chain.valid()) return diff_id;
    return Sha256::of(parent_chain.string() + " " + diff_id.string());
}

std::vector<Digest> chain_ids(std::span<const Digest> diff_ids) {
    std::vector<Digest> out;
    Digest chain;
    for (const auto& d : diff_ids) {
        chain = chain_id(chain, d);
        out.push_back(chain);
    }
    return out;
}

Result<SnapshotStore> SnapshotStore::open(const std::string& root) {
    const std::string base = root + "/snapshots";
    for (const char* sub : {"/sha256", "/locks", "/tmp"})
        BERTH_TRY_CTX(mkdir_all(base + sub, 0700), "open snapshot store {}", root);
    SnapshotStore store(base);
    BERTH_TRY_CTX(store.remove_abandoned_temps(), "open snapshot store {}", root);
    return store;
}

std::string SnapshotStore::dir(const Digest& chain) const {
    return root_ + "/sha256/" + chain.hex();
}
std::string SnapshotStore::fs_path(const Digest& chain) const {
    return dir(chain) + "/fs";
}

bool SnapshotStore::exists(const Digest& chain) const {
    struct stat st {};
    return chain.valid() && ::stat(fs_path(chain).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A temp dir is abandoned when the lock of its chain id is free: every creator and remover holds it throughout.
Result<void> SnapshotStore::remove_abandoned_temps() const {
    BERTH_ASSIGN(auto names, list_dir(root_ + "/tmp"));
    for (const auto& n : names) {
        auto hex = n.substr(0, n.find('.'));
        auto d = Digest::parse("sha256:" + hex);
        if (!d) continue;
        auto lock = lock_file(root_ + "/locks/" + hex + ".lock", false);
        if (!lock) {
            if (lock.error().code() == EWOULDBLOCK) continue;  // in use
            return std::unexpected(std::move(lock).error());
        }
        BERTH_TRY_CTX(remove_all(root_ + "/tmp/" + n), "remove abandoned snapshot");
    }
    return {};
}

Result<std::vector<Digest>> SnapshotStore::list() const {
    BERTH_ASSIGN(auto names, list_dir(root_ + "/sha256"));
    std::vector<Digest> out;
    for (const auto& n : names)
        if (auto d = Digest::parse("sha256:" + n)) out.push_back(std::move(*d));
    std::sort(out.begin(), out.end());
    return out;
}

Result<std::vector<std::string>> SnapshotStore::lowerdirs(const Digest& chain) const {
    std::vector<std::string> out;
    Digest cur = chain;
    // Bounded: a parent loop can only come from a corrupted store.
    for (int depth = 0; cur.valid(); ++depth) {
        if (depth > 1000) return fail("snapshot {}: parent chain longer than 1000 layers", chain.string());
        if (!exists(cur))
            return fail_errno(ENOENT, "snapshot {}: layer snapshot {} missing", chain.string(), cur.string());
        out.push_back(fs_path(cur));
        const std::string parent_file = dir(cur) + "/parent";
        if (!path_exists(parent_file)) break;
        BERTH_ASSIGN(std::string text, read_file(parent_file));
        auto parent = Digest::parse(text);
        if (!parent) return std::unexpected(std::move(parent).error().wrap(parent_file));
        cur = *parent;
    }
    return out;
}

Result<void> SnapshotStore::remove(const Digest& chain) {
    BERTH_ASSIGN(UniqueFd lock, lock_file(root_ + "/locks/" + chain.hex() + ".lock", true));
    if (!exists(chain)) return fail_errno(ENOENT, "remove snapshot {}", chain.string());
    // Out of its name first (atomic), then deleted: a crash midway leaves a temp dir, not a half snapshot.
    std::string tmp = root_ + "/tmp/" + chain.hex() + ".XXXXXX";
    if (!::mkdtemp(tmp.data())) return fail_sys("remove snapshot {}: mkdtemp", chain.string());
    if (::rename(dir(chain).c_str(), tmp.c_str()) < 0) {
        int err = errno;
        ::rmdir(tmp.c_str());
        return fail_errno(err, "remove snapshot {}: rename", chain.string());
    }
    BERTH_TRY_CTX(remove_all(tmp), "remove snapshot {}", chain.string());
    return {};
}

Result<void> mount_overlay(const std::vector<std::string>& lowerdirs, const std::string& container_dir,
                           const std::string& target) {
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("mount overlay on {}", target))); };
    if (lowerdirs.empty()) return ctx(Error(EINVAL, "an overlay needs at least one lower layer"));
    const std::string links = container_dir + "/l";
    for (const char* sub : {"/upper", "/work"})
        if (auto r = mkdir_all(container_dir + sub, 0755); !r) return ctx(std::move(r).error());
    if (auto r = remove_all(links); !r) return ctx(std::move(r).error());
    if (auto r = mkdir_all(links, 0700); !r) return ctx(std::move(r).error());

    std::string data = "lowerdir=";
    for (size_t i = 0; i < lowerdirs.size(); ++i) {
        const std::string link = fmt::format("{}/{}", links, i);
        if (::symlink(lowerdirs[i].c_str(), link.c_str()) < 0)
            return ctx(Error(errno, fmt::format("symlink {} -> {}", link, lowerdirs[i])));
        if (i) data += ':';
        data += fmt::format("l/{}", i);
    }
    data += ",upperdir=upper,workdir=work";
    if (data.size() > kMountDataMax)
        return ctx(Error(E2BIG, fmt::format("{} layers do not fit overlay's mount options", lowerdirs.size())));

    // chdir is per process unless the thread unshares its fs context: a short-lived thread does that, so the rest
    // of the process keeps its working directory.
    Result<void> result;
    std::thread t([&] {
        if (::unshare(CLONE_FS) < 0) {
            result = fail_sys("unshare(CLONE_FS)");
            return;
        }
        if (::chdir(container_dir.c_str()) < 0) {
            result = fail_sys("chdir {}", container_dir);
            return;
        }
        if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) < 0)
            result = fail_sys("mount -t overlay -o {} (from {})",
                              data.size() > 300 ? data.substr(0, 300) + "..." : data, container_dir);
    });
    t.join();
    if (!result) return ctx(std::move(result).error());
    return {};
}

Result<void> unmount_overlay(const std::string& target) {
    if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) < 0) return fail_sys("unmount overlay {}", target);
    return {};
}

}  // namespace berth::image
