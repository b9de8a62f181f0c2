// Layer unpack: a layer blob (tar, gzip'd tar or zstd'd tar, told apart by their magic bytes) extracted into a
// directory in overlayfs form, so unpacked layers stack as overlay lowerdirs:
//   - a whiteout ".wh.<name>" becomes a character device 0:0 named <name>, owned 0:0;
//   - ".wh..wh..opq" marks its directory opaque (xattr trusted.overlay.opaque=y);
//   - other ".wh..wh.*" names (aufs bookkeeping, e.g. ".wh..wh.plnk") carry no content and are skipped.
// Regular files (sparse ones kept sparse), directories, symlinks, hardlinks, character and block devices and
// fifos are created with their numeric owner (names in the header are ignored, as the ecosystem does), then the
// full mode (setuid/setgid/sticky after the owner, since chown clears them), then xattrs, then mtime and atime;
// directory times are fixed up at the end, after their children were written. Sockets are refused.
//
// While extracting, the SHA-256 of the uncompressed tar stream (the layer's diff_id), and of the blob as given,
// are computed, so a caller checks the diff_id against the image config's rootfs.diff_ids.
//
// Hostile input: every path is taken relative to the layer root. Leading '/' are stripped (absolute member names
// mean "from the layer root", as GNU tar and the container ecosystem treat them); any ".." component refuses the
// entry. Parent directories are resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): a symlink met as
// a parent (one the layer itself created) is followed as if the layer root were "/", so it never leads outside;
// the entry's own name is never followed (it is replaced). Hardlink targets are resolved the same way, must
// exist inside the root and must not be directories. Paths longer than PATH_MAX or with a component longer than
// NAME_MAX, and xattrs in the trusted.overlay. namespace (reserved for the whiteouts above: a layer must not
// forge overlay redirects), are refused. Errors name the entry.
//
// A failed unpack leaves what it had extracted so far in `dest` (nothing outside it): callers unpack into a fresh
// temp directory and remove it on failure (see snapshots.hpp). Nothing else may write into `dest` meanwhile.
// Creating devices, whiteouts, foreign owners and trusted.* xattrs needs root (CAP_MKNOD, CAP_CHOWN,
// CAP_SYS_ADMIN); without them the unpack fails naming the entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "image/digest.hpp"

namespace berth::image {

enum class LayerCompression { none, gzip, zstd };
std::string_view to_string(LayerCompression c);

struct UnpackStats {
    Digest diff_id;  // sha256 of the uncompressed tar stream, trailing blocks included
    uint64_t uncompressed_size = 0;
    Digest blob_digest;  // sha256 of the bytes read from the source (the layer blob)
    uint64_t blob_size = 0;
    LayerCompression compression = LayerCompression::none;
    uint64_t entries = 0;  // tar members processed (whiteouts included)
};

// Reads up to buf.size() bytes of the layer blob; 0 means the end.
using LayerSource = std::function<Result<size_t>(std::span<std::byte> buf)>;

// Unpacks the layer read from `source` into the existing directory `dest`.
[[nodiscard]] Result<UnpackStats> unpack_layer(const LayerSource& source, const std::string& dest);
// Reads the layer from `fd` (a blob in the content store, a pipe, a socket) to its end.
[[nodiscard]] Result<UnpackStats> unpack_layer_fd(int fd, const std::string& dest);
// Unpacks a layer held in memory.
[[nodiscard]] Result<UnpackStats> unpack_layer_buffer(std::string_view blob, const std::string& dest);

}  // namespace berth::image
