// Images as files: import of whatever archive or directory a person hands over (the format detected from its
// contents), export of one image as an oci-archive, and read-only or writable overlay mounts of an image's rootfs.
// What berthctl's image commands do below their printing; everything goes through Images, so it is safe while
// other processes use the same root.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "image/manifest.hpp"
#include "store/images.hpp"

namespace berth::store {

enum class ImportFormat {
    oci_layout,      // a directory holding oci-layout and index.json
    oci_archive,     // a tar of such a directory
    docker_archive,  // a `docker save` tar (manifest.json naming RepoTags, Config and Layers)
};
std::string_view to_string(ImportFormat f);

// Looks at `path`: a directory with an oci-layout file is an OCI layout; a tar (plain or compressed) holding
// oci-layout or index.json is an oci-archive (newer `docker save` writes these too, with an index naming the
// images), one holding only manifest.json a docker-archive. Anything else is an error naming the path and what was
// found (or that it is missing).
[[nodiscard]] Result<ImportFormat> detect_import_format(const std::string& path);

struct ImportResult {
    ImportFormat format;
    std::vector<ImageRecord> images;
};
// Detects the format of `path` and imports every image in it (OCI: those for `platform`).
[[nodiscard]] Result<ImportResult> import_path(Images& images, const std::string& path,
                                               const image::Platform& platform = image::host_platform());

// Writes the image `key` names (see ImageStore::get) as an oci-archive at `tar_path` (temp file + rename), its
// index.json entry annotated with the image's first name (org.opencontainers.image.ref.name, a full reference)
// when it has one. Returns the exported record.
[[nodiscard]] Result<ImageRecord> export_image(Images& images, std::string_view key, const std::string& tar_path);

struct ImageMount {
    ImageRecord image;
    std::vector<std::string> lowerdirs;  // top-most first
    std::string target;
    std::string upper_dir;  // empty: mounted read-only
};
// Mounts the rootfs of the image `key` names on `target` (an existing directory). With `upper_dir`, as a container
// gets it: an overlay of the image's snapshots under `upper_dir`/upper (work dir and short lowerdir links in
// `upper_dir` too; made when missing), writes landing there. Without, read-only: a read-only bind mount of a
// one-layer image's snapshot, else an overlay of its lowerdirs with no upper dir.
// The mount is not a GC root: removing the image while it is mounted removes files under it (as for containers,
// see images.hpp).
[[nodiscard]] Result<ImageMount> mount_image(Images& images, std::string_view key, const std::string& target,
                                             const std::string& upper_dir = {});
// Unmounts what mount_image mounted on `target` (EBUSY while in use: the error says so). An upper dir stays.
[[nodiscard]] Result<void> unmount_image(const std::string& target);

}  // namespace berth::store
