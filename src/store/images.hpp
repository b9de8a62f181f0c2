// The image store of one root directory: content store (<root>/blobs), snapshots (<root>/snapshots) and image
// records (<root>/metadata.db) together, with the garbage collector that keeps them consistent.
//
// GC rule: a blob is kept while any image record lists it; a snapshot is kept while any image's chain includes it
// (images sharing lower layers share those chain ids, so removing one image keeps the shared prefix).
//
// Concurrency across processes: writers (imports) hold a shared flock on <root>/gc.lock from the first blob they
// write until their record is committed; remove() and prune() hold it exclusively. So the collector never sees
// content an import has written but not yet recorded, and an import never builds on a snapshot being collected.
// Everything that writes into a root must go through this class (or take that lock the same way).
//
// Holders: a container keeps the snapshots (its rootfs lowerdirs) and blobs of its image from hold() until
// release(), also when its image is removed meanwhile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "image/content_store.hpp"
#include "image/manifest.hpp"
#include "image/oci_layout.hpp"
#include "image/snapshots.hpp"
#include "store/image_store.hpp"

namespace berth::store {

struct GcStats {
    std::vector<image::Digest> blobs_removed;
    std::vector<image::Digest> snapshots_removed;
    uint64_t temps_removed = 0;  // leftover ingest and temp entries
};

class Images {
public:
    [[nodiscard]] static Result<Images> open(const std::string& root);

    const std::string& root() const { return root_; }
    const image::ContentStore& content() const { return content_; }
    image::SnapshotStore& snapshots() { return snapshots_; }
    ImageStore& records() { return records_; }

    // Imports the images of an OCI layout directory / oci-archive (see image/oci_layout.hpp) and records each,
    // named by its io.containerd.image.name annotation, else by org.opencontainers.image.ref.name when that is
    // a reference with a repository (a bare tag such as "latest", as skopeo writes, names nothing): nameless
    // images stay reachable by id.
    [[nodiscard]] Result<std::vector<ImageRecord>> import_oci_layout(
        const std::string& dir, const image::Platform& platform = image::host_platform());
    [[nodiscard]] Result<std::vector<ImageRecord>> import_oci_archive(
        const std::string& tar_path, const image::Platform& platform = image::host_platform());
    // Imports a `docker save` archive (manifest.json naming Config, RepoTags and Layers by their paths in the
    // tar, a layer possibly a symlink to another; layers plain or gzip'd tars). Layers become blobs under their
    // own digest, the config a blob under its digest, and an OCI image manifest is written for each image (its
    // digest is the record's manifest digest). RepoTags are the names, normalized. A file manifest.json names but
    // the tar lacks, or a layer whose diff_id differs from the config's rootfs.diff_ids, is refused naming it.
    [[nodiscard]] Result<std::vector<ImageRecord>> import_docker_archive(const std::string& tar_path);

    // Looks up the image `key` names and makes `holder` keep its content (see ImageStore::hold), under the shared
    // GC lock so no collection runs in between. ENOENT when no image matches.
    [[nodiscard]] Result<ImageRecord> hold(std::string_view holder, std::string_view key);
    [[nodiscard]] Result<void> release(std::string_view holder);

    // Removes the image `key` names (see ImageStore::get) with all its names, then the blobs and snapshots no
    // other image uses. The record goes first: failing after it leaves only unreferenced content, which
    // prune() collects.
    [[nodiscard]] Result<GcStats> remove(std::string_view key);
    // Removes every blob and snapshot no image uses, and leftovers of crashed writers (ingest files, snapshot
    // and import temp directories).
    [[nodiscard]] Result<GcStats> prune();

    // For writers outside this class (store/pull.cpp): the shared gc lock an import holds from its first blob to
    // its record (see above), and the record of an image whose blobs and snapshots the caller has put in place
    // while holding it. `img.ref_name` is not used; `names` are normalized references.
    [[nodiscard]] Result<UniqueFd> writer_lock() const { return gc_lock(false); }
    [[nodiscard]] Result<ImageRecord> record_image(const image::ImportedImage& img, std::vector<std::string> names) {
        return record(img, std::move(names));
    }

private:
    Images(std::string root, image::ContentStore c, image::SnapshotStore s, ImageStore r)
        : root_(std::move(root)), content_(std::move(c)), snapshots_(std::move(s)), records_(std::move(r)) {}
    [[nodiscard]] Result<UniqueFd> gc_lock(bool exclusive) const;
    [[nodiscard]] Result<void> collect(GcStats& stats);  // under the exclusive lock
    [[nodiscard]] Result<ImageRecord> record(const image::ImportedImage& img, std::vector<std::string> names);

    std::string root_;
    image::ContentStore content_;
    image::SnapshotStore snapshots_;
    ImageStore records_;
};

}  // namespace berth::store
