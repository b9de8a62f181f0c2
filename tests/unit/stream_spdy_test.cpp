// SPDY/3.1: the frame codec (byte-exact frames, header compression with the SPDY/3 dictionary) and sessions over
// a socketpair (streams, flow control, half-close, RST, PING, GOAWAY, protocol errors, close waking every call).
#include <sys/socket.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <numeric>
#include <thread>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "stream/conn.hpp"
#include "stream/spdy.hpp"
#include "stream/spdy_frames.hpp"

namespace berth::stream::spdy {
namespace {

using namespace std::chrono_literals;

std::string unhex(std::string_view h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(char(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return out;
}

std::string encode(const Frame& f) {
    FrameEncoder enc;
    std::string out;
    EXPECT_TRUE(enc.encode(f, out));
    return out;
}

std::vector<Frame> decode_all(FrameDecoder& dec, std::string_view bytes) {
    dec.feed(bytes);
    std::vector<Frame> frames;
    for (;;) {
        auto r = dec.next();
        EXPECT_TRUE(r) << r.error().message();
        if (!r || !*r) break;
        frames.push_back(std::move(**r));
    }
    return frames;
}

TEST(SpdyFrames, DictionaryIsSpdy3s) {
    auto d = header_dictionary();
    ASSERT_EQ(d.size(), 1423u);
    std::string_view s(reinterpret_cast<const char*>(d.data()), d.size());
    EXPECT_EQ(s.substr(0, 11), std::string_view("\0\0\0\7options", 11));
    EXPECT_TRUE(s.ends_with("charset=iso-8859-1,utf-,*,enq=0."));
    EXPECT_NE(s.find(std::string_view("\0\0\0\x06origin100101201", 19)), std::string_view::npos);
    // The dictionary id a peer's zlib stream carries (FDICT) for this dictionary.
    EXPECT_EQ(adler32(adler32(0, nullptr, 0), d.data(), uInt(d.size())), 0xe3c6a7c2u);
}

TEST(SpdyFrames, ControlAndDataFramesByteExact) {
    EXPECT_EQ(encode(RstStream{1, uint32_t(RstStatus::cancel)}), unhex("80030003000000080000000100000005"));
    EXPECT_EQ(encode(Ping{1}), unhex("800300060000000400000001"));
    EXPECT_EQ(encode(GoAway{3, 1}), unhex("80030007000000080000000300000001"));
    EXPECT_EQ(encode(WindowUpdate{5, 0x10000}), unhex("80030009000000080000000500010000"));
    EXPECT_EQ(encode(Settings{0, {{0, uint32_t(SettingId::initial_window_size), 65536}}}),
              unhex("800300040000000c000000010000000700010000"));
    EXPECT_EQ(encode(DataFrame{1, kFlagFin, "hi"}), unhex("00000001010000026869"));
    EXPECT_EQ(encode_header_block({{"StreamType", "error"}}),
              unhex("000000010000000a73747265616d7479706500000005") + "error");
    EXPECT_EQ(encode_header_block({{"a", "1"}, {"a", "2"}}), unhex("000000010000000161000000033100") + "2");
}

TEST(SpdyFrames, ControlFramesRoundTrip) {
    std::vector<Frame> in = {RstStream{7, 3},
                             Ping{42},
                             GoAway{9, 0},
                             WindowUpdate{0, 1234},
                             Settings{1, {{1, 4, 100}, {0, 7, 1 << 20}}},
                             DataFrame{3, 0, std::string(70000, 'x')},
                             DataFrame{5, kFlagFin, ""}};
    FrameEncoder enc;
    std::string wire;
    for (const auto& f : in) ASSERT_TRUE(enc.encode(f, wire));
    FrameDecoder dec;
    auto out = decode_all(dec, wire);
    ASSERT_EQ(out.size(), in.size());
    EXPECT_EQ(std::get<RstStream>(out[0]).status, 3u);
    EXPECT_EQ(std::get<Ping>(out[1]).id, 42u);
    EXPECT_EQ(std::get<GoAway>(out[2]).last_good_stream_id, 9u);
    EXPECT_EQ(std::get<WindowUpdate>(out[3]).delta, 1234u);
    auto& st = std::get<Settings>(out[4]);
    ASSERT_EQ(st.entries.size(), 2u);
    EXPECT_EQ(st.flags, 1);
    EXPECT_EQ(st.entries[0].flags, 1);
    EXPECT_EQ(st.entries[1].id, 7u);
    EXPECT_EQ(st.entries[1].value, 1u << 20);
    EXPECT_EQ(std::get<DataFrame>(out[5]).data.size(), 70000u);
    EXPECT_EQ(std::get<DataFrame>(out[6]).flags, kFlagFin);
}

TEST(SpdyFrames, DecodesFramesCompressedByAnotherZlibUser) {
    // Made with Python's zlib (level 9, the SPDY/3 dictionary, a sync flush per block), as Go's framer does it:
    // SYN_STREAM 1 with port-forward headers, then SYN_REPLY 3 with FIN on the same compression context.
    std::string wire = unhex(
        "800300010000003d0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45e01c6061606100a4"
        "398b20d198094ade8c0600000000ffff"
        "800300020100001200000003c2aa19540e2512d60b000000ffff");
    FrameDecoder dec;
    auto frames = decode_all(dec, wire);
    ASSERT_EQ(frames.size(), 2u);
    auto& syn = std::get<SynStream>(frames[0]);
    EXPECT_EQ(syn.stream_id, 1u);
    EXPECT_EQ(syn.headers,
              (Headers{{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}}));
    auto& reply = std::get<SynReply>(frames[1]);
    EXPECT_EQ(reply.stream_id, 3u);
    EXPECT_EQ(reply.flags, kFlagFin);
    EXPECT_EQ(reply.headers, (Headers{{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}}));
}

TEST(SpdyFrames, HeaderCompressionSharesOneContextAcrossFrames) {
    FrameEncoder enc;
    FrameDecoder dec;
    std::vector<size_t> sizes;
    std::string all;
    for (uint32_t i = 0; i < 300; ++i) {
        Headers h = {{"streamtype", i % 2 ? "stdout" : "stderr"}, {"port", std::to_string(8000 + i % 7)},
                     {"requestid", std::to_string(i)}, {"x-long", std::string(200 + i, char('a' + i % 26))}};
        std::string wire;
        ASSERT_TRUE(enc.encode(SynStream{2 * i + 1, 0, 0, 0, 0, h}, wire));
        sizes.push_back(wire.size());
        all += wire;
    }
    // Byte by byte: the decoder must cope with any split.
    size_t n = 0;
    for (size_t off = 0; off < all.size(); off += 7) {
        dec.feed(std::string_view(all).substr(off, 7));
        for (;;) {
            auto r = dec.next();
            ASSERT_TRUE(r) << r.error().message();
            if (!*r) break;
            auto& syn = std::get<SynStream>(**r);
            EXPECT_EQ(syn.stream_id, 2 * n + 1);
            EXPECT_EQ(syn.headers[2].second, std::to_string(n));
            EXPECT_EQ(syn.headers[3].second.size(), 200 + n);
            ++n;
        }
    }
    EXPECT_EQ(n, 300u);
    // The second block repeats most of the first: with a shared context it costs far less.
    EXPECT_LT(sizes[2], sizes[0] / 2);
}

TEST(SpdyFrames, RejectsMalformedFrames) {
    auto fails = [](std::string wire) {
        FrameDecoder dec;
        dec.feed(wire);
        auto r = dec.next();
        return !r;
    };
    EXPECT_TRUE(fails(unhex("800200060000000400000001")));  // version 2
    EXPECT_TRUE(fails(unhex("8003000300000004000000010")));  // RST_STREAM too short
    EXPECT_TRUE(fails(unhex("8003000300000008000000010000000000")));  // RST_STREAM status 0
    EXPECT_TRUE(fails(unhex("80030004000000080000000200000007")));  // SETTINGS count beyond length
    EXPECT_TRUE(fails(unhex("0000000001000000")));  // data on stream 0
    EXPECT_TRUE(fails(unhex("80030009000000080000000100000000")));  // WINDOW_UPDATE of 0
    EXPECT_TRUE(fails(unhex("80030001ff000000")));  // control frame over the size limit
    EXPECT_TRUE(fails(unhex("800300010000000e0000000100000000000078f9e3c6")));  // truncated zlib stream
    EXPECT_TRUE(fails(unhex("800300020000000c00000001deadbeefdeadbeef")));  // not zlib
    EXPECT_FALSE(decode_header_block(unhex("00000001000000014100000000")));  // upper case
    EXPECT_FALSE(decode_header_block(unhex("000000010000000000000000")));  // empty name
    EXPECT_FALSE(decode_header_block(unhex("00000002000000016100000000000000016100000000")));  // twice
    EXPECT_FALSE(decode_header_block(unhex("ffffffff")));  // count beyond the block
    EXPECT_FALSE(decode_header_block(unhex("0000000000")));  // trailing byte

    // Unknown control types are skipped, and what follows still parses.
    FrameDecoder dec;
    auto frames = decode_all(dec, unhex("8003000a00000003616263") + unhex("800300060000000400000002"));
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(std::get<UnknownControl>(frames[0]).type, 10);
    EXPECT_EQ(std::get<Ping>(frames[1]).id, 2u);
}

TEST(SpdyFrames, DecompressionIsBounded) {
    // A header block that inflates past the limit is refused, not allocated.
    HeaderCompressor comp;
    auto big = comp.compress(std::string(3 * 1024 * 1024, 'a'));
    ASSERT_TRUE(big);
    HeaderDecompressor dec;
    auto r = dec.decompress(*big);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("larger than"), std::string::npos);
}

// ---- sessions ----

struct SocketPair {
    UniqueFd a, b;
    SocketPair() {
        int fds[2];
        EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
    }
};

struct Pair {
    std::unique_ptr<Session> client, server;
    Pair() {
        SocketPair sp;
        auto c = Session::start(plain_conn(std::move(sp.a)), Session::Role::client);
        auto s = Session::start(plain_conn(std::move(sp.b)), Session::Role::server);
        EXPECT_TRUE(c && s);
        client = std::move(*c);
        server = std::move(*s);
    }
};

// Opens a stream from the client and accepts it on the server: (client's end, server's end); null on failure.
std::pair<std::shared_ptr<Stream>, std::shared_ptr<Stream>> open_accepted(Pair& p) {
    auto accepted = std::async(std::launch::async, [&] { return p.server->accept(5s); });
    auto cs = p.client->open({{"streamtype", "data"}});
    auto ss = accepted.get();
    EXPECT_TRUE(cs && ss);
    if (!cs || !ss) return {};
    return {*cs, *ss};
}

Result<std::string> read_all(Stream& s) {
    std::string out;
    char buf[32 * 1024];
    for (;;) {
        BERTH_ASSIGN(size_t n, s.read(buf));
        if (n == 0) return out;
        out.append(buf, n);
    }
}

std::string pattern(size_t n, uint32_t seed) {
    std::string s(n, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = char(x >> 16);
    }
    return s;
}

TEST(SpdySession, OpenAcceptExchangeAndHalfClose) {
    Pair p;
    auto accepted = std::async(std::launch::async, [&] { return p.server->accept(5s); });
    auto cs = p.client->open({{"streamtype", "stdin"}, {"Port", "80"}});
    ASSERT_TRUE(cs) << cs.error().message();
    auto ss = accepted.get();
    ASSERT_TRUE(ss) << ss.error().message();
    EXPECT_EQ((*cs)->id(), 1u);  // client ids are odd
    EXPECT_EQ((*ss)->id(), 1u);
    EXPECT_EQ((*ss)->header("streamtype"), "stdin");
    EXPECT_EQ((*ss)->header("port"), "80");  // names travel lower case
    EXPECT_EQ((*ss)->header("absent"), "");

    ASSERT_TRUE((*cs)->write(std::string_view("hello")));
    ASSERT_TRUE((*cs)->close_write());
    ASSERT_TRUE((*cs)->close_write());  // idempotent
    EXPECT_FALSE((*cs)->write(std::string_view("late")));
    auto got = read_all(**ss);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(*got, "hello");
    // The other direction is still open after the client's FIN.
    ASSERT_TRUE((*ss)->write(std::string_view("world")));
    ASSERT_TRUE((*ss)->close_write());
    auto back = read_all(**cs);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, "world");

    auto second = p.client->open({{"streamtype", "stdout"}});
    ASSERT_TRUE(second);
    EXPECT_EQ((*second)->id(), 3u);
}

TEST(SpdySession, TenMegabytesEachWayWithFlowControl) {
    Pair p;
    auto [c, ss] = open_accepted(p);
    ASSERT_TRUE(c && ss);
    const size_t size = 10 * 1024 * 1024;
    std::string up = pattern(size, 1), down = pattern(size, 2);
    auto writer = [](std::shared_ptr<Stream> s, const std::string& data) {
        // Odd-sized writes, so frames and window updates do not line up with anything.
        for (size_t off = 0; off < data.size(); off += 100003) {
            if (!s->write(std::string_view(data).substr(off, 100003))) return false;
        }
        return bool(s->close_write());
    };
    auto w1 = std::async(std::launch::async, writer, c, std::cref(up));
    auto w2 = std::async(std::launch::async, writer, ss, std::cref(down));
    auto r1 = std::async(std::launch::async, [&] { return read_all(*ss); });
    auto r2 = read_all(*c);
    EXPECT_TRUE(w1.get());
    EXPECT_TRUE(w2.get());
    auto got_up = r1.get();
    ASSERT_TRUE(got_up && r2);
    EXPECT_TRUE(*got_up == up);
    EXPECT_TRUE(*r2 == down);
}

TEST(SpdySession, SlowReaderBlocksTheWriter) {
    Pair p;
    auto [c, ss] = open_accepted(p);
    ASSERT_TRUE(c && ss);
    std::atomic<size_t> written{0};
    const size_t total = 4 * 1024 * 1024;
    auto w = std::async(std::launch::async, [&] {
        std::string chunk(4096, 'z');
        for (size_t off = 0; off < total; off += chunk.size()) {
            if (!c->write(chunk)) return false;
            written += chunk.size();
        }
        return bool(c->close_write());
    });
    std::this_thread::sleep_for(300ms);
    // Nothing read yet: the writer stops at the stream's window (the one the reader announced).
    EXPECT_LE(written.load(), size_t(kServerRecvWindows.stream));
    EXPECT_GT(written.load(), 0u);
    auto got = read_all(*ss);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->size(), total);
    EXPECT_TRUE(w.get());
}

TEST(SpdySession, ResetEndsTheStreamOnBothSides) {
    Pair p;
    auto [c, ss] = open_accepted(p);
    ASSERT_TRUE(c && ss);
    auto blocked_read = std::async(std::launch::async, [&] {
        char b[10];
        return c->read(b);
    });
    std::this_thread::sleep_for(50ms);
    ss->reset(RstStatus::cancel);
    auto r = blocked_read.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ECONNRESET);
    EXPECT_NE(r.error().message().find("CANCEL"), std::string::npos) << r.error().message();
    char b[10];
    EXPECT_FALSE(ss->read(b));
    EXPECT_FALSE(ss->write(std::string_view("x")));
    // The session itself is unharmed.
    EXPECT_TRUE(p.client->ping());
}

TEST(SpdySession, DataBeforeTheResetIsStillRead) {
    // kubelet resets every stream before closing the connection: output sent before that must not be lost.
    Pair p;
    auto [c, ss] = open_accepted(p);
    ASSERT_TRUE(c && ss);
    ASSERT_TRUE(ss->write(std::string_view("last words")));
    ss->reset(RstStatus::cancel);
    p.server->close();
    p.client->wait_closed();
    char b[64];
    auto n = c->read(b);
    ASSERT_TRUE(n);
    EXPECT_EQ(std::string_view(b, *n), "last words");
    auto after = c->read(b);
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().code(), ECONNRESET);
}

TEST(SpdySession, PingBothWays) {
    Pair p;
    auto rtt = p.client->ping();
    ASSERT_TRUE(rtt) << rtt.error().message();
    EXPECT_LT(*rtt, std::chrono::microseconds(5s));
    EXPECT_TRUE(p.server->ping());
    EXPECT_TRUE(p.client->ping());
}

TEST(SpdySession, GoAwayRefusesNewStreamsAndLetsOpenOnesFinish) {
    Pair p;
    auto [c, ss] = open_accepted(p);
    ASSERT_TRUE(c && ss);
    p.server->goaway();
    EXPECT_FALSE(p.server->accept(100ms));
    // Wait until the client saw the GOAWAY: a ping after it round-trips behind it.
    ASSERT_TRUE(p.client->ping());
    auto refused = p.client->open({});
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("GOAWAY"), std::string::npos);
    // The open stream still works both ways.
    ASSERT_TRUE(c->write(std::string_view("still")));
    ASSERT_TRUE(c->close_write());
    auto got = read_all(*ss);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, "still");
    EXPECT_FALSE(p.client->closed());
    ASSERT_TRUE(ss->close_write());
    auto back = read_all(*c);
    ASSERT_TRUE(back);
    // Its last stream done, the client's session ends.
    p.client->wait_closed();
    EXPECT_TRUE(p.client->closed());
}

TEST(SpdySession, ManyConcurrentStreams) {
    Pair p;
    const int kStreams = 64;
    // Server: echo every stream.
    std::thread server([&] {
        std::vector<std::thread> echoes;
        for (int i = 0; i < kStreams; ++i) {
            auto s = p.server->accept(10s);
            if (!s) break;
            echoes.emplace_back([s = *s] {
                char buf[8192];
                for (;;) {
                    auto n = s->read(buf);
                    if (!n || *n == 0) break;
                    if (!s->write(std::span<const char>(buf, *n))) break;
                }
                (void)s->close_write();
            });
        }
        for (auto& t : echoes) t.join();
    });
    std::vector<std::future<bool>> clients;
    for (int i = 0; i < kStreams; ++i) {
        clients.push_back(std::async(std::launch::async, [&, i] {
            auto s = p.client->open({{"requestid", std::to_string(i)}});
            if (!s) return false;
            std::string data = pattern(200000 + size_t(i) * 1000, uint32_t(i));
            auto reader = std::async(std::launch::async, [&] { return read_all(**s); });
            bool ok = bool((*s)->write(data)) && bool((*s)->close_write());
            auto got = reader.get();
            return ok && got && *got == data;
        }));
    }
    int ok = 0;
    for (auto& f : clients) ok += f.get();
    server.join();
    EXPECT_EQ(ok, kStreams);
}

// A raw peer over a socketpair, speaking frames by hand.
struct RawPeer {
    std::unique_ptr<Session> session;
    UniqueFd fd;
    FrameEncoder enc;
    FrameDecoder dec;
    explicit RawPeer(Session::Role role) {
        SocketPair sp;
        auto s = Session::start(plain_conn(std::move(sp.a)), role);
        EXPECT_TRUE(s);
        session = std::move(*s);
        fd = std::move(sp.b);
    }
    void send(const Frame& f) {
        std::string wire;
        ASSERT_TRUE(enc.encode(f, wire));
        ASSERT_EQ(::write(fd.get(), wire.data(), wire.size()), ssize_t(wire.size()));
    }
    void send_raw(std::string_view bytes) { ASSERT_EQ(::write(fd.get(), bytes.data(), bytes.size()), ssize_t(bytes.size())); }
    // The session's WINDOW_UPDATE of stream 0 that follows its SETTINGS (growing the session window), once seen.
    std::optional<uint32_t> session_grant;
    // The next frame from the session, or nullopt on EOF; the session's opening window grant is taken aside.
    std::optional<Frame> next() {
        for (;;) {
            auto r = dec.next();
            EXPECT_TRUE(r);
            if (!r) return std::nullopt;
            if (*r) {
                auto* w = std::get_if<WindowUpdate>(&**r);
                if (w && w->stream_id == 0 && !session_grant) {
                    session_grant = w->delta;
                    continue;
                }
                return std::move(**r);
            }
            char buf[65536];
            ssize_t n = ::read(fd.get(), buf, sizeof(buf));
            if (n <= 0) return std::nullopt;
            dec.feed(std::span<const char>(buf, size_t(n)));
        }
    }
};

TEST(SpdySession, GarbageFromThePeerGetsGoAwayAndEndsTheSession) {
    RawPeer peer(Session::Role::server);
    auto first = peer.next();
    ASSERT_TRUE(first);
    EXPECT_TRUE(std::holds_alternative<Settings>(*first));  // the session announces its window first
    peer.send_raw(unhex("80020001000000040000000100000000"));  // SPDY/2 control frame
    auto goaway = peer.next();
    ASSERT_TRUE(goaway);
    ASSERT_TRUE(std::holds_alternative<GoAway>(*goaway));
    EXPECT_EQ(std::get<GoAway>(*goaway).status, uint32_t(GoAwayStatus::protocol_error));
    EXPECT_FALSE(peer.next());  // then the connection closes
    peer.session->wait_closed();
    EXPECT_TRUE(peer.session->closed());
    EXPECT_FALSE(peer.session->accept(10ms));
}

TEST(SpdySession, StreamIdsMustFollowTheRoles) {
    // A client may not open an even stream id on a server.
    RawPeer peer(Session::Role::server);
    ASSERT_TRUE(peer.next());
    peer.send(SynStream{2, 0, 0, 0, 0, {}});
    auto f = peer.next();
    ASSERT_TRUE(f && std::holds_alternative<GoAway>(*f));
    EXPECT_EQ(std::get<GoAway>(*f).status, uint32_t(GoAwayStatus::protocol_error));

    // Nor reuse or go back below an id it used.
    RawPeer peer2(Session::Role::server);
    ASSERT_TRUE(peer2.next());
    peer2.send(SynStream{5, 0, 0, 0, 0, {}});
    auto reply = peer2.next();
    ASSERT_TRUE(reply && std::holds_alternative<SynReply>(*reply));
    EXPECT_EQ(std::get<SynReply>(*reply).stream_id, 5u);
    peer2.send(SynStream{3, 0, 0, 0, 0, {}});
    auto g = peer2.next();
    ASSERT_TRUE(g && std::holds_alternative<GoAway>(*g));
    EXPECT_EQ(std::get<GoAway>(*g).last_good_stream_id, 5u);
}

TEST(SpdySession, PeerWithoutFlowControlIsNotWaitedFor) {
    // moby/spdystream (kubelet's peer) sends neither SETTINGS nor WINDOW_UPDATE: writing more than a window to it
    // must not stall. It answers pings and replies to streams.
    RawPeer peer(Session::Role::server);
    ASSERT_TRUE(peer.next());  // SETTINGS
    peer.send(SynStream{1, 0, 0, 0, 0, {{"streamtype", "stdout"}}});
    ASSERT_TRUE(peer.next());  // SYN_REPLY
    auto s = peer.session->accept(5s);
    ASSERT_TRUE(s);
    std::string data = pattern(1024 * 1024, 9);
    auto w = std::async(std::launch::async, [&] { return (*s)->write(data) && (*s)->close_write(); });
    std::string got;
    bool fin = false;
    while (!fin) {
        auto f = peer.next();
        ASSERT_TRUE(f);
        if (auto* d = std::get_if<DataFrame>(&*f)) {
            got += d->data;
            fin = d->flags & kFlagFin;
        }
    }
    EXPECT_TRUE(w.get());
    EXPECT_TRUE(got == data);

    // And data beyond our window from such a peer is taken, not refused.
    std::string big = pattern(300000, 3);
    peer.send(DataFrame{1, kFlagFin, big});
    auto in = read_all(**s);
    ASSERT_TRUE(in) << in.error().message();
    EXPECT_TRUE(*in == big);
}

TEST(SpdySession, PeerOverrunningTheStreamWindowResetsTheStream) {
    // A peer that does flow control (it sent SETTINGS) and then sends past the stream window we announced breaks
    // that stream: RST_STREAM FLOW_CONTROL_ERROR (SPDY/3.1 2.6.8); the session goes on.
    RawPeer peer(Session::Role::server);
    ASSERT_TRUE(peer.next());
    peer.send(Settings{0, {{0, uint32_t(SettingId::initial_window_size), 65536}}});
    peer.send(SynStream{1, 0, 0, 0, 0, {}});
    ASSERT_TRUE(peer.next());  // SYN_REPLY
    peer.send(DataFrame{1, 0, std::string(kServerRecvWindows.stream, 'x')});  // exactly the window: fine
    peer.send(DataFrame{1, 0, "y"});                                  // one byte too many
    auto f = peer.next();
    ASSERT_TRUE(f);
    auto* rst = std::get_if<RstStream>(&*f);
    ASSERT_TRUE(rst) << "expected RST_STREAM";
    EXPECT_EQ(rst->stream_id, 1u);
    EXPECT_EQ(rst->status, uint32_t(RstStatus::flow_control_error));
    EXPECT_FALSE(peer.session->closed());
}

TEST(SpdySession, PeerOverrunningTheSessionWindowIsAnError) {
    // Past the session window we announced (its WINDOW_UPDATE of stream 0 after SETTINGS), summed over streams that
    // each stay inside their own window: a session error, GOAWAY PROTOCOL_ERROR.
    RawPeer peer(Session::Role::server);
    ASSERT_TRUE(peer.next());
    peer.send(Settings{0, {{0, uint32_t(SettingId::initial_window_size), 65536}}});
    const uint32_t streams = kServerRecvWindows.session / kServerRecvWindows.stream + 1;
    for (uint32_t i = 0; i < streams; ++i) {
        uint32_t id = 1 + 2 * i;
        peer.send(SynStream{id, 0, 0, 0, 0, {}});
        peer.send(DataFrame{id, 0, std::string(kServerRecvWindows.stream, 'x')});
    }
    for (;;) {
        auto f = peer.next();
        ASSERT_TRUE(f) << "no GOAWAY before the end";
        if (auto* g = std::get_if<GoAway>(&*f)) {
            EXPECT_EQ(g->status, uint32_t(GoAwayStatus::protocol_error));
            break;
        }
    }
    // The session had announced its window right after SETTINGS.
    ASSERT_TRUE(peer.session_grant);
    EXPECT_EQ(*peer.session_grant, kServerRecvWindows.session - kDefaultWindow);
    peer.session->wait_closed();
}

TEST(SpdySession, EachRoleAnnouncesItsReceiveWindows) {
    for (auto role : {Session::Role::server, Session::Role::client}) {
        SCOPED_TRACE(role == Session::Role::server ? "server" : "client");
        const RecvWindows want = role == Session::Role::server ? kServerRecvWindows : kClientRecvWindows;
        RawPeer peer(role);
        auto first = peer.next();  // SETTINGS first thing, then the session's WINDOW_UPDATE
        ASSERT_TRUE(first);
        auto* settings = std::get_if<Settings>(&*first);
        ASSERT_TRUE(settings) << "expected SETTINGS first";
        ASSERT_EQ(settings->entries.size(), 1u);
        EXPECT_EQ(settings->entries[0].id, uint32_t(SettingId::initial_window_size));
        EXPECT_EQ(settings->entries[0].value, want.stream);
        peer.send(Ping{role == Session::Role::server ? 1u : 2u});
        ASSERT_TRUE(peer.next());  // the PING's answer: the WINDOW_UPDATE before it was taken aside
        ASSERT_TRUE(peer.session_grant);
        EXPECT_EQ(*peer.session_grant, want.session - kDefaultWindow);
    }
    EXPECT_GT(kClientRecvWindows.stream, kServerRecvWindows.stream);
}

TEST(SpdySession, RefusedOpenNamesTheStatus) {
    RawPeer peer(Session::Role::client);  // the raw side plays the server
    ASSERT_TRUE(peer.next());
    auto opened = std::async(std::launch::async, [&] { return peer.session->open({{"streamtype", "error"}}); });
    auto syn = peer.next();
    ASSERT_TRUE(syn && std::holds_alternative<SynStream>(*syn));
    EXPECT_EQ(std::get<SynStream>(*syn).headers, (Headers{{"streamtype", "error"}}));
    peer.send(RstStream{std::get<SynStream>(*syn).stream_id, uint32_t(RstStatus::refused_stream)});
    auto r = opened.get();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("REFUSED_STREAM"), std::string::npos) << r.error().message();
}

TEST(SpdySession, CloseWakesEveryBlockedCall) {
    RawPeer peer(Session::Role::client);  // a peer that answers nothing
    ASSERT_TRUE(peer.next());
    // A stream that got its reply, and whose window the peer exhausted by announcing a window of 0.
    peer.send(Settings{0, {{0, uint32_t(SettingId::initial_window_size), 0}}});
    auto& s = peer.session;
    auto open1 = std::async(std::launch::async, [&] { return s->open({}); });
    auto syn = peer.next();
    ASSERT_TRUE(syn);
    peer.send(SynReply{std::get<SynStream>(*syn).stream_id, 0, {}});
    auto st = open1.get();
    ASSERT_TRUE(st);
    auto blocked_read = std::async(std::launch::async, [&] {
        char b[4];
        return (*st)->read(b).has_value();
    });
    auto blocked_write = std::async(std::launch::async, [&] { return (*st)->write(std::string_view("x")).has_value(); });
    auto blocked_accept = std::async(std::launch::async, [&] { return s->accept(-1ms).has_value(); });
    auto blocked_open = std::async(std::launch::async, [&] { return s->open({}).has_value(); });
    auto blocked_ping = std::async(std::launch::async, [&] { return s->ping().has_value(); });
    auto blocked_wait = std::async(std::launch::async, [&] {
        s->wait_closed();
        return true;
    });
    std::this_thread::sleep_for(200ms);
    for (auto* f : {&blocked_read, &blocked_write, &blocked_accept, &blocked_open, &blocked_ping})
        EXPECT_EQ(f->wait_for(0s), std::future_status::timeout);
    s->close();
    EXPECT_FALSE(blocked_read.get());
    EXPECT_FALSE(blocked_write.get());
    EXPECT_FALSE(blocked_accept.get());
    EXPECT_FALSE(blocked_open.get());
    EXPECT_FALSE(blocked_ping.get());
    EXPECT_TRUE(blocked_wait.get());
    EXPECT_TRUE(s->closed());
}

TEST(SpdySession, PeerEofEndsTheSession) {
    RawPeer peer(Session::Role::server);
    ASSERT_TRUE(peer.next());
    peer.fd.reset();
    peer.session->wait_closed();
    auto r = peer.session->accept(10ms);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("closed by the peer"), std::string::npos) << r.error().message();
}

TEST(SpdySession, BufferedBytesAfterTheUpgradeAreTheFirstFrames) {
    SocketPair sp;
    FrameEncoder enc;
    std::string early;
    ASSERT_TRUE(enc.encode(Settings{0, {}}, early));
    ASSERT_TRUE(enc.encode(SynStream{1, 0, 0, 0, 0, {{"streamtype", "resize"}}}, early));
    auto s = Session::start(plain_conn(std::move(sp.a)), Session::Role::server, early);
    ASSERT_TRUE(s);
    auto st = (*s)->accept(5s);
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ((*st)->header("streamtype"), "resize");
}

// A connection that hides its socket, as TLS does: write_from must copy instead of splicing.
class NoSpliceConn final : public Conn {
public:
    explicit NoSpliceConn(std::unique_ptr<Conn> c) : c_(std::move(c)) {}
    Result<size_t> read(std::span<char> buf) override { return c_->read(buf); }
    Result<void> write_all(std::span<const char> buf) override { return c_->write_all(buf); }
    void shutdown() override { c_->shutdown(); }

private:
    std::unique_ptr<Conn> c_;
};

// Feeds `data` into a socket and closes it; the server's stream sends it all with write_from, the client takes it
// with read_chunk.
void relay_through_write_from(bool splice) {
    SocketPair sp, source;
    std::unique_ptr<Conn> server_conn = plain_conn(std::move(sp.b));
    if (!splice) server_conn = std::make_unique<NoSpliceConn>(std::move(server_conn));
    auto c = Session::start(plain_conn(std::move(sp.a)), Session::Role::client);
    auto s = Session::start(std::move(server_conn), Session::Role::server);
    ASSERT_TRUE(c && s);
    auto accepted = std::async(std::launch::async, [&] { return (*s)->accept(5s); });
    auto cs = (*c)->open({{"streamtype", "data"}});
    ASSERT_TRUE(cs) << cs.error().message();
    auto ss = accepted.get();
    ASSERT_TRUE(ss);
    const std::string data = pattern(6 * 1024 * 1024 + 12345, 7);
    std::thread feeder([&] {
        EXPECT_TRUE(write_all(source.a.get(), data));
        source.a.reset();
    });
    auto sender = std::async(std::launch::async, [&]() -> Result<size_t> {
        size_t total = 0;
        for (;;) {
            BERTH_ASSIGN(size_t n, (*ss)->write_from(source.b.get(), 100000));
            if (n == 0) break;
            EXPECT_LE(n, 100000u);
            total += n;
        }
        BERTH_TRY((*ss)->close_write());
        return total;
    });
    std::string got, chunk;
    size_t chunks = 0;
    for (;;) {
        auto n = (*cs)->read_chunk(chunk);
        ASSERT_TRUE(n) << n.error().message();
        if (*n == 0) break;
        ASSERT_EQ(*n, chunk.size());
        got += chunk;
        ++chunks;
    }
    feeder.join();
    auto sent = sender.get();
    ASSERT_TRUE(sent) << sent.error().message();
    EXPECT_EQ(*sent, data.size());
    EXPECT_TRUE(got == data) << "got " << got.size() << " bytes of " << data.size();
    EXPECT_GT(chunks, 1u);
}

TEST(SpdySession, WriteFromSplicesASocketsBytesIntoDataFrames) { relay_through_write_from(true); }

TEST(SpdySession, WriteFromCopiesWhereTheConnectionCannotSplice) { relay_through_write_from(false); }

TEST(SpdySession, WriteFromAStreamThatWasResetFails) {
    Pair p;
    auto [cs, ss] = open_accepted(p);
    ASSERT_TRUE(cs && ss);
    cs->reset(RstStatus::cancel);
    SocketPair source;
    ASSERT_TRUE(write_all(source.a.get(), "some bytes"));
    // The RST arrives asynchronously: writes fail once it did.
    Result<size_t> r = 0;
    for (int i = 0; i < 200 && r; ++i) {
        r = ss->write_from(source.b.get(), 4);
        if (r) std::this_thread::sleep_for(5ms);
    }
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ECONNRESET) << r.error().message();
}

TEST(SpdySession, ReadChunkAfterAPartialReadGivesTheRest) {
    Pair p;
    auto [cs, ss] = open_accepted(p);
    ASSERT_TRUE(cs && ss);
    ASSERT_TRUE(ss->write(std::string_view("hello world")));
    ASSERT_TRUE(ss->close_write());
    char five[5];
    auto n = cs->read(five);
    ASSERT_TRUE(n);
    ASSERT_EQ(*n, 5u);
    std::string chunk = "stale";
    auto rest = cs->read_chunk(chunk);
    ASSERT_TRUE(rest);
    EXPECT_EQ(chunk, " world");
    rest = cs->read_chunk(chunk);
    ASSERT_TRUE(rest);
    EXPECT_EQ(*rest, 0u);
    EXPECT_EQ(chunk, "");
}

TEST(SpdyFrames, ALargeDataFrameCanBeTakenBeforeItsPayloadArrived) {
    const std::string payload = pattern(50000, 3);
    const std::string wire = encode(DataFrame{5, kFlagFin, payload});
    FrameDecoder dec;
    std::string buffer;
    dec.feed(std::string_view(wire).substr(0, 4));
    EXPECT_FALSE(dec.take_partial_data(16 * 1024, buffer));  // not even a header yet
    dec.feed(std::string_view(wire).substr(4, 1004));
    EXPECT_FALSE(dec.take_partial_data(60000, buffer));  // smaller than asked for
    EXPECT_FALSE(dec.partial_data_pending(60000));
    EXPECT_TRUE(dec.partial_data_pending(16 * 1024));
    auto partial = dec.take_partial_data(16 * 1024, buffer);
    ASSERT_TRUE(partial);
    EXPECT_EQ(partial->stream_id, 5u);
    EXPECT_EQ(partial->flags, kFlagFin);
    EXPECT_EQ(partial->length, payload.size());
    EXPECT_EQ(partial->data, payload.substr(0, 1000));
    EXPECT_EQ(dec.buffered(), 0u);
    // The rest of the payload is the caller's to read; the decoder goes on with the next frame.
    auto frames = decode_all(dec, encode(Ping{9}));
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(std::get<Ping>(frames[0]).id, 9u);
    // A complete frame, or a control frame, is next()'s.
    dec.feed(encode(DataFrame{7, 0, payload}));
    EXPECT_FALSE(dec.partial_data_pending(16 * 1024));
    EXPECT_FALSE(dec.take_partial_data(16 * 1024, buffer));
    frames = decode_all(dec, "");
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(std::get<DataFrame>(frames[0]).data, payload);
}

}  // namespace
}  // namespace berth::stream::spdy
