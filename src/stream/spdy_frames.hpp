// SPDY/3.1 frame codec: the wire format of every frame, header blocks, and the zlib contexts that compress them.
// Pure (no I/O, no threads): the session (spdy.cpp) owns one FrameEncoder and one FrameDecoder, and the fuzz target
// drives the decoder directly.
//
// Wire facts (SPDY/3.1 draft, section 2): every frame starts with 8 bytes. Control frames: C bit set, 15-bit version
// (3), 16-bit type, 8-bit flags, 24-bit length. Data frames: C bit clear, 31-bit stream id, 8-bit flags, 24-bit
// length. Header blocks are a 32-bit pair count and 32-bit length-prefixed names and values, compressed with zlib
// seeded with the SPDY/3 dictionary; one compression context per direction for the whole session, each block
// ended with a sync flush.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "stream/spdy.hpp"

namespace berth::stream::spdy {

inline constexpr uint16_t kVersion = 3;
inline constexpr size_t kFrameHeaderSize = 8;
inline constexpr uint32_t kMaxFrameLength = 0xffffff;     // 24-bit length field
inline constexpr uint32_t kMaxStreamId = 0x7fffffff;      // 31 bits
inline constexpr uint32_t kMaxWindow = 0x7fffffff;        // windows and deltas are 31-bit
inline constexpr uint32_t kDefaultWindow = 64 * 1024;     // initial stream and session window
// The receive windows this implementation announces (SETTINGS_INITIAL_WINDOW_SIZE for streams, a WINDOW_UPDATE of
// stream 0 for the session, both sent first thing), granted back a quarter at a time. With the 64 KiB default,
// every 32 KiB waited for a WINDOW_UPDATE round trip through both ends' threads, which held a forwarded port to a
// fraction of loopback speed. A stream buffers its window only while its reader stalls.
//   server (berthd): 4 MiB per stream, 16 MiB per session, which keep 1 MiB DATA frames flowing and bound what a
//     client can make berthd hold.
//   client (berthctl, the benchmarks): 16 MiB and 64 MiB. A client is the bulk receiver (exec output, port-forward
//     downloads); at 4 MiB berthd waited for the window before one DATA frame in ten of a port-forward download,
//     and the pod's side stalled meanwhile (+12% throughput with the larger window on a 2-core host). kubelet's
//     spdystream does no flow control at all, so berthd never waits on it.
struct RecvWindows {
    uint32_t stream;
    uint32_t session;
};
inline constexpr RecvWindows kServerRecvWindows{4 * 1024 * 1024, 16 * 1024 * 1024};
inline constexpr RecvWindows kClientRecvWindows{16 * 1024 * 1024, 64 * 1024 * 1024};
// Limits of this implementation: a control frame longer than this, or a header block that inflates past
// kMaxHeaderBlock, is a protocol error (kubelet's peers send a few hundred bytes).
inline constexpr uint32_t kMaxControlFrameLength = 1024 * 1024;
inline constexpr size_t kMaxHeaderBlock = 1024 * 1024;

enum class FrameType : uint16_t {
    syn_stream = 1,
    syn_reply = 2,
    rst_stream = 3,
    settings = 4,
    ping = 6,
    goaway = 7,
    headers = 8,
    window_update = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;             // SYN_STREAM, SYN_REPLY, HEADERS, data
inline constexpr uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM
inline constexpr uint8_t kFlagClearSettings = 0x01;   // SETTINGS

enum class SettingId : uint32_t {
    upload_bandwidth = 1,
    download_bandwidth = 2,
    round_trip_time = 3,
    max_concurrent_streams = 4,
    current_cwnd = 5,
    download_retrans_rate = 6,
    initial_window_size = 7,
    client_certificate_vector_size = 8,
};

enum class GoAwayStatus : uint32_t { ok = 0, protocol_error = 1, internal_error = 2 };

struct DataFrame {
    uint32_t stream_id = 0;
    uint8_t flags = 0;
    std::string data;
};
struct SynStream {
    uint32_t stream_id = 0;
    uint32_t associated_id = 0;
    uint8_t priority = 0;  // 3 bits, 0 highest
    uint8_t slot = 0;
    uint8_t flags = 0;
    Headers headers;
};
struct SynReply {
    uint32_t stream_id = 0;
    uint8_t flags = 0;
    Headers headers;
};
struct RstStream {
    uint32_t stream_id = 0;
    uint32_t status = 0;
};
struct Setting {
    uint8_t flags = 0;
    uint32_t id = 0;  // 24 bits
    uint32_t value = 0;
};
struct Settings {
    uint8_t flags = 0;
    std::vector<Setting> entries;
};
struct Ping {
    uint32_t id = 0;
};
struct GoAway {
    uint32_t last_good_stream_id = 0;
    uint32_t status = 0;
};
struct HeadersFrame {
    uint32_t stream_id = 0;
    uint8_t flags = 0;
    Headers headers;
};
struct WindowUpdate {
    uint32_t stream_id = 0;  // 0: the session window (SPDY/3.1)
    uint32_t delta = 0;
};
// A control frame of a type this implementation does not know; the spec says to ignore it.
struct UnknownControl {
    uint16_t type = 0;
    uint8_t flags = 0;
    uint32_t length = 0;
};

using Frame = std::variant<DataFrame, SynStream, SynReply, RstStream, Settings, Ping, GoAway, HeadersFrame,
                           WindowUpdate, UnknownControl>;

// The SPDY/3 header compression dictionary (section 2.6.10.1), 1423 bytes.
std::span<const unsigned char> header_dictionary();

// Header blocks without compression: count, then length-prefixed names and values (section 2.6.10).
// Names are written lower case; the same name twice is joined into one value with NUL separators.
std::string encode_header_block(const Headers& headers);
// Fails on truncation, trailing bytes, an empty or upper-case name, or a name given twice.
[[nodiscard]] Result<Headers> decode_header_block(std::string_view block);

// One direction's compression context (zlib with the SPDY dictionary, sync flush after each block).
class HeaderCompressor {
public:
    HeaderCompressor();
    ~HeaderCompressor();
    HeaderCompressor(const HeaderCompressor&) = delete;
    HeaderCompressor& operator=(const HeaderCompressor&) = delete;
    [[nodiscard]] Result<std::string> compress(std::string_view block);

private:
    z_stream z_{};
    bool ok_ = false;
};

class HeaderDecompressor {
public:
    HeaderDecompressor();
    ~HeaderDecompressor();
    HeaderDecompressor(const HeaderDecompressor&) = delete;
    HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;
    // Inflates one header block; at most `limit` bytes of output.
    [[nodiscard]] Result<std::string> decompress(std::string_view compressed, size_t limit = kMaxHeaderBlock);

private:
    z_stream z_{};
    bool ok_ = false;
};

// Serializes frames, compressing header blocks with its own context: frames that carry header blocks must reach
// the wire in the order they were encoded.
class FrameEncoder {
public:
    // Appends the wire form of `frame` to `out`.
    [[nodiscard]] Result<void> encode(const Frame& frame, std::string& out);
    // The 8-byte header of a data frame (the payload follows it).
    static void data_header(uint32_t stream_id, uint8_t flags, uint32_t length, std::string& out);

private:
    HeaderCompressor compressor_;
};

// Parses frames out of a byte stream, decompressing header blocks with its own context. Any error is a session
// error (the caller sends GOAWAY PROTOCOL_ERROR and ends the session): after it the decoder is unusable.
class FrameDecoder {
public:
    // Appends received bytes.
    void feed(std::span<const char> bytes);
    // Room for at least `min` more bytes, to read into directly (no copy through a buffer of the caller's);
    // commit() then counts the bytes received.
    [[nodiscard]] std::span<char> space(size_t min);
    void commit(size_t n) { end_ += n; }
    // The next complete frame, std::nullopt when more bytes are needed, or an error.
    [[nodiscard]] Result<std::optional<Frame>> next();
    // When the unparsed bytes are the start of a DATA frame of at least `min_length` bytes of payload: takes them
    // out of the decoder (header and the payload so far) so the caller can read the rest of the payload itself
    // (PartialData::length in all). std::nullopt otherwise, and for anything next() must reject.
    struct PartialData {
        uint32_t stream_id = 0;
        uint8_t flags = 0;
        size_t length = 0;
        std::string data;  // the payload's first bytes
    };
    // Whether take_partial_data(min_length, ...) would take a frame.
    bool partial_data_pending(size_t min_length) const;
    // `buffer` becomes PartialData::data (when a frame is taken): a recycled string whose capacity saves an
    // allocation.
    [[nodiscard]] std::optional<PartialData> take_partial_data(size_t min_length, std::string& buffer);
    // Bytes fed but not yet parsed.
    size_t buffered() const { return end_ - pos_; }

private:
    [[nodiscard]] Result<Frame> parse_control(uint16_t version, uint16_t type, uint8_t flags,
                                              std::string_view payload);
    [[nodiscard]] Result<Headers> headers(std::string_view compressed);

    std::unique_ptr<char[]> buf_;  // [pos_, end_) is unparsed
    size_t cap_ = 0, pos_ = 0, end_ = 0;
    HeaderDecompressor decompressor_;
    bool failed_ = false;
};

}  // namespace berth::stream::spdy
