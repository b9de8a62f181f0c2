#include "store/images.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "common/fs.hpp"

namespace berth::store {

using image::Digest;
using image::ImportedImage;

namespace {

Result<std::vector<std::string>> dir_entries(const std::string& dir) {
    DIR* dp = ::opendir(dir.c_str());
    if (!dp) {
        if (errno == ENOENT) return std::vector<std::string>{};
        return fail_sys("read directory {}", dir);
    }
    std::vector<std::string> out;
    while (auto* e = ::readdir(dp)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(std::move(n));
    }
    ::closedir(dp);
    return out;
}

}  // namespace

Result<Images> Images::open(const std::string& root) {
    BERTH_ASSIGN(auto content, image::ContentStore::open(root));
    BERTH_ASSIGN(auto snapshots, image::SnapshotStore::open(root));
    BERTH_ASSIGN(auto records, ImageStore::open(root));
    return Images(root, std::move(content), std::move(snapshots), std::move(records));
}

Result<UniqueFd> Images::gc_lock(bool exclusive) const {
    const std::string path = root_ + "/gc.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail_sys("open {}", path);
    UniqueFd lock(fd);
    while (::flock(lock.get(), exclusive ? LOCK_EX : LOCK_SH) < 0)
        if (errno != EINTR) return fail_sys("lock {}", path);
    return lock;
}

Result<ImageRecord> Images::record(const ImportedImage& img, std::vector<std::string> names) {
    ImageRecord rec;
    rec.id = img.parsed.config.digest;
    rec.manifest_digest = img.manifest.digest;
    rec.manifest_media_type = img.parsed.media_type.empty() ? img.manifest.media_type : img.parsed.media_type;
    BERTH_ASSIGN(rec.config_json, content_.read(rec.id));
    rec.size = img.parsed.config.size;
    std::set<Digest> blobs{img.manifest.digest, img.parsed.config.digest};
    for (const auto& l : img.parsed.layers) {
        rec.size += l.size;
        blobs.insert(l.digest);
    }
    rec.blobs.assign(blobs.begin(), blobs.end());
    rec.chain_ids = image::chain_ids(img.config.diff_ids);
    rec.names = std::move(names);
    return records_.put(rec);
}

Result<ImageRecord> Images::hold(std::string_view holder, std::string_view key) {
    // Shared lock: a collector cannot run between the lookup and the hold.
    BERTH_ASSIGN(UniqueFd lock, gc_lock(false));
    BERTH_ASSIGN(ImageRecord rec, records_.get(key));
    BERTH_TRY(records_.hold(holder, rec));
    return rec;
}

Result<void> Images::release(std::string_view holder) {
    return records_.release(holder);
}

Result<GcStats> Images::remove(std::string_view key) {
    BERTH_ASSIGN(UniqueFd lock, gc_lock(true));
    BERTH_ASSIGN(ImageRecord rec, records_.get(key));
    BERTH_TRY(records_.remove_image(rec.id));
    // Only what this image used can have become unreferenced.
    BERTH_ASSIGN(auto used_blobs, records_.referenced_blobs());
    BERTH_ASSIGN(auto used_snaps, records_.referenced_snapshots());
    GcStats stats;
    for (auto it = rec.chain_ids.rbegin(); it != rec.chain_ids.rend(); ++it) {
        if (used_snaps.contains(*it) || !snapshots_.exists(*it)) continue;
        BERTH_TRY_CTX(snapshots_.remove(*it), "remove image {}", rec.id.string());
        stats.snapshots_removed.push_back(*it);
    }
    for (const auto& b : rec.blobs) {
        if (used_blobs.contains(b) || !content_.exists(b)) continue;
        BERTH_TRY_CTX(content_.remove(b), "remove image {}", rec.id.string());
        stats.blobs_removed.push_back(b);
    }
    return stats;
}

Result<GcStats> Images::prune() {
    BERTH_ASSIGN(UniqueFd lock, gc_lock(true));
    GcStats stats;
    BERTH_TRY_CTX(collect(stats), "prune {}", root_);
    return stats;
}

Result<void> Images::collect(GcStats& stats) {
    BERTH_ASSIGN(auto used_blobs, records_.referenced_blobs());
    BERTH_ASSIGN(auto used_snaps, records_.referenced_snapshots());
    BERTH_ASSIGN(auto snaps, snapshots_.list());
    for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
        if (used_snaps.contains(*it)) continue;
        BERTH_TRY(snapshots_.remove(*it));
        stats.snapshots_removed.push_back(*it);
    }
    BERTH_ASSIGN(auto blobs, content_.list());
    for (const auto& b : blobs) {
        if (used_blobs.contains(b)) continue;
        BERTH_TRY(content_.remove(b));
        stats.blobs_removed.push_back(b);
    }
    BERTH_TRY(snapshots_.remove_abandoned_temps());
    // Under the exclusive lock no import is running (they hold it shared), so everything in ingest/ and tmp/
    // is a leftover: ingest lock files, named temp files, and half-extracted archives of a crashed import.
    for (const char* sub : {"/ingest", "/tmp"}) {
        BERTH_ASSIGN(auto names, dir_entries(root_ + sub));
        for (const auto& n : names) {
            BERTH_TRY(remove_all(root_ + sub + "/" + n));
            ++stats.temps_removed;
        }
    }
    return {};
}

}  // namespace berth::store
