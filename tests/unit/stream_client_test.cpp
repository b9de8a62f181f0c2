// The streaming clients (src/stream/client) against small in-test servers that behave like kubelet's streaming
// server: an HTTP upgrade to SPDY/3.1 served by our own Session in server role, and a Boost.Beast WebSocket server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <future>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stream/client.hpp"
#include "stream/conn.hpp"
#include "stream/protocol.hpp"
#include "stream/spdy.hpp"
#include "test_fds.hpp"

namespace berth::stream {
namespace {

using namespace std::chrono_literals;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

const char* kExit3 =
    R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: 3",)"
    R"("reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}})";
const char* kSuccess = R"({"metadata":{},"status":"Success"})";

std::string upper(std::string s) {
    for (auto& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

using testing::Pipe;
using testing::read_fd_all;

Result<std::string> read_all(spdy::Stream& s) {
    std::string out;
    char buf[4096];
    for (;;) {
        BERTH_ASSIGN(size_t n, s.read(buf));
        if (n == 0) return out;
        out.append(buf, n);
    }
}

UniqueFd listen_loopback(uint16_t& port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd.get(), 16), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

// One upgrade to SPDY per accepted connection; `handler` runs the session (server role) on the server thread.
class SpdyTestServer {
public:
    using Handler = std::function<void(spdy::Session&)>;
    SpdyTestServer(std::string chosen, Handler h, std::string refuse = {})
        : chosen_(std::move(chosen)), refuse_(std::move(refuse)), handler_(std::move(h)) {
        listener_ = listen_loopback(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~SpdyTestServer() {
        ::shutdown(listener_.get(), SHUT_RDWR);
        thread_.join();
    }
    std::string url() const { return fmt::format("http://127.0.0.1:{}/exec/token123", port_); }
    std::string request;  // the last request's head

private:
    void serve() {
        for (;;) {
            UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!c) return;
            std::string in;
            char buf[4096];
            size_t end;
            while ((end = in.find("\r\n\r\n")) == std::string::npos) {
                ssize_t n = ::read(c.get(), buf, sizeof(buf));
                if (n <= 0) break;
                in.append(buf, size_t(n));
            }
            if (end == std::string::npos) continue;
            request = in.substr(0, end);
            if (!refuse_.empty()) {
                (void)!::write(c.get(), refuse_.data(), refuse_.size());
                continue;
            }
            std::string resp = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
            if (!chosen_.empty()) resp += "X-Stream-Protocol-Version: " + chosen_ + "\r\n";
            resp += "\r\n";
            (void)!::write(c.get(), resp.data(), resp.size());
            auto s = spdy::Session::start(plain_conn(std::move(c)), spdy::Session::Role::server, in.substr(end + 4));
            ASSERT_TRUE(s);
            handler_(**s);
        }
    }
    std::string chosen_, refuse_;
    Handler handler_;
    UniqueFd listener_;
    uint16_t port_ = 0;
    std::thread thread_;
};

// Accepts streams until `n` arrived; by stream type.
std::map<std::string, std::shared_ptr<spdy::Stream>> accept_streams(spdy::Session& s, size_t n) {
    std::map<std::string, std::shared_ptr<spdy::Stream>> m;
    while (m.size() < n) {
        auto st = s.accept(5s);
        if (!st) break;
        m[(*st)->header("streamtype")] = *st;
    }
    return m;
}

TEST(StreamClient, SpdyExecPassesStdioAndReturnsTheExitCode) {
    std::vector<std::string> types;
    SpdyTestServer server(std::string(kRemoteCommandV4), [&](spdy::Session& s) {
        auto st = accept_streams(s, 4);
        for (auto& [t, _] : st) types.push_back(t);
        auto in = read_all(*st["stdin"]);  // until the client's FIN: stdin EOF
        ASSERT_TRUE(in);
        ASSERT_TRUE(st["stdout"]->write(upper(*in)));
        ASSERT_TRUE(st["stderr"]->write(std::string_view("oops")));
        ASSERT_TRUE(st["error"]->write(std::string_view(kExit3)));
        // As kubelet does: every stream reset, then the connection closed.
        for (auto& [t, stream] : st) stream->reset(spdy::RstStatus::cancel);
        s.close();
    });
    Pipe in, out, err;
    ASSERT_EQ(::write(in.w.get(), "hello\n", 6), 6);
    in.w.reset();
    RemoteCommandOptions o;
    o.stdin_fd = in.r.get();
    o.stdout_fd = out.w.get();
    o.stderr_fd = err.w.get();
    auto code = run_remote_command(server.url(), o);
    ASSERT_TRUE(code) << code.error().message();
    EXPECT_EQ(*code, 3);
    out.w.reset();
    err.w.reset();
    EXPECT_EQ(read_fd_all(out.r.get()), "HELLO\n");
    EXPECT_EQ(read_fd_all(err.r.get()), "oops");
    EXPECT_EQ(types, (std::vector<std::string>{"error", "stderr", "stdin", "stdout"}));
    EXPECT_NE(server.request.find("POST /exec/token123 HTTP/1.1"), std::string::npos);
    EXPECT_NE(server.request.find("Upgrade: SPDY/3.1"), std::string::npos);
    EXPECT_NE(server.request.find("Connection: Upgrade"), std::string::npos);
    // Newest first.
    EXPECT_LT(server.request.find("X-Stream-Protocol-Version: v5.channel.k8s.io"),
              server.request.find("X-Stream-Protocol-Version: v4.channel.k8s.io"));
    EXPECT_NE(server.request.find("X-Stream-Protocol-Version: channel.k8s.io"), std::string::npos);
}

TEST(StreamClient, SpdyTtySendsResizeAndNoStderr) {
    std::vector<std::string> types;
    SpdyTestServer server(std::string(kRemoteCommandV4), [&](spdy::Session& s) {
        auto st = accept_streams(s, 3);  // error, stdout, resize: no stdin (not -i), no stderr (tty)
        for (auto& [t, _] : st) types.push_back(t);
        ASSERT_TRUE(st.contains("resize"));
        char buf[256];
        auto n = st["resize"]->read(buf);
        ASSERT_TRUE(n);
        auto j = nlohmann::json::parse(std::string_view(buf, *n));
        ASSERT_TRUE(st["stdout"]->write(fmt::format("{}x{}", j["Width"].get<int>(), j["Height"].get<int>())));
        ASSERT_TRUE(st["stdout"]->close_write());
        ASSERT_TRUE(st["error"]->write(std::string_view(kSuccess)));
        ASSERT_TRUE(st["error"]->close_write());
        s.close();
    });
    Pipe out;
    TerminalSizeQueue sizes;
    sizes.push({120, 40});
    RemoteCommandOptions o;
    o.stdout_fd = out.w.get();
    o.tty = true;
    o.resize = &sizes;
    auto code = run_remote_command(server.url(), o);
    ASSERT_TRUE(code) << code.error().message();
    EXPECT_EQ(*code, 0);
    out.w.reset();
    EXPECT_EQ(read_fd_all(out.r.get()), "120x40");
    EXPECT_EQ(types, (std::vector<std::string>{"error", "resize", "stdout"}));
}

TEST(StreamClient, SpdyOldProtocolErrorTextIsAnError) {
    SpdyTestServer server(std::string(kRemoteCommandV2), [&](spdy::Session& s) {
        auto st = accept_streams(s, 2);
        ASSERT_TRUE(st["error"]->write(std::string_view("container not running")));
        s.close();
    });
    Pipe out;
    RemoteCommandOptions o;
    o.stdout_fd = out.w.get();
    auto code = run_remote_command(server.url(), o);
    ASSERT_FALSE(code);
    EXPECT_NE(code.error().message().find("container not running"), std::string::npos);
}

TEST(StreamClient, SpdyUpgradeRefusedNamesTheAnswer) {
    SpdyTestServer server("", nullptr,
                          "HTTP/1.1 400 Bad Request\r\nContent-Length: 22\r\n\r\nunsupported protocol\r\n");
    RemoteCommandOptions o;
    auto code = run_remote_command(server.url(), o);
    ASSERT_FALSE(code);
    EXPECT_NE(code.error().message().find("400 Bad Request"), std::string::npos) << code.error().message();
    EXPECT_NE(code.error().message().find("unsupported protocol"), std::string::npos);
}

TEST(StreamClient, SpdyPortForwardPairsWithHalfClose) {
    std::vector<std::string> seen;
    std::mutex mu;
    SpdyTestServer server(std::string(kPortForwardProtocol), [&](spdy::Session& s) {
        std::vector<std::thread> handlers;
        for (int i = 0; i < 2; ++i) {  // two connections: an error and a data stream each, in that order
            std::shared_ptr<spdy::Stream> pair[2];
            for (auto& st : pair) {
                auto a = s.accept(5s);
                ASSERT_TRUE(a) << a.error().message();
                st = *a;
                std::lock_guard lk(mu);
                seen.push_back(fmt::format("{}/{}/{}", st->header("streamtype"), st->header("port"),
                                           st->header("requestid")));
            }
            handlers.emplace_back([e = pair[0], d = pair[1]] {
                // Reads to the client's FIN (its local EOF), then answers: the other direction is still open.
                auto in = read_all(*d);
                if (!in) return;
                (void)d->write("got " + std::to_string(in->size()) + " bytes: " + *in);
                (void)d->close_write();
                (void)e->close_write();  // as kubelet: the error stream ends with the forwarding
            });
        }
        for (auto& t : handlers) t.join();
        s.wait_closed();
    });
    auto pf = SpdyPortForward::connect(fmt::format("http://{}", server.url().substr(7)));
    ASSERT_TRUE(pf) << pf.error().message();
    for (int i = 0; i < 2; ++i) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        UniqueFd mine(sv[0]);
        auto fwd = std::async(std::launch::async, [&, fd = sv[1]] { return (*pf)->forward(UniqueFd(fd), 8080); });
        ASSERT_EQ(::write(mine.get(), "abc", 3), 3);
        ::shutdown(mine.get(), SHUT_WR);
        EXPECT_EQ(read_fd_all(mine.get()), "got 3 bytes: abc");
        auto r = fwd.get();
        EXPECT_TRUE(r) << r.error().message();
    }
    (*pf)->close();
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<std::string>{"data/8080/0", "data/8080/1", "error/8080/0", "error/8080/1"}));
    EXPECT_NE(server.request.find("X-Stream-Protocol-Version: portforward.k8s.io"), std::string::npos);
}

TEST(StreamClient, SpdyPortForwardReportsTheServersError) {
    SpdyTestServer server(std::string(kPortForwardProtocol), [&](spdy::Session& s) {
        auto st = accept_streams(s, 2);
        ASSERT_TRUE(st["error"]->write(std::string_view("connection refused on port 9")));
        ASSERT_TRUE(st["error"]->close_write());
        ASSERT_TRUE(st["data"]->close_write());
        s.wait_closed();
    });
    auto pf = SpdyPortForward::connect(server.url());
    ASSERT_TRUE(pf);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd mine(sv[0]);
    auto r = (*pf)->forward(UniqueFd(sv[1]), 9);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("connection refused on port 9"), std::string::npos);
    (*pf)->close();
}

TEST(StreamClient, ExitCodeFromStatus) {
    EXPECT_EQ(exit_code_from_status(kSuccess).value_or(-1), 0);
    EXPECT_EQ(exit_code_from_status(kExit3).value_or(-1), 3);
    auto other = exit_code_from_status(R"({"status":"Failure","message":"pod not found","reason":"NotFound"})");
    ASSERT_FALSE(other);
    EXPECT_NE(other.error().message().find("pod not found"), std::string::npos);
    EXPECT_FALSE(exit_code_from_status("not json"));
}

TEST(StreamClient, ParsesUrls) {
    auto u = parse_stream_url("http://127.0.0.1:10250/exec/abc?x=1");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "127.0.0.1");
    EXPECT_EQ(u->port, "10250");
    EXPECT_EQ(u->target, "/exec/abc?x=1");
    auto v6 = parse_stream_url("http://[::1]:99/a");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->port, "99");
    EXPECT_EQ(parse_stream_url("http://host/x")->port, "80");
    EXPECT_FALSE(parse_stream_url("ftp://host/x"));
    auto tls = parse_stream_url("https://host/x");
    ASSERT_TRUE(tls);
    EXPECT_TRUE(tls->tls);
    EXPECT_EQ(tls->port, "443");
    EXPECT_FALSE(parse_stream_url("http://host/x")->tls);
}

// ---- WebSocket ----

class WsTestServer {
public:
    using Handler = std::function<void(websocket::stream<tcp::socket>&)>;
    WsTestServer(std::string chosen, Handler h) : chosen_(std::move(chosen)), handler_(std::move(h)) {
        acceptor_.open(tcp::v4());
        acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] {
            try {
                tcp::socket sock(ioc_);
                acceptor_.accept(sock);
                beast::flat_buffer buf;
                http::request<http::string_body> req;
                http::read(sock, buf, req);
                target = std::string(req.target());
                offered = std::string(req[http::field::sec_websocket_protocol]);
                websocket::stream<tcp::socket> ws(std::move(sock));
                ws.set_option(websocket::stream_base::decorator([this](websocket::response_type& res) {
                    res.set(http::field::sec_websocket_protocol, chosen_);
                }));
                ws.accept(req);
                ws.binary(true);
                handler_(ws);
            } catch (const std::exception& e) {
                error = e.what();
            }
        });
    }
    ~WsTestServer() { thread_.join(); }
    std::string url() const { return fmt::format("http://127.0.0.1:{}/exec/tok", port_); }
    std::string target, offered, error;

private:
    std::string chosen_;
    Handler handler_;
    net::io_context ioc_;
    tcp::acceptor acceptor_{ioc_};
    uint16_t port_ = 0;
    std::thread thread_;
};

std::string msg(uint8_t ch, std::string_view data) { return std::string(1, char(ch)) + std::string(data); }

TEST(StreamClient, WebSocketExecV5ClosesStdinAndReturnsTheExitCode) {
    WsTestServer server(std::string(kRemoteCommandV5), [](websocket::stream<tcp::socket>& ws) {
        std::string in;
        for (;;) {
            beast::flat_buffer b;
            ws.read(b);
            std::string m = beast::buffers_to_string(b.data());
            if (m.size() == 2 && uint8_t(m[0]) == kChannelClose && m[1] == kChannelStdin) break;
            if (!m.empty() && m[0] == kChannelStdin) in += m.substr(1);
        }
        ws.write(net::buffer(msg(kChannelStdout, upper(in))));
        ws.write(net::buffer(msg(kChannelStderr, "oops")));
        ws.write(net::buffer(msg(kChannelError, kExit3)));
        ws.close(websocket::close_code::normal);
        beast::flat_buffer b;
        beast::error_code ec;
        ws.read(b, ec);  // the client's close answer
    });
    Pipe in, out, err;
    ASSERT_EQ(::write(in.w.get(), "hello ws", 8), 8);
    in.w.reset();
    RemoteCommandOptions o;
    o.transport = Transport::websocket;
    o.stdin_fd = in.r.get();
    o.stdout_fd = out.w.get();
    o.stderr_fd = err.w.get();
    auto code = run_remote_command(server.url(), o);
    ASSERT_TRUE(code) << code.error().message();
    EXPECT_EQ(*code, 3);
    out.w.reset();
    err.w.reset();
    EXPECT_EQ(read_fd_all(out.r.get()), "HELLO WS");
    EXPECT_EQ(read_fd_all(err.r.get()), "oops");
    EXPECT_TRUE(server.offered.starts_with("v5.channel.k8s.io, v4.channel.k8s.io")) << server.offered;
    EXPECT_EQ(server.target, "/exec/tok");
    EXPECT_EQ(server.error, "");
}

TEST(StreamClient, WebSocketResizeOnChannelFour) {
    WsTestServer server(std::string(kRemoteCommandV4), [](websocket::stream<tcp::socket>& ws) {
        beast::flat_buffer b;
        ws.read(b);
        std::string m = beast::buffers_to_string(b.data());
        ws.write(net::buffer(msg(kChannelStdout, m.substr(0, 1) == "\x04" ? m.substr(1) : "bad channel")));
        ws.write(net::buffer(msg(kChannelError, kSuccess)));
        ws.close(websocket::close_code::normal);
        beast::error_code ec;
        ws.read(b, ec);
    });
    Pipe out;
    TerminalSizeQueue sizes;
    sizes.push({100, 30});
    RemoteCommandOptions o;
    o.transport = Transport::websocket;
    o.stdout_fd = out.w.get();
    o.tty = true;
    o.resize = &sizes;
    auto code = run_remote_command(server.url(), o);
    ASSERT_TRUE(code) << code.error().message();
    EXPECT_EQ(*code, 0);
    out.w.reset();
    auto j = nlohmann::json::parse(read_fd_all(out.r.get()));
    EXPECT_EQ(j["Width"], 100);
    EXPECT_EQ(j["Height"], 30);
}

TEST(StreamClient, WebSocketPortForwardStripsThePortPrefix) {
    WsTestServer server(std::string(kPortForwardWebSocketProtocol), [](websocket::stream<tcp::socket>& ws) {
        // Port 8080 little endian first on both channels, as kubelet does.
        ws.write(net::buffer(std::string("\x00\x90\x1f", 3)));
        ws.write(net::buffer(std::string("\x01\x90\x1f", 3)));
        beast::flat_buffer b;
        beast::error_code ec;
        for (;;) {
            b.clear();
            ws.read(b, ec);
            if (ec) return;
            std::string m = beast::buffers_to_string(b.data());
            if (!m.empty() && m[0] == 0) ws.write(net::buffer(msg(0, "echo:" + m.substr(1))));
        }
    });
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd mine(sv[0]);
    auto fwd = std::async(std::launch::async, [&, fd = sv[1]] {
        return websocket_port_forward(server.url(), UniqueFd(fd), 8080);
    });
    ASSERT_EQ(::write(mine.get(), "ping", 4), 4);
    char buf[64];
    ssize_t n = ::read(mine.get(), buf, sizeof(buf));
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string_view(buf, size_t(n)), "echo:ping");
    mine.reset();  // the local client leaves: the forwarding ends
    auto r = fwd.get();
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(server.target, "/exec/tok?port=8080");
    EXPECT_EQ(server.offered, "v4.channel.k8s.io");
}

TEST(StreamClient, WebSocketHandshakeRefusedNamesTheStatus) {
    // A plain HTTP server that refuses the upgrade.
    uint16_t port;
    UniqueFd l = listen_loopback(port);
    std::thread t([&] {
        UniqueFd c(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
        char buf[4096];
        (void)!::read(c.get(), buf, sizeof(buf));
        std::string r = "HTTP/1.1 403 Forbidden\r\nContent-Length: 13\r\n\r\ntoken expired";
        (void)!::write(c.get(), r.data(), r.size());
    });
    RemoteCommandOptions o;
    o.transport = Transport::websocket;
    auto code = run_remote_command(fmt::format("http://127.0.0.1:{}/exec/x", port), o);
    t.join();
    ASSERT_FALSE(code);
    EXPECT_NE(code.error().message().find("403"), std::string::npos) << code.error().message();
    EXPECT_NE(code.error().message().find("token expired"), std::string::npos) << code.error().message();
}

}  // namespace
}  // namespace berth::stream
