// Content store: blobs (layers, manifests, configs) by digest under <root>/blobs/sha256/<hex>.
//
// A blob becomes visible under its digest only complete and verified: a BlobWriter streams into an unnamed
// O_TMPFILE in <root>/ingest (same file system), hashes as it writes, and commit() checks size and digest, fsyncs
// the data and only then links the file into place and fsyncs the directory. A wrong digest, an abandoned writer or
// a crash leaves no name behind at all.
//
// Writers of one digest are serialized across threads and processes by an exclusive flock on
// <root>/ingest/<hex>.lock: the second waits, then finds the blob present. Lock files are kept (never unlinked):
// unlinking a lock file others may hold open would let two writers lock two different inodes.
//
// Thread-safety: a ContentStore is immutable after open() and may be shared by threads; a BlobWriter is used by
// one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "image/digest.hpp"

namespace berth::image {

class ContentStore;

// Streams one blob into the store. Destroying it without a successful commit() discards everything written.
class BlobWriter {
public:
    BlobWriter(BlobWriter&&) noexcept = default;
    BlobWriter& operator=(BlobWriter&&) noexcept = default;
    ~BlobWriter() = default;

    // Appends data. Fails (and poisons the writer) when the expected size is exceeded or the disk write fails.
    [[nodiscard]] Result<void> write(std::span<const std::byte> data);
    [[nodiscard]] Result<void> write(std::string_view data) {
        return write(std::as_bytes(std::span(data.data(), data.size())));
    }
    uint64_t written() const { return hasher_.size(); }
    const Digest& expected() const { return expected_; }

    // Verifies size and digest, then makes the blob visible under its digest. On a mismatch nothing is visible
    // and the error names the expected and the actual digest. The writer is finished either way.
    [[nodiscard]] Result<void> commit();

private:
    friend class ContentStore;
    BlobWriter(std::string root, Digest expected, std::optional<uint64_t> size, UniqueFd lock, UniqueFd tmp)
        : root_(std::move(root)),
          expected_(std::move(expected)),
          size_(size),
          lock_(std::move(lock)),
          tmp_(std::move(tmp)) {}

    std::string root_;  // the store's root (a copy: the writer may outlive a moved-from store object)
    Digest expected_;
    std::optional<uint64_t> size_;
    UniqueFd lock_;  // the per-digest ingest lock, held until the writer is gone
    UniqueFd tmp_;   // the O_TMPFILE being written
    Sha256 hasher_;
    bool failed_ = false;
};

class ContentStore {
public:
    // Opens (creating when missing) a store under `root`.
    [[nodiscard]] static Result<ContentStore> open(const std::string& root);

    const std::string& root() const { return root_; }
    std::string blob_path(const Digest& d) const;

    // Starts writing the blob `expected` (of `size` bytes when known). Blocks while another writer of the same
    // digest (thread or process) holds its ingest lock. Returns std::nullopt when the blob is already present
    // (possibly just written by that other writer): there is nothing to write.
    [[nodiscard]] Result<std::optional<BlobWriter>> begin_write(const Digest& expected,
                                                                std::optional<uint64_t> size = std::nullopt) const;
    // Stores a whole buffer under its own digest (computed) and returns that digest. Present already is fine.
    [[nodiscard]] Result<Digest> put(std::string_view data) const;

    bool exists(const Digest& d) const;
    [[nodiscard]] Result<uint64_t> size(const Digest& d) const;
    // A read-only fd on the blob (ENOENT error naming the digest when missing).
    [[nodiscard]] Result<UniqueFd> open_blob(const Digest& d) const;
    // The whole blob, re-verified against its digest (for small blobs: manifests, configs, indexes).
    [[nodiscard]] Result<std::string> read(const Digest& d) const;
    // Re-hashes a stored blob; an error names the digest when the content no longer matches.
    [[nodiscard]] Result<void> verify(const Digest& d) const;
    // Removes the blob (under its ingest lock). Removing a missing blob is an ENOENT error.
    [[nodiscard]] Result<void> remove(const Digest& d) const;
    // Every blob present, sorted. Names in blobs/sha256 that are not digests are skipped.
    [[nodiscard]] Result<std::vector<Digest>> list() const;

private:
    friend class BlobWriter;
    explicit ContentStore(std::string root) : root_(std::move(root)) {}
    [[nodiscard]] Result<UniqueFd> lock_digest(const Digest& d) const;

    std::string root_;
};

}  // namespace berth::image
