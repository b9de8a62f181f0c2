// WebSocket (RFC 6455) messages over a Conn, after the HTTP upgrade: frames, masking, fragmentation, ping/pong and
// the close handshake. The HTTP upgrade itself (request parsing with Boost.Beast, the 101 answer) is the server's.
//
// Why not Beast's websocket::stream: the streaming protocols read the client's input on one thread while output
// is written from another, and Beast's synchronous stream shares its close state between read and write (its read
// answers pings and close frames by writing on its own), so a read and a write may not run at the same time.
// Here read() runs on one thread and write() on any number of others; control answers go through the same
// write lock.
//
// Thread-safety: read() on one thread at a time; write(), close() and close_sent() from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "stream/conn.hpp"

namespace berth::stream {

enum class WsOpcode : uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Close codes used here (RFC 6455 section 7.4.1).
inline constexpr uint16_t kWsCloseNormal = 1000;
inline constexpr uint16_t kWsCloseProtocolError = 1002;
inline constexpr uint16_t kWsCloseInvalidData = 1007;
inline constexpr uint16_t kWsCloseTooBig = 1009;
inline constexpr uint16_t kWsCloseInternalError = 1011;

struct WsFrameHeader {
    bool fin = false;
    uint8_t rsv = 0;  // the three RSV bits (must be 0: no extension is negotiated)
    uint8_t opcode = 0;
    bool masked = false;
    uint64_t length = 0;
    std::array<uint8_t, 4> mask{};
    size_t header_size = 0;  // bytes of `buf` the header took
};

// Parses the frame header at the start of `buf`; nullopt while `buf` holds less than a whole header. A 64-bit
// length with its top bit set is an error.
[[nodiscard]] Result<std::optional<WsFrameHeader>> parse_ws_frame_header(std::string_view buf);
// The header of a frame (server frames unmasked; a client passes its masking key).
std::string encode_ws_frame_header(WsOpcode op, bool fin, uint64_t length, const std::array<uint8_t, 4>* mask);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string websocket_accept_key(std::string_view key);

// Standard base64 with padding (RFC 4648 section 4), as the base64.* channel protocols use.
std::string base64_encode(std::string_view data);
// Strict decoding: padding required, no whitespace; an error names what is wrong.
[[nodiscard]] Result<std::string> base64_decode(std::string_view text);

bool valid_utf8(std::string_view s);

class WebSocket {
public:
    enum class Role { server, client };
    struct Message {
        WsOpcode opcode = WsOpcode::binary;  // text, binary or close
        std::string data;                    // close: the close code (if any) and reason as sent
    };

    // `buffered`: bytes read past the HTTP headers (the first frame bytes). Messages larger than `max_message`
    // fail the connection with 1009.
    WebSocket(Conn& conn, Role role, std::string buffered = {}, size_t max_message = 64u << 20);

    // The next whole data message, or the peer's close (answered before it is returned). Pings are answered,
    // pongs skipped. A protocol error sends a close frame with the matching code and returns an error; EOF
    // without a close frame is an error (ECONNRESET).
    [[nodiscard]] Result<Message> read();
    // One message in one frame.
    [[nodiscard]] Result<void> write(WsOpcode op, std::span<const char> data);
    // Sends a close frame once (later calls do nothing). Writes after it fail.
    [[nodiscard]] Result<void> close(uint16_t code, std::string_view reason = {});
    bool close_sent() const;

private:
    [[nodiscard]] Result<void> fill(size_t n);  // until buf_ holds n bytes
    [[nodiscard]] Result<void> write_frame(WsOpcode op, std::span<const char> data, bool is_close);
    [[nodiscard]] Error fail_connection(uint16_t code, std::string message);

    Conn& conn_;
    Role role_;
    std::string buf_;  // read side, only the reader touches it
    size_t max_message_;

    mutable std::mutex write_mu_;
    bool close_sent_ = false;  // under write_mu_
};

}  // namespace berth::stream
