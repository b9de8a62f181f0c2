// pause, resume, update, ps and events: the operations on a container's cgroups.
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"
#include "runtime/container_state.hpp"
#include "runtime/lifecycle_internal.hpp"
#include "runtime/runtime.hpp"

namespace berth::runtime {

namespace {

// The container's state and its cgroups; an error when it has none (made without cgroups, rootless).
Result<std::pair<ContainerState, Status>> load_with_cgroups(const GlobalOptions& g, const std::string& id) {
    BERTH_ASSIGN(ContainerState st, load_state(g.root, id));
    Status status = current_status(g.root, st);
    if (st.cgroup_paths.empty()) return fail("container \"{}\" has no cgroups of its own", id);
    return std::pair{std::move(st), status};
}

}  // namespace

Result<void> pause_container(const GlobalOptions& g, const std::string& id) {
    BERTH_ASSIGN(auto loaded, load_with_cgroups(g, id));
    auto& [st, status] = loaded;
    if (status != Status::running && status != Status::created)
        return fail("cannot pause container \"{}\": it is {}", id, to_string(status));
    BERTH_TRY_CTX(cgroups::CgroupManager::load(st.cgroup_paths).freeze(), "pause container \"{}\"", id);
    return {};
}

Result<void> resume_container(const GlobalOptions& g, const std::string& id) {
    BERTH_ASSIGN(auto loaded, load_with_cgroups(g, id));
    auto& [st, status] = loaded;
    if (status != Status::paused)
        return fail("cannot resume container \"{}\": it is {}, not paused", id, to_string(status));
    BERTH_TRY_CTX(cgroups::CgroupManager::load(st.cgroup_paths).thaw(), "resume container \"{}\"", id);
    return {};
}

Result<void> update_container(const GlobalOptions& g, const std::string& id, const spec::Resources& r) {
    BERTH_ASSIGN(auto loaded, load_with_cgroups(g, id));
    auto& [st, status] = loaded;
    if (status == Status::stopped) return fail("cannot update container \"{}\": it is stopped", id);
    if (!r.devices.empty()) return fail("linux.resources.devices: device rules cannot be changed by update");
    BERTH_TRY(cgroups::validate_resources(r));
    BERTH_TRY_CTX(cgroups::CgroupManager::load(st.cgroup_paths).apply(r, true), "update container \"{}\"", id);
    return {};
}

Result<std::vector<pid_t>> container_processes(const GlobalOptions& g, const std::string& id) {
    BERTH_ASSIGN(auto loaded, load_with_cgroups(g, id));
    auto& [st, status] = loaded;
    if (status == Status::stopped) return fail("container \"{}\" is not running", id);
    return cgroups::CgroupManager::load(st.cgroup_paths).pids();
}

Result<void> container_events(const GlobalOptions& g, const std::string& id, bool stats_once, int interval_ms,
                              const std::function<void(const std::string&)>& emit) {
    BERTH_ASSIGN(auto loaded, load_with_cgroups(g, id));
    auto& [st, status] = loaded;
    if (status == Status::stopped) return fail("container \"{}\" is not running", id);
    auto mgr = cgroups::CgroupManager::load(st.cgroup_paths);
    auto stats_event = [&]() -> Result<void> {
        BERTH_ASSIGN(cgroups::Stats s, mgr.stats());
        nlohmann::json ev = {{"type", "stats"}, {"id", id}, {"data", nlohmann::json::parse(cgroups::stats_json(s))}};
        emit(ev.dump());
        return {};
    };
    if (stats_once) return stats_event();
    if (interval_ms <= 0) return fail("events: --interval must be positive");

    BERTH_ASSIGN(UniqueFd pidfd, open_pidfd(st));
    auto oom = mgr.oom_notifier();
    if (!oom) log::warn("container \"{}\": OOM events will not be reported: {}", id, oom.error().message());
    uint64_t oom_kills = mgr.oom_kill_count();
    for (;;) {
        BERTH_TRY(stats_event());
        struct timespec start {};
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            struct timespec now {};
            clock_gettime(CLOCK_MONOTONIC, &now);
            long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (elapsed >= interval_ms) break;
            struct pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {oom ? oom->get() : -1, POLLIN, 0}};
            int n = ::poll(fds, 2, static_cast<int>(interval_ms - elapsed));
            if (n < 0) {
                if (errno == EINTR) continue;
                return fail_sys("events of container \"{}\": poll", id);
            }
            if (fds[0].revents) return {};  // init exited: the container stopped
            if (fds[1].revents) {
                char buf[4096];
                (void)!::read(oom->get(), buf, sizeof buf);
                // A v1 eventfd fires on each OOM of the cgroup (and on its removal); v2's memory.events changes
                // for other counters too, so only a higher oom_kill count is an OOM.
                uint64_t now_kills = mgr.oom_kill_count();
                bool v1_event = mgr.paths().count("memory") > 0;
                if (v1_event && !path_exists(mgr.paths().at("memory"))) return {};  // the cgroup was removed
                if (v1_event || now_kills > oom_kills) {
                    nlohmann::json ev = {{"type", "oom"}, {"id", id}};
                    emit(ev.dump());
                }
                oom_kills = now_kills;
            }
        }
    }
}

}  // namespace berth::runtime
