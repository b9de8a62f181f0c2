// SPDY/3.1, as kubelet's streaming server and its clients speak it after an HTTP "Upgrade: SPDY/3.1": control
// frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE), data frames,
// header blocks compressed with zlib and the SPDY/3 dictionary (one compression context per direction for the
// whole session), per-stream and session flow-control windows (64 KiB initial; SETTINGS_INITIAL_WINDOW_SIZE
// honoured).
//
// Model: blocking calls on any thread; one reader thread per session parses frames and hands them to the streams.
// A stream's read() returns buffered data and grants the peer that much window back (WINDOW_UPDATE); a write()
// blocks while the stream's or the session's send window is empty. A session ends on EOF, GOAWAY, a protocol
// error (GOAWAY PROTOCOL_ERROR is sent), or close(); every blocked call then returns an error.
//
// Data that arrived before the peer's FIN, RST_STREAM or the session's end is still returned by read() first (kubelet
// resets every stream just before it closes the connection); after it, read() gives 0 (FIN) or an error
// (ECONNRESET for a reset, EPIPE for the session's end). Flow control against moby/spdystream, which never sends
// WINDOW_UPDATE: our send windows are enforced once the peer has shown it does flow control (SETTINGS or
// WINDOW_UPDATE; a Session sends SETTINGS first); otherwise TCP pushes back (see spdy.cpp).
//
// Thread-safety: every member of Session and Stream may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "stream/conn.hpp"

namespace berth::stream::spdy {

// Header names are lower case (SPDY/3 requires it); values as sent.
using Headers = std::vector<std::pair<std::string, std::string>>;

// RST_STREAM status codes (SPDY/3.1 section 2.6.3).
enum class RstStatus : uint32_t {
    protocol_error = 1,
    invalid_stream = 2,
    refused_stream = 3,
    unsupported_version = 4,
    cancel = 5,
    internal_error = 6,
    flow_control_error = 7,
    stream_in_use = 8,
    stream_already_closed = 9,
    frame_too_large = 11,
};

class Session;

class Stream {
public:
    virtual ~Stream() = default;
    virtual uint32_t id() const = 0;
    // The headers of the SYN_STREAM that opened it.
    virtual const Headers& headers() const = 0;
    // The value of header `name` (lower case), or "" when absent.
    virtual std::string header(std::string_view name) const = 0;

    // Reads up to buf.size() bytes of the peer's data; 0 once the peer half-closed (FIN) and everything was read.
    // An error once the stream was reset (by either side) or the session ended.
    [[nodiscard]] virtual Result<size_t> read(std::span<char> buf) = 0;
    // Sends all of `data` in DATA frames, blocking while the send window is empty.
    [[nodiscard]] virtual Result<void> write(std::span<const char> data) = 0;
    // Waits until `fd` (a socket or pipe, blocking) has bytes and sends what it has, up to `max`, in DATA frames;
    // the count, 0 at fd's end of file. Over a plain socket the bytes are spliced through a pipe and never copied
    // into this process (port-forward's pod-to-client direction); otherwise they are read and written.
    [[nodiscard]] virtual Result<size_t> write_from(int fd, size_t max) = 0;
    // Like read(), but takes whole received chunks without copying them (for relaying): `out` is replaced by at
    // least one byte of the peer's data; 0 at the peer's FIN.
    [[nodiscard]] virtual Result<size_t> read_chunk(std::string& out) = 0;
    // Half-closes our side (FIN). Idempotent.
    [[nodiscard]] virtual Result<void> close_write() = 0;
    // RST_STREAM: ends the stream both ways; blocked calls on it return errors.
    virtual void reset(RstStatus status = RstStatus::cancel) = 0;
};

class Session {
public:
    enum class Role { client, server };
    virtual ~Session() = default;  // closes the session and joins its reader thread

    // Takes the upgraded connection (the HTTP 101 already exchanged); `buffered` holds bytes read past the HTTP
    // headers, which are the first SPDY bytes. Starts the reader thread.
    [[nodiscard]] static Result<std::unique_ptr<Session>> start(std::unique_ptr<Conn> conn, Role role,
                                                                std::string buffered = {});

    // Server side: the next stream the peer opened, already answered with SYN_REPLY. A timeout (ETIMEDOUT) or
    // the session's end is an error. timeout < 0 waits forever.
    [[nodiscard]] virtual Result<std::shared_ptr<Stream>> accept(std::chrono::milliseconds timeout) = 0;
    // Client side: opens a stream with `headers` (SYN_STREAM) and waits for the peer's SYN_REPLY (or RST_STREAM:
    // an error naming its status).
    [[nodiscard]] virtual Result<std::shared_ptr<Stream>> open(const Headers& headers) = 0;
    // PING round trip.
    [[nodiscard]] virtual Result<std::chrono::microseconds> ping() = 0;
    // Sends GOAWAY (OK) and stops accepting new streams; open streams may finish.
    virtual void goaway() = 0;
    // Ends the session now: the connection is shut down, every stream and blocked call fails.
    virtual void close() = 0;
    // Whether the session has ended (EOF, GOAWAY from the peer with no streams left, error, close()).
    virtual bool closed() const = 0;
    // Blocks until the session has ended.
    virtual void wait_closed() = 0;
};

}  // namespace berth::stream::spdy
