// Wire facts of kubelet's streaming protocols, shared by berthd's streaming server (src/stream/server) and
// berthctl's clients (src/stream/client). Names and numbers come from the Kubernetes remotecommand and portforward
// protocols; verify any that a helper adds against kubelet's streaming server before relying on it.
#pragma once

#include <cstdint>
#include <string_view>

namespace berth::stream {

// HTTP headers of the upgrade request and answer.
inline constexpr std::string_view kProtocolHeader = "X-Stream-Protocol-Version";  // SPDY: offered/chosen protocols
inline constexpr std::string_view kSpdyUpgrade = "SPDY/3.1";                       // Upgrade: value for SPDY
inline constexpr std::string_view kWebSocketProtocolHeader = "Sec-WebSocket-Protocol";

// Remote command (exec, attach) sub-protocols, oldest first. Over SPDY they are named in X-Stream-Protocol-Version;
// over WebSocket in Sec-WebSocket-Protocol (also with a "base64." prefix: every frame is text, base64 after the
// channel byte, as an ASCII digit).
inline constexpr std::string_view kRemoteCommandV1 = "channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV2 = "v2.channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV3 = "v3.channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV4 = "v4.channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV5 = "v5.channel.k8s.io";
inline constexpr std::string_view kPortForwardProtocol = "portforward.k8s.io";

// Port forwarding over WebSocket (kubelet's portforward/websocket.go): the sub-protocol is v4.channel.k8s.io
// (binary; "v4.base64.channel.k8s.io" for text), the ports are "port" query parameters of the URL, and port i uses
// channel 2i for data and 2i+1 for errors; the server's first message on each channel starts with the port as
// 2 bytes, little endian.
inline constexpr std::string_view kPortForwardWebSocketProtocol = "v4.channel.k8s.io";
inline constexpr std::string_view kPortForwardWebSocketBase64Protocol = "v4.base64.channel.k8s.io";

// SPDY stream headers (lower case on the wire).
inline constexpr std::string_view kStreamTypeHeader = "streamtype";
inline constexpr std::string_view kPortHeader = "port";
inline constexpr std::string_view kRequestIdHeader = "requestid";
inline constexpr std::string_view kStreamTypeStdin = "stdin";
inline constexpr std::string_view kStreamTypeStdout = "stdout";
inline constexpr std::string_view kStreamTypeStderr = "stderr";
inline constexpr std::string_view kStreamTypeError = "error";
inline constexpr std::string_view kStreamTypeResize = "resize";
inline constexpr std::string_view kStreamTypeData = "data";  // port-forward

// WebSocket channel numbers: the first byte of every binary message (remote command).
enum Channel : uint8_t {
    kChannelStdin = 0,
    kChannelStdout = 1,
    kChannelStderr = 2,
    kChannelError = 3,
    kChannelResize = 4,
    kChannelClose = 255,  // v5: [255, n] closes channel n (half-close, e.g. stdin EOF)
};

}  // namespace berth::stream
