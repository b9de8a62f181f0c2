// SnapshotStore::create, the one part of the snapshot store that unpacks layers. A file of its own so that code
// which only reads, mounts and removes snapshots (berthd) does not link the layer unpacker and libarchive.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "common/fs.hpp"
#include "image/snapshots.hpp"
#include "image/snapshots_internal.hpp"

namespace berth::image {

using detail::lock_file;
using detail::sync_fs_of;

Result<Digest> SnapshotStore::create(const Digest& parent_chain, const Digest& diff_id, const LayerSource& source) {
    if (!diff_id.valid()) return fail("create snapshot: no diff_id given");
    const Digest chain = chain_id(parent_chain, diff_id);
    auto ctx = [&](Error e) {
        return std::unexpected(
            std::move(e).wrap(fmt::format("create snapshot {} (layer {})", chain.string(), diff_id.string())));
    };
    if (parent_chain.valid() && !exists(parent_chain))
        return ctx(Error(ENOENT, fmt::format("parent snapshot {} does not exist", parent_chain.string())));

    auto lock = lock_file(root_ + "/locks/" + chain.hex() + ".lock", true);
    if (!lock) return ctx(std::move(lock).error());
    if (exists(chain)) return chain;

    std::string tmp = root_ + "/tmp/" + chain.hex() + ".XXXXXX";
    if (!::mkdtemp(tmp.data())) return ctx(Error(errno, fmt::format("mkdtemp in {}/tmp", root_)));
    // Removes the temp dir unless it was renamed into place.
    struct TempGuard {
        std::string path;
        ~TempGuard() {
            if (!path.empty()) (void)remove_all(path);
        }
    } guard{tmp};

    const std::string fs = tmp + "/fs";
    if (::mkdir(fs.c_str(), 0755) < 0) return ctx(Error(errno, fmt::format("mkdir {}", fs)));
    auto stats = unpack_layer(source, fs);
    if (!stats) return ctx(std::move(stats).error());
    if (stats->diff_id != diff_id)
        return ctx(Error(0, fmt::format("the layer's uncompressed content has digest {}, not the diff_id {}",
                                        stats->diff_id.string(), diff_id.string())));
    if (parent_chain.valid()) {
        auto w = write_file(tmp + "/parent", parent_chain.string(), 0600);
        if (!w) return ctx(std::move(w).error());
    }
    if (auto w = write_file(tmp + "/diff_id", diff_id.string(), 0600); !w) return ctx(std::move(w).error());
    // Everything unpacked must be on disk before the snapshot appears under its id.
    if (auto s = sync_fs_of(tmp); !s) return ctx(std::move(s).error());
    if (::rename(tmp.c_str(), dir(chain).c_str()) < 0)
        return ctx(Error(errno, fmt::format("rename {} to {}", tmp, dir(chain))));
    guard.path.clear();
    return chain;
}

}  // namespace berth::image
