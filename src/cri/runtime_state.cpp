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
    RuntimeCondition network{"NetworkReady", false, "NetworkPluginNotReady",
                             "berthd: network plugin is not ready: CNI is not configured"};
    if (network_probe_) network = network_probe_();
    return {{"RuntimeReady", true, "", ""}, std::move(network)};
}

nlohmann::json RuntimeState::verbose_config() const {
    return {
        {"socket", config_.socket_path},
        {"cgroupDriver", config_.cgroup_driver},
        {"podCIDR", pod_cidr()},
        {"runtimeVersion", BERTH_VERSION},
        {"berthConfig", nlohmann::json::parse(config_json(config_))},  // berth.toml as loaded, flags applied
    };
}

}  // namespace berth::cri
