#include "cri/runtime_state.hpp"

#include "common/log.hpp"
#include "cri/log_control.hpp"

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
    // berth.toml as loaded, flags applied; the log settings as in force now (SIGHUP and SIGUSR1 change them).
    auto berth = nlohmann::json::parse(config_json(config_));
    berth["log_level"] = log_level_name(log::min_level());
    berth["log_format"] = log::format() == log::Format::json ? "json" : "text";
    return {
        {"socket", config_.socket_path},
        {"cgroupDriver", config_.cgroup_driver},
        {"podCIDR", pod_cidr()},
        {"runtimeVersion", BERTH_VERSION},
        {"berthConfig", std::move(berth)},
    };
}

}  // namespace berth::cri
