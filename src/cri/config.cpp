// berth.toml: parsed with toml++ (header-only here; exceptions off, so a parse error is a value), walked table by
// table. Every key is looked up in the table of keys its table may hold: a key nobody reads is an error, so a typo
// never passes silently as "the default".
#include "cri/config.hpp"

#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "common/fs.hpp"
#include "cri/metrics.hpp"

namespace berth::cri {
namespace {

const std::set<std::string, std::less<>> kLogLevels = {"error", "warn", "info", "debug"};

std::string_view type_name(toml::node_type t) {
    switch (t) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
        case toml::node_type::time:
        case toml::node_type::date_time:
            return "a date/time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

// A TOML key as written in a dotted path: bare when it can be, quoted otherwise ("registries."host:5000"").
std::string key_text(std::string_view key) {
    bool bare = !key.empty();
    for (char c : key)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) bare = false;
    return bare ? std::string(key) : "\"" + std::string(key) + "\"";
}

std::string join_key(std::string_view prefix, std::string_view key) {
    return prefix.empty() ? key_text(key) : std::string(prefix) + "." + key_text(key);
}

// Reads one table's keys, each by its handler; the file name and the table's dotted path prefix every error.
class TableReader {
public:
    TableReader(const std::string& file, std::string prefix) : file_(file), prefix_(std::move(prefix)) {}

    using Handler = std::function<Result<void>(const toml::node&, const std::string& key)>;

    Result<void> read(const toml::table& table, const std::map<std::string, Handler, std::less<>>& handlers) const {
        for (const auto& [k, node] : table) {
            std::string key = join_key(prefix_, k.str());
            auto it = handlers.find(k.str());
            if (it == handlers.end()) return fail("{}: {}: unknown key", file_, key);
            BERTH_TRY(it->second(node, key));
        }
        return {};
    }

    Result<std::string> string(const toml::node& n, const std::string& key) const {
        if (const auto* s = n.as_string()) return s->get();
        return fail("{}: {}: expected a string, got {}", file_, key, type_name(n.type()));
    }
    Result<bool> boolean(const toml::node& n, const std::string& key) const {
        if (const auto* b = n.as_boolean()) return b->get();
        return fail("{}: {}: expected a boolean, got {}", file_, key, type_name(n.type()));
    }
    Result<const toml::table*> table(const toml::node& n, const std::string& key) const {
        if (const auto* t = n.as_table()) return t;
        return fail("{}: {}: expected a table, got {}", file_, key, type_name(n.type()));
    }
    Result<std::vector<std::string>> strings(const toml::node& n, const std::string& key) const {
        const auto* arr = n.as_array();
        if (!arr) return fail("{}: {}: expected an array of strings, got {}", file_, key, type_name(n.type()));
        std::vector<std::string> out;
        for (size_t i = 0; i < arr->size(); ++i) {
            const auto* s = (*arr)[i].as_string();
            if (!s) return fail("{}: {}[{}]: expected a string, got {}", file_, key, i, type_name((*arr)[i].type()));
            out.push_back(s->get());
        }
        return out;
    }
    // An absolute path; `allow_empty` for keys whose empty value means "the default behaviour".
    Result<std::string> path(const toml::node& n, const std::string& key, bool allow_empty = false) const {
        BERTH_ASSIGN(std::string p, string(n, key));
        if (p.empty() && allow_empty) return p;
        if (p.empty() || p.front() != '/') return fail("{}: {}: \"{}\" is not an absolute path", file_, key, p);
        return p;
    }
    Result<std::vector<std::string>> paths(const toml::node& n, const std::string& key) const {
        BERTH_ASSIGN(auto list, strings(n, key));
        for (size_t i = 0; i < list.size(); ++i)
            if (list[i].empty() || list[i].front() != '/')
                return fail("{}: {}[{}]: \"{}\" is not an absolute path", file_, key, i, list[i]);
        return list;
    }

    const std::string& file() const { return file_; }

private:
    const std::string& file_;
    std::string prefix_;
};

Result<void> read_runtime(const std::string& file, const std::string& name, const toml::table& t, RuntimeHandler& h) {
    TableReader r(file, join_key("runtimes", name));
    return r.read(t, {
                         {"path",
                          [&](const toml::node& n, const std::string& k) -> Result<void> {
                              BERTH_ASSIGN(h.path, r.path(n, k, true));
                              return {};
                          }},
                         {"root",
                          [&](const toml::node& n, const std::string& k) -> Result<void> {
                              BERTH_ASSIGN(h.root, r.path(n, k, true));
                              return {};
                          }},
                         {"runtime_args",
                          [&](const toml::node& n, const std::string& k) -> Result<void> {
                              BERTH_ASSIGN(h.runtime_args, r.strings(n, k));
                              for (size_t i = 0; i < h.runtime_args.size(); ++i)
                                  if (h.runtime_args[i].empty())
                                      return fail("{}: {}[{}]: an empty argument", file, k, i);
                              return {};
                          }},
                         {"sandboxed",
                          [&](const toml::node& n, const std::string& k) -> Result<void> {
                              BERTH_ASSIGN(h.sandboxed, r.boolean(n, k));
                              return {};
                          }},
                     });
}

Result<void> read_registry(const std::string& file, const std::string& host, const toml::table& t,
                           image::RegistryHost& h) {
    const std::string prefix = join_key("registries", host);
    TableReader r(file, prefix);
    auto str = [&](std::string& out) {
        return [&r, &out](const toml::node& n, const std::string& k) -> Result<void> {
            BERTH_ASSIGN(out, r.string(n, k));
            return {};
        };
    };
    auto file_key = [&](std::string& out) {
        return [&r, &out](const toml::node& n, const std::string& k) -> Result<void> {
            BERTH_ASSIGN(out, r.path(n, k, true));
            return {};
        };
    };
    BERTH_TRY(r.read(t, {
                            {"mirrors",
                             [&](const toml::node& n, const std::string& k) -> Result<void> {
                                 BERTH_ASSIGN(h.mirrors, r.strings(n, k));
                                 for (size_t i = 0; i < h.mirrors.size(); ++i) {
                                     const std::string& m = h.mirrors[i];
                                     // "host:port" alone means https (docs/registries.md); any other scheme is a
                                     // mistake.
                                     size_t scheme = m.find("://");
                                     bool bad_scheme = scheme != std::string::npos && !m.starts_with("http://") &&
                                                       !m.starts_with("https://");
                                     if (m.empty() || bad_scheme || m.starts_with("://"))
                                         return fail(
                                             "{}: {}[{}]: \"{}\" is not an http:// or https:// URL (or host:port)",
                                             file, k, i, m);
                                 }
                                 return {};
                             }},
                            {"insecure",
                             [&](const toml::node& n, const std::string& k) -> Result<void> {
                                 BERTH_ASSIGN(h.insecure, r.boolean(n, k));
                                 return {};
                             }},
                            {"ca_file", file_key(h.ca_file)},
                            {"cert_file", file_key(h.cert_file)},
                            {"key_file", file_key(h.key_file)},
                            {"username", str(h.credentials.username)},
                            {"password", str(h.credentials.password)},
                            {"auth", str(h.credentials.auth)},
                            {"identity_token", str(h.credentials.identity_token)},
                            {"registry_token", str(h.credentials.registry_token)},
                        }));
    // key_file may stay empty when cert_file holds the key too.
    if (!h.key_file.empty() && h.cert_file.empty())
        return fail("{}: {}: key_file without cert_file (a client key needs its certificate)", file, prefix);
    const auto& c = h.credentials;
    if (!c.password.empty() && c.username.empty()) return fail("{}: {}.password: set without a username", file, prefix);
    if (!c.auth.empty() && !c.username.empty())
        return fail("{}: {}: auth and username/password are two forms of the same credentials: set one", file, prefix);
    return {};
}

// "host:port" with a numeric port ("127.0.0.1:0", "[::1]:10010", "0.0.0.0:10010").
bool valid_host_port(std::string_view s) {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view host = s.substr(0, colon), port = s.substr(colon + 1);
    if (host.front() == '[' && host.back() != ']') return false;
    if (host.front() != '[' && host.find(':') != std::string_view::npos) return false;  // bare IPv6 needs []
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    return ec == std::errc() && end == port.data() + port.size() && !port.empty() && value <= 65535;
}

}  // namespace

Result<void> validate_config(const DaemonConfig& c, const std::string& source) {
    auto absolute = [&](std::string_view key, const std::string& p) -> Result<void> {
        if (p.empty() || p.front() != '/') return fail("{}: {}: \"{}\" is not an absolute path", source, key, p);
        return {};
    };
    BERTH_TRY(absolute("socket", c.socket_path));
    BERTH_TRY(absolute("root", c.root_dir));
    BERTH_TRY(absolute("state_dir", c.state_dir));
    if (!c.monitor_path.empty()) BERTH_TRY(absolute("monitor_path", c.monitor_path));
    if (!kLogLevels.contains(c.log_level))
        return fail("{}: log_level: \"{}\" is not one of error, warn, info, debug", source, c.log_level);
    if (c.cgroup_driver == "systemd")
        return fail("{}: cgroup_driver: \"systemd\" is not supported (yet): use \"cgroupfs\"", source);
    if (c.cgroup_driver != "cgroupfs")
        return fail("{}: cgroup_driver: \"{}\" is not one of cgroupfs, systemd", source, c.cgroup_driver);
    if (c.cgroup_parent.empty() || c.cgroup_parent.front() != '/' || clean_path(c.cgroup_parent) == "/")
        return fail("{}: cgroup_parent: \"{}\" must be an absolute cgroup path other than the root", source,
                    c.cgroup_parent);
    if (!c.handlers.contains(c.default_handler))
        return fail("{}: default_runtime: \"{}\" names no runtime (no [runtimes.{}] table)", source, c.default_handler,
                    key_text(c.default_handler));
    if (auto it = c.handlers.find("berth"); it != c.handlers.end() && !it->second.path.empty())
        return fail(
            "{}: runtimes.berth.path: \"berth\" is the built-in runtime; give an external binary a handler "
            "of its own name",
            source);
    if (c.log_format != "text" && c.log_format != "json")
        return fail("{}: log_format: \"{}\" is not one of text, json", source, c.log_format);
    if (!c.metrics_address.empty())
        if (auto r = check_metrics_address(c.metrics_address); !r) return fail("{}: {}", source, r.error().message());
    for (const auto& [name, h] : c.handlers)
        if (h.path.empty() && !h.runtime_args.empty())
            return fail("{}: runtimes.{}.runtime_args: only an external runtime (path) takes runtime arguments", source,
                        key_text(name));
    if (!c.streaming_tls_cert.empty()) BERTH_TRY(absolute("streaming_tls_cert", c.streaming_tls_cert));
    if (!c.streaming_tls_key.empty()) BERTH_TRY(absolute("streaming_tls_key", c.streaming_tls_key));
    if (c.streaming_tls_cert.empty() != c.streaming_tls_key.empty())
        return fail("{}: streaming_tls_cert and streaming_tls_key: set both (https) or neither (http)", source);
    if (c.streaming_token_lifetime <= 0 || c.streaming_token_lifetime > 86400)
        return fail("{}: streaming_token_lifetime: {} is not a number of seconds from 1 to 86400", source,
                    c.streaming_token_lifetime);
    if (c.streaming_idle_timeout < 0 || c.streaming_idle_timeout > 31536000)
        return fail("{}: streaming_idle_timeout: {} is not a number of seconds from 0 (never) to 31536000", source,
                    c.streaming_idle_timeout);
    if (!valid_host_port(c.streaming_address))
        return fail("{}: streaming_address: \"{}\" is not host:port (a numeric port, IPv6 hosts in [])", source,
                    c.streaming_address);
    return {};
}

Result<DaemonConfig> load_config(const std::string& path, bool must_exist) {
    DaemonConfig c;
    c.handlers["berth"] = RuntimeHandler{.name = "berth"};

    Result<std::string> text = read_file(path);
    if (!text) {
        if (text.error().code() == ENOENT && !must_exist) return c;
        return std::unexpected(text.error().wrap("berthd configuration"));
    }

    toml::parse_result parsed = toml::parse(*text, std::string_view(path));
    if (!parsed) {
        const auto& err = parsed.error();
        return fail("{}:{}:{}: {}", path, err.source().begin.line, err.source().begin.column, err.description());
    }
    const toml::table& root = parsed.table();

    TableReader r(path, "");
    auto str = [&](std::string& out) {
        return [&r, &out](const toml::node& n, const std::string& k) -> Result<void> {
            BERTH_ASSIGN(out, r.string(n, k));
            return {};
        };
    };
    auto abs_path = [&](std::string& out, bool allow_empty) {
        return [&r, &out, allow_empty](const toml::node& n, const std::string& k) -> Result<void> {
            BERTH_ASSIGN(out, r.path(n, k, allow_empty));
            return {};
        };
    };
    auto seconds = [&](int64_t& out) {
        return [&out, &path](const toml::node& n, const std::string& k) -> Result<void> {
            const auto* i = n.as_integer();
            if (!i) return fail("{}: {}: expected an integer (seconds), got {}", path, k, type_name(n.type()));
            out = i->get();
            return {};
        };
    };
    BERTH_TRY(r.read(
        root, {
                  {"socket", abs_path(c.socket_path, false)},
                  {"root", abs_path(c.root_dir, false)},
                  {"state_dir", abs_path(c.state_dir, false)},
                  {"monitor_path", abs_path(c.monitor_path, true)},
                  {"log_level", str(c.log_level)},
                  {"log_format", str(c.log_format)},
                  {"metrics_address", str(c.metrics_address)},
                  {"default_runtime", str(c.default_handler)},
                  {"cgroup_driver", str(c.cgroup_driver)},
                  {"cgroup_parent", str(c.cgroup_parent)},
                  {"streaming_address", str(c.streaming_address)},
                  {"streaming_tls_cert", abs_path(c.streaming_tls_cert, true)},
                  {"streaming_tls_key", abs_path(c.streaming_tls_key, true)},
                  {"streaming_token_lifetime", seconds(c.streaming_token_lifetime)},
                  {"streaming_idle_timeout", seconds(c.streaming_idle_timeout)},
                  {"pod_infra_command", str(c.pod_infra_command)},
                  {"oom_clamp",
                   [&](const toml::node& n, const std::string& k) -> Result<void> {
                       BERTH_ASSIGN(std::string v, r.string(n, k));
                       if (v == "auto")
                           c.oom_clamp = OomClamp::automatic;
                       else if (v == "always")
                           c.oom_clamp = OomClamp::always;
                       else if (v == "never")
                           c.oom_clamp = OomClamp::never;
                       else
                           return fail("{}: {}: \"{}\" is not one of auto, always, never", path, k, v);
                       return {};
                   }},
                  {"cni",
                   [&](const toml::node& n, const std::string& k) -> Result<void> {
                       BERTH_ASSIGN(const toml::table* t, r.table(n, k));
                       TableReader cni(path, "cni");
                       return cni.read(*t, {
                                               {"bin_dirs",
                                                [&](const toml::node& v, const std::string& key) -> Result<void> {
                                                    BERTH_ASSIGN(c.cni_bin_dirs, cni.paths(v, key));
                                                    return {};
                                                }},
                                               {"conf_dir",
                                                [&](const toml::node& v, const std::string& key) -> Result<void> {
                                                    BERTH_ASSIGN(c.cni_conf_dir, cni.path(v, key));
                                                    return {};
                                                }},
                                               {"enabled",
                                                [&](const toml::node& v, const std::string& key) -> Result<void> {
                                                    BERTH_ASSIGN(c.cni_enabled, cni.boolean(v, key));
                                                    return {};
                                                }},
                                               {"plugin_timeout",
                                                [&](const toml::node& v, const std::string& key) -> Result<void> {
                                                    const auto* i = v.as_integer();
                                                    if (!i || i->get() < 1 || i->get() > 3600)
                                                        return fail("{}: {}: expected seconds, 1 to 3600", path, key);
                                                    c.cni_plugin_timeout_s = static_cast<int>(i->get());
                                                    return {};
                                                }},
                                           });
                   }},
                  {"runtimes",
                   [&](const toml::node& n, const std::string& k) -> Result<void> {
                       BERTH_ASSIGN(const toml::table* t, r.table(n, k));
                       for (const auto& [name, node] : *t) {
                           std::string key = join_key("runtimes", name.str());
                           BERTH_ASSIGN(const toml::table* ht, r.table(node, key));
                           if (name.str().empty()) return fail("{}: {}: a runtime needs a name", path, key);
                           RuntimeHandler h{.name = std::string(name.str())};
                           BERTH_TRY(read_runtime(path, h.name, *ht, h));
                           c.handlers[h.name] = std::move(h);
                       }
                       return {};
                   }},
                  {"registries",
                   [&](const toml::node& n, const std::string& k) -> Result<void> {
                       BERTH_ASSIGN(const toml::table* t, r.table(n, k));
                       for (const auto& [host, node] : *t) {
                           std::string key = join_key("registries", host.str());
                           BERTH_ASSIGN(const toml::table* ht, r.table(node, key));
                           if (host.str().empty() || host.str().find('/') != std::string_view::npos)
                               return fail("{}: {}: not a registry host (\"host\" or \"host:port\")", path, key);
                           // Pulls look hosts up by the normalized reference's domain, which never says
                           // index.docker.io.
                           if (host.str() == "index.docker.io" || host.str() == "registry-1.docker.io")
                               return fail(
                                   "{}: {}: references name Docker Hub \"docker.io\": use [registries.\"docker.io\"]",
                                   path, key);
                           image::RegistryHost h{.host = std::string(host.str())};
                           BERTH_TRY(read_registry(path, h.host, *ht, h));
                           c.registries.hosts.push_back(std::move(h));
                       }
                       return {};
                   }},
              }));
    BERTH_TRY(validate_config(c, path));
    return c;
}

std::string config_json(const DaemonConfig& c) {
    nlohmann::json runtimes = nlohmann::json::object();
    for (const auto& [name, h] : c.handlers)
        runtimes[name] = {
            {"path", h.path}, {"root", h.root}, {"runtime_args", h.runtime_args}, {"sandboxed", h.sandboxed}};
    nlohmann::json registries = nlohmann::json::object();
    for (const auto& h : c.registries.hosts)
        registries[h.host] = {{"mirrors", h.mirrors},
                              {"insecure", h.insecure},
                              {"ca_file", h.ca_file},
                              {"cert_file", h.cert_file},
                              {"key_file", h.key_file},
                              {"username", h.credentials.username},
                              {"credentials", !h.credentials.empty()}};
    std::string_view clamp = c.oom_clamp == OomClamp::always  ? "always"
                             : c.oom_clamp == OomClamp::never ? "never"
                                                              : "auto";
    nlohmann::json j = {
        {"socket", c.socket_path},
        {"root", c.root_dir},
        {"state_dir", c.state_dir},
        {"log_level", c.log_level},
        {"log_format", c.log_format},
        {"metrics_address", c.metrics_address},
        {"monitor_path", c.monitor_path},
        {"default_runtime", c.default_handler},
        {"cgroup_driver", c.cgroup_driver},
        {"cgroup_parent", c.cgroup_parent},
        {"oom_clamp", clamp},
        {"streaming_address", c.streaming_address},
        {"streaming_tls_cert", c.streaming_tls_cert},
        {"streaming_tls_key", c.streaming_tls_key},
        {"streaming_token_lifetime", c.streaming_token_lifetime},
        {"streaming_idle_timeout", c.streaming_idle_timeout},
        {"pod_infra_command", c.pod_infra_command},
        {"cni",
         {{"bin_dirs", c.cni_bin_dirs},
          {"conf_dir", c.cni_conf_dir},
          {"enabled", c.cni_enabled},
          {"plugin_timeout", c.cni_plugin_timeout_s}}},
        {"runtimes", std::move(runtimes)},
        {"registries", std::move(registries)},
    };
    return j.dump();
}

}  // namespace berth::cri
