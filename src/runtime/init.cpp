#include "runtime/init.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "common/fs.hpp"
#include "linux/capabilities.hpp"
#include "linux/namespaces.hpp"
#include "linux/process_attrs.hpp"
#include "linux/rootfs.hpp"
#include "linux/sched_attrs.hpp"
#include "linux/terminal.hpp"
#include "runtime/hooks.hpp"
#include "runtime/sync.hpp"

namespace berth::runtime {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr long kKeyctlJoinSessionKeyring = 1;  // KEYCTL_JOIN_SESSION_KEYRING

Result<SyncMessage> expect(int sock, SyncType want) {
    BERTH_ASSIGN(SyncMessage m, sync_recv(sock));
    if (m.type != want)
        return fail("unexpected sync message {} (wanted {})", static_cast<uint32_t>(m.type),
                    static_cast<uint32_t>(want));
    return m;
}

}  // namespace

void reset_signals() {
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        ::signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

namespace {

std::string env_value(const std::vector<std::string>& env, std::string_view key) {
    for (const auto& e : env) {
        if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
            return e.substr(key.size() + 1);
    }
    return {};
}

// HOME from the container's /etc/passwd when the config does not set it (what runc and crun do).
std::string home_for(uint32_t uid) {
    auto passwd = read_file("/etc/passwd");
    if (!passwd) return "/";
    size_t pos = 0;
    while (pos < passwd->size()) {
        size_t end = passwd->find('\n', pos);
        if (end == std::string::npos) end = passwd->size();
        std::string_view line(passwd->data() + pos, end - pos);
        pos = end + 1;
        // name:pw:uid:gid:gecos:home:shell
        std::vector<std::string_view> f;
        size_t s = 0;
        for (int i = 0; i < 7; ++i) {
            size_t c = line.find(':', s);
            f.push_back(line.substr(s, c == std::string_view::npos ? line.size() - s : c - s));
            if (c == std::string_view::npos) break;
            s = c + 1;
        }
        if (f.size() >= 6 && f[2] == std::to_string(uid)) return f[5].empty() ? "/" : std::string(f[5]);
    }
    return "/";
}

// Moves fd above `floor` so the preserved fds 3..3+N-1 are never clobbered by our own.
int move_above(int fd, int floor) {
    if (fd < 0 || fd >= floor) return fd;
    int n = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (n < 0) return fd;
    ::close(fd);
    return n;
}

Result<void> set_up_namespaces(InitPlan& p) {
    for (auto& [type, fd] : p.join) {
        BERTH_TRY(sys::join_namespace(fd, type, p.config->linux->find_namespace(type)->path));
        ::close(fd);
    }
    if (p.unshare_user) {
        if (::unshare(CLONE_NEWUSER) < 0) return fail_sys("unshare user namespace");
        BERTH_TRY(sync_send(p.sync_fd, SyncType::want_maps));
        BERTH_TRY(expect(p.sync_fd, SyncType::maps_done));
    }
    if (p.new_user) {
        // Become root of the new user namespace when root is mapped; mounts then create files as that root.
        bool root_mapped = false;
        for (const auto& m : p.config->linux->uid_mappings)
            if (m.container_id == 0) root_mapped = true;
        if (root_mapped) {
            if (::setresgid(0, 0, 0) < 0) return fail_sys("setresgid 0 in the user namespace");
            if (::setresuid(0, 0, 0) < 0) return fail_sys("setresuid 0 in the user namespace");
        }
    }
    if (p.unshare_flags && ::unshare(static_cast<int>(p.unshare_flags)) < 0)
        return fail_sys("unshare namespaces {:#x}", p.unshare_flags);
    if (p.fork_after_unshare) {
        if (p.fork_unshare_flags && ::unshare(static_cast<int>(p.fork_unshare_flags)) < 0)
            return fail_sys("unshare namespaces {:#x}", p.fork_unshare_flags);
        if ((p.fork_unshare_flags & CLONE_NEWTIME) && !p.config->linux->time_offsets.empty())
            BERTH_TRY(sys::write_time_offsets(p.config->linux->time_offsets));
        pid_t child = ::fork();
        if (child < 0) return fail_sys("fork the container init");
        if (child > 0) _exit(0);  // the grandchild carries on as the container's init
        BERTH_TRY(sync_send_with_creds(p.sync_fd, SyncType::child_pid));
    }
    if (p.new_cgroup_ns && ::unshare(CLONE_NEWCGROUP) < 0) return fail_sys("unshare cgroup namespace");
    return {};
}

[[nodiscard]] Result<void> init_steps(InitPlan& p) {
    const spec::Config& cfg = *p.config;
    const spec::Process& proc = *cfg.process;
    const int preserve_top = 3 + p.preserve_fds;
    p.sync_fd = move_above(p.sync_fd, preserve_top);
    p.fifo_fd = move_above(p.fifo_fd, preserve_top);

    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return fail_sys("prctl PR_SET_DUMPABLE");
    reset_signals();
    BERTH_TRY(enter_v1_cgroups(p.cgroup_tasks_fds));  // before anything else
    BERTH_TRY(expect(p.sync_fd, SyncType::go));
    BERTH_TRY(set_up_namespaces(p));

    if (!p.no_new_keyring) {
        // A fresh anonymous session keyring: the container must not share the host's keys.
        if (syscall(SYS_keyctl, kKeyctlJoinSessionKeyring, nullptr) < 0 && errno != ENOSYS)
            return fail_sys("join a new session keyring");
    }

    sys::RootfsOptions ro;
    ro.rootfs = p.rootfs;
    ro.bundle = p.bundle;
    ro.no_pivot = p.no_pivot;
    ro.in_user_namespace = p.new_user || cfg.linux->find_namespace(spec::NamespaceType::user) != nullptr;
    ro.new_cgroup_namespace = p.new_cgroup_ns;
    ro.mount_label = p.lsm.mount_label;
    BERTH_TRY(sys::prepare_rootfs(cfg, ro));

    // Sysctls go through the container's own /proc, mounted by prepare_rootfs, before readonlyPaths lock it.
    if (!cfg.linux->sysctl.empty()) BERTH_TRY(sys::apply_sysctl(cfg.linux->sysctl));

    std::string state_json;
    if (p.need_hooks_round) {
        BERTH_TRY(sync_send(p.sync_fd, SyncType::run_hooks));
        BERTH_ASSIGN(SyncMessage m, expect(p.sync_fd, SyncType::hooks_done));
        state_json = std::move(m.text);
        if (!cfg.hooks.create_container.empty())
            BERTH_TRY(run_hooks(cfg.hooks.create_container, state_json, "createContainer"));
    }

    BERTH_TRY(sys::finish_rootfs(cfg, ro));
    if (!cfg.hostname.empty()) BERTH_TRY(sys::set_hostname(cfg.hostname));
    if (!cfg.domainname.empty()) BERTH_TRY(sys::set_domainname(cfg.domainname));

    BERTH_TRY(enter_session(proc, p.sync_fd));
    BERTH_TRY(apply_process_settings(proc, cfg.linux->personality ? &*cfg.linux->personality : nullptr, "process"));

    std::vector<std::string> env = process_env(proc);
    BERTH_ASSIGN(std::string exe, enter_cwd_and_find_executable(proc, env));

    BERTH_TRY(load_notify_seccomp(p.seccomp, p.sync_fd));
    BERTH_TRY(sync_send(p.sync_fd, SyncType::ready));

    if (p.fifo_fd >= 0) {
        // Blocks until `berth start` opens the other end. The byte that lets `start` return (and run the poststart
        // hooks) is written only after the startContainer hooks, so they always run before poststart; a failing
        // hook makes init exit without writing, and `start` fails.
        std::string fifo = fmt::format("/proc/self/fd/{}", p.fifo_fd);
        int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
        if (w < 0) return fail_sys("open exec fifo");
        if (!cfg.hooks.start_container.empty())
            BERTH_TRY(run_hooks(cfg.hooks.start_container, state_json, "startContainer"));
        if (::write(w, "0", 1) != 1) return fail_sys("write exec fifo");
        ::close(w);
        ::close(p.fifo_fd);
    } else if (!cfg.hooks.start_container.empty()) {
        BERTH_TRY(run_hooks(cfg.hooks.start_container, state_json, "startContainer"));
    }

    return become_process(
        {&proc, std::move(env), std::move(exe), ro.in_user_namespace, p.preserve_fds, -1, p.seccomp, &p.lsm});
}

}  // namespace

std::vector<std::string> process_env(const spec::Process& proc) {
    std::vector<std::string> env = proc.env;
    if (env_value(env, "HOME").empty()) env.push_back("HOME=" + home_for(proc.user.uid));
    return env;
}

Result<std::string> enter_cwd_and_find_executable(const spec::Process& proc, const std::vector<std::string>& env) {
    std::string cwd = proc.cwd.empty() ? "/" : proc.cwd;
    if (::chdir(cwd.c_str()) < 0) return fail_sys("chdir to the process cwd \"{}\"", cwd);
    return find_executable(proc.args[0], env, cwd);
}

Result<void> load_notify_seccomp(sys::SeccompFilter* seccomp, int sync_fd) {
    if (!seccomp || !seccomp->uses_notify()) return {};
    BERTH_ASSIGN(UniqueFd listener, seccomp->load());
    return sync_send(sync_fd, SyncType::seccomp_listener, 0, {}, listener.get());
}

Result<void> enter_v1_cgroups(const std::vector<int>& tasks_fds) {
    for (int fd : tasks_fds) {
        if (::write(fd, "0", 1) != 1) return fail_sys("join the container's cgroup");
        ::close(fd);
    }
    return {};
}

Result<void> enter_session(const spec::Process& proc, int sync_fd) {
    if (::setsid() < 0) return fail_sys("setsid");
    if (!proc.terminal) return {};
    BERTH_ASSIGN(sys::Pty pty, sys::open_pty());
    if (proc.console_size)
        BERTH_TRY(sys::set_console_size(pty.master.get(), proc.console_size->height, proc.console_size->width));
    BERTH_TRY(sync_send(sync_fd, SyncType::pty_master, 0, pty.slave_name, pty.master.get()));
    pty.master.reset();
    return sys::make_controlling_terminal(pty.slave.get());
}

Result<void> apply_process_settings(const spec::Process& proc, const spec::Personality* personality,
                                    std::string_view path) {
    if (proc.oom_score_adj) BERTH_TRY(sys::set_oom_score_adj(*proc.oom_score_adj));
    BERTH_TRY(sys::set_rlimits(proc.rlimits));
    if (proc.scheduler) BERTH_TRY(sys::set_scheduler(*proc.scheduler, path));
    if (proc.io_priority) BERTH_TRY(sys::set_io_priority(*proc.io_priority, path));
    if (personality) BERTH_TRY(sys::set_personality(*personality));
    return {};
}

Result<void> become_process(const BecomeProcess& b) {
    const spec::Process& proc = *b.process;
    // Both take effect at execve; written while still root, through the container's /proc.
    if (b.lsm && !b.lsm->apparmor_profile.empty()) BERTH_TRY(sys::apply_apparmor_profile(b.lsm->apparmor_profile));
    if (b.lsm && !b.lsm->selinux_label.empty()) BERTH_TRY(sys::apply_selinux_label(b.lsm->selinux_label));
    const auto& env = b.env;
    const int preserve_top = 3 + b.preserve_fds;
    sys::SeccompFilter* seccomp = b.seccomp && !b.seccomp->uses_notify() ? b.seccomp : nullptr;
    std::optional<sys::CapabilitySets> caps;
    if (proc.capabilities) {
        BERTH_ASSIGN(caps, sys::resolve_capabilities(*proc.capabilities));
        BERTH_TRY(sys::prepare_capabilities(*caps));
    }
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have it.
    if (seccomp && !proc.no_new_privileges) {
        BERTH_TRY(seccomp->load());
        seccomp = nullptr;
    }
    BERTH_TRY(sys::apply_user(proc.user, b.in_user_namespace));
    if (caps) BERTH_TRY(sys::apply_capabilities(*caps));
    if (proc.no_new_privileges) BERTH_TRY(sys::set_no_new_privs());

    // Nothing of berth's may reach the container: every fd above the preserved range closes on exec.
    if (syscall(SYS_close_range, preserve_top, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        return fail_sys("close_range from fd {}", preserve_top);
    for (int fd = 3; fd < preserve_top; ++fd) {
        int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }

    std::vector<char*> argv, envp;
    for (const auto& a : proc.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    if (b.ready_sync_fd >= 0) BERTH_TRY(sync_send(b.ready_sync_fd, SyncType::ready));
    // With no_new_privs the filter goes last, so as few of our own syscalls as possible run under it.
    if (seccomp) BERTH_TRY(seccomp->load());
    ::execve(b.exe.c_str(), argv.data(), envp.data());
    return fail_sys("exec {}", b.exe);
}

Result<std::string> find_executable(const std::string& name, const std::vector<std::string>& env,
                                    const std::string& cwd) {
    auto runnable = [](const std::string& path) {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
    };
    if (name.find('/') != std::string::npos) {
        // The errno is what execve would give, and its text is what clients match: podman exits 127 on "no such
        // file or directory" and 126 on "permission denied", as with runc.
        std::string full = name.front() == '/' ? name : path_join(cwd, name);
        struct stat st {};
        if (::stat(full.c_str(), &st) < 0) return fail_sys("executable \"{}\" in the container", name);
        if (S_ISDIR(st.st_mode)) return fail_errno(EACCES, "executable \"{}\" in the container is a directory", name);
        if (!runnable(full))
            return fail_errno(EACCES, "executable \"{}\" in the container is not an executable file (mode {:o})", name,
                              st.st_mode & 07777);
        return name;
    }
    std::string path = env_value(env, "PATH");
    if (path.empty()) path = kDefaultPath;
    size_t i = 0;
    while (i <= path.size()) {
        size_t j = path.find(':', i);
        if (j == std::string::npos) j = path.size();
        std::string dir = path.substr(i, j - i);
        if (dir.empty()) dir = ".";
        std::string candidate = path_join(dir, name);
        if (runnable(candidate)) return candidate;
        i = j + 1;
    }
    return fail_errno(ENOENT, "executable \"{}\" not found in the container's $PATH ({})", name, path);
}

void container_init(InitPlan& plan) {
    auto r = init_steps(plan);
    // Only failures return: report what failed to the parent; after `ready` the parent is gone and stderr is
    // the container's, which is where runc reports a late failure too.
    if (plan.sync_fd >= 0 && sync_send(plan.sync_fd, SyncType::error, r.error().code(), r.error().message())) _exit(1);
    std::string line = fmt::format("berth init: {}\n", r.error().message());
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
    _exit(127);
}

}  // namespace berth::runtime
