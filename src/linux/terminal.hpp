// Pseudo-terminals, the console socket (fd passing over AF_UNIX) and the foreground terminal proxy.
//
// These are what `process.terminal: true` needs: the runtime allocates a pty inside the container's devpts,
// makes the slave the container process's controlling terminal, and either hands the master to whoever listens
// on --console-socket (send_fd) or, for a foreground `berth run`, relays between its own stdio and the master
// (proxy_terminal).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::sys {

struct Pty {
    UniqueFd master;
    UniqueFd slave;
    std::string slave_name;  // e.g. "/dev/pts/3", as ptsname reports it in the opener's mount namespace
};

// Opens a new pty pair through `ptmx` (the container's /dev/ptmx once its devpts is mounted, so the pair lives in
// that devpts instance). Both fds are O_CLOEXEC; neither becomes the caller's controlling terminal (O_NOCTTY).
// The slave is opened with TIOCGPTPEER where the kernel has it (no path lookup), else by its name.
[[nodiscard]] Result<Pty> open_pty(const std::string& ptmx = "/dev/ptmx");

// Sets the window size of the terminal behind `fd` (master or slave); the foreground process group of the slave
// gets SIGWINCH when it changes.
[[nodiscard]] Result<void> set_console_size(int fd, unsigned height, unsigned width);

struct ConsoleSize {
    unsigned height = 0;
    unsigned width = 0;
};
[[nodiscard]] Result<ConsoleSize> get_console_size(int fd);

// For the container process, between clone and exec: starts a new session (setsid, here, unless the caller
// already leads one), makes `slave_fd` the controlling terminal (TIOCSCTTY), dup2s it onto 0, 1 and 2 and closes
// `slave_fd` when it is above 2. Fails with EPERM when the caller leads a process group but not a session.
// Allocates only on the error path.
[[nodiscard]] Result<void> make_controlling_terminal(int slave_fd);

// Connects a SOCK_STREAM AF_UNIX socket (O_CLOEXEC) to `path`. A path longer than sun_path is reached through
// /proc/self/fd/N/<name> of an O_PATH fd on its directory, so only the last component must fit.
[[nodiscard]] Result<UniqueFd> connect_unix(const std::string& path);

// Sends `fd` over the AF_UNIX socket `sock` with SCM_RIGHTS in one message whose payload is `name` (runc's
// console-socket protocol sends the pty master with its name this way). An empty name is sent as a single NUL
// byte, because a stream socket cannot carry ancillary data without at least one byte of payload.
[[nodiscard]] Result<void> send_fd(int sock, int fd, std::string_view name);

// Receives one fd sent with SCM_RIGHTS (O_CLOEXEC on receipt). `name`, when given, gets the message payload
// (up to 4096 bytes, trailing NULs removed). Fails when the message carries no fd, more than one, or was cut.
[[nodiscard]] Result<UniqueFd> recv_fd(int sock, std::string* name);

struct TerminalProxyOptions {
    int in_fd = 0;   // our side's input (the user's terminal or a pipe)
    int out_fd = 1;  // where the container's terminal output goes
    // Signals delivered to the proxying thread while it runs are forwarded to `child` (see proxy_terminal).
    bool forward_signals = true;
};

// Relays a foreground container's terminal: in_fd -> master and master -> out_fd, until the master reports EIO or
// EOF (every slave fd closed and all output read). Returns the number of bytes written to out_fd.
//
// - When in_fd is a terminal it is put in raw mode, so keystrokes (^C, ^Z, ^\ too) reach the container's line
//   discipline, which turns them into signals for the container's foreground process group. Its settings are
//   restored on every return path; its window size is copied to the master at start and again on each SIGWINCH.
// - SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1 and SIGUSR2 sent to us (by kill, not by the keyboard, which is raw)
//   are forwarded to `child` when options.forward_signals (as runc forwards signals to a foreground container),
//   so they never kill the proxy with the user's terminal left in raw mode. With forward_signals false they are
//   left alone: the caller's handlers (which must then exist, or the default action kills us) see them.
//   SIGPIPE is blocked and consumed: a closed out_fd only stops the output copy (the master is still drained so
//   the container never blocks writing to its terminal).
// - EOF on in_fd is passed on once as the master's VEOF character (^D), then in_fd is no longer read.
// - When `child` (> 0) exits while some other process still holds the slave open (no PID namespace and a
//   daemon left behind, or a slave fd the caller forgot to close), the proxy drains what is queued and returns
//   once the master has been quiet for 100 ms instead of waiting forever.
// The caller must have closed its own copy of the slave, and reaps `child` itself; the proxy never waits on it.
// Signal masks are per thread: the signals above are blocked (and read through a signalfd) in the calling thread
// only, so other threads must block them for forwarding to be reliable.
[[nodiscard]] Result<size_t> proxy_terminal(int master_fd, pid_t child, const TerminalProxyOptions& options = {});

}  // namespace berth::sys
