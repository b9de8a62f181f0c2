// Starting a program as a child process with posix_spawn, the one way berth's multi-threaded parts (berthd, the
// CNI runner, hook runners) start programs.
//
// glibc's posix_spawn clones with CLONE_VM|CLONE_VFORK: unlike fork, it copies none of the parent's page tables,
// which in a daemon of some MiB with many threads costs a millisecond or more per child, and the child runs no
// code of ours between fork and exec (nothing async-signal-unsafe can run there). A program that cannot be
// executed is an error of spawn() itself (errno of execve), not a child exiting 127.
//
// The child gets: stdin/stdout/stderr as asked (/dev/null when not given), the extra fds at the numbers asked, and
// no other fd of the parent (close-on-exec or not); an empty signal mask; SIGPIPE back at its default (a parent
// that ignores it must not pass that on) or every signal at its default when asked.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace berth {

struct SpawnRequest {
    std::string path;               // the program; absolute, or relative to the working directory
    std::vector<std::string> argv;  // argv[0] included; empty: just `path`
    const std::vector<std::string>* env = nullptr;  // "K=V" entries; nullptr: the parent's environment
    int stdin_fd = -1;                              // -1: /dev/null
    int stdout_fd = -1;
    int stderr_fd = -1;
    std::vector<std::pair<int, int>> extra_fds;  // (fd in the parent, fd number in the child), numbers above 2
    bool default_signals = false;                // every signal's disposition at its default, not only SIGPIPE's
    bool new_process_group = false;              // the child leads a process group of its own
};

// Starts the program; its pid. The caller reaps it.
[[nodiscard]] Result<pid_t> spawn(const SpawnRequest& r);

}  // namespace berth
