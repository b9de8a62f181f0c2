#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "common/time.hpp"

namespace berth::log {
namespace {

// Atomics: berthd's threads log while its signal thread changes the level and format (SIGUSR1, SIGHUP). Each line
// is built whole and written with one write(2) (O_APPEND, or a pipe: lines under PIPE_BUF stay whole), so lines of
// concurrent writers never interleave.
std::atomic<int> g_fd = STDERR_FILENO;
std::atomic<Format> g_format = Format::text;
std::atomic<bool> g_debug = false;
std::atomic<Level> g_min = Level::debug;  // below this nothing is written; debug messages also need g_debug

const char* level_name(Level l) {
    switch (l) {
        case Level::debug: return "debug";
        case Level::info: return "info";
        case Level::warn: return "warning";
        case Level::error: return "error";
    }
    return "info";
}


}  // namespace

void init(const std::string& path, Format format, bool debug) {
    g_format = format;
    g_debug = debug;
    if (!path.empty()) {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) g_fd = fd;
    }
}

bool debug_enabled() { return g_debug; }

void set_min_level(Level min) {
    g_min = min;
    g_debug = min == Level::debug;
}

Level min_level() { return g_min; }

void set_format(Format format) { g_format = format; }

Format format() { return g_format; }
int fd() { return g_fd; }

void write(Level level, std::string_view msg) {
    if (static_cast<int>(level) < static_cast<int>(g_min.load())) return;
    const int fd = g_fd;
    std::string line;
    if (g_format == Format::json) {
        nlohmann::json j = {{"level", level_name(level)}, {"msg", msg}, {"time", now_rfc3339_nano()}};
        line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        line += '\n';
    } else if (fd == STDERR_FILENO && level == Level::error) {
        // What a person sees on a terminal: runc prints plain "msg" on errors.
        line = fmt::format("berth: {}\n", msg);
    } else {
        line = fmt::format("time=\"{}\" level={} msg=\"{}\"\n", now_rfc3339_nano(), level_name(level), msg);
    }
    ssize_t ignored = ::write(fd, line.data(), line.size());
    (void)ignored;
}

}  // namespace berth::log
