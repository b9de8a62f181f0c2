// What berthd's streaming server (src/stream/server) reaches inside containers and pods: a process started in a
// running container (Exec), the container's own stdio through its berth-monitor (Attach), and a TCP connection
// to a port inside a pod's network namespace (PortForward). The server speaks the wire protocols; this side knows
// containers. ExecSession and AttachSession are interfaces so the protocol code can be tested over plain host
// processes as well.
//
// Thread-safety: StreamTargets may be used from any thread. A session's reads may run on one thread while its
// writes, resize and close_stdin run on another.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::cri {

struct CriContext;
class ContainerManager;
class PodManager;

// Output of a session: which stream (1 stdout, 2 stderr, as the remote command channels number them) and bytes.
struct OutputChunk {
    int stream = 1;
    std::string data;  // empty only as the end-of-output marker (see read() below)
};

// A process started in a container for a streaming Exec, with pipes or (tty) a pseudo-terminal.
class ExecSession {
public:
    virtual ~ExecSession() = default;  // a process still running is killed (SIGKILL) and reaped; fds closed

    // Output in arrival order; an empty chunk (data == "") once every output stream reached EOF. With a tty all
    // output is stream 1.
    [[nodiscard]] virtual Result<OutputChunk> read() = 0;
    // Input for the process's stdin (only when started with stdin).
    [[nodiscard]] virtual Result<void> write_stdin(std::span<const char> data) = 0;
    // EOF on stdin (with a tty: the terminal's EOF character, so the reader sees end of input).
    virtual void close_stdin() = 0;
    // Terminal size (tty only; otherwise EINVAL).
    [[nodiscard]] virtual Result<void> resize(uint16_t width, uint16_t height) = 0;
    // Blocks until the process exited; its exit code (128 + signal when killed by one).
    [[nodiscard]] virtual Result<int> wait() = 0;
    // SIGKILL (the client went away).
    virtual void kill() = 0;
};

// A connection to a running container's own stdio through its monitor. Several may be attached at once; closing
// one detaches it without touching the container.
class AttachSession {
public:
    virtual ~AttachSession() = default;  // detaches

    // The container's output from the moment of attaching, in order; an empty chunk once the container's output
    // ended (it exited) or the monitor went away.
    [[nodiscard]] virtual Result<OutputChunk> read() = 0;
    // Input for the container's stdin (the container must have been created with stdin).
    [[nodiscard]] virtual Result<void> write_stdin(std::span<const char> data) = 0;
    // The client's end of input: closes the container's stdin when its config has stdin_once, else only detaches
    // this session's input.
    virtual void close_stdin() = 0;
    // Terminal size of the container's tty (tty containers only; otherwise EINVAL).
    [[nodiscard]] virtual Result<void> resize(uint16_t width, uint16_t height) = 0;
    // The client went away: wakes a read() blocked on another thread (it returns the end marker or an error) and
    // detaches. Added by the streaming server (an attacher of a silent container would otherwise keep its thread
    // until the container next prints); the default does nothing, so read() returns with the next output.
    virtual void cancel() {}
};

struct ExecOptions {
    std::string container_id;
    std::vector<std::string> cmd;  // not empty
    bool tty = false;
    bool stdin = false;
    bool stdout = true;
    bool stderr = true;  // must be false with tty (the CRI's rule: tty merges stderr into stdout)
};

struct AttachOptions {
    std::string container_id;
    bool tty = false;  // must match the container's config
    bool stdin = false;
    bool stdout = true;
    bool stderr = true;
};

class StreamTargets {
public:
    StreamTargets(CriContext& ctx, ContainerManager& containers, PodManager& pods)
        : ctx_(ctx), containers_(containers), pods_(pods) {}

    // What the CRI Exec/Attach/PortForward rpcs check before handing out a URL: the container exists and is
    // running (NOT_FOUND / FAILED_PRECONDITION by errno ENOENT / EBUSY), tty matches the container for attach, the
    // pod exists and is ready with a network namespace. Errors name the id.
    [[nodiscard]] Result<void> check_exec(const ExecOptions& o);
    [[nodiscard]] Result<void> check_attach(const AttachOptions& o);
    [[nodiscard]] Result<void> check_port_forward(const std::string& pod_id);

    // Starts `o.cmd` in the container through the container's handler (libberth's `berth exec`, or the OCI
    // runtime's exec), with a pty when o.tty.
    [[nodiscard]] Result<std::unique_ptr<ExecSession>> exec(const ExecOptions& o);
    [[nodiscard]] Result<std::unique_ptr<AttachSession>> attach(const AttachOptions& o);
    // A TCP connection to `port` on the pod's loopback (127.0.0.1, then ::1), made inside its network namespace
    // (the host's for hostNetwork pods).
    [[nodiscard]] Result<UniqueFd> dial(const std::string& pod_id, uint16_t port);

private:
    CriContext& ctx_;
    ContainerManager& containers_;
    PodManager& pods_;
};

}  // namespace berth::cri
