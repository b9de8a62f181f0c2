#include "cri/stop_signals.hpp"

#include <signal.h>

namespace berth::cri {
namespace {

sigset_t stop_set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

}  // namespace

Result<void> block_stop_signals() {
    sigset_t set = stop_set();
    if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0)
        return fail_errno(err, "block SIGTERM and SIGINT");
    // A client that hangs up in the middle of a reply must not kill the daemon.
    if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) return fail_sys("ignore SIGPIPE");
    return {};
}

Result<int> wait_for_stop_signal() {
    sigset_t set = stop_set();
    siginfo_t info{};
    while (::sigwaitinfo(&set, &info) < 0) {
        if (errno != EINTR) return fail_sys("wait for SIGTERM or SIGINT");
    }
    return info.si_signo;
}

}  // namespace berth::cri
