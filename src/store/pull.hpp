// Pull: an image from an OCI distribution registry into an image store root (content store, snapshots, record).
//
// The manifest (by tag or digest; an index resolved to `platform`) and config are fetched and verified, then the
// layers are fetched in parallel, each streamed through digest verification, decompression and untar into its
// snapshot in one pass; a blob already in the store is not fetched again, and two pulls of one blob (threads or
// processes) share one download. The image is recorded under the normalized reference only after every layer is
// in place; a failed or killed pull leaves no visible half-written blob or snapshot (prune() collects leftovers).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "image/digest.hpp"
#include "image/manifest.hpp"
#include "image/registry_config.hpp"
#include "store/images.hpp"

namespace berth::store {

// One step of a pull, for progress display. Calls come from the pulling threads (one at a time: serialized by
// the puller), so a callback needs no locking of its own but must be quick.
struct PullEvent {
    enum class Kind {
        resolved,     // the manifest is known: `digest` is the manifest's, `total` the image's layer bytes
        layer_wait,   // a layer is queued or waiting for another pull's download of it
        layer_bytes,  // `done` of `total` compressed bytes of layer `digest` fetched and unpacked so far
        layer_done,   // layer `digest` is in place (fetched now, or already present: `cached`)
        done,         // the image is recorded: `digest` is the image id
    };
    Kind kind = Kind::resolved;
    image::Digest digest;
    uint64_t done = 0;
    uint64_t total = 0;
    bool cached = false;
};
using PullProgress = std::function<void(const PullEvent&)>;

struct PullOptions {
    image::Platform platform = image::host_platform();
    image::Credentials credentials;  // for this pull; empty: the registry configuration's, else anonymous
    image::RegistryConfig registries;
    PullProgress progress;           // may be empty
    unsigned max_parallel_layers = 4;
    unsigned max_attempts = 5;       // per blob, with exponential backoff, resuming by Range where possible
};

// Pulls `reference` (normalized as image::ImageReference does) into `images` and returns its record, named by
// the normalized reference (a pull by digest names the image "name@digest"). Errors say which reference, which
// registry URL and which digest failed, and why (HTTP status and the registry's error code and message).
[[nodiscard]] Result<ImageRecord> pull_image(Images& images, std::string_view reference, const PullOptions& options);

}  // namespace berth::store
