// The remote command protocols (exec, attach) as kubelet's streaming server speaks them, apart from the
// transport: the process side (CommandTarget over cri::ExecSession / cri::AttachSession), the client side
// (CommandTransport: WebSocket channels or SPDY streams), and run_remote_command joining the two.
//
// Protocol versions (channel.k8s.io family):
//   v1 channel.k8s.io     stdin, stdout, stderr, error (text of the failure; nothing on success)
//   v2 v2.channel.k8s.io  as v1 (SPDY clients open the streams before the error stream)
//   v3 v3.channel.k8s.io  + resize ({"Width":W,"Height":H} JSON objects, tty only)
//   v4 v4.channel.k8s.io  the error stream carries a Status JSON: Success, or Failure with reason NonZeroExitCode
//                         and the exit code as details.causes[{reason:"ExitCode", message:"<code>"}]
//   v5 v5.channel.k8s.io  + WebSocket close signal: a message [255, channel] half-closes a channel (stdin EOF)
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "cri/stream_targets.hpp"

namespace berth::stream {

enum class CommandVersion { v1 = 1, v2, v3, v4, v5 };

// The protocol of a name (kRemoteCommandV1..V5); nullopt for anything else.
std::optional<CommandVersion> command_version(std::string_view name);

// What the client asked for (the rpc's options, as the token recorded them).
struct CommandStreams {
    bool stdin = false;
    bool stdout = false;
    bool stderr = false;
    bool tty = false;
};

// The process end of a remote command.
class CommandTarget {
public:
    virtual ~CommandTarget() = default;
    [[nodiscard]] virtual Result<cri::OutputChunk> read() = 0;
    [[nodiscard]] virtual Result<void> write_stdin(std::span<const char> data) = 0;
    virtual void close_stdin() = 0;
    [[nodiscard]] virtual Result<void> resize(uint16_t width, uint16_t height) = 0;
    // After the output ended: the exit code (exec: waits for the process), 0 for attach.
    [[nodiscard]] virtual Result<int> finish() = 0;
    // The client went away: an exec'd process is killed; an attach is woken and detached. Any thread.
    virtual void abandon() = 0;
    // What the error stream says about a non-zero exit ("command [sh -c exit 3]").
    virtual std::string describe() const = 0;
};

// Adapters over the CRI sessions; `live` (may be null) counts the session while the adapter exists.
std::unique_ptr<CommandTarget> exec_target(std::unique_ptr<cri::ExecSession> session, std::vector<std::string> cmd,
                                           std::atomic<uint64_t>* live);
std::unique_ptr<CommandTarget> attach_target(std::unique_ptr<cri::AttachSession> session, std::string container_id,
                                             std::atomic<uint64_t>* live);

// Receives the client's input; a transport calls it from its input thread(s).
class CommandInput {
public:
    virtual ~CommandInput() = default;
    virtual void on_stdin(std::span<const char> data) = 0;
    virtual void on_stdin_eof() = 0;
    // Bytes of the resize stream; JSON objects may span calls or share one.
    virtual void on_resize_bytes(std::string_view bytes) = 0;
};

// The client end of a remote command.
class CommandTransport {
public:
    virtual ~CommandTransport() = default;
    // Output for stdout (1) or stderr (2), only called for streams the client asked for.
    [[nodiscard]] virtual Result<void> write_output(int stream, std::span<const char> data) = 0;
    // The error stream's payload (may be empty), then the error stream is closed.
    [[nodiscard]] virtual Result<void> write_error(std::string_view payload) = 0;
    // Blocks reading the client's input into `input` until the client's side ended (a normal close after
    // end() or the client going away). Called on a thread of its own.
    virtual void run_input(CommandInput& input) = 0;
    // The command is over: a graceful close (WebSocket close frame, SPDY stream FINs / GOAWAY).
    virtual void end() = 0;
    // Tears the connection down now; wakes run_input.
    virtual void abort() = 0;
};

// The error stream's payload for an exit code (`code`) or a failure (`failure` set) in `version`'s form.
std::string command_status(CommandVersion version, const Result<int>& result, std::string_view command);

// Splits a byte stream of JSON objects ({"Width":80,"Height":24}{"Width":...}) into terminal sizes. Bad JSON is
// an error (the resize stream is then ignored, as kubelet does).
class ResizeDecoder {
public:
    struct Size {
        uint16_t width;
        uint16_t height;
    };
    // Feeds bytes; the sizes of the objects they completed.
    [[nodiscard]] Result<std::vector<Size>> feed(std::string_view bytes);

private:
    std::string pending_;
    int depth_ = 0;
    bool in_string_ = false;
    bool escaped_ = false;
};

// Runs a command between `target` and `transport`: output is copied to the client, input to the process, the
// error stream written at the end. Returns once everything it started has ended. A client going away abandons
// the target.
void run_remote_command(CommandTransport& transport, CommandTarget& target, CommandVersion version,
                        const CommandStreams& streams);

}  // namespace berth::stream
