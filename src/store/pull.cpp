#include "store/pull.hpp"

#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "image/reference.hpp"
#include "image/registry.hpp"

namespace berth::store {

using image::Descriptor;
using image::Digest;

namespace {

constexpr uint64_t kMaxConfigSize = 4 << 20;
constexpr size_t kQueueBytes = 1 << 20;
constexpr uint64_t kProgressStep = 256 << 10;

// The bounded hand-over between a layer's download (the curl callback: producer) and its unpacker (consumer),
// so a layer is unpacked while it downloads and the download never runs more than kQueueBytes ahead.
class ByteQueue {
public:
    // Blocks while full. Once the reader has left (the snapshot existed, or the unpack failed) data is dropped.
    void push(std::span<const std::byte> data) {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return bytes_ < kQueueBytes || reader_gone_; });
        if (reader_gone_) return;
        chunks_.emplace_back(reinterpret_cast<const char*>(data.data()), data.size());
        bytes_ += data.size();
        cv_.notify_all();
    }
    // The end of the stream: a clean end only once the blob is verified and stored, so the unpacker never
    // finishes (and its snapshot never appears) on unverified data; else `error`.
    void finish(std::optional<Error> error) {
        std::lock_guard l(mu_);
        done_ = true;
        error_ = std::move(error);
        cv_.notify_all();
    }
    void reader_done() {
        std::lock_guard l(mu_);
        reader_gone_ = true;
        chunks_.clear();
        bytes_ = 0;
        cv_.notify_all();
    }
    Result<size_t> read(std::span<std::byte> buf) {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return !chunks_.empty() || done_; });
        if (error_) return std::unexpected(*error_);
        if (chunks_.empty()) return size_t{0};
        std::string& front = chunks_.front();
        size_t n = std::min(buf.size(), front.size() - offset_);
        std::memcpy(buf.data(), front.data() + offset_, n);
        offset_ += n;
        bytes_ -= n;
        if (offset_ == front.size()) {
            chunks_.pop_front();
            offset_ = 0;
        }
        cv_.notify_all();
        return n;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> chunks_;
    size_t offset_ = 0;  // into chunks_.front()
    size_t bytes_ = 0;
    bool done_ = false;
    bool reader_gone_ = false;
    std::optional<Error> error_;
};

Result<size_t> read_some(int fd, std::span<std::byte> buf) {
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) return fail_sys("read");
    }
}

// One pull's layers: workers take layers in order; snapshot i is created only after snapshot i-1 (its parent),
// but a layer's download does not wait for its parent: when the parent is not ready yet, the blob is stored first
// and unpacked from the store once the parent is there.
class LayerPuller {
public:
    LayerPuller(Images& images, image::RegistryClient& client, const image::ImageReference& ref,
                const PullOptions& options, const image::ImageManifest& manifest, const std::vector<Digest>& diff_ids)
        : images_(images),
          client_(client),
          ref_(ref),
          options_(options),
          manifest_(manifest),
          diff_ids_(diff_ids),
          chains_(image::chain_ids(diff_ids)),
          ready_(diff_ids.size(), false) {}

    const std::vector<Digest>& chains() const { return chains_; }

    Result<void> run() {
        if (manifest_.layers.empty()) return {};
        const size_t n = std::min<size_t>(std::max(1u, options_.max_parallel_layers), manifest_.layers.size());
        std::vector<std::thread> workers;
        for (size_t w = 0; w < n; ++w) workers.emplace_back([this] { work(); });
        for (auto& t : workers) t.join();
        if (error_) return std::unexpected(*error_);
        return {};
    }

    void emit(const PullEvent& e) {
        if (!options_.progress) return;
        std::lock_guard l(progress_mu_);
        options_.progress(e);
    }

private:
    void work() {
        for (;;) {
            size_t i;
            {
                std::lock_guard l(mu_);
                if (failed_ || next_ >= manifest_.layers.size()) return;
                i = next_++;
            }
            auto r = layer(i);
            std::lock_guard l(mu_);
            if (r) {
                ready_[i] = true;
            } else if (!failed_) {
                failed_ = true;
                error_ = std::move(r).error().wrap(fmt::format("layer {} ({} of {})", manifest_.layers[i].digest.string(),
                                                               i + 1, manifest_.layers.size()));
            }
            cv_.notify_all();
        }
    }

    bool parent_ready(size_t i) {
        std::lock_guard l(mu_);
        return i == 0 || ready_[i - 1];
    }

    Result<void> wait_parent(size_t i) {
        if (i == 0) return {};
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return ready_[i - 1] || failed_; });
        if (!ready_[i - 1]) return fail("abandoned: another layer of the pull failed");
        return {};
    }

    Digest parent(size_t i) const { return i == 0 ? Digest() : chains_[i - 1]; }

    Result<void> unpack_from_store(size_t i) {
        BERTH_TRY(wait_parent(i));
        if (images_.snapshots().exists(chains_[i])) return {};
        BERTH_ASSIGN(UniqueFd fd, images_.content().open_blob(manifest_.layers[i].digest));
        BERTH_TRY(images_.snapshots().create(parent(i), diff_ids_[i],
                                             [&](std::span<std::byte> buf) { return read_some(fd.get(), buf); }));
        return {};
    }

    Result<void> layer(size_t i) {
        const Descriptor& l = manifest_.layers[i];
        const image::ContentStore& content = images_.content();
        image::SnapshotStore& snaps = images_.snapshots();
        if (content.exists(l.digest) && snaps.exists(chains_[i])) {
            emit({PullEvent::Kind::layer_done, l.digest, l.size, l.size, true});
            return {};
        }
        emit({PullEvent::Kind::layer_wait, l.digest, 0, l.size, false});
        // Blocks while another pull (thread or process) writes this blob; then it is present.
        BERTH_ASSIGN(std::optional<image::BlobWriter> writer, content.begin_write(l.digest, l.size));
        if (!writer) {
            BERTH_TRY(unpack_from_store(i));
            emit({PullEvent::Kind::layer_done, l.digest, l.size, l.size, true});
            return {};
        }
        uint64_t got = 0, reported = 0;
        auto progress = [&](size_t n) {
            got += n;
            if (got - reported >= kProgressStep || got == l.size) {
                reported = got;
                emit({PullEvent::Kind::layer_bytes, l.digest, got, l.size, false});
            }
        };

        if (!parent_ready(i) || snaps.exists(chains_[i])) {
            // Download only; unpack once the parent snapshot exists.
            BERTH_TRY(client_.fetch_blob(ref_.repository, l.digest, l.size,
                                         [&](std::span<const std::byte> data) -> Result<void> {
                                             BERTH_TRY(writer->write(data));
                                             progress(data.size());
                                             return {};
                                         }));
            BERTH_TRY(writer->commit());
            writer.reset();  // releases the blob's ingest lock before waiting for the parent
            BERTH_TRY(unpack_from_store(i));
            emit({PullEvent::Kind::layer_done, l.digest, l.size, l.size, false});
            return {};
        }

        // Download, store and unpack in one pass.
        ByteQueue queue;
        Result<Digest> created = Digest();
        std::thread unpacker([&] {
            created = snaps.create(parent(i), diff_ids_[i], [&](std::span<std::byte> buf) { return queue.read(buf); });
            queue.reader_done();
        });
        Result<void> stored = client_.fetch_blob(ref_.repository, l.digest, l.size,
                                                 [&](std::span<const std::byte> data) -> Result<void> {
                                                     BERTH_TRY(writer->write(data));
                                                     queue.push(data);
                                                     progress(data.size());
                                                     return {};
                                                 });
        if (stored) stored = writer->commit();
        queue.finish(stored ? std::nullopt : std::optional(Error(0, "the blob's download failed")));
        unpacker.join();
        BERTH_TRY(stored);
        BERTH_TRY(created);
        emit({PullEvent::Kind::layer_done, l.digest, l.size, l.size, false});
        return {};
    }

    Images& images_;
    image::RegistryClient& client_;
    const image::ImageReference& ref_;
    const PullOptions& options_;
    const image::ImageManifest& manifest_;
    const std::vector<Digest>& diff_ids_;
    const std::vector<Digest> chains_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<bool> ready_;
    size_t next_ = 0;
    bool failed_ = false;
    std::optional<Error> error_;
    std::mutex progress_mu_;
};

Result<ImageRecord> pull(Images& images, const image::ImageReference& ref, const PullOptions& options) {
    auto made = image::RegistryClient::create(options.registries, ref.domain, options.credentials,
                                              options.max_attempts);
    BERTH_ASSIGN(auto client, std::move(made));
    BERTH_ASSIGN(image::ResolvedImage resolved, image::resolve_image(*client, ref, options.platform));
    const image::ImageManifest& manifest = resolved.parsed;
    for (const auto& l : manifest.layers)
        if (!image::is_layer_media_type(l.media_type))
            return fail("manifest {}: layer {} has media type \"{}\", not a layer type berth can unpack",
                        resolved.manifest.digest.string(), l.digest.string(), l.media_type);
    if (options.progress) {
        uint64_t total = 0;
        for (const auto& l : manifest.layers) total += l.size;
        options.progress({PullEvent::Kind::resolved, resolved.manifest.digest, 0, total, false});
    }

    // From the first blob written to the record: the collector must not take what this pull has stored.
    BERTH_ASSIGN(UniqueFd gc_lock, images.writer_lock());
    const image::ContentStore& content = images.content();

    const Descriptor& config_desc = manifest.config;
    if (config_desc.size > kMaxConfigSize)
        return fail("config {}: {} bytes, more than the {} allowed", config_desc.digest.string(), config_desc.size,
                    kMaxConfigSize);
    // Through the blob's ingest lock like a layer: a concurrent pull of the same image waits, then reads it.
    std::string config_json;
    {
        BERTH_ASSIGN(std::optional<image::BlobWriter> writer, content.begin_write(config_desc.digest, config_desc.size));
        if (writer) {
            BERTH_TRY(client->fetch_blob(ref.repository, config_desc.digest, config_desc.size,
                                         [&](std::span<const std::byte> data) -> Result<void> {
                                             config_json.append(reinterpret_cast<const char*>(data.data()),
                                                                data.size());
                                             return writer->write(data);
                                         }));
            BERTH_TRY(writer->commit());
        } else {
            BERTH_ASSIGN(config_json, content.read(config_desc.digest));
        }
    }
    const std::string config_what = fmt::format("config {}", config_desc.digest.string());
    BERTH_ASSIGN(image::ImageConfig config, image::parse_image_config(config_json, config_what));
    if (config.diff_ids.size() != manifest.layers.size())
        return fail("manifest {}: {} layers, but config {} lists {} rootfs.diff_ids", resolved.manifest.digest.string(),
                    manifest.layers.size(), config_desc.digest.string(), config.diff_ids.size());
    BERTH_ASSIGN(Digest stored_manifest, content.put(resolved.manifest_body));
    if (stored_manifest != resolved.manifest.digest)
        return fail("manifest {}: stored as {}", resolved.manifest.digest.string(), stored_manifest.string());

    LayerPuller layers(images, *client, ref, options, manifest, config.diff_ids);
    BERTH_TRY(layers.run());

    image::ImportedImage img;
    img.manifest = resolved.manifest;
    img.parsed = manifest;
    img.config = config;
    if (!layers.chains().empty()) img.chain_id = layers.chains().back();
    BERTH_ASSIGN(ImageRecord rec, images.record_image(img, {ref.string()}));
    layers.emit({PullEvent::Kind::done, rec.id, 0, 0, false});
    return rec;
}

}  // namespace

Result<ImageRecord> pull_image(Images& images, std::string_view reference, const PullOptions& options) {
    auto ref = image::ImageReference::parse(reference);
    if (!ref) return std::unexpected(std::move(ref).error().wrap("pull"));
    auto rec = pull(images, *ref, options);
    if (!rec) return std::unexpected(std::move(rec).error().wrap(fmt::format("pull {}", ref->string())));
    return rec;
}

}  // namespace berth::store
