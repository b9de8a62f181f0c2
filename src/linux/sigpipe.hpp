// A scope in which writing to a pipe or socket whose reader is gone fails with EPIPE instead of raising SIGPIPE,
// whose default action ends the process (berthd ignores SIGPIPE; berthctl, berth and the tests do not).
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <cerrno>

namespace berth::sys {

// SIGPIPE blocked in the calling thread for the guard's lifetime. A SIGPIPE raised meanwhile is taken off the pending
// set before the old mask returns, unless SIGPIPE was blocked already (it is then the enclosing scope's to handle).
// errno is kept across the guard's end, so the failed call's errno may be read after it.
class SigpipeBlock {
public:
    SigpipeBlock() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;
    ~SigpipeBlock() {
        const int saved = errno;
        if (!sigismember(&old_, SIGPIPE)) {
            struct timespec zero {};
            while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
        errno = saved;
    }

private:
    sigset_t set_{}, old_{};
};

}  // namespace berth::sys
