// Pod networking through CNI (src/cni): the network configuration of cni.conf_dir, NetworkReady, and per pod the
// attachment (ADD at RunPodSandbox, DEL at Stop/Remove, CHECK for a verbose PodSandboxStatus, GC at startup).
//
// Configuration: the lowest-named *.conflist/*.conf/*.json of the config dir, loaded again whenever the dir's
// files change (their names, sizes, mtimes and inodes are compared on every use, so a config that appears later
// is used without a restart; no thread). NetworkReady is true when that file is valid, every plugin binary it
// names is in cni.bin_dirs, and (cniVersion 1.1.0+) every plugin's STATUS succeeds.
//
// Attachments: each pod's is cached in <root_dir>/cni/<pod id>.json (the network configuration as ADD used it,
// the CNI_* parameters, the capability arguments and ADD's result), written before ADD runs and completed after
// it. DEL reads only the cache, so it works after a berthd restart, after a reboot (CNI_NETNS empty when the
// pinned namespace is gone) and after the config dir changed; a successful DEL removes the cache. At startup
// caches of pods without a record get their DEL (as libcni's GC does), then the current network gets GC with the
// attachments still cached.
//
// Pods send: CNI_CONTAINERID = the pod id, CNI_IFNAME = eth0, CNI_ARGS = IgnoreUnknown=1;K8S_POD_NAMESPACE=..;
// K8S_POD_NAME=..;K8S_POD_INFRA_CONTAINER_ID=<pod id>;K8S_POD_UID=.. (what kubelet-driven runtimes pass), and the
// capability arguments portMappings (port_mappings with a host port), bandwidth (the kubernetes.io/ingress-bandwidth
// and egress-bandwidth annotations), ips (annotation berth.dev/ips, comma-separated) and mac (berth.dev/mac).
//
// Thread-safety: every member may be called from any thread; calls for one pod must be serialized by the caller
// (the pod lock), as the spec requires.
#pragma once

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cni/config.hpp"
#include "cni/network.hpp"
#include "cri/api.hpp"
#include "cri/config.hpp"
#include "cri/runtime_state.hpp"
#include "store/cri_records.hpp"

namespace berth::cri {

// One pod's attachment as cached.
struct PodAttachment {
    cni::NetworkConfig network;
    cni::Attachment attachment;
    nlohmann::json result;  // ADD's final result; null until ADD succeeded
    std::string source_file;
};

class PodNetwork {
public:
    explicit PodNetwork(const DaemonConfig& config);

    bool enabled() const { return enabled_; }

    // NetworkReady as it is now (reloads the config when its files changed; runs STATUS for 1.1.0 configs).
    RuntimeCondition condition();

    // ADD for pod `p` into the namespace pinned at `netns`. Does nothing when CNI is disabled. EBUSY when the
    // network is not ready (no/bad config, missing binary). A failed ADD is followed by DEL; the error names the
    // network and the plugin.
    [[nodiscard]] Result<void> attach(const store::PodRecord& p, const v1::PodSandboxConfig& c,
                                      const std::string& netns);
    // DEL from the cache, then the cache goes. No cache: success (idempotent). `netns` is used only while it is
    // still a network namespace.
    [[nodiscard]] Result<void> detach(const std::string& pod_id, const std::string& netns);
    // CHECK of the cached attachment.
    [[nodiscard]] Result<void> check(const std::string& pod_id, const std::string& netns);
    // The cached attachment of a pod; nullopt when it has none.
    std::optional<PodAttachment> cached(const std::string& pod_id) const;
    // The pod IPs of a cached result (v4 first); empty without one.
    std::vector<std::string> pod_ips(const std::string& pod_id) const;

    // Startup, after pod recovery: DEL for caches of pods not in `live_pods`, then GC of the current network.
    void collect_garbage(const std::set<std::string>& live_pods);

    // The capability arguments of a pod config (exposed for unit tests). EINVAL naming the field when bad.
    [[nodiscard]] static Result<nlohmann::json> capability_args(const v1::PodSandboxConfig& c);

private:
    std::string cache_path(const std::string& pod_id) const;
    [[nodiscard]] Result<void> write_cache(const PodAttachment& a) const;
    // The current network configuration, reloaded when the dir changed; the load error otherwise.
    [[nodiscard]] Result<cni::NetworkConfig> current();

    const bool enabled_;
    const std::string conf_dir_;
    const std::string cache_dir_;
    const cni::Runner runner_;

    std::mutex mu_;
    std::string fingerprint_;                           // guarded by mu_
    std::optional<Result<cni::NetworkConfig>> loaded_;  // guarded by mu_
    std::string last_message_;                          // guarded by mu_: readiness last logged
};

}  // namespace berth::cri
