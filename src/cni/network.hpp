// Executing a network configuration (spec section 3): ADD in order with prevResult chaining, DEL in reverse order
// with the cached result, CHECK (0.4.0+, unless disableCheck), STATUS and GC (1.1.0+; GC unless disableGC).
//
// Every plugin is found in the bin dirs (a missing one is an error before anything runs), started with the CNI_*
// parameters and PATH, and given its execution configuration on stdin: the plugin object with the network's name
// and cniVersion inserted, "capabilities" removed, "runtimeConfig" holding the capability arguments it declares,
// "prevResult" where the operation has one. A plugin's error result becomes an Error naming the network, the
// plugin, the operation, the CNI code and its msg/details.
//
// Thread-safety: const members may run concurrently (for different attachments, as the spec allows).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cni/config.hpp"
#include "common/error.hpp"

namespace berth::cni {

// What identifies one attachment of a network and what the runtime passes per attachment.
struct Attachment {
    std::string container_id;  // CNI_CONTAINERID
    std::string netns;         // CNI_NETNS; may be empty for DEL (the namespace is gone)
    std::string ifname = "eth0";
    std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS, in order
    // Capability arguments by name (portMappings, bandwidth, ips, mac, ...): a plugin gets those it declares in
    // "capabilities" as its runtimeConfig.
    nlohmann::json capability_args = nlohmann::json::object();
};

// The valid attachments GC keeps.
struct AttachmentKey {
    std::string container_id, ifname;
};

class Runner {
public:
    Runner(std::vector<std::string> bin_dirs, std::chrono::milliseconds timeout)
        : bin_dirs_(std::move(bin_dirs)), timeout_(timeout) {}

    // ADD: the final plugin's result (the raw JSON, to cache and to hand DEL and CHECK later).
    [[nodiscard]] Result<nlohmann::json> add(const NetworkConfig& n, const Attachment& a) const;
    // DEL of every plugin in reverse order; `prev_result` is the cached ADD result (null: unknown, e.g. an ADD that
    // failed or a crash before the result was saved). Stops at the first failure.
    [[nodiscard]] Result<void> del(const NetworkConfig& n, const Attachment& a,
                                   const nlohmann::json& prev_result) const;
    // CHECK of every plugin; success without running anything when the version predates CHECK or disableCheck.
    [[nodiscard]] Result<void> check(const NetworkConfig& n, const Attachment& a,
                                     const nlohmann::json& prev_result) const;
    // STATUS of every plugin (1.1.0+); success without running anything before 1.1.0.
    [[nodiscard]] Result<void> status(const NetworkConfig& n) const;
    // GC with the attachments still in use (1.1.0+, unless disableGC); every plugin runs, errors are joined.
    [[nodiscard]] Result<void> gc(const NetworkConfig& n, const std::vector<AttachmentKey>& valid) const;

    // Every binary the network runs is present (the message names the missing one and the dirs).
    [[nodiscard]] Result<void> check_binaries(const NetworkConfig& n) const;

    // The execution configuration of plugin `index` (section 3, "Deriving execution configuration").
    static nlohmann::json derive(const NetworkConfig& n, size_t index, const nlohmann::json& capability_args,
                                 const nlohmann::json* prev_result);
    // CNI_ARGS text: "K=V;K=V".
    static std::string args_text(const std::vector<std::pair<std::string, std::string>>& args);

    const std::vector<std::string>& bin_dirs() const { return bin_dirs_; }

private:
    [[nodiscard]] Result<std::string> invoke(const NetworkConfig& n, size_t index, const std::string& command,
                                             const Attachment* a, const nlohmann::json& config) const;

    std::vector<std::string> bin_dirs_;
    std::chrono::milliseconds timeout_;
};

}  // namespace berth::cni
