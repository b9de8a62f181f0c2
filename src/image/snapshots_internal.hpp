// Helpers shared by the snapshot store's source files (snapshots.cpp, snapshot_create.cpp); not an interface.
#pragma once

#include <string>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::image::detail {

// An exclusive flock on `path` (created 0600 when missing); without `wait`, EWOULDBLOCK when someone holds it.
[[nodiscard]] Result<UniqueFd> lock_file(const std::string& path, bool wait);
// syncfs(2) of the file system holding `path`.
[[nodiscard]] Result<void> sync_fs_of(const std::string& path);

}  // namespace berth::image::detail
