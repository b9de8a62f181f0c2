// Process-wide logging for the berth binaries.
//
// runc's clients read the runtime's log file: containerd's shim asks for --log-format json and takes the last
// {"level":"error","msg":...} line as the failure reason; conmon and podman read text. Both formats are written here.
// Without a log file, messages go to stderr. Not thread-safe by design: the runtime is single-threaded.
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
