// libFuzzer target for the SPDY/3.1 frame decoder (src/stream/spdy_frames): the bytes a streaming peer sends,
// header blocks through the zlib context included. Build and run (see CMakeLists.txt):
//   cmake -S . -B build-fuzz -G Ninja -DBERTH_FUZZ=ON && cmake --build build-fuzz -j2 --target spdy_frames_fuzz
//   build-fuzz/bin/spdy_frames_fuzz -max_total_time=60
//
// Beyond "no crash, no sanitizer report": the input is fed in pieces (sized by its first byte) and every frame
// that parses re-encodes into bytes that parse back to the same frame with a fresh encoder/decoder pair.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "stream/spdy_frames.hpp"

using namespace berth::stream::spdy;

namespace {

bool same(const Frame& a, const Frame& b) {
    if (a.index() != b.index()) return false;
    if (auto* x = std::get_if<DataFrame>(&a)) {
        auto& y = std::get<DataFrame>(b);
        return x->stream_id == y.stream_id && x->flags == y.flags && x->data == y.data;
    }
    if (auto* x = std::get_if<SynStream>(&a)) {
        auto& y = std::get<SynStream>(b);
        return x->stream_id == y.stream_id && x->associated_id == y.associated_id && x->priority == y.priority &&
               x->slot == y.slot && x->flags == y.flags && x->headers == y.headers;
    }
    if (auto* x = std::get_if<SynReply>(&a)) {
        auto& y = std::get<SynReply>(b);
        return x->stream_id == y.stream_id && x->flags == y.flags && x->headers == y.headers;
    }
    if (auto* x = std::get_if<HeadersFrame>(&a)) {
        auto& y = std::get<HeadersFrame>(b);
        return x->stream_id == y.stream_id && x->flags == y.flags && x->headers == y.headers;
    }
    if (auto* x = std::get_if<RstStream>(&a)) return x->stream_id == std::get<RstStream>(b).stream_id;
    if (auto* x = std::get_if<Ping>(&a)) return x->id == std::get<Ping>(b).id;
    if (auto* x = std::get_if<WindowUpdate>(&a)) return x->delta == std::get<WindowUpdate>(b).delta;
    if (auto* x = std::get_if<Settings>(&a)) return x->entries.size() == std::get<Settings>(b).entries.size();
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t piece = size_t(data[0]) + 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    FrameDecoder dec;
    FrameEncoder enc;
    FrameDecoder redec;
    for (size_t off = 0; off < in.size(); off += piece) {
        dec.feed(in.substr(off, piece));
        for (;;) {
            auto f = dec.next();
            if (!f) return 0;  // a protocol error: the session would end here
            if (!*f) break;
            if (std::holds_alternative<UnknownControl>(**f)) continue;
            std::string wire;
            if (!enc.encode(**f, wire)) std::abort();
            redec.feed(wire);
            auto back = redec.next();
            if (!back || !*back || !same(**f, **back)) std::abort();
        }
    }
    return 0;
}
