// berthd's streaming server: the HTTP/1.1 endpoint behind the URLs that the CRI Exec, Attach and PortForward rpcs
// return. kubelet (or crictl) connects to such a URL and upgrades the connection to SPDY/3.1 or WebSocket; the
// remote command (exec, attach) or port-forward protocol then runs over it (remote_command.hpp, port_forward.hpp).
//
// URLs: <scheme>://<host:port>/{exec,attach,portforward}/<token>. A token is single-use and expires after the
// configured lifetime; unknown, used and expired tokens are answered 404. One thread per connection; the accept
// thread also closes connections idle for longer than the idle timeout.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "cri/stream_targets.hpp"

namespace berth::stream {

struct ServerOptions {
    std::string address = "127.0.0.1:0";  // host:port ([v6]:port); port 0 = any free port
    std::string tls_cert;                 // PEM certificate (chain) and key: both set = https, both empty = http
    std::string tls_key;
    std::chrono::milliseconds token_lifetime = std::chrono::minutes(1);
    // How long the server waits for a SPDY client's streams (and a port-forward's stream pairs), as kubelet's
    // stream creation timeout.
    std::chrono::milliseconds stream_creation_timeout = std::chrono::seconds(30);
    // A connection that has read and written nothing for this long is closed, as one whose client went away (its
    // exec'd process killed, its port-forwards ended), like kubelet's streaming connection idle timeout. 0: never.
    std::chrono::milliseconds idle_timeout = std::chrono::hours(4);
};

// What the server reaches: berthd binds these to cri::StreamTargets; tests bind host processes.
struct StreamBackend {
    std::function<Result<std::unique_ptr<cri::ExecSession>>(const cri::ExecOptions&)> exec;
    std::function<Result<std::unique_ptr<cri::AttachSession>>(const cri::AttachOptions&)> attach;
    std::function<Result<UniqueFd>(const std::string& pod_id, uint16_t port)> dial;
};

// Live counts, for the metrics.
struct StreamCounts {
    uint64_t exec_sessions = 0;             // exec'd processes with a client
    uint64_t attach_sessions = 0;           // attached clients
    uint64_t port_forward_connections = 0;  // forwarded TCP connections open
    uint64_t connections = 0;               // HTTP connections being served
};

class StreamServer {
public:
    // Binds and starts accepting. Errors name the address or the certificate file.
    [[nodiscard]] static Result<std::unique_ptr<StreamServer>> start(const ServerOptions& options,
                                                                     StreamBackend backend);
    // Stops accepting, ends every connection (exec'd processes killed, port-forwards closed) and waits for their
    // threads (bounded: a thread still blocked after a few seconds is left to finish on its own).
    ~StreamServer();

    // A URL for what the rpc validated; the token in it is registered until used or expired.
    [[nodiscard]] Result<std::string> exec_url(const cri::ExecOptions& options);
    [[nodiscard]] Result<std::string> attach_url(const cri::AttachOptions& options);
    [[nodiscard]] Result<std::string> port_forward_url(const std::string& pod_id, std::vector<uint16_t> ports);

    // "http://127.0.0.1:PORT" (or https), as the URLs start.
    const std::string& base_url() const;
    StreamCounts counts() const;

    struct State;

private:
    explicit StreamServer(std::shared_ptr<State> state);
    std::shared_ptr<State> state_;
};

}  // namespace berth::stream
