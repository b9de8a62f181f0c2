// berthd: the CRI daemon. Parses flags, loads the configuration and hands over to cri::run_daemon; no logic here.
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "cri/config.hpp"
#include "cri/daemon.hpp"

namespace {

constexpr const char* kDefaultConfig = "/etc/berth/berth.toml";

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: berthd [--config PATH] [--socket PATH] [--root DIR] [--state-dir DIR] [--monitor PATH]\n"
                 "              [--log-level LEVEL] [--log-format text|json] [--cgroup-parent PATH]\n"
                 "              [--metrics-address HOST:PORT] [--runtime NAME=PATH[:ROOT]]... [--debug]\n"
                 "\n"
                 "Serves the Kubernetes CRI (runtime.v1 RuntimeService and ImageService) on a unix socket.\n"
                 "Flags override the configuration file (see docs/configuration.md). SIGUSR1 toggles debug logging;\n"
                 "SIGHUP re-reads log_level and log_format from the file.\n"
                 "\n"
                 "  --config PATH      configuration file (default %s; a missing default file means the defaults)\n"
                 "  --socket PATH      socket to serve on (default /run/berth/berth.sock), created with mode 0660\n"
                 "  --root DIR         persistent data: images, container records (default /var/lib/berth)\n"
                 "  --state-dir DIR    runtime state (default /run/berth)\n"
                 "  --monitor PATH     the berth-monitor binary (default: beside berthd)\n"
                 "  --log-level LEVEL  error, warn, info or debug (default info)\n"
                 "  --log-format FORMAT  text or json (default text)\n"
                 "  --metrics-address HOST:PORT  serve Prometheus metrics on http://HOST:PORT/metrics (default: off)\n"
                 "  --cgroup-parent PATH  parent of pod cgroups when kubelet names none (default /berth)\n"
                 "  --runtime NAME=PATH[:ROOT]  a RuntimeClass handler run through an OCI runtime binary (repeatable)\n"
                 "  --debug            the same as --log-level debug\n"
                 "  --version          print the version and exit\n"
                 "  --help             this text\n",
                 kDefaultConfig);
}

}  // namespace

int main(int argc, char** argv) {
    std::optional<std::string> config_path, socket, root, state_dir, monitor, log_level, cgroup_parent, log_format,
        metrics_address;
    std::vector<std::string> runtimes;  // --runtime NAME=PATH[:ROOT], repeatable
    struct Flag {
        std::string_view name;
        std::optional<std::string>* value;
    };
    const Flag flags[] = {{"--config", &config_path},         {"--socket", &socket},   {"--root", &root},
                          {"--state-dir", &state_dir},        {"--monitor", &monitor}, {"--log-level", &log_level},
                          {"--cgroup-parent", &cgroup_parent}, {"--log-format", &log_format},
                          {"--metrics-address", &metrics_address}};
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--debug") {
            log_level = "debug";
            continue;
        }
        if (arg == "--runtime") {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "berthd: --runtime needs NAME=PATH[:ROOT]\n");
                return 2;
            }
            runtimes.emplace_back(argv[++i]);
            continue;
        }
        if (arg == "--version") {
            std::printf("berthd version %s\n", BERTH_VERSION);
            return 0;
        }
        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        }
        bool known = false;
        for (const Flag& f : flags) {
            if (arg == f.name) {
                if (i + 1 >= argc) {
                    std::fprintf(stderr, "berthd: %.*s needs a value\n", static_cast<int>(f.name.size()),
                                 f.name.data());
                    return 2;
                }
                *f.value = argv[++i];
                known = true;
            } else if (arg.starts_with(f.name) && arg.size() > f.name.size() && arg[f.name.size()] == '=') {
                *f.value = std::string(arg.substr(f.name.size() + 1));
                known = true;
            }
            if (known) break;
        }
        if (!known) {
            std::fprintf(stderr, "berthd: unknown argument %.*s\n", static_cast<int>(arg.size()), arg.data());
            usage(stderr);
            return 2;
        }
    }

    // Logging to stderr from the start, so configuration errors are reported like every other error.
    berth::log::init("", berth::log::Format::text, log_level == "debug");
    auto config = berth::cri::load_config(config_path.value_or(kDefaultConfig), config_path.has_value());
    if (!config) {
        berth::log::error("{}", config.error().message());
        return 1;
    }
    // What the file said, for SIGHUP to tell which keys changed since.
    const berth::cri::ConfigFile file{.path = config_path.value_or(kDefaultConfig),
                                      .must_exist = config_path.has_value(),
                                      .loaded_json = berth::cri::config_json(*config)};
    if (socket) config->socket_path = *socket;
    if (root) config->root_dir = *root;
    if (state_dir) config->state_dir = *state_dir;
    if (monitor) config->monitor_path = *monitor;
    if (log_level) config->log_level = *log_level;
    if (cgroup_parent) config->cgroup_parent = *cgroup_parent;
    if (log_format) config->log_format = *log_format;
    if (metrics_address) config->metrics_address = *metrics_address;
    for (const std::string& v : runtimes) {
        auto eq = v.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 >= v.size() || v[eq + 1] != '/') {
            berth::log::error("--runtime {}: want NAME=/absolute/path[:ROOT]", v);
            return 2;
        }
        berth::cri::RuntimeHandler h;
        h.name = v.substr(0, eq);
        std::string rest = v.substr(eq + 1);
        auto colon = rest.find(':');
        h.path = rest.substr(0, colon);
        if (colon != std::string::npos) h.root = rest.substr(colon + 1);
        config->handlers[h.name] = h;
    }
    if (auto r = berth::cri::validate_config(*config, "berthd flags and " + config_path.value_or(kDefaultConfig)); !r) {
        berth::log::error("{}", r.error().message());
        return 1;
    }
    berth::log::set_min_level(berth::cri::parse_log_level(config->log_level));
    berth::log::set_format(berth::cri::parse_log_format(config->log_format));
    if (auto r = berth::cri::run_daemon(*config, file); !r) {
        berth::log::error("{}", r.error().message());
        return 1;
    }
    return 0;
}
