// Process-wide logging for the berth binaries.
//
// runc's clients read the runtime's log file: containerd's shim asks for --log-format json and takes the last
// {"level":"error","msg":...} line as the failure reason; conmon and podman read text. Both formats are written here.
// Without a log file, messages go to stderr.
//
// Thread-safety: write() and the level/format setters may be called from any thread at once (berthd changes its
// level on signals while its threads log); each message is one write(2), so lines never interleave. init() is
// called once, before any other thread exists.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace berth::log {

enum class Level { debug, info, warn, error };
enum class Format { text, json };

// Opens `path` for appending (empty: stderr). `debug` enables Level::debug.
void init(const std::string& path, Format format, bool debug);
void write(Level level, std::string_view msg);
bool debug_enabled();
// Drops messages below `min` (berthd's log_level). Level::debug also enables debug messages.
void set_min_level(Level min);
Level min_level();
void set_format(Format format);
Format format();
// Closes the log fd (call in a child before exec if it was not opened O_CLOEXEC).
int fd();

template <typename... A>
void debug(fmt::format_string<A...> f, A&&... a) {
    if (debug_enabled()) write(Level::debug, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) {
    write(Level::info, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) {
    write(Level::warn, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void error(fmt::format_string<A...> f, A&&... a) {
    write(Level::error, fmt::format(f, std::forward<A>(a)...));
}

}  // namespace berth::log
