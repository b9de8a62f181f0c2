#include "cri/stop_signals.hpp"

#include <signal.h>

namespace berth::cri {
namespace {

sigset_t daemon_set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    return set;
}

}  // namespace

Result<void> block_stop_signals() {
    sigset_t set = daemon_set();
    if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0)
        return fail_errno(err, "block SIGTERM, SIGINT, SIGUSR1 and SIGHUP");
    // A client that hangs up in the middle of a reply must not kill the daemon.
    if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) return fail_sys("ignore SIGPIPE");
    return {};
}

Result<ReceivedSignal> wait_for_daemon_signal() {
    sigset_t set = daemon_set();
    siginfo_t info{};
    while (::sigwaitinfo(&set, &info) < 0) {
        if (errno != EINTR) return fail_sys("wait for SIGTERM, SIGINT, SIGUSR1 or SIGHUP");
    }
    ReceivedSignal r{.signo = info.si_signo};
    if (info.si_signo == SIGUSR1)
        r.what = DaemonSignal::toggle_debug;
    else if (info.si_signo == SIGHUP)
        r.what = DaemonSignal::reload;
    return r;
}

}  // namespace berth::cri
