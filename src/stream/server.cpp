#include "stream/server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.hpp"
#include "stream/port_forward.hpp"
#include "stream/protocol.hpp"
#include "stream/remote_command.hpp"
#include "stream/spdy.hpp"
#include "stream/tls_conn.hpp"
#include "stream/tokens.hpp"
#include "stream/websocket.hpp"
#include "stream/ws_channels.hpp"

namespace http = boost::beast::http;

namespace berth::stream {

namespace {

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// A served connection that notes when it last carried bytes, for the idle timeout. Handing out the socket for a
// splice counts too: the caller writes through it right after.
class ActivityConn final : public Conn {
public:
    explicit ActivityConn(std::unique_ptr<Conn> c) : c_(std::move(c)) {}
    Result<size_t> read(std::span<char> buf) override {
        auto n = c_->read(buf);
        if (n && *n > 0) touch();
        return n;
    }
    Result<void> write_all(std::span<const char> buf) override {
        touch();
        auto r = c_->write_all(buf);
        touch();
        return r;
    }
    Result<void> write_all(std::span<const char> head, std::span<const char> body) override {
        touch();
        auto r = c_->write_all(head, body);
        touch();
        return r;
    }
    int splice_fd() const override {
        touch();
        return c_->splice_fd();
    }
    void shutdown() override { c_->shutdown(); }
    // Milliseconds since the last byte either way (or since the connection was accepted).
    int64_t idle_ms() const { return steady_ms() - last_.load(std::memory_order_relaxed); }
    std::atomic<bool> closed_for_idleness{false};  // once: its handler may take a moment to notice

private:
    void touch() const { last_.store(steady_ms(), std::memory_order_relaxed); }
    std::unique_ptr<Conn> c_;
    mutable std::atomic<int64_t> last_{steady_ms()};
};

struct StreamServer::State {
    ServerOptions options;
    StreamBackend backend;
    TokenStore tokens{std::chrono::milliseconds(60000)};
    std::shared_ptr<TlsContext> tls;
    UniqueFd listen_fd;
    UniqueFd stop_fd;  // eventfd: the accept loop's wake-up
    std::string base_url;
    std::thread accept_thread;

    std::atomic<uint64_t> exec_sessions = 0;
    std::atomic<uint64_t> attach_sessions = 0;
    std::atomic<uint64_t> port_forward_connections = 0;

    std::mutex mu;
    std::condition_variable cv;
    std::map<uint64_t, ActivityConn*> conns;  // connections being served, to end them at stop or when idle
    uint64_t next_conn = 0;
    uint64_t threads = 0;  // connection threads alive
    bool stopping = false;

    explicit State(const ServerOptions& o) : options(o), tokens(o.token_lifetime) {}
};

namespace {

// How long ~StreamServer waits for connection threads after ending their connections.
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr size_t kHeaderLimit = 16 * 1024;

// Beast's SyncReadStream over a Conn, for parsing the request head.
class ConnReadStream {
public:
    explicit ConnReadStream(Conn& c) : conn_(c) {}
    template <class MutableBufferSequence>
    size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
        auto it = boost::asio::buffer_sequence_begin(buffers);
        auto end = boost::asio::buffer_sequence_end(buffers);
        for (; it != end; ++it) {
            boost::asio::mutable_buffer b = *it;
            if (b.size() == 0) continue;
            auto r = conn_.read(std::span<char>(static_cast<char*>(b.data()), b.size()));
            if (!r) {
                ec = boost::system::error_code(r.error().code() ? r.error().code() : EIO,
                                               boost::system::system_category());
                return 0;
            }
            if (*r == 0) ec = boost::asio::error::eof;
            return *r;
        }
        return 0;
    }
    template <class MutableBufferSequence>
    size_t read_some(const MutableBufferSequence& buffers) {
        boost::system::error_code ec;
        size_t n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

private:
    Conn& conn_;
};

std::string_view reason_phrase(int code) {
    switch (code) {
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 426:
            return "Upgrade Required";
        case 500:
            return "Internal Server Error";
        default:
            return "Error";
    }
}

// A plain-text error answer; the connection is closed after it.
void respond(Conn& conn, int code, std::string_view body,
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    std::string text = "berthd streaming: " + std::string(body) + "\n";
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n"
        "Connection: close\r\n",
        code, reason_phrase(code), text.size());
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    out += "\r\n" + text;
    (void)conn.write_all(out);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

// Every value of a header, each split at commas (HTTP list syntax), in order.
std::vector<std::string> header_list(const http::request<http::empty_body>& req, std::string_view name) {
    std::vector<std::string> out;
    auto range = req.equal_range(boost::beast::string_view(name.data(), name.size()));
    for (auto it = range.first; it != range.second; ++it) {
        std::string_view v(it->value().data(), it->value().size());
        size_t start = 0;
        while (start <= v.size()) {
            size_t comma = v.find(',', start);
            if (comma == std::string_view::npos) comma = v.size();
            std::string item = trim(v.substr(start, comma - start));
            if (!item.empty()) out.push_back(item);
            start = comma + 1;
        }
    }
    return out;
}

std::string list_text(const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return out + "]";
}

// The first protocol the client offers that the server supports (the client's preference wins, as kubelet's
// negotiation does).
std::optional<std::string> negotiate(const std::vector<std::string>& offered,
                                     const std::vector<std::string>& supported) {
    for (const auto& o : offered)
        for (const auto& s : supported)
            if (o == s) return o;
    return std::nullopt;
}

bool is_spdy_upgrade(const http::request<http::empty_body>& req) {
    bool connection_upgrade = false;
    for (const auto& v : header_list(req, "Connection"))
        if (lower(v) == "upgrade") connection_upgrade = true;
    auto up = req.find(http::field::upgrade);
    return connection_upgrade && up != req.end() &&
           lower(std::string_view(up->value().data(), up->value().size())) == lower(kSpdyUpgrade);
}

// ---- remote command over WebSocket ----

struct WsCommandProtocol {
    CommandVersion version;
    bool base64;
};

// kubelet's WebSocket remote command names, and the base64 spellings ("base64.X" and, for v4, kubelet's own
// "v4.base64.channel.k8s.io"). No subprotocol at all is the binary v1 framing.
std::optional<WsCommandProtocol> ws_command_protocol(std::string_view name) {
    if (name.empty()) return WsCommandProtocol{CommandVersion::v1, false};
    if (auto v = command_version(name)) return WsCommandProtocol{*v, false};
    if (name.starts_with("base64.")) {
        auto v = command_version(name.substr(7));
        if (v && *v != CommandVersion::v5) return WsCommandProtocol{*v, true};
    }
    if (name == "v4.base64.channel.k8s.io") return WsCommandProtocol{CommandVersion::v4, true};
    return std::nullopt;
}

const std::vector<std::string>& ws_command_protocols() {
    static const std::vector<std::string> v = {std::string(kRemoteCommandV5), std::string(kRemoteCommandV4),
                                               "v4.base64.channel.k8s.io",    "base64.v4.channel.k8s.io",
                                               std::string(kRemoteCommandV3), "base64.v3.channel.k8s.io",
                                               std::string(kRemoteCommandV2), "base64.v2.channel.k8s.io",
                                               std::string(kRemoteCommandV1), "base64.channel.k8s.io"};
    return v;
}

const std::vector<std::string>& ws_port_forward_protocols() {
    static const std::vector<std::string> v = {std::string(kRemoteCommandV4), "v4.base64.channel.k8s.io",
                                               "base64.v4.channel.k8s.io"};
    return v;
}

const std::vector<std::string>& spdy_command_protocols() {
    static const std::vector<std::string> v = {std::string(kRemoteCommandV5), std::string(kRemoteCommandV4),
                                               std::string(kRemoteCommandV3), std::string(kRemoteCommandV2),
                                               std::string(kRemoteCommandV1)};
    return v;
}

class WsCommandTransport final : public CommandTransport {
public:
    WsCommandTransport(Conn& conn, WsChannels& ch, const CommandStreams& s) : conn_(conn), ch_(ch), streams_(s) {}

    Result<void> write_output(int stream, std::span<const char> data) override {
        return ch_.write(static_cast<uint8_t>(stream), data);
    }
    Result<void> write_error(std::string_view payload) override {
        if (payload.empty()) return {};
        return ch_.write(kChannelError, std::span<const char>(payload.data(), payload.size()));
    }
    void run_input(CommandInput& input) override {
        for (;;) {
            auto f = ch_.read();
            if (!f) {
                log::debug("streaming: websocket input: {}", f.error().message());
                return;
            }
            switch (f->kind) {
                case WsChannels::Frame::end:
                    return;
                case WsChannels::Frame::close_channel:
                    if (f->channel == kChannelStdin) input.on_stdin_eof();
                    break;
                case WsChannels::Frame::message:
                    if (f->channel == kChannelStdin)
                        input.on_stdin(f->data);
                    else if (f->channel == kChannelResize)
                        input.on_resize_bytes(f->data);
                    break;
            }
        }
    }
    void end() override { (void)ch_.socket().close(kWsCloseNormal); }
    void abort() override { conn_.shutdown(); }

private:
    Conn& conn_;
    WsChannels& ch_;
    CommandStreams streams_;
};

// ---- remote command over SPDY ----

class SpdyCommandTransport final : public CommandTransport {
public:
    explicit SpdyCommandTransport(spdy::Session& s) : session_(s) {}
    std::shared_ptr<spdy::Stream> stdin_, stdout_, stderr_, error_, resize_;

    Result<void> write_output(int stream, std::span<const char> data) override {
        auto& s = stream == 2 ? stderr_ : stdout_;
        if (!s) return {};
        return s->write(data);
    }
    Result<void> write_error(std::string_view payload) override {
        if (!payload.empty()) BERTH_TRY(error_->write(std::span<const char>(payload.data(), payload.size())));
        return error_->close_write();
    }
    void run_input(CommandInput& input) override {
        std::thread in, rs;
        if (stdin_)
            in = std::thread([&] {
                char buf[32 * 1024];
                for (;;) {
                    auto n = stdin_->read(std::span<char>(buf, sizeof buf));
                    if (!n) return;
                    if (*n == 0) {
                        input.on_stdin_eof();
                        return;
                    }
                    input.on_stdin(std::span<const char>(buf, *n));
                }
            });
        if (resize_)
            rs = std::thread([&] {
                char buf[4096];
                for (;;) {
                    auto n = resize_->read(std::span<char>(buf, sizeof buf));
                    if (!n || *n == 0) return;
                    input.on_resize_bytes(std::string_view(buf, *n));
                }
            });
        session_.wait_closed();
        if (in.joinable()) in.join();
        if (rs.joinable()) rs.join();
    }
    void end() override {
        if (stdout_) (void)stdout_->close_write();
        if (stderr_) (void)stderr_->close_write();
        session_.goaway();
    }
    void abort() override { session_.close(); }

private:
    spdy::Session& session_;
};

}  // namespace

// One connection, from the request head to the end of its protocol. Runs on the connection's own thread.
class ConnectionHandler {
public:
    ConnectionHandler(StreamServer::State& st, Conn& conn) : st_(st), conn_(conn) {}

    void serve() {
        ConnReadStream rs(conn_);
        boost::beast::flat_buffer buffer;
        http::request_parser<http::empty_body> parser;
        parser.header_limit(kHeaderLimit);
        boost::system::error_code ec;
        http::read_header(rs, buffer, parser, ec);
        if (ec) {
            if (ec != boost::asio::error::eof && ec != http::error::end_of_stream)
                respond(conn_, 400, "malformed HTTP request: " + ec.message());
            return;
        }
        const auto& req = parser.get();
        std::string leftover(static_cast<const char*>(buffer.data().data()), buffer.size());

        std::string target(req.target().data(), req.target().size());
        if (size_t q = target.find('?'); q != std::string::npos) target.resize(q);
        std::string kind, token;
        if (size_t slash = target.find('/', 1); target.starts_with("/") && slash != std::string::npos) {
            kind = target.substr(1, slash - 1);
            token = target.substr(slash + 1);
        }
        if ((kind != "exec" && kind != "attach" && kind != "portforward") || token.empty() ||
            token.find('/') != std::string::npos) {
            respond(conn_, 404,
                    fmt::format("no such endpoint {}: the streaming server serves only the "
                                "/exec/, /attach/ and /portforward/ URLs the CRI rpcs return",
                                target));
            return;
        }
        if (req.method() != http::verb::get && req.method() != http::verb::post) {
            respond(conn_, 405, "only GET and POST upgrade a streaming connection");
            return;
        }
        auto request = st_.tokens.take(token);
        bool kind_ok = request && ((kind == "exec" && std::holds_alternative<cri::ExecOptions>(*request)) ||
                                   (kind == "attach" && std::holds_alternative<cri::AttachOptions>(*request)) ||
                                   (kind == "portforward" && std::holds_alternative<PortForwardTarget>(*request)));
        if (!kind_ok) {
            respond(conn_, 404,
                    fmt::format("unknown, used or expired {} token: a URL serves one connection and expires {}s "
                                "after the rpc that returned it",
                                kind, st_.options.token_lifetime.count() / 1000.0));
            return;
        }

        bool websocket = boost::beast::websocket::is_upgrade(req);
        if (websocket) {
            serve_websocket(req, std::move(*request), std::move(leftover));
        } else {
            serve_spdy(req, std::move(*request), std::move(leftover));
        }
    }

private:
    // ---- WebSocket ----

    void serve_websocket(const http::request<http::empty_body>& req, StreamRequest request, std::string leftover) {
        auto version = req.find(http::field::sec_websocket_version);
        if (version == req.end() || trim(std::string_view(version->value().data(), version->value().size())) != "13") {
            respond(conn_, 426, "WebSocket version 13 is required", {{"Sec-WebSocket-Version", "13"}});
            return;
        }
        auto key = req.find(http::field::sec_websocket_key);
        if (key == req.end() || key->value().empty()) {
            respond(conn_, 400, "WebSocket upgrade without Sec-WebSocket-Key");
            return;
        }
        std::vector<std::string> offered = header_list(req, kWebSocketProtocolHeader);
        bool port_forward = std::holds_alternative<PortForwardTarget>(request);
        const auto& supported = port_forward ? ws_port_forward_protocols() : ws_command_protocols();
        std::string chosen;
        if (!offered.empty()) {
            auto n = negotiate(offered, supported);
            if (!n) {
                respond(conn_, 403,
                        fmt::format("unable to upgrade: no supported WebSocket subprotocol: the client offered {}, "
                                    "berthd supports {}",
                                    list_text(offered), list_text(supported)));
                return;
            }
            chosen = *n;
        }
        std::string answer = fmt::format(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: {}\r\n",
            websocket_accept_key(trim(std::string_view(key->value().data(), key->value().size()))));
        if (!chosen.empty()) answer += fmt::format("{}: {}\r\n", kWebSocketProtocolHeader, chosen);
        answer += "\r\n";
        if (!conn_.write_all(answer)) return;

        WebSocket ws(conn_, WebSocket::Role::server, std::move(leftover));
        if (port_forward) {
            const auto& pf = std::get<PortForwardTarget>(request);
            bool base64 = chosen.find("base64") != std::string::npos;
            WsChannels ch(ws, base64, false);
            if (pf.ports.empty()) {
                (void)ws.close(kWsCloseProtocolError, "no ports: the PortForward request named none");
                return;
            }
            DialFn dial = [&](uint16_t port) { return st_.backend.dial(pf.pod_id, port); };
            serve_port_forward_ws(conn_, ch, pf.ports, dial, pf.pod_id, &st_.port_forward_connections);
            return;
        }
        WsCommandProtocol proto = *ws_command_protocol(chosen);
        WsChannels ch(ws, proto.base64, proto.version >= CommandVersion::v5);
        CommandStreams streams = command_streams(request);
        WsCommandTransport transport(conn_, ch, streams);
        // An empty message on the lowest channel the server writes tells the client the streams are ready.
        uint8_t first = streams.stdout ? kChannelStdout : streams.stderr ? kChannelStderr : kChannelError;
        if (!ch.write(first, std::span<const char>())) return;
        run_command(transport, request, proto.version, streams);
    }

    // ---- SPDY ----

    void serve_spdy(const http::request<http::empty_body>& req, StreamRequest request, std::string leftover) {
        bool port_forward = std::holds_alternative<PortForwardTarget>(request);
        std::vector<std::string> offered = header_list(req, kProtocolHeader);
        std::vector<std::string> supported =
            port_forward ? std::vector<std::string>{std::string(kPortForwardProtocol)} : spdy_command_protocols();
        std::string chosen;
        if (!offered.empty()) {
            auto n = negotiate(offered, supported);
            if (!n) {
                std::vector<std::pair<std::string, std::string>> headers;
                for (const auto& s : supported) headers.emplace_back(std::string(kProtocolHeader), s);
                respond(conn_, 403,
                        fmt::format("unable to upgrade: unable to negotiate protocol: client supports {}, server "
                                    "accepts {}",
                                    list_text(offered), list_text(supported)),
                        headers);
                return;
            }
            chosen = *n;
        }
        if (!is_spdy_upgrade(req)) {
            respond(conn_, 400,
                    "unable to upgrade: the request asks for no protocol berthd speaks: send \"Connection: "
                    "Upgrade\" with \"Upgrade: SPDY/3.1\" (and X-Stream-Protocol-Version), or a WebSocket upgrade "
                    "(Sec-WebSocket-Protocol)");
            return;
        }
        std::string answer =
            fmt::format("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {}\r\n", kSpdyUpgrade);
        if (!chosen.empty()) answer += fmt::format("{}: {}\r\n", kProtocolHeader, chosen);
        answer += "\r\n";
        if (!conn_.write_all(answer)) return;

        // The session owns a Conn of its own; this thread's Conn stays the one ~StreamServer shuts down.
        auto session = spdy::Session::start(std::make_unique<BorrowedConn>(conn_), spdy::Session::Role::server,
                                            std::move(leftover));
        if (!session) {
            log::warn("streaming: SPDY session: {}", session.error().message());
            return;
        }
        spdy::Session& s = **session;
        if (port_forward) {
            const auto& pf = std::get<PortForwardTarget>(request);
            DialFn dial = [&](uint16_t port) { return st_.backend.dial(pf.pod_id, port); };
            serve_port_forward_spdy(s, pf.ports, dial, pf.pod_id, st_.options.stream_creation_timeout,
                                    &st_.port_forward_connections);
            s.close();
            return;
        }
        CommandVersion version = chosen.empty() ? CommandVersion::v1 : *command_version(chosen);
        CommandStreams streams = command_streams(request);
        SpdyCommandTransport transport(s);
        if (auto r = accept_command_streams(s, transport, version, streams); !r) {
            log::debug("streaming: {}", r.error().message());
            s.close();
            return;
        }
        run_command(transport, request, version, streams);
        s.close();
    }

    // Waits for the streams the client must open: error, plus stdin/stdout/stderr as asked, plus resize with a tty
    // from v3 on.
    Result<void> accept_command_streams(spdy::Session& s, SpdyCommandTransport& t, CommandVersion version,
                                        const CommandStreams& streams) {
        size_t expected = 1 + streams.stdin + streams.stdout + streams.stderr +
                          (streams.tty && version >= CommandVersion::v3 ? 1 : 0);
        size_t got = 0;
        auto deadline = std::chrono::steady_clock::now() + st_.options.stream_creation_timeout;
        while (got < expected) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return fail("timed out waiting for the client's streams ({} of {} opened)", got, expected);
            auto stream = s.accept(left);
            if (!stream) return std::unexpected(stream.error().wrap("waiting for the client's streams"));
            std::string type = (*stream)->header(kStreamTypeHeader);
            std::shared_ptr<spdy::Stream>* slot = nullptr;
            if (type == kStreamTypeError)
                slot = &t.error_;
            else if (type == kStreamTypeStdin && streams.stdin)
                slot = &t.stdin_;
            else if (type == kStreamTypeStdout && streams.stdout)
                slot = &t.stdout_;
            else if (type == kStreamTypeStderr && streams.stderr)
                slot = &t.stderr_;
            else if (type == kStreamTypeResize && streams.tty && version >= CommandVersion::v3)
                slot = &t.resize_;
            if (!slot || *slot) {
                log::debug("streaming: unexpected stream type \"{}\" reset", type);
                (*stream)->reset(spdy::RstStatus::refused_stream);
                continue;
            }
            *slot = std::move(*stream);
            ++got;
        }
        return {};
    }

    // ---- shared ----

    static CommandStreams command_streams(const StreamRequest& r) {
        if (const auto* e = std::get_if<cri::ExecOptions>(&r))
            return {.stdin = e->stdin, .stdout = e->stdout, .stderr = e->stderr, .tty = e->tty};
        const auto& a = std::get<cri::AttachOptions>(r);
        return {.stdin = a.stdin, .stdout = a.stdout, .stderr = a.stderr, .tty = a.tty};
    }

    // Starts the exec or attach and runs the command; a start failure goes to the error stream.
    void run_command(CommandTransport& transport, const StreamRequest& request, CommandVersion version,
                     const CommandStreams& streams) {
        std::unique_ptr<CommandTarget> target;
        std::string what;
        Result<void> started;
        if (const auto* e = std::get_if<cri::ExecOptions>(&request)) {
            what = "command [" + fmt::format("{}", fmt::join(e->cmd, " ")) + "]";
            auto s = st_.backend.exec(*e);
            if (s)
                target = exec_target(std::move(*s), e->cmd, &st_.exec_sessions);
            else
                started = std::unexpected(s.error());
        } else {
            const auto& a = std::get<cri::AttachOptions>(request);
            what = "attach to container " + a.container_id;
            auto s = st_.backend.attach(a);
            if (s)
                target = attach_target(std::move(*s), a.container_id, &st_.attach_sessions);
            else
                started = std::unexpected(s.error());
        }
        if (!target) {
            log::info("streaming: {}: {}", what, started.error().message());
            (void)transport.write_error(command_status(version, std::unexpected(started.error()), what));
            transport.end();
            return;
        }
        run_remote_command(transport, *target, version, streams);
    }

    // A Conn that forwards to the connection's own (the SPDY session wants to own one).
    class BorrowedConn final : public Conn {
    public:
        explicit BorrowedConn(Conn& c) : c_(c) {}
        Result<size_t> read(std::span<char> buf) override { return c_.read(buf); }
        Result<void> write_all(std::span<const char> buf) override { return c_.write_all(buf); }
        Result<void> write_all(std::span<const char> head, std::span<const char> body) override {
            return c_.write_all(head, body);
        }
        int splice_fd() const override { return c_.splice_fd(); }
        void shutdown() override { c_.shutdown(); }

    private:
        Conn& c_;
    };

    StreamServer::State& st_;
    Conn& conn_;
};

namespace {

Result<std::pair<std::string, std::string>> split_host_port(const std::string& address) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return fail("streaming address \"{}\": not host:port", address);
    std::string host = address.substr(0, colon), port = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return std::pair{host, port};
}

void serve_connection(std::shared_ptr<StreamServer::State> st, UniqueFd fd) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::unique_ptr<Conn> conn;
    if (st->tls) {
        auto c = tls_accept(*st->tls, std::move(fd));
        if (!c) {
            log::debug("streaming: {}", c.error().message());
            return;
        }
        conn = std::move(*c);
    } else {
        conn = plain_conn(std::move(fd));
    }
    auto tracked = std::make_unique<ActivityConn>(std::move(conn));
    uint64_t id;
    {
        std::lock_guard lock(st->mu);
        if (st->stopping) return;
        id = st->next_conn++;
        st->conns[id] = tracked.get();
    }
    ConnectionHandler(*st, *tracked).serve();
    tracked->shutdown();
    std::lock_guard lock(st->mu);
    st->conns.erase(id);
    st->cv.notify_all();
}

// Ends the connections that carried nothing for the idle timeout: their handlers see the connection close as
// when a client goes away.
void close_idle(StreamServer::State& st) {
    const int64_t limit = st.options.idle_timeout.count();
    std::lock_guard lock(st.mu);
    for (auto& [id, conn] : st.conns) {
        if (conn->idle_ms() < limit || conn->closed_for_idleness.exchange(true)) continue;
        log::info("streaming: connection {} idle for {} s: closed", id, conn->idle_ms() / 1000);
        conn->shutdown();
    }
}

void accept_loop(std::shared_ptr<StreamServer::State> st) {
    // Idle connections are looked for a few times per timeout (at least every 30 s, at most every 10 ms).
    const auto idle = st->options.idle_timeout;
    const int sweep_ms = idle.count() > 0 ? static_cast<int>(std::clamp<int64_t>(idle.count() / 4, 10, 30000)) : -1;
    int64_t next_sweep = steady_ms() + std::max(sweep_ms, 0);
    for (;;) {
        pollfd fds[2] = {{st->listen_fd.get(), POLLIN, 0}, {st->stop_fd.get(), POLLIN, 0}};
        int wait_ms = sweep_ms < 0 ? -1 : static_cast<int>(std::max<int64_t>(next_sweep - steady_ms(), 0));
        int ready = ::poll(fds, 2, wait_ms);
        if (ready < 0) {
            if (errno == EINTR) continue;
            log::error("streaming: poll on the listening socket: {}", std::strerror(errno));
            return;
        }
        if (fds[1].revents) return;
        if (sweep_ms >= 0 && steady_ms() >= next_sweep) {
            close_idle(*st);
            next_sweep = steady_ms() + sweep_ms;
        }
        if (!(fds[0].revents & POLLIN)) continue;
        int fd = ::accept4(st->listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
            log::warn("streaming: accept: {}", std::strerror(errno));
            // EMFILE and the like: do not spin.
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        {
            std::lock_guard lock(st->mu);
            if (st->stopping) {
                ::close(fd);
                return;
            }
            ++st->threads;  // counted before the thread exists, so a stop cannot miss it
        }
        // Detached: each thread holds the state alive; ~StreamServer waits for `threads` to drop to 0.
        std::thread([st, fd] {
            serve_connection(st, UniqueFd(fd));
            std::lock_guard lock(st->mu);
            --st->threads;
            st->cv.notify_all();
        }).detach();
    }
}

}  // namespace

StreamServer::StreamServer(std::shared_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<StreamServer>> StreamServer::start(const ServerOptions& options, StreamBackend backend) {
    auto st = std::make_shared<State>(options);
    st->backend = std::move(backend);
    if (options.tls_cert.empty() != options.tls_key.empty())
        return fail("streaming server: TLS needs both a certificate and a key (got only the {})",
                    options.tls_cert.empty() ? "key" : "certificate");
    if (!options.tls_cert.empty()) {
        BERTH_ASSIGN(st->tls, TlsContext::load(options.tls_cert, options.tls_key));
    }

    BERTH_ASSIGN(auto hp, split_host_port(options.address));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(hp.first.empty() ? nullptr : hp.first.c_str(), hp.second.c_str(), &hints, &res); rc)
        return fail("streaming address {}: {}", options.address, ::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
    UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_sys("streaming server: socket for {}", options.address);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), res->ai_addr, res->ai_addrlen) < 0)
        return fail_sys("streaming server: bind {}", options.address);
    if (::listen(fd.get(), 128) < 0) return fail_sys("streaming server: listen on {}", options.address);

    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0)
        return fail_sys("streaming server: getsockname");
    char host[INET6_ADDRSTRLEN] = {};
    uint16_t port = 0;
    std::string url_host;
    if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        port = ntohs(a->sin6_port);
        ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        // An unspecified address is not a place to connect to: the URL names the loopback (kubelet runs beside
        // berthd).
        url_host = IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ? "[::1]" : fmt::format("[{}]", host);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        port = ntohs(a->sin_port);
        ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        url_host = a->sin_addr.s_addr == htonl(INADDR_ANY) ? "127.0.0.1" : host;
    }
    st->base_url = fmt::format("{}://{}:{}", st->tls ? "https" : "http", url_host, port);
    st->listen_fd = std::move(fd);
    st->stop_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!st->stop_fd) return fail_sys("streaming server: eventfd");
    st->accept_thread = std::thread(accept_loop, st);
    log::info("streaming server on {}", st->base_url);
    return std::unique_ptr<StreamServer>(new StreamServer(st));
}

StreamServer::~StreamServer() {
    auto& st = *state_;
    uint64_t one = 1;
    {
        std::lock_guard lock(st.mu);
        st.stopping = true;
    }
    (void)!::write(st.stop_fd.get(), &one, sizeof one);
    if (st.accept_thread.joinable()) st.accept_thread.join();
    std::unique_lock lock(st.mu);
    for (auto& [id, conn] : st.conns) conn->shutdown();
    if (!st.cv.wait_for(lock, kStopGrace, [&] { return st.threads == 0; }))
        log::warn("streaming server: {} connection thread(s) still running at stop", st.threads);
}

Result<std::string> StreamServer::exec_url(const cri::ExecOptions& options) {
    BERTH_ASSIGN(std::string token, state_->tokens.add(options));
    return state_->base_url + "/exec/" + token;
}

Result<std::string> StreamServer::attach_url(const cri::AttachOptions& options) {
    BERTH_ASSIGN(std::string token, state_->tokens.add(options));
    return state_->base_url + "/attach/" + token;
}

Result<std::string> StreamServer::port_forward_url(const std::string& pod_id, std::vector<uint16_t> ports) {
    BERTH_ASSIGN(std::string token, state_->tokens.add(PortForwardTarget{pod_id, std::move(ports)}));
    return state_->base_url + "/portforward/" + token;
}

const std::string& StreamServer::base_url() const {
    return state_->base_url;
}

StreamCounts StreamServer::counts() const {
    StreamCounts c;
    c.exec_sessions = state_->exec_sessions.load();
    c.attach_sessions = state_->attach_sessions.load();
    c.port_forward_connections = state_->port_forward_connections.load();
    std::lock_guard lock(state_->mu);
    c.connections = state_->conns.size();
    return c;
}

}  // namespace berth::stream
