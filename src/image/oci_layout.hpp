// Offline import and export of OCI image layouts (image-spec "image-layout"): a directory, or an `oci-archive`
// tar of one.
//
// Import puts every blob an image needs into the content store (each verified against its digest and the
// descriptor's size), then unpacks its layers into snapshots, bottom-most first, checking each layer's diff_id
// against the config's rootfs.diff_ids (a mismatch is refused, naming the layer's digest). index.json entries
// are images (manifests, possibly behind a nested index); those with a platform other than the wanted one are
// skipped. Failing midway leaves complete, verified blobs and snapshots only (shared content for a retry), never
// a partial one.
//
// From an oci-archive every blobs/sha256/<hex> member is streamed into the content store in one pass (so the
// tar is read once, whatever its member order); unreferenced blobs stay there for the garbage collector.
#pragma once

#include <string>
#include <vector>

#include "common/error.hpp"
#include "image/content_store.hpp"
#include "image/manifest.hpp"
#include "image/snapshots.hpp"

namespace berth::image {

struct ImportedImage {
    std::string ref_name;  // the org.opencontainers.image.ref.name annotation, "" when absent
    Descriptor manifest;   // as index.json (or the nested index) names it
    ImageManifest parsed;
    ImageConfig config;
    Digest chain_id;  // the top snapshot; its lowerdirs() are the image's rootfs
};

// The annotation index.json uses to name an image.
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

[[nodiscard]] Result<std::vector<ImportedImage>> import_oci_layout(const std::string& dir, const ContentStore& content,
                                                                   SnapshotStore& snapshots,
                                                                   const Platform& platform = host_platform());
[[nodiscard]] Result<std::vector<ImportedImage>> import_oci_archive(const std::string& tar_path,
                                                                    const ContentStore& content,
                                                                    SnapshotStore& snapshots,
                                                                    const Platform& platform = host_platform());

// Writes the image whose manifest is `manifest` as an OCI image layout: the manifest, its config and layers copied
// from the content store (re-verified while copied) into `dir`/blobs/sha256, `dir`/oci-layout, and an index.json
// holding exactly this image, named `ref_name` (org.opencontainers.image.ref.name; omitted when empty). Files are
// written under temp names and renamed, so a reader never sees a half-written blob or index.
[[nodiscard]] Result<void> export_oci_layout(const ContentStore& content, const Descriptor& manifest,
                                             const std::string& ref_name, const std::string& dir);
// The same as one `oci-archive` tar at `tar_path`, written to a temp file beside it and renamed when complete.
[[nodiscard]] Result<void> export_oci_archive(const ContentStore& content, const Descriptor& manifest,
                                              const std::string& ref_name, const std::string& tar_path);

}  // namespace berth::image
