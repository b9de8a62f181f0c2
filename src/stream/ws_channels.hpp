// Kubernetes' channel framing over WebSocket messages (k8s.io wsstream): every message starts with its channel
// number; in the base64 protocols the message is text, the channel an ASCII digit and the rest standard base64.
// With the v5 protocol a binary message [255, n] half-closes channel n.
//
// Thread-safety: read() on one thread; write() from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/error.hpp"
#include "stream/websocket.hpp"

namespace berth::stream {

class WsChannels {
public:
    WsChannels(WebSocket& ws, bool base64, bool close_signal) : ws_(ws), base64_(base64), close_signal_(close_signal) {}

    [[nodiscard]] Result<void> write(uint8_t channel, std::span<const char> data);

    struct Frame {
        enum Kind { message, close_channel, end } kind = end;
        uint8_t channel = 0;
        std::string data;
    };
    // The next frame; `end` once the peer closed the WebSocket. Empty messages are skipped; a message that is
    // not valid framing is an error.
    [[nodiscard]] Result<Frame> read();

    WebSocket& socket() { return ws_; }

private:
    WebSocket& ws_;
    bool base64_;
    bool close_signal_;
};

}  // namespace berth::stream
