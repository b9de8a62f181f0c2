// create and run: the operations that make a container.
#include <signal.h>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "runtime/hooks.hpp"
#include "runtime/launch.hpp"
#include "runtime/lifecycle_internal.hpp"
#include "runtime/runtime.hpp"
#include "runtime/foreground.hpp"

namespace berth::runtime {

Result<void> create_container(const GlobalOptions& g, const CreateOptions& o) {
    BERTH_TRY(launch_container(g, o, LaunchMode::create));
    return {};
}

Result<int> run_container(const GlobalOptions& g, const RunOptions& o) {
    if (o.detach) {
        BERTH_TRY(launch_container(g, o, LaunchMode::create));
        if (auto r = start_container(g, o.id); !r) {
            (void)delete_container(g, o.id, true);
            return std::unexpected(r.error());
        }
        return 0;
    }
    // Forwarded signals are blocked before the clone (init unblocks them for itself) and read from a signalfd.
    sigset_t set = forwarded_signals(), old;
    sigprocmask(SIG_BLOCK, &set, &old);
    auto launched = launch_container(g, o, LaunchMode::foreground);
    if (!launched) {
        sigprocmask(SIG_SETMASK, &old, nullptr);
        return std::unexpected(launched.error());
    }
    if (!launched->state.hooks.poststart.empty()) {
        if (auto r = run_hooks(launched->state.hooks.poststart, state_json(launched->state, "running"), "poststart");
            !r)
            log::warn("container \"{}\": {}", o.id, r.error().message());
    }
    auto code = wait_foreground(launched->state.pid, launched->pty_master.get(), launched->sync, o.id);
    sigprocmask(SIG_SETMASK, &old, nullptr);
    if (!o.keep) {
        if (auto r = destroy_stopped(g, launched->state); !r) log::warn("{}", r.error().message());
    }
    return code;
}

}  // namespace berth::runtime
