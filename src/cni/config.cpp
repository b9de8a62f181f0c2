#include "cni/config.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/fs.hpp"

namespace berth::cni {
namespace {

using json = nlohmann::json;

// "Must start with an alphanumeric character, optionally followed by any combination of one or more alphanumeric
// characters, underscore, dot or hyphen" (spec section 1, network name; the same rule as container ids).
bool valid_name(std::string_view s) {
    if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
    return true;
}

std::string versions_text() {
    std::string out;
    for (const auto& v : supported_versions()) out += (out.empty() ? "" : ", ") + v;
    return out;
}

std::string_view file_or(const std::string& file) {
    return file.empty() ? std::string_view("network config") : file;
}

Result<std::string> string_field(const json& obj, const char* key, const std::string& file, const std::string& path,
                                 bool required) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        if (required) return fail("{}: {}{}: missing", file_or(file), path, key);
        return std::string();
    }
    if (!it->is_string()) return fail("{}: {}{}: not a string", file_or(file), path, key);
    return it->get<std::string>();
}

Result<bool> bool_field(const json& obj, const char* key, const std::string& file) {
    auto it = obj.find(key);
    if (it == obj.end()) return false;
    if (!it->is_boolean()) return fail("{}: {}: not a boolean", file_or(file), key);
    return it->get<bool>();
}

Result<void> check_plugin(const json& p, const std::string& file, const std::string& path) {
    // path: "plugins[N]" in a list, "" for the single plugin of a .conf.
    const std::string prefix = path.empty() ? "" : path + ".";
    if (!p.is_object()) return fail("{}: {}: not an object", file_or(file), path);
    BERTH_ASSIGN(std::string type, string_field(p, "type", file, prefix, true));
    if (type.empty()) return fail("{}: {}type: empty", file_or(file), prefix);
    if (type.find('/') != std::string::npos || type.find('\\') != std::string::npos || type == "." || type == "..")
        return fail("{}: {}type: \"{}\" is not a plugin name (no path separators)", file_or(file), prefix, type);
    if (auto c = p.find("capabilities"); c != p.end()) {
        if (!c->is_object()) return fail("{}: {}capabilities: not an object", file_or(file), prefix);
        for (const auto& [k, v] : c->items())
            if (!v.is_boolean()) return fail("{}: {}capabilities.{}: not a boolean", file_or(file), prefix, k);
    }
    if (auto ipam = p.find("ipam"); ipam != p.end() && !ipam->is_null()) {
        if (!ipam->is_object()) return fail("{}: {}ipam: not an object", file_or(file), prefix);
        BERTH_ASSIGN(std::string ipam_type, string_field(*ipam, "type", file, prefix + "ipam.", false));
        if (ipam_type.find('/') != std::string::npos)
            return fail("{}: {}ipam.type: \"{}\" is not a plugin name (no path separators)", file_or(file), prefix,
                        ipam_type);
    }
    return {};
}

// The version to speak: the highest of cniVersions berth supports, else cniVersion (spec 1.1, section 1).
Result<std::string> negotiate(const json& obj, const std::string& file, const std::string& path) {
    BERTH_ASSIGN(std::string version, string_field(obj, "cniVersion", file, path, true));
    std::string best;
    if (auto it = obj.find("cniVersions"); it != obj.end()) {
        if (!it->is_array()) return fail("{}: {}cniVersions: not an array", file_or(file), path);
        for (size_t i = 0; i < it->size(); ++i) {
            if (!(*it)[i].is_string()) return fail("{}: {}cniVersions[{}]: not a string", file_or(file), path, i);
            std::string v = (*it)[i].get<std::string>();
            if (version_supported(v) && (best.empty() || compare_versions(v, best) > 0)) best = v;
        }
    }
    if (!best.empty()) return best;
    if (!version_supported(version))
        return fail("{}: {}cniVersion: \"{}\" is not supported (berth speaks {})", file_or(file), path, version,
                    versions_text());
    return version;
}

}  // namespace

const std::vector<std::string>& supported_versions() {
    static const std::vector<std::string> v = {"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
    return v;
}

int compare_versions(std::string_view a, std::string_view b) {
    auto parts = [](std::string_view s) {
        std::array<unsigned long, 3> out{};
        for (size_t i = 0; i < 3 && !s.empty(); ++i) {
            size_t dot = s.find('.');
            std::string_view part = s.substr(0, dot);
            std::from_chars(part.data(), part.data() + part.size(), out[i]);
            s = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
        }
        return out;
    };
    auto pa = parts(a), pb = parts(b);
    return pa < pb ? -1 : pa > pb ? 1 : 0;
}

bool version_supported(std::string_view v) {
    const auto& all = supported_versions();
    return std::find(all.begin(), all.end(), v) != all.end();
}

json NetworkConfig::to_json() const {
    json out = {{"cniVersion", cni_version}, {"name", name}, {"plugins", plugins}};
    if (disable_check) out["disableCheck"] = true;
    if (disable_gc) out["disableGC"] = true;
    return out;
}

Result<NetworkConfig> parse_network_config(std::string_view text, const std::string& file, bool as_list) {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return fail("{}: not valid JSON", file_or(file));
    if (!doc.is_object()) return fail("{}: not a JSON object", file_or(file));
    NetworkConfig n;
    n.file = file;
    const bool is_list = as_list || doc.contains("plugins");
    if (is_list) {
        BERTH_ASSIGN(n.name, string_field(doc, "name", file, "", true));
        BERTH_ASSIGN(n.cni_version, negotiate(doc, file, ""));
        BERTH_ASSIGN(n.disable_check, bool_field(doc, "disableCheck", file));
        BERTH_ASSIGN(n.disable_gc, bool_field(doc, "disableGC", file));
        auto it = doc.find("plugins");
        if (it == doc.end()) return fail("{}: plugins: missing", file_or(file));
        if (!it->is_array()) return fail("{}: plugins: not an array", file_or(file));
        if (it->empty()) return fail("{}: plugins: empty (a network needs at least one plugin)", file_or(file));
        for (size_t i = 0; i < it->size(); ++i) {
            BERTH_TRY(check_plugin((*it)[i], file, fmt::format("plugins[{}]", i)));
            n.plugins.push_back((*it)[i]);
        }
    } else {
        BERTH_ASSIGN(n.name, string_field(doc, "name", file, "", true));
        BERTH_ASSIGN(n.cni_version, negotiate(doc, file, ""));
        BERTH_TRY(check_plugin(doc, file, ""));
        json plugin = doc;
        // The list-level keys move up; the rest is the one plugin's configuration.
        for (const char* k : {"name", "cniVersion", "cniVersions", "disableCheck", "disableGC"}) plugin.erase(k);
        n.plugins.push_back(std::move(plugin));
    }
    if (n.name.empty()) return fail("{}: name: empty", file_or(file));
    if (!valid_name(n.name))
        return fail("{}: name: \"{}\" must start with a letter or digit, then letters, digits, _ . -", file_or(file),
                    n.name);
    return n;
}

Result<NetworkConfig> load_network_file(const std::string& path) {
    BERTH_ASSIGN(std::string text, read_file(path));
    return parse_network_config(text, path, path.ends_with(".conflist"));
}

Result<std::vector<std::string>> list_config_files(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR) return out;
        return fail_sys("read CNI config dir {}", dir);
    }
    while (struct dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.starts_with(".")) continue;
        if (!name.ends_with(".conflist") && !name.ends_with(".conf") && !name.ends_with(".json")) continue;
        struct stat st {};
        std::string path = path_join(dir, name);
        if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        out.push_back(path);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

Result<NetworkConfig> load_default_network(const std::string& dir) {
    BERTH_ASSIGN(auto files, list_config_files(dir));
    if (files.empty()) return fail_errno(ENOENT, "no network configuration (*.conflist, *.conf, *.json) in {}", dir);
    return load_network_file(files.front());
}

Result<std::string> find_plugin(const std::string& type, const std::vector<std::string>& bin_dirs) {
    std::string dirs;
    for (const auto& d : bin_dirs) {
        std::string path = path_join(d, type);
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0) return path;
        dirs += (dirs.empty() ? "" : ":") + d;
    }
    return std::unexpected(Error(ENOENT, fmt::format("plugin \"{}\" not found in {}", type, dirs)));
}

std::vector<std::string> plugin_binaries(const NetworkConfig& n) {
    std::vector<std::string> out;
    auto add = [&](const std::string& t) {
        if (!t.empty() && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    };
    for (const auto& p : n.plugins) {
        add(p.value("type", ""));
        if (auto ipam = p.find("ipam"); ipam != p.end() && ipam->is_object()) add(ipam->value("type", ""));
    }
    return out;
}

}  // namespace berth::cni
