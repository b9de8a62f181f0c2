// Small file-system helpers with Result errors that name the path.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth {

[[nodiscard]] Result<std::string> read_file(const std::string& path);
[[nodiscard]] Result<std::string> read_fd(int fd);
// Writes `data` to an existing or new file (O_TRUNC), mode used on creation.
[[nodiscard]] Result<void> write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
// Writes to a temp file beside `path`, fsyncs nothing, renames over `path`: readers see old or new, never half.
[[nodiscard]] Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
[[nodiscard]] Result<void> write_all(int fd, std::string_view data);
// mkdir -p; existing directories are fine.
[[nodiscard]] Result<void> mkdir_all(const std::string& path, mode_t mode = 0755);
// rm -rf that does not cross mount points it finds below `path`.
[[nodiscard]] Result<void> remove_all(const std::string& path);
[[nodiscard]] Result<UniqueFd> open_fd(const std::string& path, int flags, mode_t mode = 0);
bool path_exists(const std::string& path);
// Joins with exactly one '/' between the parts.
std::string path_join(std::string_view a, std::string_view b);
// Lexically cleans a path: collapses "//", ".", and ".." (never above the root for absolute paths).
std::string clean_path(std::string_view p);

}  // namespace berth
