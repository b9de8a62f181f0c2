// The port-forward protocol (portforward.k8s.io) as kubelet's streaming server speaks it.
//
// SPDY: the client opens two streams per forwarded connection, "data" and "error", with the same "requestid" and
// the target "port" header. Once both are there the server dials the port in the pod and copies bytes both ways
// (a FIN on the data stream half-closes the TCP connection; the pod's EOF half-closes the data stream); a dial
// failure is written as text on the error stream. A pair missing its second stream after the stream creation
// timeout is reset.
//
// WebSocket: one connection per port of the request, dialed at once. Channel 2i carries port i's data, channel
// 2i+1 its errors; each channel's first message is the port number as 2 bytes, little endian.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "stream/conn.hpp"
#include "stream/ws_channels.hpp"

namespace berth::stream {

namespace spdy {
class Session;
}

using DialFn = std::function<Result<UniqueFd>(uint16_t port)>;

// Serves a WebSocket port-forward until the client closes or every port's connection ended. `live` counts open
// forwarded connections.
void serve_port_forward_ws(Conn& conn, WsChannels& channels, const std::vector<uint16_t>& ports, const DialFn& dial,
                           const std::string& pod_id, std::atomic<uint64_t>* live);

// Serves a SPDY port-forward session until it ends. `allowed`: the ports the rpc named (empty: any).
void serve_port_forward_spdy(spdy::Session& session, const std::vector<uint16_t>& allowed, const DialFn& dial,
                             const std::string& pod_id, std::chrono::milliseconds pair_timeout,
                             std::atomic<uint64_t>* live);

}  // namespace berth::stream
