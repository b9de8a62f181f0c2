#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>

#include <nlohmann/json.hpp>

namespace berth::log {
namespace {

int g_fd = STDERR_FILENO;
Format g_format = Format::text;
bool g_debug = false;

const char* level_name(Level l) {
    switch (l) {
        case Level::debug: return "debug";
        case Level::info: return "info";
        case Level::warn: return "warning";
        case Level::error: return "error";
    }
    return "info";
}

std::string timestamp() {
    struct timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm{};
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
    return buf;
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
int fd() { return g_fd; }

void write(Level level, std::string_view msg) {
    std::string line;
    if (g_format == Format::json) {
        nlohmann::json j = {{"level", level_name(level)}, {"msg", msg}, {"time", timestamp()}};
        line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        line += '\n';
    } else if (g_fd == STDERR_FILENO && level == Level::error) {
        // What a person sees on a terminal: runc prints plain "msg" on errors.
        line = fmt::format("berth: {}\n", msg);
    } else {
        line = fmt::format("time=\"{}\" level={} msg=\"{}\"\n", timestamp(), level_name(level), msg);
    }
    ssize_t ignored = ::write(g_fd, line.data(), line.size());
    (void)ignored;
}

}  // namespace berth::log
