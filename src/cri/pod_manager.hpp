// Pod sandboxes: RunPodSandbox, Stop, Remove, Status, List.
//
// A pod is a record (store/cri_records.hpp) plus, under <state_dir>/pods/<id>: pinned network, IPC and UTS
// namespaces (pod_namespaces.hpp; none pinned for NODE mode: hostNetwork pins neither network nor UTS, hostIPC no
// IPC), a /dev/shm tmpfs of 64 MiB (none with hostIPC: containers then use the host's), and the files containers
// bind-mount: hostname, hosts, resolv.conf. The pod's cgroup is kubelet's cgroup_parent, or the daemon's default
// parent + "/" + id, which berthd removes with the pod. The pod network (pod_network.hpp): CNI ADD into the pinned
// network namespace before the pod is ready, DEL at Stop (and Remove, and when a Run fails); hostNetwork pods have
// none. A PID namespace shared by the pod (namespace_options.pid POD) is held by `berth-monitor --pause`
// (pod_namespaces.hpp), killed at Stop.
//
// Run records the pod as "creating" before making anything, "ready" when done; a failure undoes what was made
// and drops the record; a crash leaves "creating", which recover() undoes. A second Run with the same metadata is
// AlreadyExists naming the holder, except a retry of exactly the same config while the holder is ready: that
// answers the holder's id (kubelet retrying after its RunPodSandbox timeout must not wedge the name).
//
// Thread-safety: all members may be called concurrently; operations on one pod are serialized.
#pragma once

#include <string>
#include <vector>

#include "cri/api.hpp"
#include "cri/cri_context.hpp"
#include "cri/spec_builder.hpp"

namespace berth::cri {

class ContainerManager;
class PodNetwork;

class PodManager {
public:
    explicit PodManager(CriContext& ctx) : ctx_(ctx) {}
    void set_containers(ContainerManager* c) { containers_ = c; }
    void set_network(PodNetwork* n) { network_ = n; }

    [[nodiscard]] Result<std::string> run(const v1::RunPodSandboxRequest& req);
    // Missing ids are success for stop and remove (the CRI's idempotence).
    [[nodiscard]] Result<void> stop(const std::string& id);
    [[nodiscard]] Result<void> remove(const std::string& id);
    [[nodiscard]] Result<void> status(const std::string& id, bool verbose, v1::PodSandboxStatusResponse* resp);
    [[nodiscard]] Result<void> list(const v1::PodSandboxFilter* filter, v1::ListPodSandboxResponse* resp);

    // PodSandboxStats / ListPodSandboxStats (ready pods).
    [[nodiscard]] Result<void> stats(const std::string& id, v1::PodSandboxStats* out);
    [[nodiscard]] Result<void> list_stats(const v1::PodSandboxStatsFilter* filter,
                                          v1::ListPodSandboxStatsResponse* resp);

    // What a container of pod `id` joins and mounts; EBUSY unless the pod is ready.
    [[nodiscard]] Result<PodContext> context_of(const store::PodRecord& pod) const;

    // Startup: undoes pods left "creating" by a crash.
    void recover();

    // The CRI status of a record.
    void fill_status(const store::PodRecord& p, v1::PodSandboxStatus* out) const;

private:
    void undo(const store::PodRecord& p);                                     // everything a run makes, best effort
    // Network (CNI DEL), shm and pins (Stop); every step is tried, the first error is returned.
    [[nodiscard]] Result<void> release_resources(const store::PodRecord& p);

    CriContext& ctx_;
    ContainerManager* containers_ = nullptr;
    PodNetwork* network_ = nullptr;
};

// True when every label of `selector` is in `labels` with the same value.
bool labels_match(const google::protobuf::Map<std::string, std::string>& labels,
                  const google::protobuf::Map<std::string, std::string>& selector);

}  // namespace berth::cri
