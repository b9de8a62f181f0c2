// Path resolution confined to a root directory, for building a container's rootfs that its image (or a
// process with access to a volume) may have filled with hostile symlinks.
//
// Every function treats `path` as if `root_fd` were "/": absolute symlinks restart at the root, ".." at the root
// stays at the root, and nothing ever resolves to an object outside it. The functions that create components do
// their own walk, one component at a time, never letting the kernel follow a symlink: a symlink met on the way
// is read and its target resolved again inside the root, so swapping a component for a symlink between two steps
// cannot redirect the walk out.
//
// To mount on the result, pass fd_path(fd) ("/proc/self/fd/N") to mount(2): the kernel then mounts on the object
// the fd holds, not on whatever a path names by the time mount(2) runs.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::sys {

// openat2(root_fd, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS). Symlinks inside the root are
// followed (kept inside it); a final symlink is followed unless flags has O_NOFOLLOW. Retried on EAGAIN (a
// concurrent rename or mount). Errors name the path and keep the errno (ENOENT for a missing path).
[[nodiscard]] Result<UniqueFd> open_in_root(int root_fd, std::string_view path, int flags, mode_t mode = 0);

// Makes sure `path` is a directory inside the root, creating every missing component with `mode` (subject to
// the umask), and returns an O_PATH | O_DIRECTORY fd to it. Existing symlinks on the way are followed inside the
// root; a dangling one gets its target created inside the root. ENOTDIR when a component is not a directory.
[[nodiscard]] Result<UniqueFd> mkdir_all_in_root(int root_fd, std::string_view path, mode_t mode);

// Like mkdir_all_in_root for the parents (created with 0755), then makes sure the last component exists,
// creating an empty regular file with `mode` when it is missing; an existing object of any type is kept (a
// final symlink is followed inside the root). Returns an O_PATH fd to it.
[[nodiscard]] Result<UniqueFd> create_file_in_root(int root_fd, std::string_view path, mode_t mode);

// "/proc/self/fd/N": the path that makes the kernel use the object behind `fd`.
std::string fd_path(int fd);

}  // namespace berth::sys
