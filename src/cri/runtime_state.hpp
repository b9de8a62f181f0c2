// RuntimeState: the daemon-wide facts berthd's RuntimeService reports and kubelet updates.
//
// Thread-safety: every member may be called from any gRPC worker thread at once.
#pragma once

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cri/config.hpp"

namespace berth::cri {

// The two conditions kubelet requires of a runtime (RuntimeReady, NetworkReady), as berth sees them now.
struct RuntimeCondition {
    std::string type;
    bool status = false;
    std::string reason;   // CamelCase, empty when status is true
    std::string message;  // for people
};

class RuntimeState {
public:
    explicit RuntimeState(DaemonConfig config) : config_(std::move(config)) {}

    const DaemonConfig& config() const { return config_; }

    // The pod CIDR kubelet hands over in UpdateRuntimeConfig; empty until then.
    void set_pod_cidr(std::string cidr);
    std::string pod_cidr() const;

    // NetworkReady comes from `probe` (berthd: PodNetwork::condition); without one it is false.
    void set_network_probe(std::function<RuntimeCondition()> probe) { network_probe_ = std::move(probe); }

    // RuntimeReady, then NetworkReady. Pods that need a pod network must not be scheduled here while the network
    // is not ready, so kubelet is told the truth.
    std::vector<RuntimeCondition> conditions() const;

    // The verbose Status info: key -> JSON document (the CRI wants JSON values).
    nlohmann::json verbose_config() const;

private:
    const DaemonConfig config_;
    mutable std::mutex mu_;
    std::string pod_cidr_;  // guarded by mu_
    std::function<RuntimeCondition()> network_probe_;  // set before serving
};

}  // namespace berth::cri
