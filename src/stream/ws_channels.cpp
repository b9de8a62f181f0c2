#include "stream/ws_channels.hpp"

#include "stream/protocol.hpp"

namespace berth::stream {

Result<void> WsChannels::write(uint8_t channel, std::span<const char> data) {
    if (base64_) {
        std::string msg(1, static_cast<char>('0' + channel));
        msg += base64_encode(std::string_view(data.data(), data.size()));
        return ws_.write(WsOpcode::text, std::span<const char>(msg.data(), msg.size()));
    }
    std::string msg;
    msg.reserve(data.size() + 1);
    msg.push_back(static_cast<char>(channel));
    msg.append(data.data(), data.size());
    return ws_.write(WsOpcode::binary, std::span<const char>(msg.data(), msg.size()));
}

Result<WsChannels::Frame> WsChannels::read() {
    for (;;) {
        auto r = ws_.read();
        if (!r) return std::unexpected(std::move(r).error());
        const WebSocket::Message& m = *r;
        if (m.opcode == WsOpcode::close) return Frame{};
        if (m.data.empty()) continue;
        auto first = static_cast<uint8_t>(m.data.front());
        if (close_signal_ && first == kChannelClose && m.opcode == WsOpcode::binary) {
            if (m.data.size() != 2)
                return fail("websocket: close signal with {} bytes after it (want 1: the channel)", m.data.size() - 1);
            return Frame{.kind = Frame::close_channel, .channel = static_cast<uint8_t>(m.data[1])};
        }
        Frame f{.kind = Frame::message};
        if (base64_) {
            if (m.opcode != WsOpcode::text) return fail("websocket: binary message in a base64 protocol");
            if (first < '0' || first > '9') return fail("websocket: channel byte 0x{:02x} is not a digit", first);
            f.channel = static_cast<uint8_t>(first - '0');
            BERTH_ASSIGN(f.data, base64_decode(std::string_view(m.data).substr(1)));
        } else {
            f.channel = first;
            f.data = m.data.substr(1);
        }
        return f;
    }
}

}  // namespace berth::stream
