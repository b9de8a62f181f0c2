// The WebSocket side of the streaming clients (Boost.Beast): remote command channels (a channel byte before every
// binary message; v5's close message [255, channel]) and port forwarding (channel pairs, port-prefixed first
// messages). One io thread owns the WebSocket (Beast streams are not thread-safe): reads run there, and other
// threads hand messages over through a bounded queue.
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <type_traits>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "stream/client.hpp"
#include "stream/client_util.hpp"
#include "stream/protocol.hpp"

namespace berth::stream {

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr size_t kMaxQueued = 1024 * 1024;

using Handler = std::function<void(std::string_view)>;

// What the remote command and port-forward code below use, over a plain or a TLS connection.
class WsLink {
public:
    virtual ~WsLink() = default;
    virtual const std::string& protocol() const = 0;
    // Runs the read loop on this thread until the connection ends; `on_message` sees every message.
    [[nodiscard]] virtual Result<void> run(Handler on_message) = 0;
    // From any thread: queues one binary message (blocks while a lot is queued). False once the connection ended.
    virtual bool send(std::string msg) = 0;
    // From any thread: a normal close once the queued messages are out.
    virtual void close() = 0;
};

// Beast's WebSocket over `Next`: beast::tcp_stream (http:// URLs) or an SSL stream over one (https://).
template <class Next>
class WsClient final : public WsLink {
public:
    static constexpr bool kTls = !std::is_same_v<Next, beast::tcp_stream>;

    WsClient()
        requires(!kTls)
        : ws_(ioc_) {}
    explicit WsClient(net::ssl::context& ssl)
        requires(kTls)
        : ws_(ioc_, ssl) {}

    // Connects and completes the handshake offering `protocols` (newest first); over TLS, the server's
    // certificate is checked first, as `tls` says.
    Result<void> connect(const std::string& url, const ParsedUrl& u, const std::vector<std::string>& protocols,
                         const TlsClientOptions& tls) {
        try {
            tcp::resolver resolver(ioc_);
            auto results = resolver.resolve(u.host, u.port);
            beast::get_lowest_layer(ws_).connect(results);
            beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
            if constexpr (kTls) BERTH_TRY(tls_handshake(url, u, tls));
            std::string offered;
            for (const auto& p : protocols) offered += (offered.empty() ? "" : ", ") + p;
            ws_.set_option(websocket::stream_base::decorator([offered](websocket::request_type& req) {
                req.set(beast::http::field::sec_websocket_protocol, offered);
                req.set(beast::http::field::user_agent, "berthctl");
            }));
            websocket::response_type res;
            beast::error_code ec;
            std::string host = (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host) + ":" + u.port;
            // The asynchronous handshake, run to completion here: unlike the synchronous one (Boost 1.74), it
            // hands back the server's response when the upgrade is declined, so the error can name it.
            ws_.async_handshake(res, host, u.target, [&ec](beast::error_code e) { ec = e; });
            ioc_.run();
            ioc_.restart();
            if (ec) {
                if (res.result_int() != 0 && res.result() != beast::http::status::switching_protocols)
                    return fail("websocket {}: server answered HTTP {} {}{}{}", url, res.result_int(),
                                std::string(res.reason()), res.body().empty() ? "" : ": ", res.body());
                return fail("websocket {}: handshake: {}", url, ec.message());
            }
            protocol_ = std::string(res[beast::http::field::sec_websocket_protocol]);
            ws_.binary(true);
            // No size limit of Beast's own on messages (16 MiB by default would cut a big frame off).
            ws_.read_message_max(0);
        } catch (const beast::system_error& e) {
            return fail("websocket {}: {}", url, e.code().message());
        }
        return {};
    }

    const std::string& protocol() const override { return protocol_; }

    Result<void> run(Handler on_message) override {
        on_message_ = std::move(on_message);
        start_read();
        ioc_.run();
        std::lock_guard lk(mu_);
        // A TLS peer that closes its socket without close_notify: "stream truncated", an end like EOF here (the
        // WebSocket close handshake says whether the session ended well).
        if (error_ && error_ != websocket::error::closed && error_ != net::error::eof &&
            error_ != net::error::operation_aborted && error_ != net::ssl::error::stream_truncated)
            return fail("websocket: {}", error_.message());
        return {};
    }

    bool send(std::string msg) override {
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return done_ || queued_ < kMaxQueued; });
            if (done_) return false;
            queued_ += msg.size();
        }
        net::post(ioc_, [this, m = std::move(msg)]() mutable {
            out_.push_back(std::move(m));
            if (!writing_) write_next();
        });
        return true;
    }

    void close() override {
        net::post(ioc_, [this] {
            closing_ = true;
            if (!writing_) do_close();
        });
    }

private:
    // The client's TLS handshake: SNI for a name, the certificate checked against the URL's host (name or IP).
    Result<void> tls_handshake(const std::string& url, const ParsedUrl& u, const TlsClientOptions& tls) {
        auto& ssl = ws_.next_layer();
        beast::error_code not_ip;
        net::ip::make_address(u.host, not_ip);
        if (not_ip && !SSL_set_tlsext_host_name(ssl.native_handle(), u.host.c_str()))
            return fail("websocket {}: TLS server name {:?}", url, u.host);
        if (!tls.skip_verify) {
            ssl.set_verify_mode(net::ssl::verify_peer);
            ssl.set_verify_callback(net::ssl::host_name_verification(u.host));
        }
        beast::error_code ec;
        ssl.async_handshake(net::ssl::stream_base::client, [&ec](beast::error_code e) { ec = e; });
        ioc_.run();
        ioc_.restart();
        if (!ec) return {};
        long v = SSL_get_verify_result(ssl.native_handle());
        if (!tls.skip_verify && v != X509_V_OK)
            return fail("websocket {}: TLS handshake: the server's certificate: {}", url,
                        X509_verify_cert_error_string(v));
        return fail("websocket {}: TLS handshake: {}", url, ec.message());
    }

    void start_read() {
        ws_.async_read(rbuf_, [this](beast::error_code ec, size_t) {
            if (ec) return finish(ec);
            auto data = rbuf_.cdata();
            on_message_(std::string_view(static_cast<const char*>(data.data()), data.size()));
            rbuf_.consume(rbuf_.size());
            start_read();
        });
    }
    void write_next() {
        writing_ = true;
        ws_.async_write(net::buffer(out_.front()), [this](beast::error_code ec, size_t) {
            {
                std::lock_guard lk(mu_);
                queued_ -= out_.front().size();
                cv_.notify_all();
            }
            out_.pop_front();
            if (ec) {
                writing_ = false;
                return finish(ec);
            }
            if (!out_.empty()) return write_next();
            writing_ = false;
            if (closing_) do_close();
        });
    }
    void do_close() {
        if (close_sent_ || !ws_.is_open()) return;
        close_sent_ = true;
        ws_.async_close(websocket::close_code::normal, [](beast::error_code) {});
    }
    void finish(beast::error_code ec) {
        std::lock_guard lk(mu_);
        if (!done_) error_ = ec;
        done_ = true;
        cv_.notify_all();
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    net::io_context ioc_;
    websocket::stream<Next> ws_;
    beast::flat_buffer rbuf_;
    Handler on_message_;
    std::string protocol_;
    // io thread only:
    std::deque<std::string> out_;
    bool writing_ = false;
    bool closing_ = false;
    bool close_sent_ = false;
    // mu_:
    std::mutex mu_;
    std::condition_variable cv_;
    size_t queued_ = 0;
    bool done_ = false;
    beast::error_code error_;
};

// A TLS WebSocket with the OpenSSL context it was made with (the context must outlive the stream).
class TlsWsLink final : public WsLink {
public:
    TlsWsLink() : ssl_(net::ssl::context::tls_client), ws_(ssl_) {}
    // Trusts `tls.ca_file` or the system's CAs (unless skip_verify), then connects.
    Result<void> connect(const std::string& url, const ParsedUrl& u, const std::vector<std::string>& protocols,
                         const TlsClientOptions& tls) {
        SSL_CTX_set_min_proto_version(ssl_.native_handle(), TLS1_2_VERSION);
        if (!tls.skip_verify) {
            beast::error_code ec;
            if (!tls.ca_file.empty())
                ssl_.load_verify_file(tls.ca_file, ec);
            else
                ssl_.set_default_verify_paths(ec);
            if (ec) return fail("websocket {}: TLS CA file {}: {}", url, tls.ca_file, ec.message());
        }
        return ws_.connect(url, u, protocols, tls);
    }
    const std::string& protocol() const override { return ws_.protocol(); }
    Result<void> run(Handler on_message) override { return ws_.run(std::move(on_message)); }
    bool send(std::string msg) override { return ws_.send(std::move(msg)); }
    void close() override { ws_.close(); }

private:
    net::ssl::context ssl_;  // declared first: built before, destroyed after the stream
    WsClient<beast::ssl_stream<beast::tcp_stream>> ws_;
};

// A connected WebSocket for `url` (over TLS for https://), the handshake done offering `protocols`.
Result<std::unique_ptr<WsLink>> ws_connect(const std::string& url, const std::vector<std::string>& protocols,
                                           const TlsClientOptions& tls) {
    BERTH_ASSIGN(ParsedUrl u, parse_stream_url(url));
    if (u.tls) {
        auto link = std::make_unique<TlsWsLink>();
        BERTH_TRY(link->connect(url, u, protocols, tls));
        return std::unique_ptr<WsLink>(std::move(link));
    }
    auto link = std::make_unique<WsClient<beast::tcp_stream>>();
    BERTH_TRY(link->connect(url, u, protocols, tls));
    return std::unique_ptr<WsLink>(std::move(link));
}

std::string channel_message(uint8_t channel, std::string_view data) {
    std::string m;
    m.reserve(1 + data.size());
    m.push_back(char(channel));
    m += data;
    return m;
}

}  // namespace

Result<int> websocket_remote_command(const std::string& url, const RemoteCommandOptions& o) {
    BERTH_ASSIGN(auto link, ws_connect(url,
                                       {std::string(kRemoteCommandV5), std::string(kRemoteCommandV4),
                                        std::string(kRemoteCommandV3), std::string(kRemoteCommandV2),
                                        std::string(kRemoteCommandV1)},
                                       o.tls));
    WsLink& ws = *link;
// No protocol in the answer: the server speaks the original channel protocol.
    int version = ws.protocol().empty() ? 1 : detail::remote_command_version(ws.protocol());
    if (version == 0) return fail("exec {}: server chose unknown protocol {:?}", url, ws.protocol());

    detail::Canceller cancel;
    std::atomic<bool> done{false};
    std::thread stdin_thread, resize_thread;
    if (o.stdin_fd >= 0) {
        stdin_thread = std::thread([&] {
            auto eof = detail::pump_fd(o.stdin_fd, cancel,
                                       [&](std::string_view d) { return ws.send(channel_message(kChannelStdin, d)); });
            // Only v5 can say "stdin is done" ([255, 0]); before it the remote stdin stays open.
            if (eof && *eof && version >= 5) ws.send(std::string{char(kChannelClose), char(kChannelStdin)});
        });
    }
    if (o.tty && o.resize && version >= 3) {
        resize_thread = std::thread([&] {
            while (!done.load()) {
                auto size = o.resize->next(std::chrono::milliseconds(100));
                if (!size) continue;
                std::string msg = nlohmann::json{{"Width", size->width}, {"Height", size->height}}.dump();
                if (!ws.send(channel_message(kChannelResize, msg))) return;
            }
        });
    }
    std::string status;
    bool output_failed = false;
    auto r = ws.run([&](std::string_view m) {
        if (m.empty()) return;
        uint8_t ch = uint8_t(m[0]);
        m.remove_prefix(1);
        int fd = ch == kChannelStdout ? o.stdout_fd : ch == kChannelStderr ? o.stderr_fd : -1;
        if (fd >= 0 && !m.empty() && !output_failed) {
            if (!detail::write_fd(fd, m)) {
                output_failed = true;
                ws.close();
            }
        } else if (ch == kChannelError) {
            status += m;
        }
    });
    done = true;
    cancel.cancel();
    if (stdin_thread.joinable()) stdin_thread.join();
    if (resize_thread.joinable()) resize_thread.join();
    BERTH_TRY_CTX(std::move(r), "exec {}", url);
    if (version >= 4) return status.empty() ? 0 : exit_code_from_status(status);
    if (!status.empty()) return fail("remote command: {}", status);
    return 0;
}

Result<void> websocket_port_forward(const std::string& url, UniqueFd local, uint16_t port,
                                    const TlsClientOptions& tls) {
    std::string with_port = url + (url.find('?') == std::string::npos ? "?" : "&") + "port=" + std::to_string(port);
    BERTH_ASSIGN(auto link, ws_connect(with_port, {std::string(kPortForwardWebSocketProtocol)}, tls));
    WsLink& ws = *link;
    detail::Canceller cancel;
    std::thread local_thread([&] {
        (void)detail::pump_fd(local.get(), cancel,
                              [&](std::string_view d) { return ws.send(channel_message(0, d)); });
        // No half-close in this protocol: EOF from the local client ends the forwarding.
        ws.close();
    });
    bool prefix_seen[2] = {false, false};
    std::string error_text;
    auto r = ws.run([&](std::string_view m) {
        if (m.empty()) return;
        uint8_t ch = uint8_t(m[0]);
        m.remove_prefix(1);
        if (ch > 1) return;  // one port per connection: channels 0 (data) and 1 (error)
        if (!prefix_seen[ch]) {
            // The server's first message on each channel starts with the port, little endian.
            prefix_seen[ch] = true;
            m.remove_prefix(std::min<size_t>(2, m.size()));
        }
        if (ch == 0) {
            if (!m.empty() && !detail::write_fd(local.get(), m)) ws.close();
        } else {
            error_text += m;
        }
    });
    ::shutdown(local.get(), SHUT_RDWR);
    cancel.cancel();
    local_thread.join();
    BERTH_TRY_CTX(std::move(r), "port-forward {}", url);
    if (!error_text.empty()) return fail("port-forward to port {}: {}", port, error_text);
    return {};
}

}  // namespace berth::stream
