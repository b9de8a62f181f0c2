// libFuzzer target: the streaming server's parsers of client bytes: WebSocket frames (read as a server, with
// kubelet's channel framing, binary and base64), and the resize stream's JSON objects.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "stream/remote_command.hpp"
#include "stream/websocket.hpp"
#include "stream/ws_channels.hpp"

namespace {

// A Conn whose peer sent `data` and then closed; writes go nowhere.
class BytesConn final : public berth::stream::Conn {
public:
    explicit BytesConn(std::string data) : data_(std::move(data)) {}
    berth::Result<size_t> read(std::span<char> buf) override {
        size_t n = std::min(buf.size(), data_.size() - off_);
        n = std::min<size_t>(n, 7 + off_ % 13);  // short reads: frames split anywhere
        std::copy_n(data_.data() + off_, n, buf.data());
        off_ += n;
        return n;
    }
    berth::Result<void> write_all(std::span<const char>) override { return {}; }
    void shutdown() override { off_ = data_.size(); }

private:
    std::string data_;
    size_t off_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string input(reinterpret_cast<const char*>(data), size);
    for (bool base64 : {false, true}) {
        BytesConn conn(input);
        berth::stream::WebSocket ws(conn, berth::stream::WebSocket::Role::server, {}, 1 << 20);
        berth::stream::WsChannels channels(ws, base64, !base64);
        for (int i = 0; i < 64; ++i) {
            auto f = channels.read();
            if (!f || f->kind == berth::stream::WsChannels::Frame::end) break;
        }
    }
    berth::stream::ResizeDecoder resize;
    (void)resize.feed(input);
    (void)berth::stream::base64_decode(input);
    return 0;
}
