// Helpers of the streaming clients (client.cpp, client_websocket.cpp): dialing, fd copies that can be cancelled.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "stream/spdy.hpp"

namespace berth::stream::detail {

// A TCP connection to host:port (TCP_NODELAY).
[[nodiscard]] Result<UniqueFd> dial(const std::string& host, const std::string& port);

// Writes every byte to a plain fd (pipe, tty, socket).
[[nodiscard]] Result<void> write_fd(int fd, std::span<const char> data);

// A pipe whose read end becomes readable once cancel() is called: wakes a poll() on an input fd.
class Canceller {
public:
    Canceller();
    void cancel();
    int fd() const { return r_.get(); }

private:
    UniqueFd r_, w_;
};

// Reads `fd` until EOF or cancellation, passing each chunk to `sink` (false: stop). Returns true on EOF.
template <typename Sink>
Result<bool> pump_fd(int fd, const Canceller& cancel, Sink&& sink);

// Copies a SPDY stream to `fd` until the stream ends (FIN, or the peer's reset or the session's end: kubelet resets
// streams after their last data); a failure to write `fd` resets the stream.
void copy_stream_to_fd(spdy::Stream& s, int fd);

// kubelet's remote command versions: 1 (channel.k8s.io) .. 5; 0 for anything else.
int remote_command_version(std::string_view protocol);

}  // namespace berth::stream::detail

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace berth::stream::detail {

template <typename Sink>
Result<bool> pump_fd(int fd, const Canceller& cancel, Sink&& sink) {
    char buf[32 * 1024];
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {cancel.fd(), POLLIN, 0}};
        int r = ::poll(p, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_sys("poll fd {}", fd);
        if (p[1].revents) return false;
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return fail_sys("read fd {}", fd);
        if (n == 0) return true;
        if (!sink(std::string_view(buf, size_t(n)))) return false;
    }
}

}  // namespace berth::stream::detail
