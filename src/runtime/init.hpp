// The container's init process: everything between clone and execve of the container's process.
//
// The parent (`berth create`/`run`) builds an InitPlan, clones, and the child runs container_init(), which reports
// each step's failure over the sync socket and never returns. The parent is single-threaded, so the child may
// allocate; it must not throw.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/unique_fd.hpp"
#include "linux/lsm.hpp"
#include "linux/seccomp.hpp"
#include "spec/config.hpp"

namespace berth::runtime {

struct InitPlan {
    const spec::Config* config = nullptr;
    std::string id;
    std::string bundle;  // absolute
    std::string rootfs;  // absolute
    int sync_fd = -1;
    int fifo_fd = -1;  // O_PATH fd of exec.fifo; -1 when the container starts at once (foreground run)
    std::vector<int> cgroup_tasks_fds;  // v1 `tasks` files (opened by the parent) init moves itself into first
    bool no_pivot = false;
    bool no_new_keyring = false;
    int preserve_fds = 0;

    // Namespaces to join, in join order (a user namespace first); fds opened by the parent.
    std::vector<std::pair<spec::NamespaceType, int>> join;
    // The child unshares these itself (slow path); clone3 created the rest.
    uint64_t unshare_flags = 0;
    bool unshare_user = false;              // child unshares CLONE_NEWUSER and asks the parent for maps
    bool fork_after_unshare = false;        // pid and/or time namespace need a forked grandchild as init
    uint64_t fork_unshare_flags = 0;        // CLONE_NEWPID / CLONE_NEWTIME to unshare before that fork
    bool new_user = false;                  // a new user namespace exists (made by clone3 or by the child)
    bool new_cgroup_ns = false;             // unshare CLONE_NEWCGROUP after the parent placed us in our cgroups
    bool need_hooks_round = false;          // ask the parent to run prestart/createRuntime hooks and send the state
    sys::SeccompFilter* seccomp = nullptr;  // compiled by the parent; null without linux.seccomp
    sys::LsmSettings lsm;                   // resolved by the parent against the host's LSMs
};

[[noreturn]] void container_init(InitPlan& plan);

// The parent blocked the signals it forwards; a container process starts with default dispositions, none blocked.
void reset_signals();
// The process's environment, plus HOME from the container's /etc/passwd when the config does not set it (as
// runc and crun do). Call after entering the container's root.
std::vector<std::string> process_env(const spec::Process& proc);
// chdir to process.cwd (default "/") and locate args[0] there.
[[nodiscard]] Result<std::string> enter_cwd_and_find_executable(const spec::Process& proc,
                                                                const std::vector<std::string>& env);
// A seccomp filter with SCMP_ACT_NOTIFY must be loaded while the parent still listens: load it now and send the
// listener fd to the parent, which passes it on to linux.seccomp.listenerPath. No-op for other filters.
[[nodiscard]] Result<void> load_notify_seccomp(sys::SeccompFilter* seccomp, int sync_fd);

struct BecomeProcess {
    const spec::Process* process = nullptr;
    std::vector<std::string> env;
    std::string exe;
    bool in_user_namespace = false;
    int preserve_fds = 0;
    int ready_sync_fd = -1;                 // when >= 0, `ready` is sent just before the filter and execve
    sys::SeccompFilter* seccomp = nullptr;  // not yet loaded filter, or null
    const sys::LsmSettings* lsm = nullptr;  // AppArmor profile / SELinux label to apply, or null
};

// Moves the calling (single-threaded) process into the container's v1 cgroups: "0" to each `tasks` fd, which the
// parent opened (CgroupManager::entry_fds), then closes them. A thread moving itself spares the kernel's
// thread-group lock and the RCU grace period a move by pid waits for. Shared by init and exec.
[[nodiscard]] Result<void> enter_v1_cgroups(const std::vector<int>& tasks_fds);

// A new session; with process.terminal also a new pty: its master goes to the parent (a pty_master message on
// `sync_fd`), its slave becomes the controlling terminal and stdio. Shared by init and exec.
[[nodiscard]] Result<void> enter_session(const spec::Process& proc, int sync_fd);

// process.oomScoreAdj, process.rlimits, process.scheduler, process.ioPriority and linux.personality (null: none),
// applied to the calling process while it still has its capabilities. `path` prefixes field names in errors.
[[nodiscard]] Result<void> apply_process_settings(const spec::Process& proc, const spec::Personality* personality,
                                                  std::string_view path);

// The last steps before execve, shared by init and exec: the AppArmor profile and SELinux label for the
// execve, capabilities around the switch to the process's user
// and groups, no_new_privs, seccomp (before the switch while still privileged when no_new_privs is off, else as
// the very last step), every fd above the preserved ones close-on-exec, execve. Returns only on failure.
[[nodiscard]] Result<void> become_process(const BecomeProcess& b);

// Locates `name` like execvp does, in the container's PATH (from `env`, or the default PATH).
[[nodiscard]] Result<std::string> find_executable(const std::string& name, const std::vector<std::string>& env,
                                                  const std::string& cwd);

}  // namespace berth::runtime
