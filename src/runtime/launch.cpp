#include "runtime/launch.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "linux/lsm.hpp"
#include "linux/mountinfo.hpp"
#include "linux/namespaces.hpp"
#include "linux/seccomp.hpp"
#include "linux/terminal.hpp"
#include "runtime/hooks.hpp"
#include "runtime/init.hpp"
#include "runtime/sync.hpp"

namespace berth::runtime {

using spec::NamespaceType;

namespace {

// Undoes a half-made container unless committed: kills init, removes the state directory.
class CreateGuard {
public:
    CreateGuard(std::string dir) : dir_(std::move(dir)) {}
    ~CreateGuard() {
        if (committed_) return;
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            if (child_) ::waitpid(pid_, nullptr, 0);
        }
        if (first_child_ > 0 && first_child_ != pid_) {
            ::kill(first_child_, SIGKILL);
            ::waitpid(first_child_, nullptr, 0);
        }
        if (auto r = remove_all(dir_); !r) log::warn("cleanup: {}", r.error().message());
    }
    void set_first_child(pid_t p) { first_child_ = p; }
    void set_pid(pid_t p, bool child) {
        pid_ = p;
        child_ = child;
    }
    void commit() { committed_ = true; }

private:
    std::string dir_;
    pid_t pid_ = -1, first_child_ = -1;
    bool child_ = false;
    bool committed_ = false;
};

std::string absolute(const std::string& p) {
    if (!p.empty() && p.front() == '/') return clean_path(p);
    char buf[PATH_MAX];
    if (!::getcwd(buf, sizeof buf)) return clean_path(p);
    return clean_path(path_join(buf, p));
}

struct NamespacePlan {
    uint64_t clone_flags = 0;
    InitPlan init;
    std::vector<UniqueFd> join_fds;
    UniqueFd pid_join_fd;  // joined by the parent itself: pid namespace membership is inherited at clone
    bool maps_before_go = false;
};

Result<NamespacePlan> plan_namespaces(const spec::Config& cfg) {
    NamespacePlan plan;
    const auto& nss = cfg.linux->namespaces;
    auto find = [&](NamespaceType t) { return cfg.linux->find_namespace(t); };
    const spec::Namespace* user = find(NamespaceType::user);
    const spec::Namespace* pid = find(NamespaceType::pid);
    const spec::Namespace* time = find(NamespaceType::time);
    const spec::Namespace* cgroup = find(NamespaceType::cgroup);

    bool joins_other = false;
    for (const auto& ns : nss)
        if (!ns.path.empty() && ns.type != NamespaceType::pid) joins_other = true;
    bool time_offsets = time && time->path.empty() && !cfg.linux->time_offsets.empty();
    bool slow = joins_other || time_offsets;

    if (pid && !pid->path.empty()) {
        BERTH_ASSIGN(plan.pid_join_fd, sys::open_namespace(pid->path));
    }
    // The cgroup namespace is always unshared by init itself, once it sits in its own cgroup.
    plan.init.new_cgroup_ns = cgroup && cgroup->path.empty();

    if (!slow) {
        // Fast path: one clone3 creates every namespace; a new user namespace comes first and owns the rest.
        for (const auto& ns : nss)
            if (ns.path.empty() && ns.type != NamespaceType::cgroup) plan.clone_flags |= sys::clone_flag(ns.type);
        plan.init.new_user = user != nullptr;
        plan.maps_before_go = user != nullptr;
        return plan;
    }

    // Slow path: init joins existing namespaces first (the user namespace before the others, so it holds
    // capabilities over the ones that namespace owns), then creates the new ones, which a joined or new user
    // namespace then owns. A new pid or time namespace only applies to children: init forks once more.
    if (user && !user->path.empty()) {
        BERTH_ASSIGN(UniqueFd fd, sys::open_namespace(user->path));
        plan.init.join.emplace_back(NamespaceType::user, fd.get());
        plan.join_fds.push_back(std::move(fd));
    }
    for (const auto& ns : nss) {
        if (ns.path.empty() || ns.type == NamespaceType::user || ns.type == NamespaceType::pid) continue;
        BERTH_ASSIGN(UniqueFd fd, sys::open_namespace(ns.path));
        plan.init.join.emplace_back(ns.type, fd.get());
        plan.join_fds.push_back(std::move(fd));
    }
    bool user_involved = user != nullptr;
    if (user && user->path.empty()) {
        plan.init.unshare_user = true;
        plan.init.new_user = true;
    }
    for (const auto& ns : nss) {
        if (!ns.path.empty()) continue;
        switch (ns.type) {
            case NamespaceType::user:
            case NamespaceType::cgroup:
                break;
            case NamespaceType::pid:
                if (user_involved || time_offsets) {
                    plan.init.fork_after_unshare = true;
                    plan.init.fork_unshare_flags |= CLONE_NEWPID;
                } else {
                    plan.clone_flags |= CLONE_NEWPID;
                }
                break;
            case NamespaceType::time:
                plan.init.fork_after_unshare = true;
                plan.init.fork_unshare_flags |= CLONE_NEWTIME;
                break;
            default:
                plan.init.unshare_flags |= static_cast<uint64_t>(sys::clone_flag(ns.type));
        }
    }
    return plan;
}

// The container's cgroups (linux.cgroupsPath, linux.resources). Without root and without resources to apply, a
// cgroup that cannot be made is no error: the container then stays in the caller's cgroups (rootless use).
Result<std::optional<cgroups::CgroupManager>> make_cgroups(const spec::Config& cfg, const std::string& id) {
    BERTH_ASSIGN(cgroups::CgroupLayout layout, cgroups::detect_layout());
    BERTH_ASSIGN(std::string path, cgroups::resolve_cgroup_path(cfg.linux->cgroups_path, id));
    const spec::Resources* res = cfg.linux->resources ? &*cfg.linux->resources : nullptr;
    if (res) BERTH_TRY(cgroups::validate_resources(*res));
    auto made = cgroups::CgroupManager::create(layout, path, res);
    if (!made) {
        int err = made.error().code();
        if (::geteuid() != 0 && !res && (err == EACCES || err == EPERM || err == EROFS)) {
            log::debug("container \"{}\": running without own cgroups: {}", id, made.error().message());
            return std::optional<cgroups::CgroupManager>();
        }
        return std::unexpected(std::move(made).error().wrap(fmt::format("cgroup {} of container \"{}\"", path, id)));
    }
    return std::optional<cgroups::CgroupManager>(std::move(*made));
}

// Intel RDT needs the resctrl file system; berth does not manage resctrl groups yet. Checked before anything is
// made, so a refused config leaves nothing behind.
Result<void> check_intel_rdt() {
    BERTH_ASSIGN(std::vector<sys::MountInfo> mounts, sys::read_mountinfo());
    bool resctrl = false;
    for (const auto& m : mounts)
        if (m.fstype == "resctrl") resctrl = true;
    if (!resctrl) return fail("linux.intelRdt: the host has no resctrl file system mounted");
    return fail_errno(ENOTSUP, "linux.intelRdt: Intel RDT (resctrl) is not supported by berth yet");
}

Result<void> write_maps(pid_t pid, const spec::Config& cfg) {
    BERTH_TRY(sys::write_id_map(pid, "uid_map", cfg.linux->uid_mappings));
    BERTH_TRY(sys::write_id_map(pid, "gid_map", cfg.linux->gid_mappings));
    return {};
}

}  // namespace

Result<void> forward_seccomp_listener(const spec::Seccomp& seccomp, int fd, pid_t pid, const ContainerState& st,
                                      std::string_view status) {
    if (seccomp.listener_path.empty())
        return fail("linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY");
    nlohmann::json msg = {{"ociVersion", std::string(spec::kOciVersion)},
                          {"fds", {"seccompFd"}},
                          {"pid", pid},
                          {"metadata", seccomp.listener_metadata},
                          {"state", nlohmann::json::parse(state_json(st, status))}};
    return sys::send_seccomp_listener(seccomp.listener_path, fd, msg.dump());
}

Result<void> write_pid_file(const std::string& path, pid_t pid) {
    return write_file_atomic(absolute(path), std::to_string(pid), 0644);
}

Result<Launched> launch_container(const GlobalOptions& g, const CreateOptions& o, LaunchMode mode) {
    BERTH_TRY(validate_container_id(o.id));
    Launched out;
    ContainerState& st = out.state;
    st.id = o.id;
    st.bundle = absolute(o.bundle);
    std::string config_path = path_join(st.bundle, "config.json");
    BERTH_ASSIGN(std::string config_text, read_file(config_path));
    {
        auto parsed = spec::parse_config(config_text);
        if (!parsed) return std::unexpected(std::move(parsed).error().wrap(config_path));
        out.config = std::move(*parsed);
    }
    const spec::Config& cfg = out.config;
    BERTH_TRY(spec::validate_config(cfg));
    if (!cfg.linux) return fail("config.json: linux: required for a Linux container");
    if (!cfg.linux->find_namespace(NamespaceType::mount) ||
        !cfg.linux->find_namespace(NamespaceType::mount)->path.empty())
        return fail("linux.namespaces: berth needs a new mount namespace to set up the rootfs");
    if (cfg.process->terminal && mode == LaunchMode::create && o.console_socket.empty())
        return fail("process.terminal is true but no --console-socket was given to receive the terminal");
    if (g.systemd_cgroup) return fail("--systemd-cgroup: the systemd cgroup driver is not supported yet");
    if (cfg.linux->intel_rdt) BERTH_TRY(check_intel_rdt());
    BERTH_ASSIGN(sys::LsmSettings lsm, sys::resolve_lsm(*cfg.process, cfg.linux->mount_label));

    st.rootfs =
        cfg.root->path.front() == '/' ? clean_path(cfg.root->path) : clean_path(path_join(st.bundle, cfg.root->path));
    struct stat rst {};
    if (::stat(st.rootfs.c_str(), &rst) < 0) return fail_sys("root.path {}", st.rootfs);
    if (!S_ISDIR(rst.st_mode)) return fail_errno(ENOTDIR, "root.path {}", st.rootfs);
    st.annotations = cfg.annotations;
    st.hooks = cfg.hooks;
    st.owner_uid = ::getuid();
    st.created = now_rfc3339_nano();

    BERTH_TRY(mkdir_all(g.root, 0700));
    std::string dir = container_dir(g.root, o.id);
    if (::mkdir(dir.c_str(), 0711) < 0) {
        if (errno == EEXIST) return fail_errno(EEXIST, "container \"{}\" already exists", o.id);
        return fail_sys("mkdir {}", dir);
    }
    // Declared before the guard, so destroyed after it: init is dead by the time its cgroups are removed.
    std::optional<cgroups::CgroupManager> cgroup;
    CreateGuard guard(dir);
    // `exec` starts from the container's own process settings, as runc does: keep the config as created.
    BERTH_TRY(write_file(path_join(dir, "config.json"), config_text, 0600));

    UniqueFd console;
    if (!o.console_socket.empty()) {
        BERTH_ASSIGN(console, sys::connect_unix(o.console_socket));
    }

    UniqueFd fifo;
    if (mode == LaunchMode::create) {
        std::string fifo_path = exec_fifo_path(g.root, o.id);
        if (::mkfifo(fifo_path.c_str(), 0622) < 0) return fail_sys("mkfifo {}", fifo_path);
        // Not subject to the umask: init may run as another host uid (a user namespace) and must open it for
        // writing; only root may read it, which is what starts the container.
        if (::chmod(fifo_path.c_str(), 0622) < 0) return fail_sys("chmod {}", fifo_path);
        BERTH_ASSIGN(fifo, open_fd(fifo_path, O_PATH));
    }

    BERTH_ASSIGN(NamespacePlan plan, plan_namespaces(cfg));
    std::optional<sys::SeccompFilter> seccomp;
    if (cfg.linux->seccomp) {
        BERTH_ASSIGN(seccomp, sys::compile_seccomp_cached(*cfg.linux->seccomp, seccomp_cache_dir(g.root)));
    }

    // The cgroups exist, with every limit applied, before init runs anything; init joins them before `go`.
    BERTH_ASSIGN(cgroup, make_cgroups(cfg, o.id));

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return fail_sys("socketpair");
    UniqueFd parent_sock(sv[0]), child_sock(sv[1]);
    int one = 1;
    ::setsockopt(parent_sock.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one);

    InitPlan& ip = plan.init;
    ip.config = &cfg;
    ip.id = o.id;
    ip.bundle = st.bundle;
    ip.rootfs = st.rootfs;
    ip.sync_fd = child_sock.get();
    ip.fifo_fd = fifo.get();
    ip.no_pivot = o.no_pivot;
    ip.no_new_keyring = o.no_new_keyring;
    ip.preserve_fds = o.preserve_fds;
    ip.seccomp = seccomp ? &*seccomp : nullptr;
    ip.lsm = std::move(lsm);
    ip.need_hooks_round = !cfg.hooks.prestart.empty() || !cfg.hooks.create_runtime.empty() ||
                          !cfg.hooks.create_container.empty() || !cfg.hooks.start_container.empty();

    // A pid namespace is joined by the parent (membership is decided at clone), then left again so that
    // hooks forked later run in the host's pid namespace.
    UniqueFd own_pidns;
    if (plan.pid_join_fd) {
        BERTH_ASSIGN(own_pidns, sys::open_namespace("/proc/self/ns/pid"));
        BERTH_TRY(sys::join_namespace(plan.pid_join_fd.get(), NamespaceType::pid,
                                      cfg.linux->find_namespace(NamespaceType::pid)->path));
    }
    if (mode == LaunchMode::foreground && ip.fork_after_unshare) ::prctl(PR_SET_CHILD_SUBREAPER, 1);

    // Born in the unified cgroup (CLONE_INTO_CGROUP); init moves itself into the v1 ones as its first step.
    cgroups::CgroupManager::EntryFds cg_entry;
    if (cgroup) {
        BERTH_ASSIGN(cg_entry, cgroup->entry_fds());
        for (const auto& fd : cg_entry.v1_tasks) ip.cgroup_tasks_fds.push_back(fd.get());
    }
    BERTH_ASSIGN(pid_t child,
                 sys::clone3_fork(plan.clone_flags, nullptr, cg_entry.unified ? cg_entry.unified.get() : -1));
    if (child == 0) {
        parent_sock.reset();
        container_init(ip);
    }
    child_sock.reset();
    guard.set_first_child(child);
    guard.set_pid(child, true);
    if (own_pidns) BERTH_TRY(sys::join_namespace(own_pidns.get(), NamespaceType::pid, "/proc/self/ns/pid"));

    pid_t init_pid = child;
    out.init_is_child = true;
    if (plan.maps_before_go) BERTH_TRY_CTX(write_maps(child, cfg), "user namespace of container \"{}\"", o.id);
    cg_entry = {};  // init has its own copies
    BERTH_TRY(sync_send(parent_sock.get(), SyncType::go));

    for (;;) {
        auto msg = sync_recv(parent_sock.get());
        if (!msg) {
            int status = 0;
            if (out.init_is_child && ::waitpid(init_pid, &status, 0) == init_pid) {
                guard.set_pid(-1, false);
                if (init_pid == child) guard.set_first_child(-1);
                if (WIFSIGNALED(status))
                    return fail("container init was killed by signal {} during set-up", WTERMSIG(status));
                return fail("container init exited with status {} during set-up", WEXITSTATUS(status));
            }
            return std::unexpected(msg.error().wrap("container init"));
        }
        switch (msg->type) {
            case SyncType::want_maps:
                BERTH_TRY_CTX(write_maps(child, cfg), "user namespace of container \"{}\"", o.id);
                BERTH_TRY(sync_send(parent_sock.get(), SyncType::maps_done));
                break;
            case SyncType::child_pid: {
                int status = 0;
                ::waitpid(child, &status, 0);  // the intermediate exits right after its fork
                guard.set_first_child(-1);
                init_pid = msg->sender_pid;
                out.init_is_child = false;
                guard.set_pid(init_pid, false);
                if (init_pid <= 0) return fail("container init did not report its pid");
                break;
            }
            case SyncType::run_hooks: {
                st.pid = init_pid;
                std::string state = state_json(st, "creating");
                BERTH_TRY(run_hooks(cfg.hooks.prestart, state, "prestart"));
                BERTH_TRY(run_hooks(cfg.hooks.create_runtime, state, "createRuntime"));
                BERTH_TRY(sync_send(parent_sock.get(), SyncType::hooks_done, 0, state));
                break;
            }
            case SyncType::pty_master:
                if (console) {
                    BERTH_TRY_CTX(sys::send_fd(console.get(), msg->fd.get(), msg->text), "console socket {}",
                                  o.console_socket);
                } else {
                    out.pty_master = std::move(msg->fd);
                }
                break;
            case SyncType::seccomp_listener:
                st.pid = init_pid;
                BERTH_TRY(forward_seccomp_listener(*cfg.linux->seccomp, msg->fd.get(), init_pid, st, "creating"));
                break;
            case SyncType::error:
                return std::unexpected(Error(msg->value, std::move(msg->text)));
            case SyncType::ready:
                goto ready;
            default:
                return fail("container init sent unexpected message {}", static_cast<uint32_t>(msg->type));
        }
    }
ready:
    st.pid = init_pid;
    st.pid_start_time = sys::process_start_time(init_pid);
    st.new_pid_namespace =
        cfg.linux->find_namespace(NamespaceType::pid) && cfg.linux->find_namespace(NamespaceType::pid)->path.empty();
    for (const auto& ns : cfg.linux->namespaces)
        st.namespace_paths[std::string(spec::to_string(ns.type))] =
            fmt::format("/proc/{}/ns/{}", init_pid, sys::proc_ns_name(ns.type));
    if (cgroup) st.cgroup_paths = cgroup->paths();
    BERTH_TRY(save_state(g.root, st));
    if (!o.pid_file.empty()) BERTH_TRY(write_pid_file(o.pid_file, init_pid));
    if (mode == LaunchMode::foreground) out.sync = std::move(parent_sock);
    guard.commit();
    if (cgroup) cgroup->commit();
    return out;
}

}  // namespace berth::runtime
