// berth-monitor --reap-exec PID_FILE -- RUNTIME [ARGS...] exec --detach --pid-file PID_FILE ... ID CMD...
//
// Runs an OCI runtime's detached exec and then stands in for it as a foreground exec: it exits when the exec'd
// process exits, with its exit status (128 + the signal for a killed process). berthd uses it for a terminal exec
// through an external runtime, because runc takes a --console-socket only together with --detach; its own
// foreground mode wants a terminal of its own on stdin.
//
// How: the reaper makes itself a child subreaper (PR_SET_CHILD_SUBREAPER) before it starts the runtime, so the
// process, orphaned when the detached runtime exits, is re-parented to the reaper, which waits for it. Every other
// orphan that comes its way (the runtime's own helper processes) is reaped as well. While the reaper runs, the pid
// in PID_FILE is the process or its zombie, never a reused pid: it is only reaped right before the reaper exits.
//
// Exit status: the runtime's own when it fails (its message is on stderr, which the runtime shares); 255 with a
// message on stderr when the reaper itself fails (no subreaper, no pid in PID_FILE, the process not re-parented:
// then it does not wait, since the pid may not be the process's in this namespace).
#pragma once

#include <string>
#include <vector>

namespace berth::monitor {

// Runs `runtime_argv` (argv[0] is the program) and waits as above; the exit status to exit with.
int run_exec_reaper(const std::string& pid_file, const std::vector<std::string>& runtime_argv);

}  // namespace berth::monitor
