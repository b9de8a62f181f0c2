// exec: a new process inside a running container.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"
#include "linux/lsm.hpp"
#include "linux/namespaces.hpp"
#include "linux/process_attrs.hpp"
#include "linux/sched_attrs.hpp"
#include "linux/terminal.hpp"
#include "runtime/container_state.hpp"
#include "runtime/foreground.hpp"
#include "runtime/init.hpp"
#include "runtime/launch.hpp"
#include "runtime/lifecycle_internal.hpp"
#include "runtime/runtime.hpp"
#include "runtime/sync.hpp"

namespace berth::runtime {
namespace {

using spec::NamespaceType;

Result<uint32_t> parse_id(std::string_view s, std::string_view what) {
    if (s.empty()) return fail("--user: empty {}", what);
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return fail("--user: {} \"{}\" is not a number", what, s);
        v = v * 10 + static_cast<uint64_t>(c - '0');
        if (v > 0xffffffffULL) return fail("--user: {} \"{}\" is out of range", what, s);
    }
    return static_cast<uint32_t>(v);
}

void set_env(std::vector<std::string>& env, const std::string& kv) {
    auto eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    for (auto& e : env) {
        if (e.compare(0, key.size() + 1, key + "=") == 0) {
            e = kv;
            return;
        }
    }
    env.push_back(kv);
}

void add_cap(std::vector<std::string>& set, const std::string& cap) {
    if (std::find(set.begin(), set.end(), cap) == set.end()) set.push_back(cap);
}

// The process to run: a --process file as given, or the container's own process with the flags applied.
Result<spec::Process> build_process(const spec::Config& cfg, const ExecOptions& o) {
    spec::Process p;
    if (!o.process_file.empty()) {
        BERTH_ASSIGN(std::string text, read_file(o.process_file));
        auto parsed = spec::parse_process(text);
        if (!parsed) return std::unexpected(std::move(parsed).error().wrap(o.process_file));
        p = std::move(*parsed);
    } else {
        p = *cfg.process;
        p.args = o.args;
        p.terminal = o.tty;
        p.console_size.reset();
    }
    if (!o.cwd.empty()) p.cwd = o.cwd;
    for (const auto& kv : o.env) set_env(p.env, kv);
    if (!o.user.empty()) {
        auto colon = o.user.find(':');
        BERTH_ASSIGN(p.user.uid, parse_id(std::string_view(o.user).substr(0, colon), "uid"));
        if (colon != std::string::npos) {
            BERTH_ASSIGN(p.user.gid, parse_id(std::string_view(o.user).substr(colon + 1), "gid"));
        }
    }
    if (!o.additional_gids.empty()) p.user.additional_gids = o.additional_gids;
    if (!o.caps.empty()) {
        if (!p.capabilities) p.capabilities.emplace();
        for (const auto& c : o.caps) {
            add_cap(p.capabilities->bounding, c);
            add_cap(p.capabilities->effective, c);
            add_cap(p.capabilities->permitted, c);
            add_cap(p.capabilities->inheritable, c);
            add_cap(p.capabilities->ambient, c);
        }
    }
    if (o.no_new_privs) p.no_new_privileges = true;
    if (!o.process_label.empty()) p.selinux_label = o.process_label;
    if (!o.apparmor.empty()) p.apparmor_profile = o.apparmor;
    if (p.cwd.empty()) p.cwd = "/";
    BERTH_TRY(spec::validate_process(p, o.process_file.empty() ? "process" : ""));
    return p;
}

struct ExecPlan {
    const spec::Process* process = nullptr;
    const spec::Personality* personality = nullptr;  // the container's linux.personality
    std::string field;                               // "process" or "" (a --process file): prefix of error fields
    sys::LsmSettings lsm;
    sys::SeccompFilter* seccomp = nullptr;
    std::vector<std::pair<NamespaceType, int>> join;  // user first
    bool in_user_namespace = false;
    int sync_fd = -1;
    int preserve_fds = 0;
    std::vector<int> cgroup_tasks_fds;  // the container's v1 `tasks` files, joined first
};

[[nodiscard]] Result<void> exec_steps(ExecPlan& p) {
    const spec::Process& proc = *p.process;
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return fail_sys("prctl PR_SET_DUMPABLE");
    reset_signals();
    BERTH_TRY(enter_v1_cgroups(p.cgroup_tasks_fds));
    // execCPUAffinity: "initial" from the start, "final" once the process is in the container.
    const spec::CpuAffinity* affinity = proc.exec_cpu_affinity ? &*proc.exec_cpu_affinity : nullptr;
    auto affinity_field = [&](std::string_view which) {
        return fmt::format("{}execCPUAffinity.{}", p.field.empty() ? "" : p.field + ".", which);
    };
    if (affinity && !affinity->initial.empty())
        BERTH_TRY(sys::set_cpu_affinity(affinity->initial, affinity_field("initial")));
    BERTH_ASSIGN(SyncMessage go, sync_recv(p.sync_fd));
    if (go.type != SyncType::go) return fail("unexpected sync message {}", static_cast<uint32_t>(go.type));
    for (auto& [type, fd] : p.join) {
        if (::setns(fd, sys::clone_flag(type)) < 0)
            return fail_sys("join the container's {} namespace", spec::to_string(type));
        ::close(fd);
    }
    BERTH_TRY(enter_session(proc, p.sync_fd));
    BERTH_TRY(apply_process_settings(proc, p.personality, p.field));
    if (affinity && !affinity->final_.empty())
        BERTH_TRY(sys::set_cpu_affinity(affinity->final_, affinity_field("final")));
    std::vector<std::string> env = process_env(proc);
    BERTH_ASSIGN(std::string exe, enter_cwd_and_find_executable(proc, env));
    BERTH_TRY(load_notify_seccomp(p.seccomp, p.sync_fd));
    return become_process(
        {&proc, std::move(env), std::move(exe), p.in_user_namespace, p.preserve_fds, p.sync_fd, p.seccomp, &p.lsm});
}

}  // namespace

Result<int> exec_in_container(const GlobalOptions& g, const ExecOptions& o) {
    BERTH_ASSIGN(ContainerState st, load_state(g.root, o.id));
    Status status = current_status(g.root, st);
    if (status == Status::stopped) return fail("cannot exec in container \"{}\": it is stopped", o.id);
    if (status == Status::paused && !o.ignore_paused)
        return fail("cannot exec in container \"{}\": it is paused (use --ignore-paused)", o.id);
    if (o.process_file.empty() && o.args.empty()) return fail("exec: no command given");
    // The container's config as created: exec inherits its process settings and seccomp profile, as in runc.
    std::string saved = path_join(container_dir(g.root, o.id), "config.json");
    BERTH_ASSIGN(std::string config_text, read_file(saved));
    BERTH_ASSIGN(spec::Config cfg, spec::parse_config(config_text));
    BERTH_ASSIGN(spec::Process proc, build_process(cfg, o));
    std::optional<sys::SeccompFilter> seccomp;
    if (cfg.linux && cfg.linux->seccomp) {
        BERTH_ASSIGN(seccomp, sys::compile_seccomp_cached(*cfg.linux->seccomp, seccomp_cache_dir(g.root)));
    }
    if (proc.terminal && o.detach && o.console_socket.empty())
        return fail("exec: a detached process with a terminal needs --console-socket");

    BERTH_ASSIGN(UniqueFd pidfd, open_pidfd(st));
    // Open every namespace of the container through its init; the pidfd above pins init while we do.
    std::vector<UniqueFd> fds;
    ExecPlan plan;
    plan.process = &proc;
    plan.personality = cfg.linux && cfg.linux->personality ? &*cfg.linux->personality : nullptr;
    plan.field = o.process_file.empty() ? "process" : "";
    {
        auto lsm = sys::resolve_lsm(proc, {}, plan.field);
        // Name the flag when the label came from it rather than from the config.
        if (!lsm && !o.process_label.empty()) return std::unexpected(std::move(lsm).error().wrap("--process-label"));
        if (!lsm) return std::unexpected(std::move(lsm).error());
        plan.lsm = std::move(*lsm);
    }
    plan.seccomp = seccomp ? &*seccomp : nullptr;
    plan.preserve_fds = o.preserve_fds;
    UniqueFd pidns;
    auto open_ns = [&](NamespaceType t) -> Result<void> {
        auto it = st.namespace_paths.find(std::string(spec::to_string(t)));
        if (it == st.namespace_paths.end()) return {};
        std::string path = fmt::format("/proc/{}/ns/{}", st.pid, sys::proc_ns_name(t));
        BERTH_ASSIGN(UniqueFd fd, sys::open_namespace(path));
        if (t == NamespaceType::pid) {
            pidns = std::move(fd);
            return {};
        }
        if (t == NamespaceType::user) plan.in_user_namespace = true;
        plan.join.emplace_back(t, fd.get());
        fds.push_back(std::move(fd));
        return {};
    };
    for (auto t : {NamespaceType::user, NamespaceType::pid, NamespaceType::ipc, NamespaceType::uts,
                   NamespaceType::network, NamespaceType::cgroup, NamespaceType::time, NamespaceType::mount})
        BERTH_TRY(open_ns(t));

    UniqueFd console;
    if (!o.console_socket.empty()) {
        BERTH_ASSIGN(console, sys::connect_unix(o.console_socket));
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return fail_sys("socketpair");
    UniqueFd parent_sock(sv[0]), child_sock(sv[1]);
    plan.sync_fd = child_sock.get();

    sigset_t set = forwarded_signals(), old;
    if (!o.detach) sigprocmask(SIG_BLOCK, &set, &old);
    struct MaskRestore {
        bool active;
        sigset_t old;
        ~MaskRestore() {
            if (active) sigprocmask(SIG_SETMASK, &old, nullptr);
        }
    } restore{!o.detach, old};

    // Born in the container's unified cgroup; it joins the v1 ones itself before it runs anything of its own.
    cgroups::CgroupManager::EntryFds cg_entry;
    if (!st.cgroup_paths.empty()) {
        auto entry = cgroups::CgroupManager::load(st.cgroup_paths).entry_fds();
        if (!entry) return std::unexpected(std::move(entry).error().wrap(fmt::format("exec in container \"{}\"", o.id)));
        cg_entry = std::move(*entry);
        for (const auto& fd : cg_entry.v1_tasks) plan.cgroup_tasks_fds.push_back(fd.get());
    }
    // Membership of a pid namespace is decided at clone: join it around the clone only.
    UniqueFd own_pidns;
    if (pidns) {
        BERTH_ASSIGN(own_pidns, sys::open_namespace("/proc/self/ns/pid"));
        BERTH_TRY(sys::join_namespace(pidns.get(), NamespaceType::pid, "container pid namespace"));
    }
    auto cloned = sys::clone3_fork(0, nullptr, cg_entry.unified ? cg_entry.unified.get() : -1);
    if (cloned && *cloned == 0) {
        // The child is already a member of the container's pid namespace: it must not try to go back.
        parent_sock.reset();
        auto r = exec_steps(plan);
        sync_fail(plan.sync_fd, r.error());
    }
    if (own_pidns) BERTH_TRY(sys::join_namespace(own_pidns.get(), NamespaceType::pid, "/proc/self/ns/pid"));
    if (!cloned) return std::unexpected(cloned.error());
    pid_t child = *cloned;
    child_sock.reset();
    struct Reaper {
        pid_t pid;
        bool armed = true;
        ~Reaper() {
            if (!armed) return;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reaper{child};

    cg_entry = {};  // the child has its own copies
    BERTH_TRY(sync_send(parent_sock.get(), SyncType::go));
    UniqueFd master;
    for (bool ready = false; !ready;) {
        BERTH_ASSIGN(SyncMessage m, sync_recv(parent_sock.get()));
        switch (m.type) {
            case SyncType::pty_master:
                if (console) {
                    BERTH_TRY_CTX(sys::send_fd(console.get(), m.fd.get(), m.text), "console socket {}",
                                  o.console_socket);
                } else {
                    master = std::move(m.fd);
                }
                break;
            case SyncType::seccomp_listener:
                BERTH_TRY(forward_seccomp_listener(*cfg.linux->seccomp, m.fd.get(), child, st, "running"));
                break;
            case SyncType::error:
                return std::unexpected(Error(m.value, std::move(m.text)));
            case SyncType::ready:
                ready = true;
                break;
            default:
                return fail("exec: unexpected sync message {}", static_cast<uint32_t>(m.type));
        }
    }
    if (!o.pid_file.empty()) BERTH_TRY(write_pid_file(o.pid_file, child));
    reaper.armed = false;
    if (o.detach) return 0;
    return wait_foreground(child, master.get(), parent_sock, o.id);
}

}  // namespace berth::runtime
