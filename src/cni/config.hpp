// CNI network configurations (spec 1.0/1.1, section 1): loading, validation, version negotiation, plugin lookup.
//
// A network configuration is a list of plugins; a legacy single-plugin file (.conf, or a .json/.conf without
// "plugins") becomes a one-plugin list whose name and cniVersion come from the plugin object, as libcni reads it.
// The configuration used is the file whose name sorts lowest among *.conflist, *.conf and *.json in the config dir.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace berth::cni {

// The spec versions berth speaks, oldest first.
const std::vector<std::string>& supported_versions();
// -1, 0, 1 as a < b, a == b, a > b for "x.y.z" versions (missing parts are 0; non-numeric parts compare as 0).
int compare_versions(std::string_view a, std::string_view b);
bool version_supported(std::string_view v);

struct NetworkConfig {
    std::string file;         // where it was read from (for errors); may be empty
    std::string name;         // network name
    std::string cni_version;  // the version to speak: cniVersion, or the highest supported one of cniVersions
    bool disable_check = false;
    bool disable_gc = false;
    std::vector<nlohmann::json> plugins;  // plugin configuration objects, as written (each has a string "type")
    // The configuration as a list (what berth caches per pod, so DEL sees what ADD saw).
    nlohmann::json to_json() const;
};

// Parses a configuration. `as_list`: the text must be a list ({"plugins": [...]}); otherwise a list when it has
// "plugins", else a single plugin. Errors name `file` and the field: `10-net.conflist: plugins[1].type: missing`.
[[nodiscard]] Result<NetworkConfig> parse_network_config(std::string_view text, const std::string& file, bool as_list);
// Reads one file; the extension decides: .conflist is a list, .conf/.json either form.
[[nodiscard]] Result<NetworkConfig> load_network_file(const std::string& path);

// The config files of `dir` (*.conflist, *.conf, *.json), sorted by name. A missing dir is an empty list.
[[nodiscard]] Result<std::vector<std::string>> list_config_files(const std::string& dir);
// The network configuration of `dir`: its lowest-named file, loaded. ENOENT when there is none.
[[nodiscard]] Result<NetworkConfig> load_default_network(const std::string& dir);

// The executable `type` in the first of `bin_dirs` that has it. ENOENT naming the dirs when none does.
[[nodiscard]] Result<std::string> find_plugin(const std::string& type, const std::vector<std::string>& bin_dirs);

// Every binary a network runs: each plugin's type and, where a plugin delegates IPAM, ipam.type.
std::vector<std::string> plugin_binaries(const NetworkConfig& n);

}  // namespace berth::cni
