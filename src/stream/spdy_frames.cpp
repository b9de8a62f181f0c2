#include "stream/spdy_frames.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace berth::stream::spdy {

namespace {

// The dictionary of section 2.6.10.1: these names and values, each behind its 32-bit big-endian length, then a
// run of status codes, reason phrases, dates and common values without lengths.
constexpr std::string_view kDictionaryWords[] = {
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
    "keep-alive", "origin"};
constexpr std::string_view kDictionaryTail =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

void put32(std::string& out, uint32_t v) {
    char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out.append(b, 4);
}

uint32_t get32(const char* p) {
    auto u = [&](int i) { return uint32_t(static_cast<unsigned char>(p[i])); };
    return u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
}

void control_header(uint16_t type, uint8_t flags, uint32_t length, std::string& out) {
    put32(out, 0x80000000u | uint32_t(kVersion) << 16 | type);
    put32(out, uint32_t(flags) << 24 | (length & kMaxFrameLength));
}

std::string zlib_message(const z_stream& z, int rc) { return z.msg ? z.msg : fmt::format("zlib error {}", rc); }

}  // namespace

std::span<const unsigned char> header_dictionary() {
    static const std::string dict = [] {
        std::string d;
        for (auto w : kDictionaryWords) {
            put32(d, uint32_t(w.size()));
            d += w;
        }
        d += kDictionaryTail;
        return d;
    }();
    return {reinterpret_cast<const unsigned char*>(dict.data()), dict.size()};
}

std::string encode_header_block(const Headers& headers) {
    // Same name twice: one entry, values joined with NUL (section 2.6.10).
    std::vector<std::pair<std::string, std::string>> merged;
    for (const auto& [name, value] : headers) {
        std::string lower = name;
        std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        auto it = std::ranges::find_if(merged, [&](const auto& p) { return p.first == lower; });
        if (it == merged.end()) {
            merged.emplace_back(std::move(lower), value);
        } else {
            it->second.push_back('\0');
            it->second += value;
        }
    }
    std::string out;
    put32(out, uint32_t(merged.size()));
    for (const auto& [name, value] : merged) {
        put32(out, uint32_t(name.size()));
        out += name;
        put32(out, uint32_t(value.size()));
        out += value;
    }
    return out;
}

Result<Headers> decode_header_block(std::string_view block) {
    size_t pos = 0;
    auto read_len = [&](const char* what) -> Result<uint32_t> {
        if (block.size() - pos < 4) return fail("header block: truncated {}", what);
        uint32_t v = get32(block.data() + pos);
        pos += 4;
        return v;
    };
    BERTH_ASSIGN(uint32_t count, read_len("pair count"));
    // Every pair takes at least 8 bytes: a count beyond that is a lie, not a reason to reserve memory.
    if (count > (block.size() - pos) / 8) return fail("header block: {} pairs do not fit in {} bytes", count, block.size());
    Headers headers;
    headers.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
        BERTH_ASSIGN(uint32_t name_len, read_len("name length"));
        if (name_len == 0) return fail("header block: empty header name");
        if (block.size() - pos < name_len) return fail("header block: truncated name");
        std::string name(block.substr(pos, name_len));
        pos += name_len;
        if (std::ranges::any_of(name, [](unsigned char c) { return c >= 'A' && c <= 'Z'; }))
            return fail("header block: header name {:?} is not lower case", name);
        if (std::ranges::any_of(headers, [&](const auto& p) { return p.first == name; }))
            return fail("header block: header {:?} given twice", name);
        BERTH_ASSIGN(uint32_t value_len, read_len("value length"));
        if (block.size() - pos < value_len) return fail("header block: truncated value of {:?}", name);
        headers.emplace_back(std::move(name), std::string(block.substr(pos, value_len)));
        pos += value_len;
    }
    if (pos != block.size()) return fail("header block: {} bytes after the last pair", block.size() - pos);
    return headers;
}

HeaderCompressor::HeaderCompressor() {
    ok_ = deflateInit(&z_, Z_DEFAULT_COMPRESSION) == Z_OK;
    if (ok_) {
        auto dict = header_dictionary();
        ok_ = deflateSetDictionary(&z_, dict.data(), uInt(dict.size())) == Z_OK;
    }
}

HeaderCompressor::~HeaderCompressor() { deflateEnd(&z_); }

Result<std::string> HeaderCompressor::compress(std::string_view block) {
    if (!ok_) return fail("header compression: zlib context could not be set up");
    std::string out;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
    z_.avail_in = uInt(block.size());
    char chunk[4096];
    do {
        z_.next_out = reinterpret_cast<Bytef*>(chunk);
        z_.avail_out = sizeof(chunk);
        int rc = deflate(&z_, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            ok_ = false;
            return fail("header compression: {}", zlib_message(z_, rc));
        }
        out.append(chunk, sizeof(chunk) - z_.avail_out);
    } while (z_.avail_out == 0);
    return out;
}

HeaderDecompressor::HeaderDecompressor() { ok_ = inflateInit(&z_) == Z_OK; }

HeaderDecompressor::~HeaderDecompressor() { inflateEnd(&z_); }

Result<std::string> HeaderDecompressor::decompress(std::string_view compressed, size_t limit) {
    if (!ok_) return fail("header decompression: the zlib context failed earlier");
    std::string out;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    z_.avail_in = uInt(compressed.size());
    char chunk[4096];
    for (;;) {
        z_.next_out = reinterpret_cast<Bytef*>(chunk);
        z_.avail_out = sizeof(chunk);
        int rc = inflate(&z_, Z_SYNC_FLUSH);
        if (rc == Z_NEED_DICT) {
            auto dict = header_dictionary();
            if (z_.adler != adler32(adler32(0, nullptr, 0), dict.data(), uInt(dict.size())) ||
                inflateSetDictionary(&z_, dict.data(), uInt(dict.size())) != Z_OK) {
                ok_ = false;
                return fail("header decompression: the peer's zlib stream wants a dictionary that is not SPDY/3's");
            }
            continue;
        }
        if (rc == Z_STREAM_END) {
            // The peer ended its zlib stream: no later header block could be decoded.
            ok_ = false;
            return fail("header decompression: the peer ended the compression stream");
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            ok_ = false;
            return fail("header decompression: {}", zlib_message(z_, rc));
        }
        out.append(chunk, sizeof(chunk) - z_.avail_out);
        if (out.size() > limit) {
            ok_ = false;
            return fail("header decompression: header block larger than {} bytes", limit);
        }
        if (z_.avail_out != 0 && z_.avail_in == 0) break;  // everything consumed and flushed
        if (rc == Z_BUF_ERROR && z_.avail_out != 0) {
            ok_ = false;
            return fail("header decompression: truncated header block");
        }
    }
    return out;
}

void FrameEncoder::data_header(uint32_t stream_id, uint8_t flags, uint32_t length, std::string& out) {
    put32(out, stream_id & kMaxStreamId);
    put32(out, uint32_t(flags) << 24 | (length & kMaxFrameLength));
}

Result<void> FrameEncoder::encode(const Frame& frame, std::string& out) {
    auto header_frame = [&](FrameType type, uint8_t flags, std::string prefix, const Headers& h) -> Result<void> {
        BERTH_ASSIGN(std::string block, compressor_.compress(encode_header_block(h)));
        size_t length = prefix.size() + block.size();
        if (length > kMaxFrameLength) return fail("spdy: header block of {} bytes does not fit in a frame", length);
        control_header(uint16_t(type), flags, uint32_t(length), out);
        out += prefix;
        out += block;
        return {};
    };
    return std::visit(
        [&](const auto& f) -> Result<void> {
            using T = std::decay_t<decltype(f)>;
            std::string p;
            if constexpr (std::is_same_v<T, DataFrame>) {
                if (f.data.size() > kMaxFrameLength) return fail("spdy: data frame of {} bytes", f.data.size());
                data_header(f.stream_id, f.flags, uint32_t(f.data.size()), out);
                out += f.data;
            } else if constexpr (std::is_same_v<T, SynStream>) {
                put32(p, f.stream_id & kMaxStreamId);
                put32(p, f.associated_id & kMaxStreamId);
                p.push_back(char((f.priority & 0x7) << 5));
                p.push_back(char(f.slot));
                return header_frame(FrameType::syn_stream, f.flags, std::move(p), f.headers);
            } else if constexpr (std::is_same_v<T, SynReply>) {
                put32(p, f.stream_id & kMaxStreamId);
                return header_frame(FrameType::syn_reply, f.flags, std::move(p), f.headers);
            } else if constexpr (std::is_same_v<T, HeadersFrame>) {
                put32(p, f.stream_id & kMaxStreamId);
                return header_frame(FrameType::headers, f.flags, std::move(p), f.headers);
            } else if constexpr (std::is_same_v<T, RstStream>) {
                control_header(uint16_t(FrameType::rst_stream), 0, 8, out);
                put32(out, f.stream_id & kMaxStreamId);
                put32(out, f.status);
            } else if constexpr (std::is_same_v<T, Settings>) {
                control_header(uint16_t(FrameType::settings), f.flags, uint32_t(4 + 8 * f.entries.size()), out);
                put32(out, uint32_t(f.entries.size()));
                for (const auto& e : f.entries) {
                    put32(out, uint32_t(e.flags) << 24 | (e.id & 0xffffff));
                    put32(out, e.value);
                }
            } else if constexpr (std::is_same_v<T, Ping>) {
                control_header(uint16_t(FrameType::ping), 0, 4, out);
                put32(out, f.id);
            } else if constexpr (std::is_same_v<T, GoAway>) {
                control_header(uint16_t(FrameType::goaway), 0, 8, out);
                put32(out, f.last_good_stream_id & kMaxStreamId);
                put32(out, f.status);
            } else if constexpr (std::is_same_v<T, WindowUpdate>) {
                control_header(uint16_t(FrameType::window_update), 0, 8, out);
                put32(out, f.stream_id & kMaxStreamId);
                put32(out, f.delta & kMaxWindow);
            } else {
                return fail("spdy: cannot encode a control frame of unknown type {}", f.type);
            }
            return {};
        },
        frame);
}

void FrameDecoder::feed(std::span<const char> bytes) {
    std::span<char> room = space(bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    commit(bytes.size());
}

std::span<char> FrameDecoder::space(size_t min) {
    if (pos_ == end_) pos_ = end_ = 0;
    if (cap_ - end_ < min && pos_ > 0) {
        // Only the unparsed tail (at most one partial frame) moves to the front.
        std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
    }
    if (cap_ - end_ < min) {
        size_t cap = std::max({cap_ * 2, end_ + min, size_t(64 * 1024)});
        auto grown = std::make_unique_for_overwrite<char[]>(cap);
        if (end_) std::memcpy(grown.get(), buf_.get(), end_);
        buf_ = std::move(grown);
        cap_ = cap;
    }
    return {buf_.get() + end_, cap_ - end_};
}

bool FrameDecoder::partial_data_pending(size_t min_length) const {
    if (failed_ || buffered() < kFrameHeaderSize) return false;
    const char* h = buf_.get() + pos_;
    uint32_t w0 = get32(h), length = get32(h + 4) & kMaxFrameLength;
    return (w0 & 0x80000000u) == 0 && (w0 & kMaxStreamId) != 0 && length >= min_length &&
           buffered() < kFrameHeaderSize + length;
}

std::optional<FrameDecoder::PartialData> FrameDecoder::take_partial_data(size_t min_length, std::string& buffer) {
    if (!partial_data_pending(min_length)) return std::nullopt;
    const char* h = buf_.get() + pos_;
    uint32_t w0 = get32(h), w1 = get32(h + 4);
    PartialData p{.stream_id = w0 & kMaxStreamId,
                  .flags = uint8_t(w1 >> 24),
                  .length = w1 & kMaxFrameLength,
                  .data = std::move(buffer)};
    p.data.reserve(p.length);
    p.data.assign(h + kFrameHeaderSize, buffered() - kFrameHeaderSize);
    pos_ = end_ = 0;
    return p;
}

Result<std::optional<Frame>> FrameDecoder::next() {
    if (failed_) return fail("spdy: frame decoder failed earlier");
    if (buffered() < kFrameHeaderSize) return std::nullopt;
    const char* h = buf_.get() + pos_;
    uint32_t w0 = get32(h), w1 = get32(h + 4);
    bool control = (w0 & 0x80000000u) != 0;
    uint8_t flags = uint8_t(w1 >> 24);
    uint32_t length = w1 & kMaxFrameLength;
    if (control && length > kMaxControlFrameLength) {
        failed_ = true;
        return fail("spdy: control frame of {} bytes (limit {})", length, kMaxControlFrameLength);
    }
    if (buffered() < kFrameHeaderSize + length) return std::nullopt;
    std::string_view payload(h + kFrameHeaderSize, length);
    pos_ += kFrameHeaderSize + length;
    if (!control) {
        uint32_t id = w0 & kMaxStreamId;
        if (id == 0) {
            failed_ = true;
            return fail("spdy: data frame on stream 0");
        }
        return Frame{DataFrame{id, flags, std::string(payload)}};
    }
    auto r = parse_control(uint16_t((w0 >> 16) & 0x7fff), uint16_t(w0 & 0xffff), flags, payload);
    if (!r) {
        failed_ = true;
        return std::unexpected(std::move(r).error());
    }
    return std::move(*r);
}

Result<Headers> FrameDecoder::headers(std::string_view compressed) {
    BERTH_ASSIGN(std::string block, decompressor_.decompress(compressed));
    return decode_header_block(block);
}

Result<Frame> FrameDecoder::parse_control(uint16_t version, uint16_t type, uint8_t flags, std::string_view p) {
    if (version != kVersion) return fail("spdy: control frame of version {} (this is SPDY/3.1)", version);
    auto need = [&](size_t n, std::string_view name, bool exact) -> Result<void> {
        if (exact ? p.size() != n : p.size() < n)
            return fail("spdy: {} frame of {} bytes (expected {}{})", name, p.size(), exact ? "" : "at least ", n);
        return {};
    };
    auto stream_id = [&](size_t off, std::string_view name) -> Result<uint32_t> {
        uint32_t id = get32(p.data() + off) & kMaxStreamId;
        if (id == 0) return fail("spdy: {} frame on stream 0", name);
        return id;
    };
    switch (FrameType(type)) {
        case FrameType::syn_stream: {
            BERTH_TRY(need(10, "SYN_STREAM", false));
            SynStream f;
            BERTH_ASSIGN(f.stream_id, stream_id(0, "SYN_STREAM"));
            f.associated_id = get32(p.data() + 4) & kMaxStreamId;
            f.priority = uint8_t(static_cast<unsigned char>(p[8]) >> 5);
            f.slot = uint8_t(p[9]);
            f.flags = flags;
            BERTH_ASSIGN(f.headers, headers(p.substr(10)));
            return f;
        }
        case FrameType::syn_reply: {
            BERTH_TRY(need(4, "SYN_REPLY", false));
            SynReply f;
            BERTH_ASSIGN(f.stream_id, stream_id(0, "SYN_REPLY"));
            f.flags = flags;
            BERTH_ASSIGN(f.headers, headers(p.substr(4)));
            return f;
        }
        case FrameType::headers: {
            BERTH_TRY(need(4, "HEADERS", false));
            HeadersFrame f;
            BERTH_ASSIGN(f.stream_id, stream_id(0, "HEADERS"));
            f.flags = flags;
            BERTH_ASSIGN(f.headers, headers(p.substr(4)));
            return f;
        }
        case FrameType::rst_stream: {
            BERTH_TRY(need(8, "RST_STREAM", true));
            RstStream f;
            BERTH_ASSIGN(f.stream_id, stream_id(0, "RST_STREAM"));
            f.status = get32(p.data() + 4);
            if (f.status == 0) return fail("spdy: RST_STREAM with status 0 on stream {}", f.stream_id);
            return f;
        }
        case FrameType::settings: {
            BERTH_TRY(need(4, "SETTINGS", false));
            uint32_t n = get32(p.data());
            if ((p.size() - 4) / 8 < n || p.size() != 4 + size_t(n) * 8)
                return fail("spdy: SETTINGS frame of {} bytes with {} entries", p.size(), n);
            Settings f;
            f.flags = flags;
            f.entries.reserve(n);
            for (uint32_t i = 0; i < n; ++i) {
                uint32_t w = get32(p.data() + 4 + 8 * i);
                f.entries.push_back({uint8_t(w >> 24), w & 0xffffff, get32(p.data() + 8 + 8 * i)});
            }
            return f;
        }
        case FrameType::ping: {
            BERTH_TRY(need(4, "PING", true));
            return Ping{get32(p.data())};
        }
        case FrameType::goaway: {
            BERTH_TRY(need(8, "GOAWAY", true));
            return GoAway{get32(p.data()) & kMaxStreamId, get32(p.data() + 4)};
        }
        case FrameType::window_update: {
            BERTH_TRY(need(8, "WINDOW_UPDATE", true));
            WindowUpdate f{get32(p.data()) & kMaxStreamId, get32(p.data() + 4) & kMaxWindow};
            if (f.delta == 0) return fail("spdy: WINDOW_UPDATE of 0 on stream {}", f.stream_id);
            return f;
        }
    }
    return UnknownControl{type, flags, uint32_t(p.size())};
}

}  // namespace berth::stream::spdy
