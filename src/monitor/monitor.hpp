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
//   monitor.log    the monitor's own messages; runtime.log: the external runtime's (--log-format json)
// SIGUSR1 also reopens the log file.
//
// Readiness: the starter passes a pipe's write end as --sync-fd. The monitor writes exactly one JSON line,
// {"pid":<monitor pid>,"container_pid":<init pid>} once the container is created (and started with --start),
// or {"error":"<what failed>"} after it has removed everything it made (container, monitor dir), then closes it.
// EOF without a line means the monitor died before it could report.
#pragma once

#include <string>
#include <vector>

namespace berth::monitor {

struct MonitorOptions {
    std::string id;
    std::string bundle;       // absolute
    std::string dir;          // absolute; must not exist yet
    std::string log_path;     // absolute
    std::string root;         // state root of the runtime (berth's --root, or the external runtime's --root)
    std::string runtime;      // external OCI runtime binary; empty: libberth in this process
    std::vector<std::string> runtime_args;  // the external runtime's global options, before each subcommand
    int sync_fd = -1;         // > 2, or -1
    bool start = false;       // start right after create
    bool stdin_pipe = false;  // give the container a stdin pipe the monitor keeps open (otherwise /dev/null)
    bool terminal = false;    // process.terminal: receive the pty master on <dir>/console.sock, log it as stdout
};

// Detaches the monitor (fork, setsid, fork) and returns once the intermediate process is gone: the monitor is
// then nobody's child but its subreaper's, and reports on sync_fd. Returns main's exit code.
int spawn_monitor(const MonitorOptions& o);

}  // namespace berth::monitor
