// OCI image-spec documents (and their Docker schema2 equivalents): descriptors, image indexes, image manifests and
// the parts of the image config berth uses. Parsing checks what berth relies on (media types, digests, sizes,
// rootfs.diff_ids) and errors name the document and the JSON path of the bad value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "image/digest.hpp"

namespace berth::image {

namespace media_type {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
}  // namespace media_type

bool is_index_media_type(std::string_view mt);
bool is_manifest_media_type(std::string_view mt);
// OCI layer types (tar, +gzip, +zstd, and the non-distributable variants) and Docker's rootfs diff types.
bool is_layer_media_type(std::string_view mt);

struct Platform {
    std::string os, architecture, variant;
};
// The platform this process runs on (os "linux", GOARCH-style architecture names: amd64, arm64, ...).
Platform host_platform();
bool platform_matches(const Platform& wanted, const Platform& have);

struct Descriptor {
    std::string media_type;
    Digest digest;
    uint64_t size = 0;
    std::optional<Platform> platform;
    std::map<std::string, std::string> annotations;
};

struct ImageIndex {
    std::string media_type;  // may be empty in an OCI index.json
    std::vector<Descriptor> manifests;
};

struct ImageManifest {
    std::string media_type;
    Descriptor config;
    std::vector<Descriptor> layers;
};

struct ImageConfig {
    Platform platform;
    std::vector<Digest> diff_ids;  // rootfs.diff_ids, bottom-most layer first
};

// `what` names the document in errors ("index.json", "manifest sha256:...").
[[nodiscard]] Result<ImageIndex> parse_index(std::string_view json, std::string_view what);
[[nodiscard]] Result<ImageManifest> parse_manifest(std::string_view json, std::string_view what);
[[nodiscard]] Result<ImageConfig> parse_image_config(std::string_view json, std::string_view what);

}  // namespace berth::image
