#include "cri/runtime_state.hpp"

namespace berth::cri {

void RuntimeState::set_pod_cidr(std::string cidr) {
    std::lock_guard lock(mu_);
    pod_cidr_ = std::move(cidr);
}

std::string RuntimeState::pod_cidr() const {
    std::lock_guard lock(mu_);
    return pod_cidr_;
}

std::vector<RuntimeCondition> RuntimeState::conditions() const {
    return {
        {"RuntimeReady", true, "", ""},
        {"NetworkReady", false, "NetworkPluginNotReady",
         "berthd: network plugin is not ready: CNI is not configured yet (pod networking is not implemented)"},
    };
}

nlohmann::json RuntimeState::verbose_config() const {
    return {
        {"socket", config_.socket_path},
        {"cgroupDriver", "cgroupfs"},
        {"podCIDR", pod_cidr()},
        {"runtimeVersion", BERTH_VERSION},
    };
}

}  // namespace berth::cri
