// Containers: Create, Start, Stop, Remove, Status, List, UpdateContainerResources, ReopenContainerLog, ExecSync,
// and the exits that happen by themselves.
//
// Create records the container ("creating"), makes its image hold its content (store::Images::hold), mounts its
// rootfs (an overlay of the image's snapshots, upper and work under <root_dir>/containers/<id>), writes the bundle
// (config.json from build_container_spec), and starts a berth-monitor for it, which creates the container through
// libberth or the pod's handler binary and reports on a sync pipe; then "created". Start is the monitor's ctl
// "start". The monitor outlives berthd; its exit record (monitor/exit_record.hpp) is how an exit is learned, by
// the ExitWatcher, or by recover() after a restart. An exited container's runtime state (cgroups, state dir) is
// deleted at once; its rootfs, logs and record stay until Remove.
//
// Operations that run the handler's binary (delete, exec, update) use the handler's path, or the `berth` CLI
// beside berth-monitor for the libberth handler.
//
// Thread-safety: all members may be called concurrently; operations on one container are serialized. The exit
// callback runs on the watcher thread and takes the container's lock: Stop, which waits for an exit while holding
// it, is woken before that (exit_cv_).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "cri/api.hpp"
#include "cri/cri_context.hpp"
#include "cri/exit_watcher.hpp"
#include "cri/pod_manager.hpp"
#include "cri/stats.hpp"

namespace berth::cri {

class ContainerManager {
public:
    ContainerManager(CriContext& ctx, PodManager& pods);
    [[nodiscard]] Result<void> start_watcher();

    [[nodiscard]] Result<std::string> create(const v1::CreateContainerRequest& req);
    [[nodiscard]] Result<void> start(const std::string& id);
    // Missing ids: success (idempotent). timeout_s < 0 counts as 0.
    [[nodiscard]] Result<void> stop(const std::string& id, int64_t timeout_s);
    [[nodiscard]] Result<void> remove(const std::string& id);
    [[nodiscard]] Result<void> status(const std::string& id, bool verbose, v1::ContainerStatusResponse* resp);
    [[nodiscard]] Result<void> list(const v1::ContainerFilter* filter, v1::ListContainersResponse* resp);
    [[nodiscard]] Result<void> update_resources(const std::string& id, const v1::LinuxContainerResources& r);
    [[nodiscard]] Result<void> reopen_log(const std::string& id);
    [[nodiscard]] Result<void> exec_sync(const v1::ExecSyncRequest& req, v1::ExecSyncResponse* resp);

    // ContainerStats / ListContainerStats (running containers only: an exited one has no cgroup left).
    [[nodiscard]] Result<void> stats(const std::string& id, v1::ContainerStats* out);
    [[nodiscard]] Result<void> list_stats(const v1::ContainerStatsFilter* filter, v1::ListContainerStatsResponse* resp);
    // What stats.hpp reads for each running container of a pod.
    [[nodiscard]] Result<std::vector<ContainerStatsSource>> stats_sources_of(const std::string& pod_id);

    // For the pod manager (the pod's lock is held).
    [[nodiscard]] Result<void> stop_all_of(const std::string& pod_id);
    [[nodiscard]] Result<void> remove_all_of(const std::string& pod_id);
    [[nodiscard]] Result<void> statuses_of(const std::string& pod_id,
                                           google::protobuf::RepeatedPtrField<v1::ContainerStatus>* out);

    // Startup, before serving: half-created containers undone, exits during the downtime applied, running ones
    // watched again.
    void recover();

    std::string runtime_binary(const RuntimeHandler& h) const;
    // The handler's binary, --root and runtime_args: what comes before a subcommand (delete, exec, update).
    std::vector<std::string> runtime_argv(const RuntimeHandler& h) const;

private:
    void on_exit(const std::string& id);
    // Applies the exit record of `c` if there is one (or marks it exited when its monitor is gone without one);
    // the container's lock is held. True when `c` is (now) exited.
    bool apply_exit(store::ContainerRecord& c);
    [[nodiscard]] Result<void> stop_locked(store::ContainerRecord& c, int64_t timeout_s);
    [[nodiscard]] Result<void> remove_locked(store::ContainerRecord& c);
    void undo_create(const store::ContainerRecord& c);
    [[nodiscard]] Result<void> signal(const store::ContainerRecord& c, int signo);
    bool wait_exit(const store::ContainerRecord& c, int64_t timeout_ms);
    [[nodiscard]] Result<void> runtime_delete(const store::ContainerRecord& c);
    [[nodiscard]] Result<std::string> ctl(const store::ContainerRecord& c, const std::string& command);
    std::string monitor_binary() const;
    void fill_status(const store::ContainerRecord& c, v1::ContainerStatus* out) const;
    ContainerStatsSource stats_source(const store::ContainerRecord& c) const;
    void publish(const store::ContainerRecord& c, v1::ContainerEventType type);

    CriContext& ctx_;
    PodManager& pods_;
    std::unique_ptr<ExitWatcher> watcher_;
    std::mutex exit_mu_;
    std::condition_variable exit_cv_;
};

}  // namespace berth::cri
