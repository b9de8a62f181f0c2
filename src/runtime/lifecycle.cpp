// start, state, kill, delete and list: the operations on an existing container.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"
#include "linux/namespaces.hpp"
#include "runtime/container_state.hpp"
#include "runtime/hooks.hpp"
#include "runtime/lifecycle_internal.hpp"
#include "runtime/runtime.hpp"

namespace berth::runtime {

Result<UniqueFd> open_pidfd(const ContainerState& st) {
    int fd = static_cast<int>(syscall(SYS_pidfd_open, st.pid, 0));
    if (fd < 0) return fail_sys("pidfd_open {} (init of container \"{}\")", st.pid, st.id);
    UniqueFd pidfd(fd);
    // The pid may have been reused between our status check and pidfd_open: check the start time again now that
    // the pidfd pins the process.
    if (!sys::process_alive(st.pid, st.pid_start_time))
        return fail_errno(ESRCH, "init of container \"{}\" (pid {}) is gone", st.id, st.pid);
    return pidfd;
}

bool wait_pidfd(int pidfd, int timeout_ms) {
    struct pollfd p = {pidfd, POLLIN, 0};
    for (;;) {
        int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

Result<void> start_container(const GlobalOptions& g, const std::string& id) {
    BERTH_ASSIGN(ContainerState st, load_state(g.root, id));
    Status status = current_status(g.root, st);
    if (status != Status::created)
        return fail("cannot start container \"{}\": it is {}, not created", id, to_string(status));
    std::string fifo_path = exec_fifo_path(g.root, id);
    BERTH_ASSIGN(UniqueFd pidfd, open_pidfd(st));
    // Non-blocking open: a dead init would leave a blocking open waiting forever. Opening the read end wakes init,
    // blocked in its open of the write end; it then writes one byte.
    BERTH_ASSIGN(UniqueFd fifo, open_fd(fifo_path, O_RDONLY | O_NONBLOCK));
    struct pollfd fds[2] = {{fifo.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    for (;;) {
        int r = ::poll(fds, 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            return fail_sys("wait for container \"{}\" to start", id);
        }
        if (fds[0].revents & POLLIN) {
            char c;
            if (::read(fifo.get(), &c, 1) == 1) break;
        }
        if (fds[0].revents & POLLHUP || fds[1].revents & POLLIN)
            return fail(
                "container \"{}\": init exited before it was started (a failing startContainer hook "
                "ends it; its error is on the container's stderr)",
                id);
    }
    if (::unlink(fifo_path.c_str()) < 0 && errno != ENOENT) return fail_sys("remove {}", fifo_path);
    if (!st.hooks.poststart.empty()) {
        if (auto r = run_hooks(st.hooks.poststart, state_json(st, "running"), "poststart"); !r)
            log::warn("container \"{}\": {}", id, r.error().message());
    }
    return {};
}

Result<std::string> container_state(const GlobalOptions& g, const std::string& id) {
    BERTH_ASSIGN(ContainerState st, load_state(g.root, id));
    return state_json(st, to_string(current_status(g.root, st)));
}

// Pids of the container's processes: its cgroup when known, else every process in init's pid namespace when the
// container has its own, else init alone.
std::vector<pid_t> container_pids(const ContainerState& st) {
    std::vector<pid_t> pids;
    for (const auto& [controller, dir] : st.cgroup_paths) {
        auto procs = read_file(path_join(dir, "cgroup.procs"));
        if (!procs) continue;
        size_t pos = 0;
        while (pos < procs->size()) {
            size_t end = procs->find('\n', pos);
            if (end == std::string::npos) end = procs->size();
            if (end > pos) pids.push_back(std::atoi(procs->c_str() + pos));
            pos = end + 1;
        }
        return pids;
    }
    if (!st.new_pid_namespace) return {st.pid};
    char want[64] = {}, have[64] = {};
    std::string init_ns = fmt::format("/proc/{}/ns/pid", st.pid);
    ssize_t wn = ::readlink(init_ns.c_str(), want, sizeof want - 1);
    if (wn <= 0) return {st.pid};
    DIR* d = ::opendir("/proc");
    if (!d) return {st.pid};
    while (struct dirent* de = ::readdir(d)) {
        pid_t p = std::atoi(de->d_name);
        if (p <= 0) continue;
        std::string ns = fmt::format("/proc/{}/ns/pid", p);
        ssize_t hn = ::readlink(ns.c_str(), have, sizeof have - 1);
        if (hn == wn && std::memcmp(want, have, static_cast<size_t>(hn)) == 0) pids.push_back(p);
    }
    ::closedir(d);
    return pids;
}

Result<void> kill_container(const GlobalOptions& g, const std::string& id, int signal, bool all) {
    BERTH_ASSIGN(ContainerState st, load_state(g.root, id));
    Status status = current_status(g.root, st);
    // "container not running" is runc's text: containerd-shim-runc-v2 matches it to tell "already exited" from a
    // failed kill.
    if (status == Status::stopped) return fail("cannot kill container \"{}\": container not running", id);
    BERTH_ASSIGN(UniqueFd pidfd, open_pidfd(st));
    if (all) {
        for (pid_t p : container_pids(st))
            if (p != st.pid && ::kill(p, signal) < 0 && errno != ESRCH)
                return fail_sys("kill pid {} of container \"{}\" with signal {}", p, id, signal);
    }
    if (syscall(SYS_pidfd_send_signal, pidfd.get(), signal, nullptr, 0) < 0)
        return fail_sys("signal {} to init of container \"{}\"", signal, id);
    return {};
}

Result<void> destroy_stopped(const GlobalOptions& g, const ContainerState& st) {
    // Whatever is left in the container's cgroups belongs to it (processes of a container without its own pid
    // namespace can outlive init): killed, then the directories go. A failure keeps the state for another try.
    if (!st.cgroup_paths.empty())
        BERTH_TRY_CTX(cgroups::CgroupManager::load(st.cgroup_paths).destroy(true), "delete container \"{}\"", st.id);
    if (!st.hooks.poststop.empty()) {
        if (auto r = run_hooks(st.hooks.poststop, state_json(st, "stopped"), "poststop"); !r)
            log::warn("container \"{}\": {}", st.id, r.error().message());
    }
    return remove_all(container_dir(g.root, st.id));
}

Result<void> delete_container(const GlobalOptions& g, const std::string& id, bool force) {
    auto loaded = load_state(g.root, id);
    if (!loaded) {
        // runc: --force on a container that does not exist is not an error (containerd cleans up this way).
        if (force && loaded.error().code() == ENOENT) return {};
        return std::unexpected(loaded.error());
    }
    ContainerState& st = *loaded;
    Status status = current_status(g.root, st);
    if ((status == Status::running || status == Status::paused) && !force)
        return fail("cannot delete container \"{}\": it is {} (stop it first, or use --force)", id, to_string(status));
    if (status != Status::stopped) {
        // A created container is deleted without --force, as runc does: containerd's shim deletes tasks that were
        // created but never started that way (see docs/runc-compatibility.md).
        auto pidfd = open_pidfd(st);
        if (pidfd) {
            for (pid_t p : container_pids(st)) ::kill(p, SIGKILL);
            syscall(SYS_pidfd_send_signal, pidfd->get(), SIGKILL, nullptr, 0);
            // Frozen tasks only die once thawed.
            if (status == Status::paused)
                if (auto r = cgroups::CgroupManager::load(st.cgroup_paths).thaw(); !r)
                    log::warn("container \"{}\": {}", id, r.error().message());
            if (!wait_pidfd(pidfd->get(), 10000))
                return fail("container \"{}\": init (pid {}) did not exit after SIGKILL", id, st.pid);
        }
    }
    return destroy_stopped(g, st);
}

Result<std::vector<ListEntry>> list_containers(const GlobalOptions& g) {
    BERTH_ASSIGN(std::vector<std::string> ids, list_container_ids(g.root));
    std::vector<ListEntry> out;
    for (const auto& id : ids) {
        auto st = load_state(g.root, id);
        if (!st) continue;  // removed meanwhile
        Status s = current_status(g.root, *st);
        out.push_back({st->id, s == Status::stopped ? 0 : st->pid, std::string(to_string(s)), st->bundle, st->created,
                       st->owner_uid == 0 ? "root" : std::to_string(st->owner_uid)});
    }
    return out;
}

Result<int> parse_signal(std::string_view s) {
    if (s.empty()) return fail("empty signal");
    if (s.front() >= '0' && s.front() <= '9') {
        int n = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return fail("invalid signal \"{}\"", s);
            n = n * 10 + (c - '0');
            if (n > 64) break;
        }
        if (n <= 0 || n >= NSIG) return fail("invalid signal number {}", s);
        return n;
    }
    std::string name(s);
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (name.starts_with("SIG")) name.erase(0, 3);
    if (name.starts_with("RTMIN") || name.starts_with("RTMAX")) {
        int base = name.starts_with("RTMIN") ? SIGRTMIN : SIGRTMAX;
        std::string rest = name.substr(5);
        if (rest.empty()) return base;
        int off = std::atoi(rest.c_str());
        int sig = base + off;
        if (sig < SIGRTMIN || sig > SIGRTMAX) return fail("invalid signal \"{}\"", s);
        return sig;
    }
    for (int sig = 1; sig < SIGRTMIN; ++sig) {
        const char* abbrev = sigabbrev_np(sig);
        if (abbrev && name == abbrev) return sig;
    }
    if (name == "IOT") return SIGABRT;
    if (name == "POLL") return SIGIO;
    return fail("unknown signal \"{}\"", s);
}

}  // namespace berth::runtime
