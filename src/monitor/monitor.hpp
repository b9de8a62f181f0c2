// berth-monitor: one small process per container that outlives berthd.
//
// It creates the container (libberth in process, or an external OCI runtime binary run as conmon runs it), is the
// parent (or child subreaper) of the container's init, holds its stdio pipes, writes them to the CRI log file,
// and records the exit in <dir>/exit (exit_record.hpp). Files in the monitor dir <dir>, which it makes itself:
//   exit           the exit record; berthd learns of an exit by an inotify watch (IN_MOVED_TO) on <dir>
//   ctl            a SOCK_STREAM unix socket: one command line per connection, one reply line:
//                  "start\n" -> "ok\n" | "error <message>\n" (starts a container created without --start)
//                  "reopen\n" -> "ok\n" | "error <message>\n" (reopens the log file: ReopenContainerLog)
//   container.pid  the container init's pid (host pid namespace)
//   console.sock   with a terminal, during create only: the --console-socket the pty master arrives on
//   attach         a SOCK_SEQPACKET unix socket for attach sessions (protocol below)
//   monitor.log    the monitor's own messages; runtime.log: the external runtime's (--log-format json)
// SIGUSR1 also reopens the log file.
//
// Attach protocol. Every message is one SEQPACKET datagram: a type byte, then its payload. Several clients may be
// attached at once; each gets the container's output from the moment it connected.
//   monitor -> client
//     'H' flags             hello, the first message: kAttachStdin (the container has stdin), kAttachTerminal,
//                           kAttachStdinOnce, kAttachStdinClosed (its stdin was closed already)
//     'O' bytes / 'E' bytes the container's stdout / stderr as read (a terminal's output is all 'O'); at most
//                           kAttachMaxFrame bytes in all
//     'X'                   end of output: the container exited (and what it wrote before is sent); the monitor then
//                           closes the connection
//   client -> monitor
//     'A' flags             the client's own flags (kAttachStdin: it takes part in the container's input, so its
//                           detaching closes the stdin of a stdin_once container); optional, before anything else
//     'I' bytes             input for the container's stdin (the pipe, or the pty master); dropped when the
//                           container has no stdin or it was closed
//     'C'                   end of this client's input; closes the container's stdin when it is stdin_once (a pipe
//                           is closed, a terminal gets its VEOF character), otherwise only this client's input ends
//     'W' w16 h16           window size (columns, rows; big-endian): TIOCSWINSZ on the pty master (terminal only)
// Input is written in arrival order; while the container does not take its stdin, the monitor stops reading the
// clients (they block in send). A client that does not take its output is given kAttachQueueMax bytes of backlog,
// then disconnected: the container and its log never wait for an attacher.
//
// Readiness: the starter passes a pipe's write end as --sync-fd. The monitor writes exactly one JSON line,
// {"pid":<monitor pid>,"container_pid":<init pid>} once the container is created (and started with --start),
// or {"error":"<what failed>"} after it has removed everything it made (container, monitor dir), then closes it.
// EOF without a line means the monitor died before it could report.
#pragma once

#include <cstddef>
#include <string>

namespace berth::monitor {

struct MonitorOptions {
    std::string id;
    std::string bundle;       // absolute
    std::string dir;          // absolute; must not exist yet
    std::string log_path;     // absolute
    std::string root;         // state root of the runtime (berth's --root, or the external runtime's --root)
    std::string runtime;      // external OCI runtime binary; empty: libberth in this process
    int sync_fd = -1;         // > 2, or -1
    bool start = false;       // start right after create
    bool stdin_pipe = false;  // give the container a stdin pipe the monitor keeps open (otherwise /dev/null)
    bool terminal = false;    // process.terminal: receive the pty master on <dir>/console.sock, log it as stdout
    bool stdin_once = false;  // the container's stdin is closed when the first attach client ends its input
};

// The attach socket's name in the monitor dir and its protocol (see above).
inline constexpr const char* kAttachSocket = "attach";
inline constexpr char kAttachHello = 'H', kAttachStdout = 'O', kAttachStderr = 'E', kAttachEnd = 'X';
inline constexpr char kAttachClientHello = 'A', kAttachInput = 'I', kAttachCloseInput = 'C', kAttachResize = 'W';
inline constexpr unsigned char kAttachStdin = 1, kAttachTerminal = 2, kAttachStdinOnce = 4, kAttachStdinClosed = 8;
inline constexpr size_t kAttachMaxFrame = 1 + 16 * 1024;
inline constexpr size_t kAttachQueueMax = 1 << 20;

// Detaches the monitor (fork, setsid, fork) and returns once the intermediate process is gone: the monitor is
// then nobody's child but its subreaper's, and reports on sync_fd. Returns main's exit code.
int spawn_monitor(const MonitorOptions& o);

}  // namespace berth::monitor
