// The parent side of container creation, shared by `create` and `run`.
#pragma once

#include <sys/types.h>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "runtime/container_state.hpp"
#include "runtime/runtime.hpp"
#include "spec/config.hpp"

namespace berth::runtime {

struct Launched {
    ContainerState state;
    spec::Config config;
    UniqueFd pty_master;  // foreground run with a terminal: the master, kept here instead of a console socket
    UniqueFd sync;        // foreground run: still connected to init (late errors)
    bool init_is_child = false;  // init is our direct child (wait4 works); otherwise reparented to us as subreaper
};

enum class LaunchMode {
    create,      // init waits on exec.fifo for `start`; the pty master goes to --console-socket
    foreground,  // `run` in the foreground: the pty master comes back to the caller
};

// Creates the container up to the created state: state dir, namespaces, rootfs, init waiting for start.
// On failure nothing remains (state dir removed, init killed).
[[nodiscard]] Result<Launched> launch_container(const GlobalOptions& g, const CreateOptions& o, LaunchMode mode);

// Passes a seccomp notify listener fd to linux.seccomp.listenerPath with the containerProcessState JSON
// (ociVersion, fds ["seccompFd"], pid, metadata, state) that the runtime-spec defines for seccomp agents.
[[nodiscard]] Result<void> forward_seccomp_listener(const spec::Seccomp& seccomp, int fd, pid_t pid,
                                                   const ContainerState& st, std::string_view status);

// Writes a file atomically (temp + rename), as containerd expects of --pid-file.
[[nodiscard]] Result<void> write_pid_file(const std::string& path, pid_t pid);

}  // namespace berth::runtime
