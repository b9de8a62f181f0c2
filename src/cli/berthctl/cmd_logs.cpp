// berthctl logs: reads the container's CRI log file (ContainerStatus.log_path) directly, as crictl does, and
// prints the lines without the CRI framing: stdout records to stdout, stderr records to stderr.
#include "command.hpp"
// clang-format off: the CRI headers (via command.hpp) come before anything that pulls <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
// clang-format on

#include <cstdio>
#include <deque>

#include "common/unique_fd.hpp"
#include "cri_log_reader.hpp"

namespace berth::ctl {
namespace {

using Stub = v1::RuntimeService::Stub;

void print_line(const LogLine& l, bool timestamps) {
    std::FILE* out = l.stream == "stderr" ? stderr : stdout;
    if (timestamps) std::fprintf(out, "%s ", l.timestamp.c_str());
    std::fwrite(l.content.data(), 1, l.content.size(), out);
    std::fputc('\n', out);
}

// Reads what is there from `fd` into `parser`; appends finished lines to `lines`.
Result<void> drain(int fd, const std::string& path, LogFileParser& parser, std::deque<LogLine>& lines) {
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("read {}", path);
        }
        if (n == 0) return {};
        parser.feed(std::string_view(buf, static_cast<size_t>(n)), lines);
    }
}

Result<v1::ContainerStatus> container_status(CriClient& client, const std::string& id) {
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    BERTH_ASSIGN(auto resp, client.runtime(&Stub::ContainerStatus, "ContainerStatus", req));
    return resp.status();
}

}  // namespace

Result<void> print_container_logs(CriClient& client, const std::string& id, const LogOptions& o) {
    BERTH_ASSIGN(auto status, container_status(client, id));
    const std::string path = status.log_path();
    if (path.empty()) return fail("container {} has no log path", id);
    if (!path.starts_with("/")) return fail("container {}: log path {:?} is not absolute", id, path);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_sys("open log {}", path);

    LogFileParser parser;
    std::deque<LogLine> lines;
    BERTH_TRY(drain(fd.get(), path, parser, lines));
    std::erase_if(lines, [&](const LogLine& l) { return l.time_ns < o.since_ns; });
    if (o.tail >= 0)
        while (lines.size() > static_cast<size_t>(o.tail)) lines.pop_front();
    for (const auto& l : lines) print_line(l, o.timestamps);
    lines.clear();
    std::fflush(stdout);
    std::fflush(stderr);
    if (!o.follow) return {};

    // Follow: inotify tells when the file grows or is rotated away (renamed or removed; the monitor then writes a
    // new file at the same path on ReopenContainerLog). The container's state is asked once a second: following
    // ends when it no longer runs and everything it wrote has been printed.
    UniqueFd ino(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!ino) return fail_sys("inotify_init1");
    auto watch = [&]() -> Result<void> {
        if (::inotify_add_watch(ino.get(), path.c_str(), IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF) < 0)
            return fail_sys("watch {}", path);
        return {};
    };
    BERTH_TRY(watch());
    bool rotated = false;
    for (;;) {
        if (o.interrupted && o.interrupted->load()) return {};
        BERTH_TRY(drain(fd.get(), path, parser, lines));
        for (const auto& l : lines)
            if (l.time_ns >= o.since_ns) print_line(l, o.timestamps);
        lines.clear();
        std::fflush(stdout);
        std::fflush(stderr);
        if (rotated) {
            UniqueFd next(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (next) {
                fd = std::move(next);
                parser = LogFileParser();
                rotated = false;
                BERTH_TRY(watch());
                continue;
            }
        }
        struct pollfd pfd = {.fd = ino.get(), .events = POLLIN, .revents = 0};
        int r = ::poll(&pfd, 1, 1000);
        if (r < 0 && errno != EINTR) return fail_sys("poll inotify");
        if (r > 0) {
            alignas(struct inotify_event) char evbuf[4096];
            ssize_t n = ::read(ino.get(), evbuf, sizeof evbuf);
            for (ssize_t off = 0; n > 0 && off < n;) {
                auto* ev = reinterpret_cast<struct inotify_event*>(evbuf + off);
                if (ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF)) rotated = true;
                off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
            }
            continue;
        }
        BERTH_ASSIGN(auto st, container_status(client, id));
        if (st.state() != v1::CONTAINER_RUNNING && st.state() != v1::CONTAINER_CREATED) {
            BERTH_TRY(drain(fd.get(), path, parser, lines));
            for (const auto& l : lines)
                if (l.time_ns >= o.since_ns) print_line(l, o.timestamps);
            std::fflush(stdout);
            std::fflush(stderr);
            return {};
        }
    }
}

int cmd_logs(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse(
        "logs", args, {{"-f|--follow", false}, {"--tail", true}, {"--since", true}, {"-t|--timestamps", false}});
    if (!p) return report(p.error());
    if (p->positional.size() != 1) return report(Error(0, "logs: expected one CONTAINER_ID"));
    LogOptions o;
    o.follow = p->has("--follow");
    o.timestamps = p->has("--timestamps");
    if (auto tail = p->value("--tail"); tail && *tail != "-1" && *tail != "all") {
        auto n = p->number("--tail");
        if (!n) return report(n.error());
        o.tail = **n;
    }
    if (auto since = p->value("--since")) {
        auto t = parse_since(*since, now_ns());
        if (!t) return report(t.error());
        o.since_ns = *t;
    }
    CriClient client(opts.socket_path);
    if (auto r = print_container_logs(client, p->positional[0], o); !r) return report(r.error());
    return 0;
}

}  // namespace berth::ctl
