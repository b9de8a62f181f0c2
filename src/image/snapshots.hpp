// Snapshots: one directory per chain id holding one unpacked layer in overlay form, shared as an overlay lowerdir
// by every image and container that has that layer on that parent chain; and the helpers that mount a container's
// rootfs as an overlay of them.
//
// Layout under <root>/snapshots:
//   sha256/<chain hex>/fs        the unpacked layer (the lowerdir); never written after creation
//   sha256/<chain hex>/parent    the parent's chain id ("sha256:..."), absent for a base layer
//   sha256/<chain hex>/diff_id   the layer's diff_id
//   locks/<chain hex>.lock       flock serializing creators of one chain id (kept, like the content store's)
//   tmp/<chain hex>.<random>     a snapshot being created or removed
// A snapshot is created in tmp/ and renamed into sha256/ only complete (after a syncfs), so a crash leaves no half
// snapshot under its chain id; leftovers in tmp/ are removed by the next open() once nobody holds their lock.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "image/digest.hpp"
#include "image/layer_unpack.hpp"

namespace berth::image {

// The image-spec's chain id of a layer stack: chain(L1) = diff_id(L1),
// chain(Ln) = sha256(chain(Ln-1) + " " + diff_id(Ln)) over the digests' string forms.
Digest chain_id(const Digest& parent_chain, const Digest& diff_id);
// The chain id of every prefix of `diff_ids` (bottom-most layer first).
std::vector<Digest> chain_ids(std::span<const Digest> diff_ids);

class SnapshotStore {
public:
    // Opens (creating when missing) the snapshot store under `root` and removes abandoned temp directories.
    [[nodiscard]] static Result<SnapshotStore> open(const std::string& root);

    // The lowerdir of a snapshot.
    std::string fs_path(const Digest& chain) const;
    bool exists(const Digest& chain) const;

    // Creates the snapshot of the layer `diff_id` on top of `parent_chain` (an invalid Digest for a base layer,
    // else an existing snapshot), unpacking it from `source` unless it exists already (then `source` is not read).
    // The layer's diff_id must be `diff_id`: a mismatch leaves nothing and the error names both digests.
    // Returns the snapshot's chain id. Concurrent creators of one chain id (threads or processes) unpack it once.
    [[nodiscard]] Result<Digest> create(const Digest& parent_chain, const Digest& diff_id, const LayerSource& source);

    // The lowerdirs of `chain` and all its parents, top-most first (the order overlay's lowerdir= takes).
    [[nodiscard]] Result<std::vector<std::string>> lowerdirs(const Digest& chain) const;
    // Removes a snapshot (its children, if any, are the caller's business: references live in the metadata store).
    [[nodiscard]] Result<void> remove(const Digest& chain);
    // Every snapshot present, sorted. Names in sha256/ that are not digests are skipped.
    [[nodiscard]] Result<std::vector<Digest>> list() const;
    // Removes temp directories of creators and removers that died (their chain id's lock is free); open() does
    // this too.
    [[nodiscard]] Result<void> remove_abandoned_temps() const;

private:
    explicit SnapshotStore(std::string root) : root_(std::move(root)) {}
    std::string dir(const Digest& chain) const;
    std::string root_;  // <root>/snapshots
};

// Mounts an overlay onto `target`: `lowerdirs` (top-most first, at least one) under `container_dir`/upper, with
// `container_dir`/work as workdir (both created when missing). The mount option string is limited to one page, so
// the lowerdirs are not named by their (long) paths: short symlinks `container_dir`/l/<n> point at them and the
// mount is issued from a thread whose working directory (unshared with CLONE_FS) is `container_dir`, naming them
// "l/0:l/1:...". That fits overlay's own limit of 500 layers in the page.
[[nodiscard]] Result<void> mount_overlay(const std::vector<std::string>& lowerdirs, const std::string& container_dir,
                                         const std::string& target);
// Unmounts an overlay mounted by mount_overlay (EBUSY while in use: the error says so).
[[nodiscard]] Result<void> unmount_overlay(const std::string& target);

}  // namespace berth::image
