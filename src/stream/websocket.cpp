#include "stream/websocket.hpp"

#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace berth::stream {
namespace {

constexpr std::string_view kWsGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool is_control(uint8_t op) {
    return op >= 8;
}
bool known_opcode(uint8_t op) {
    return op <= 2 || (op >= 8 && op <= 10);
}

}  // namespace

Result<std::optional<WsFrameHeader>> parse_ws_frame_header(std::string_view buf) {
    if (buf.size() < 2) return std::nullopt;
    auto b = [&](size_t i) { return static_cast<uint8_t>(buf[i]); };
    WsFrameHeader h;
    h.fin = (b(0) & 0x80) != 0;
    h.rsv = (b(0) >> 4) & 0x7;
    h.opcode = b(0) & 0x0f;
    h.masked = (b(1) & 0x80) != 0;
    uint64_t len7 = b(1) & 0x7f;
    size_t pos = 2;
    if (len7 == 126) {
        if (buf.size() < pos + 2) return std::nullopt;
        h.length = (uint64_t{b(2)} << 8) | b(3);
        pos += 2;
    } else if (len7 == 127) {
        if (buf.size() < pos + 8) return std::nullopt;
        h.length = 0;
        for (size_t i = 0; i < 8; ++i) h.length = (h.length << 8) | b(2 + i);
        if (h.length >> 63) return fail("websocket frame: 64-bit length with the most significant bit set");
        pos += 8;
    } else {
        h.length = len7;
    }
    if (h.masked) {
        if (buf.size() < pos + 4) return std::nullopt;
        for (size_t i = 0; i < 4; ++i) h.mask[i] = b(pos + i);
        pos += 4;
    }
    h.header_size = pos;
    return h;
}

std::string encode_ws_frame_header(WsOpcode op, bool fin, uint64_t length, const std::array<uint8_t, 4>* mask) {
    std::string h;
    h.push_back(static_cast<char>((fin ? 0x80 : 0) | static_cast<uint8_t>(op)));
    uint8_t mask_bit = mask ? 0x80 : 0;
    if (length < 126) {
        h.push_back(static_cast<char>(mask_bit | length));
    } else if (length <= 0xffff) {
        h.push_back(static_cast<char>(mask_bit | 126));
        h.push_back(static_cast<char>(length >> 8));
        h.push_back(static_cast<char>(length & 0xff));
    } else {
        h.push_back(static_cast<char>(mask_bit | 127));
        for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
    }
    if (mask)
        for (uint8_t m : *mask) h.push_back(static_cast<char>(m));
    return h;
}

std::string websocket_accept_key(std::string_view key) {
    std::string in = std::string(key) + std::string(kWsGuid);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(in.data(), in.size(), md, &len, EVP_sha1(), nullptr);
    return base64_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string base64_encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    size_t i = 0;
    auto u = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(data[k])); };
    for (; i + 3 <= data.size(); i += 3) {
        uint32_t v = (u(i) << 16) | (u(i + 1) << 8) | u(i + 2);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    size_t rest = data.size() - i;
    if (rest == 1) {
        uint32_t v = u(i) << 16;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += "==";
    } else if (rest == 2) {
        uint32_t v = (u(i) << 16) | (u(i + 1) << 8);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

Result<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return fail("base64: length {} is not a multiple of 4", text.size());
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int v[4];
        int pad = 0;
        for (size_t k = 0; k < 4; ++k) {
            char c = text[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                ++pad;
                continue;
            }
            if (pad > 0) return fail("base64: data after padding at offset {}", i + k);
            v[k] = value(c);
            if (v[k] < 0) return fail("base64: invalid character at offset {}", i + k);
        }
        uint32_t n = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
        out += static_cast<char>((n >> 16) & 0xff);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(n & 0xff);
    }
    return out;
}

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<uint8_t>(s[i]);
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;  // truncated sequence
        for (size_t k = 1; k <= n; ++k) {
            auto cc = static_cast<uint8_t>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are invalid.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return false;
        i += n + 1;
    }
    return true;
}

WebSocket::WebSocket(Conn& conn, Role role, std::string buffered, size_t max_message)
    : conn_(conn), role_(role), buf_(std::move(buffered)), max_message_(max_message) {}

Result<void> WebSocket::fill(size_t n) {
    char tmp[64 * 1024];
    while (buf_.size() < n) {
        BERTH_ASSIGN(size_t got, conn_.read(std::span<char>(tmp, sizeof tmp)));
        if (got == 0) return fail_errno(ECONNRESET, "websocket: connection closed without a close frame");
        buf_.append(tmp, got);
    }
    return {};
}

Error WebSocket::fail_connection(uint16_t code, std::string message) {
    (void)close(code, {});
    conn_.shutdown();
    return Error(EPROTO, "websocket: " + message);
}

Result<WebSocket::Message> WebSocket::read() {
    Message msg;
    bool in_message = false;  // a fragmented data message is being collected
    for (;;) {
        std::optional<WsFrameHeader> header;
        for (;;) {
            auto parsed = parse_ws_frame_header(buf_);
            if (!parsed) return std::unexpected(fail_connection(kWsCloseProtocolError, parsed.error().message()));
            if (*parsed) {
                header = **parsed;
                break;
            }
            BERTH_TRY(fill(buf_.size() + 1));
        }
        const WsFrameHeader& h = *header;
        if (h.rsv != 0) return std::unexpected(fail_connection(kWsCloseProtocolError, "frame with RSV bits set"));
        if (!known_opcode(h.opcode))
            return std::unexpected(fail_connection(kWsCloseProtocolError, fmt::format("unknown opcode {}", h.opcode)));
        // Clients mask every frame, servers none (RFC 6455 section 5.1).
        if (h.masked != (role_ == Role::server))
            return std::unexpected(fail_connection(kWsCloseProtocolError, role_ == Role::server
                                                                              ? "unmasked frame from a client"
                                                                              : "masked frame from a server"));
        if (is_control(h.opcode) && (!h.fin || h.length > 125))
            return std::unexpected(fail_connection(kWsCloseProtocolError, "fragmented or oversized control frame"));
        if (!is_control(h.opcode)) {
            if (h.opcode == 0 && !in_message)
                return std::unexpected(fail_connection(kWsCloseProtocolError, "continuation frame without a message"));
            if (h.opcode != 0 && in_message)
                return std::unexpected(fail_connection(kWsCloseProtocolError, "new message inside a fragmented one"));
            if (msg.data.size() + h.length > max_message_)
                return std::unexpected(
                    fail_connection(kWsCloseTooBig, fmt::format("message larger than {} bytes", max_message_)));
        }
        BERTH_TRY(fill(h.header_size + h.length));
        std::string payload = buf_.substr(h.header_size, h.length);
        buf_.erase(0, h.header_size + h.length);
        if (h.masked)
            for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ h.mask[i % 4]);

        switch (static_cast<WsOpcode>(h.opcode)) {
            case WsOpcode::ping: {
                std::lock_guard lock(write_mu_);
                if (!close_sent_) BERTH_TRY(write_frame(WsOpcode::pong, payload, false));
                continue;
            }
            case WsOpcode::pong:
                continue;
            case WsOpcode::close: {
                if (payload.size() == 1)
                    return std::unexpected(fail_connection(kWsCloseProtocolError, "close frame of one byte"));
                uint16_t code = kWsCloseNormal;
                if (payload.size() >= 2)
                    code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                 static_cast<uint8_t>(payload[1]));
                (void)close(code);  // the answer echoes the code (RFC 6455 section 5.5.1)
                return Message{.opcode = WsOpcode::close, .data = std::move(payload)};
            }
            default:
                break;
        }
        if (!in_message) {
            msg.opcode = static_cast<WsOpcode>(h.opcode);
            in_message = true;
        }
        msg.data += payload;
        if (h.fin) {
            if (msg.opcode == WsOpcode::text && !valid_utf8(msg.data))
                return std::unexpected(fail_connection(kWsCloseInvalidData, "text message is not valid UTF-8"));
            return msg;
        }
    }
}

Result<void> WebSocket::write_frame(WsOpcode op, std::span<const char> data, bool is_close) {
    if (close_sent_) return fail_errno(EPIPE, "websocket: write after close");
    if (is_close) close_sent_ = true;
    if (role_ == Role::server) {
        std::string header = encode_ws_frame_header(op, true, data.size(), nullptr);
        // One write for small frames: a header alone in its own segment costs a round of Nagle/delayed ACK.
        if (data.size() <= 4096) {
            header.append(data.data(), data.size());
            return conn_.write_all(header);
        }
        BERTH_TRY(conn_.write_all(header));
        return conn_.write_all(data);
    }
    std::array<uint8_t, 4> mask{};
    if (::getrandom(mask.data(), mask.size(), 0) != static_cast<ssize_t>(mask.size()))
        return fail_sys("websocket: getrandom for a masking key");
    std::string frame = encode_ws_frame_header(op, true, data.size(), &mask);
    size_t start = frame.size();
    frame.append(data.data(), data.size());
    for (size_t i = 0; i < data.size(); ++i) frame[start + i] = static_cast<char>(frame[start + i] ^ mask[i % 4]);
    return conn_.write_all(frame);
}

Result<void> WebSocket::write(WsOpcode op, std::span<const char> data) {
    std::lock_guard lock(write_mu_);
    return write_frame(op, data, false);
}

Result<void> WebSocket::close(uint16_t code, std::string_view reason) {
    std::lock_guard lock(write_mu_);
    if (close_sent_) return {};
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xff));
    payload.append(reason.substr(0, 123));
    return write_frame(WsOpcode::close, payload, true);
}

bool WebSocket::close_sent() const {
    std::lock_guard lock(write_mu_);
    return close_sent_;
}

}  // namespace berth::stream
