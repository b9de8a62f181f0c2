// The SPDY side of the streaming clients: the HTTP/1.1 upgrade to SPDY/3.1, the remote command protocol (streams
// error, stdin, stdout, stderr, resize) and port forwarding (data + error stream pairs), plus what both transports
// share (URLs, exit codes, terminal size queue).
#include "stream/client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "stream/client_util.hpp"
#include "stream/conn.hpp"
#include "stream/protocol.hpp"

namespace berth::stream {

namespace detail {

Result<UniqueFd> dial(const std::string& host, const std::string& port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return fail("resolve {}:{}: {}", host, port, gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    int last = 0;
    for (auto* ai = res; ai; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) {
            last = errno;
            continue;
        }
        if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        last = errno;
    }
    return fail_errno(last ? last : ECONNREFUSED, "connect to {}:{}", host, port);
}

Result<void> write_fd(int fd, std::span<const char> data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
            continue;
        }
        if (n < 0) return fail_sys("write fd {}", fd);
        done += size_t(n);
    }
    return {};
}

Canceller::Canceller() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
        r_.reset(p[0]);
        w_.reset(p[1]);
    }
}

void Canceller::cancel() {
    if (w_) w_.reset();  // the read end sees EOF: readable
}

void copy_stream_to_fd(spdy::Stream& s, int fd) {
    std::string chunk;
    for (;;) {
        auto n = s.read_chunk(chunk);
        if (!n || *n == 0) return;
        if (!write_fd(fd, chunk)) {
            s.reset(spdy::RstStatus::cancel);
            return;
        }
    }
}

int remote_command_version(std::string_view p) {
    if (p == kRemoteCommandV1) return 1;
    if (p == kRemoteCommandV2) return 2;
    if (p == kRemoteCommandV3) return 3;
    if (p == kRemoteCommandV4) return 4;
    if (p == kRemoteCommandV5) return 5;
    return 0;
}

}  // namespace detail

using namespace detail;

Result<Transport> parse_transport(std::string_view name) {
    if (name == "spdy") return Transport::spdy;
    if (name == "websocket") return Transport::websocket;
    return fail("transport {:?}: expected spdy or websocket", name);
}

void TerminalSizeQueue::push(TerminalSize size) {
    std::lock_guard lk(mu_);
    pending_ = size;
    cv_.notify_all();
}

std::optional<TerminalSize> TerminalSizeQueue::next(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] { return pending_.has_value(); });
    return std::exchange(pending_, std::nullopt);
}

Result<ParsedUrl> parse_stream_url(const std::string& url) {
    std::string_view u = url;
    ParsedUrl p;
    if (u.starts_with("https://")) {
        p.tls = true;
        u.remove_prefix(8);
    } else if (u.starts_with("http://")) {
        u.remove_prefix(7);
    } else {
        return fail("stream URL {:?}: expected http://host:port/path or https://", url);
    }
    size_t slash = u.find('/');
    std::string_view authority = u.substr(0, slash);
    p.target = slash == std::string_view::npos ? "/" : std::string(u.substr(slash));
    if (authority.starts_with('[')) {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) return fail("stream URL {}: unterminated IPv6 address", url);
        p.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (authority.starts_with(':')) p.port = std::string(authority.substr(1));
    } else {
        size_t colon = authority.rfind(':');
        p.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) p.port = std::string(authority.substr(colon + 1));
    }
    if (p.host.empty()) return fail("stream URL {}: no host", url);
    if (p.port.empty()) p.port = p.tls ? "443" : "80";
    if (!std::ranges::all_of(p.port, [](char c) { return c >= '0' && c <= '9'; }))
        return fail("stream URL {}: bad port {:?}", url, p.port);
    return p;
}

Result<int> exit_code_from_status(std::string_view text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail("remote command: error stream is not a Status: {}", text);
    std::string status = j.value("status", "");
    if (status == "Success") return 0;
    std::string message = j.value("message", "");
    if (j.value("reason", "") == "NonZeroExitCode" && j.contains("details") && j["details"].is_object()) {
        const auto& causes = j["details"].value("causes", nlohmann::json::array());
        for (const auto& c : causes) {
            if (!c.is_object() || c.value("reason", "") != "ExitCode") continue;
            std::string m = c.value("message", "");
            int code = 0;
            auto [ptr, ec] = std::from_chars(m.data(), m.data() + m.size(), code);
            if (ec == std::errc() && ptr == m.data() + m.size()) return code;
            return fail("remote command: exit code {:?} in the Status is not a number", m);
        }
    }
    return fail("remote command: {}", message.empty() ? std::string(text) : message);
}

namespace {

struct Upgraded {
    std::unique_ptr<Conn> conn;
    std::string buffered;  // bytes after the HTTP headers: the first SPDY bytes
    std::string protocol;  // X-Stream-Protocol-Version chosen by the server
};

std::string lower(std::string_view s) {
    std::string out(s);
    std::ranges::transform(out, out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

// POST with Upgrade: SPDY/3.1, offering `protocols` newest first (one X-Stream-Protocol-Version line each).
Result<Upgraded> upgrade_spdy(const std::string& url, const TlsClientOptions& tls,
                              std::initializer_list<std::string_view> protocols) {
    BERTH_ASSIGN(ParsedUrl u, parse_stream_url(url));
    BERTH_ASSIGN(UniqueFd fd, dial(u.host, u.port));
    std::unique_ptr<Conn> conn;
    if (u.tls) {
        BERTH_ASSIGN(conn, tls_connect(std::move(fd), u.host, tls));
    } else {
        conn = plain_conn(std::move(fd));
    }
    std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    std::string req = fmt::format("POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: berthctl\r\nContent-Length: 0\r\n"
                                  "Connection: Upgrade\r\nUpgrade: {}\r\n",
                                  u.target, host, u.port, kSpdyUpgrade);
    for (auto p : protocols) req += fmt::format("{}: {}\r\n", kProtocolHeader, p);
    req += "\r\n";
    BERTH_TRY_CTX(conn->write_all(req), "upgrade {}", url);
    std::string in;
    size_t end;
    char buf[4096];
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        if (in.size() > 64 * 1024) return fail("upgrade {}: response headers too large", url);
        auto n = conn->read(buf);
        if (!n) return std::unexpected(std::move(n).error().wrap(fmt::format("upgrade {}: read response", url)));
        if (*n == 0) return fail("upgrade {}: connection closed before the response", url);
        in.append(buf, *n);
    }
    std::string_view head(in.data(), end);
    size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    int code = 0;
    if (status_line.size() >= 12 && status_line.starts_with("HTTP/1.")) code = std::atoi(std::string(status_line.substr(9, 3)).c_str());
    std::vector<std::pair<std::string, std::string>> headers;
    for (size_t pos = eol == std::string_view::npos ? head.size() : eol + 2; pos < head.size();) {
        size_t next = head.find("\r\n", pos);
        std::string_view line = head.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
        pos = next == std::string_view::npos ? head.size() : next + 2;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        headers.emplace_back(lower(line.substr(0, colon)), std::string(v));
    }
    auto header = [&](std::string_view name) -> std::string {
        for (const auto& [n, v] : headers)
            if (n == name) return v;
        return {};
    };
    if (code != 101) {
        std::string body = in.substr(end + 4, 512);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        return fail("upgrade {}: server answered {:?}{}{}", url, std::string(status_line), body.empty() ? "" : ": ",
                    body);
    }
    if (lower(header("upgrade")) != lower(kSpdyUpgrade))
        return fail("upgrade {}: server upgraded to {:?}, not {}", url, header("upgrade"), kSpdyUpgrade);
    return Upgraded{std::move(conn), in.substr(end + 4), header(lower(kProtocolHeader))};
}

Result<int> spdy_remote_command(const std::string& url, const RemoteCommandOptions& o) {
    BERTH_ASSIGN(Upgraded up, upgrade_spdy(url, o.tls, {kRemoteCommandV5, kRemoteCommandV4, kRemoteCommandV3,
                                                 kRemoteCommandV2, kRemoteCommandV1}));
    // No protocol header in the answer: the server only knows the first protocol (client-go assumes the same).
    int version = up.protocol.empty() ? 1 : remote_command_version(up.protocol);
    if (version == 0) return fail("exec {}: server chose unknown protocol {:?}", url, up.protocol);
    BERTH_ASSIGN(auto session, spdy::Session::start(std::move(up.conn), spdy::Session::Role::client,
                                                    std::move(up.buffered)));
    auto open = [&](std::string_view type) {
        return session->open({{std::string(kStreamTypeHeader), std::string(type)}});
    };
    // The error stream first, as kubelet's clients do: the server waits for the streams the request announced.
    BERTH_ASSIGN(auto error_stream, open(kStreamTypeError));
    std::shared_ptr<spdy::Stream> in, out, err, resize;
    if (o.stdin_fd >= 0) {
        BERTH_ASSIGN(in, open(kStreamTypeStdin));
    }
    if (o.stdout_fd >= 0) {
        BERTH_ASSIGN(out, open(kStreamTypeStdout));
    }
    if (o.stderr_fd >= 0 && !o.tty) {
        BERTH_ASSIGN(err, open(kStreamTypeStderr));
    }
    if (o.tty && version >= 3) {
        BERTH_ASSIGN(resize, open(kStreamTypeResize));
    }
    (void)error_stream->close_write();  // the client never writes on it

    Canceller cancel;
    std::atomic<bool> done{false};
    std::thread stdin_thread, resize_thread;
    if (in) {
        stdin_thread = std::thread([&] {
            auto eof = pump_fd(o.stdin_fd, cancel, [&](std::string_view d) { return bool(in->write(d)); });
            if (eof && *eof) (void)in->close_write();  // EOF reaches the remote process
        });
    }
    if (resize) {
        resize_thread = std::thread([&] {
            while (!done.load()) {
                auto size = o.resize ? o.resize->next(std::chrono::milliseconds(100)) : std::nullopt;
                if (!size) {
                    if (!o.resize) std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    continue;
                }
                std::string msg = nlohmann::json{{"Width", size->width}, {"Height", size->height}}.dump();
                if (!resize->write(msg)) return;
            }
        });
    }
    std::thread stderr_thread;
    if (err) stderr_thread = std::thread([&] { copy_stream_to_fd(*err, o.stderr_fd); });
    if (out) copy_stream_to_fd(*out, o.stdout_fd);
    if (stderr_thread.joinable()) stderr_thread.join();
    std::string status;
    char buf[4096];
    for (;;) {
        auto n = error_stream->read(buf);
        if (!n || *n == 0) break;
        status.append(buf, *n);
    }
    done = true;
    cancel.cancel();
    if (stdin_thread.joinable()) stdin_thread.join();
    if (resize_thread.joinable()) resize_thread.join();
    session->close();
    if (version >= 4) return status.empty() ? 0 : exit_code_from_status(status);
    if (!status.empty()) return fail("remote command: {}", status);
    return 0;
}

class SpdyPortForwardImpl final : public SpdyPortForward {
public:
    explicit SpdyPortForwardImpl(std::unique_ptr<spdy::Session> s) : session_(std::move(s)) {}
    ~SpdyPortForwardImpl() override { session_->close(); }

    Result<void> forward(UniqueFd local, uint16_t port) override {
        uint32_t id = next_request_id_++;
        spdy::Headers h = {{std::string(kStreamTypeHeader), std::string(kStreamTypeError)},
                           {std::string(kPortHeader), std::to_string(port)},
                           {std::string(kRequestIdHeader), std::to_string(id)}};
        BERTH_ASSIGN(auto error_stream, session_->open(h));
        (void)error_stream->close_write();
        h[0].second = std::string(kStreamTypeData);
        BERTH_ASSIGN(auto data, session_->open(h));
        std::string error_text;
        auto error_done = std::async(std::launch::async, [&] {
            char buf[4096];
            for (;;) {
                auto n = error_stream->read(buf);
                if (!n || *n == 0) return;
                error_text.append(buf, *n);
            }
        });
        Canceller cancel;
        std::thread local_thread([&] {
            auto eof = pump_fd(local.get(), cancel, [&](std::string_view d) { return bool(data->write(d)); });
            if (eof && *eof) (void)data->close_write();  // half-close passed on
        });
        copy_stream_to_fd(*data, local.get());
        ::shutdown(local.get(), SHUT_WR);  // the pod's side finished: the local client sees EOF
        // The server ends the error stream when the forwarding is over; a server that does not is not waited for
        // long (our reset wakes the read).
        if (error_done.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
            error_stream->reset(spdy::RstStatus::cancel);
        error_done.wait();
        // The remote side is done: stop reading the local side too, and let go of both streams.
        cancel.cancel();
        local_thread.join();
        data->reset(spdy::RstStatus::cancel);
        error_stream->reset(spdy::RstStatus::cancel);
        if (!error_text.empty()) return fail("port-forward to port {}: {}", port, error_text);
        return {};
    }
    bool closed() const override { return session_->closed(); }
    void close() override { session_->close(); }

private:
    std::unique_ptr<spdy::Session> session_;
    std::atomic<uint32_t> next_request_id_{0};
};

}  // namespace

Result<int> websocket_remote_command(const std::string& url, const RemoteCommandOptions& o);  // client_websocket.cpp

Result<int> run_remote_command(const std::string& url, const RemoteCommandOptions& o) {
    if (o.transport == Transport::websocket) return websocket_remote_command(url, o);
    return spdy_remote_command(url, o);
}

Result<std::unique_ptr<SpdyPortForward>> SpdyPortForward::connect(const std::string& url, const TlsClientOptions& tls) {
    BERTH_ASSIGN(Upgraded up, upgrade_spdy(url, tls, {kPortForwardProtocol}));
    if (up.protocol != kPortForwardProtocol)
        return fail("port-forward {}: server chose protocol {:?}, not {}", url, up.protocol, kPortForwardProtocol);
    BERTH_ASSIGN(auto session,
                 spdy::Session::start(std::move(up.conn), spdy::Session::Role::client, std::move(up.buffered)));
    return std::make_unique<SpdyPortForwardImpl>(std::move(session));
}

}  // namespace berth::stream
