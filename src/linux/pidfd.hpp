// pidfd system calls through syscall(2). glibc 2.36 declares them in <sys/pidfd.h> without C linkage, so C++
// code cannot link against its wrappers.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace berth::sys {

// pidfd_open(2): an fd that refers to `pid` (O_CLOEXEC always; readable once the process has exited), or -1 with
// errno set.
inline int pidfd_open(pid_t pid, unsigned int flags = 0) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

// pidfd_send_signal(2) without siginfo: 0, or -1 with errno set (ESRCH once the process has exited).
inline int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

}  // namespace berth::sys
