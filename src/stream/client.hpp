// Clients of kubelet's streaming protocols, as berthctl (and the tests) use them against the URL that the CRI
// Exec, Attach and PortForward rpcs return: an HTTP/1.1 upgrade to SPDY/3.1 or to WebSocket, then the remote
// command protocol (channel.k8s.io ... v5.channel.k8s.io) or the port-forward protocol (portforward.k8s.io over
// SPDY; channel pairs over WebSocket).
//
// URLs: http://host:port/path, or https:// (TLS 1.2+, the server's certificate checked as TlsClientOptions say),
// over either transport.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "stream/tls_conn.hpp"

namespace berth::stream {

enum class Transport { spdy, websocket };

// "spdy" or "websocket".
[[nodiscard]] Result<Transport> parse_transport(std::string_view name);

struct TerminalSize {
    uint16_t width = 0;
    uint16_t height = 0;
    bool operator==(const TerminalSize&) const = default;
};

// Terminal sizes for the remote command's resize stream. push() from any thread (berthctl: a SIGWINCH thread).
class TerminalSizeQueue {
public:
    void push(TerminalSize size);
    // The newest size pushed since the last call, waiting up to `timeout`; nullopt when none came.
    std::optional<TerminalSize> next(std::chrono::milliseconds timeout);

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<TerminalSize> pending_;
};

struct RemoteCommandOptions {
    Transport transport = Transport::spdy;
    // -1: the stream is not opened (the Exec/Attach request must agree: stdin, stdout, stderr flags).
    int stdin_fd = -1;
    int stdout_fd = -1;
    int stderr_fd = -1;  // with a tty the remote side has no separate stderr: leave it -1
    bool tty = false;
    TerminalSizeQueue* resize = nullptr;  // tty only; optional
    TlsClientOptions tls;                 // for https URLs
};

// Runs an exec or attach session on `url` until the remote side ends it. Returns the remote command's exit code
// (0 on success; from the v4+ Status "ExitCode" cause on failure); an error when the transport, the negotiation
// or the remote side (a Status failure without an exit code, a v1-v3 error message) fails.
[[nodiscard]] Result<int> run_remote_command(const std::string& url, const RemoteCommandOptions& options);

// Port forwarding over one SPDY connection: each forwarded connection is a data + error stream pair (headers
// streamtype, port, requestid).
class SpdyPortForward {
public:
    virtual ~SpdyPortForward() = default;
    [[nodiscard]] static Result<std::unique_ptr<SpdyPortForward>> connect(const std::string& url,
                                                                          const TlsClientOptions& tls = {});
    // Copies `local` <-> the pod's `port` until both directions are done (half-close passed on both ways).
    // Blocks; may run on many threads at once.
    [[nodiscard]] virtual Result<void> forward(UniqueFd local, uint16_t port) = 0;
    // Whether the connection to the server is gone (a new PortForward rpc is needed).
    virtual bool closed() const = 0;
    virtual void close() = 0;
};

// Port forwarding of one local connection over its own WebSocket connection (the URL is single-use, so each
// connection needs a URL of its own): "?port=PORT" is added to `url`; channel 0 carries data, channel 1 errors,
// and the first message on each starts with the port (2 bytes, little endian). The protocol has no half-close:
// EOF from `local` is not passed on; the forwarding ends when the server closes.
[[nodiscard]] Result<void> websocket_port_forward(const std::string& url, UniqueFd local, uint16_t port,
                                                  const TlsClientOptions& tls = {});

// Internals shared with the tests.
struct ParsedUrl {
    std::string host;
    std::string port;
    std::string target;  // path + query
    bool tls = false;    // https
};
[[nodiscard]] Result<ParsedUrl> parse_stream_url(const std::string& url);
// The exit code carried by a remote command error stream (v4+ Status JSON): 0 for Success.
[[nodiscard]] Result<int> exit_code_from_status(std::string_view json);

}  // namespace berth::stream
