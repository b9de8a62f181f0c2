// Image metadata in SQLite: one database file, <root>/metadata.db, in WAL mode, shared by every process that uses
// the store root (berthd, berthctl). Every write is one IMMEDIATE transaction and readers see committed states
// only; a busy_timeout makes a second writer wait instead of failing.
//
// An image record is keyed by its id, the digest of its config (what CRI and docker call the image id). It holds
// the manifest digest, the config JSON, the image's size, when it was first recorded, all its names (normalized
// references, each naming exactly one image: putting a name on an image moves it from the image that had it, as a
// tag moves), the chain ids of its snapshots (every prefix of its layer stack, bottom-most first) and the blobs it
// uses (manifest, config, layers). The last two are what the garbage collector keeps (see images.hpp).
//
// An image keeps existing when its last name moves away or is removed (it is still reachable by id, like an image
// pulled by digest); remove_image() removes it with all its names, as CRI's RemoveImage does.
//
// Holders (berthd's containers, version 2 of the schema) keep what their image used; see hold().
//
// The schema is versioned with PRAGMA user_version: an empty file gets the current schema; a file written by a
// newer berth (a higher version) is refused with an error naming both versions instead of being misread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "image/digest.hpp"

namespace berth::store {

struct ImageRecord {
    image::Digest id;  // the config's digest
    image::Digest manifest_digest;
    std::string manifest_media_type;
    std::string config_json;
    uint64_t size = 0;               // config + layer blobs, as stored
    int64_t created = 0;             // unix seconds when the record was first put (kept by later puts of the same id)
    std::vector<std::string> names;  // normalized references, sorted
    std::vector<image::Digest> chain_ids;  // bottom-most first; the last is the rootfs' top snapshot
    std::vector<image::Digest> blobs;      // sorted
};

// One connection: use an ImageStore from one thread at a time (open one per thread or process), and never
// across fork() (SQLite forbids it: a child opens its own).
class ImageStore {
public:
    // The schema version this build writes and reads.
    static constexpr int kSchemaVersion = 2;

    // Opens (creating when missing) <root>/metadata.db.
    [[nodiscard]] static Result<ImageStore> open(const std::string& root);
    const std::string& path() const { return path_; }

    // Records `rec` (its `created` is set on first put and kept after) and gives it `rec.names` (normalized; a
    // name another image had moves here). The record's chain ids and blobs replace those of an earlier put.
    [[nodiscard]] Result<ImageRecord> put(const ImageRecord& rec);
    // By name (normalized first: "busybox" finds docker.io/library/busybox:latest), by full id or manifest
    // digest, or by a unique prefix of the id's hex (with or without "sha256:"), tried in that order (a key that
    // is both a name and a hex prefix, like "abc", finds the name first). ENOENT when nothing matches; an
    // ambiguous prefix is an error naming the candidates' count.
    [[nodiscard]] Result<ImageRecord> get(std::string_view key) const;
    // Every image, by id.
    [[nodiscard]] Result<std::vector<ImageRecord>> list() const;
    // Takes one name off its image (ENOENT when no image has it). The image stays.
    [[nodiscard]] Result<void> remove_name(std::string_view name);
    // Removes an image and all its names; returns what was removed (ENOENT when missing).
    [[nodiscard]] Result<ImageRecord> remove_image(const image::Digest& id);

    // Makes `holder` (a container id) keep the snapshots and blobs of `rec` until release(holder), whatever
    // happens to the image record. Idempotent.
    [[nodiscard]] Result<void> hold(std::string_view holder, const ImageRecord& rec);
    // Drops what `holder` keeps (nothing held: success). The content goes at the next remove() or prune().
    [[nodiscard]] Result<void> release(std::string_view holder);

    // What the images and holders use: the garbage collector keeps exactly these.
    [[nodiscard]] Result<std::set<image::Digest>> referenced_blobs() const;
    [[nodiscard]] Result<std::set<image::Digest>> referenced_snapshots() const;

private:
    struct DbClose {
        void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
    };
    ImageStore(std::string path, std::unique_ptr<sqlite3, DbClose> db) : path_(std::move(path)), db_(std::move(db)) {}
    [[nodiscard]] Result<ImageRecord> load(const std::string& id) const;

    std::string path_;
    std::unique_ptr<sqlite3, DbClose> db_;
};

}  // namespace berth::store
