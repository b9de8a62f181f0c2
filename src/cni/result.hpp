// CNI results (spec section 5) in every format berth speaks: 0.1.0/0.2.0 (ip4/ip6 objects), 0.3.x/0.4.0 (ips with
// "version" and an interface index), 1.0.0/1.1.0 (ips without "version"). And the error result.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace berth::cni {

struct Interface {
    std::string name, mac, sandbox;  // sandbox empty: a host interface
};

struct IpConfig {
    std::string address;  // CIDR, "10.88.0.5/16"
    std::string gateway;
    int interface = -1;      // index into interfaces; -1 when absent
    int family = 4;          // 4 or 6
    std::string ip() const;  // the address without its prefix length
};

struct AddResult {
    std::string cni_version;
    std::vector<Interface> interfaces;
    std::vector<IpConfig> ips;
    std::vector<std::string> dns_nameservers, dns_search, dns_options;
    std::string dns_domain;

    // The IPs of the container interface named `ifname` (an interface with a sandbox, or any IP without an
    // interface index when the result names none), IPv4 ones first, in result order otherwise.
    std::vector<std::string> pod_ips(std::string_view ifname) const;
};

// Parses a success result. Errors name the field (`ips[0].address: not an IP in CIDR form`).
[[nodiscard]] Result<AddResult> parse_add_result(const nlohmann::json& result);

// A plugin's error result: {"cniVersion", "code", "msg", "details"}; nullopt when `out` is not one.
struct PluginError {
    int code = 0;
    std::string msg, details;
};
std::optional<PluginError> parse_plugin_error(std::string_view out);

// The well-known meaning of an error code (spec section 5 and 1.1's STATUS codes), "" for plugin-specific ones.
std::string_view error_code_text(int code);

}  // namespace berth::cni
