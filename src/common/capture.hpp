// Running a program to its end with its output collected: the CNI runner's plugins (src/cni/exec) and berthd's
// calls of an OCI runtime and other helpers (src/cri/subprocess: delete, update, features, ExecSync).
//
// The child is started through spawn() (posix_spawn); `input` is written to its stdin while stdout and stderr are
// read, so neither side can fill a pipe and wait on the other; stdin is closed once written, so the child sees EOF.
// Output is read until both stdout and stderr reach EOF, and the child is then waited for. A deadline, when set,
// bounds all of it: at the deadline `on_timeout` runs, the child gets SIGKILL, and it is reaped. Every return path
// reaps the child: none is left running or a zombie.
//
// A child that exits while something it started keeps its stdout or stderr open is waited for until that closes
// too (or the deadline passes): output ends at EOF, not at the child's exit.
//
// Writes to the child's stdin never raise SIGPIPE in the caller (a child that exits without reading it all ends
// the input, nothing more), whether stdin is a pipe or a socket. Kept free of <signal.h> (see cri/api.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/spawn.hpp"

namespace berth {

struct CaptureRequest {
    SpawnRequest spawn;         // the program; its stdin_fd, stdout_fd and stderr_fd must be -1 (capture sets them)
    std::string label;          // names the child in errors: "start <label>", "poll on <label>", "wait for <label>"
    std::string_view input;     // for stdin; must outlive the call
    bool stdin_socket = false;  // stdin a socketpair's end rather than a pipe's (see cni/exec.cpp)
    std::chrono::milliseconds timeout{0};  // <= 0: no deadline
    size_t cap = size_t{1} << 20;          // of stdout and of stderr each; what is beyond is read and dropped
    std::function<void()> on_timeout;      // at the deadline, before the child is killed: what else must die
};

struct CaptureResult {
    int exit_code = -1;      // the child's exit status, or 128+signal
    bool timed_out = false;  // the deadline passed; the child was killed
    std::string out, err;
};

// Runs the child to its end (or the deadline). An error means the child could not be started or watched; it has
// been killed and reaped by then.
[[nodiscard]] Result<CaptureResult> capture(const CaptureRequest& r);

}  // namespace berth
