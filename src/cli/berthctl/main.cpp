// berthctl: the CRI client for people. Parses global flags and dispatches; the commands live in cmd_*.cpp.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "command.hpp"

namespace berth::ctl {
namespace {

constexpr const char* kDefaultSocket = "/run/berth/berth.sock";

struct CommandEntry {
    std::string_view name;
    CommandFn fn;
    std::string_view help;
};

constexpr CommandEntry kCommands[] = {
    {"version", cmd_version, "runtime name and versions (CRI Version)"},
    {"info", cmd_info, "runtime conditions and configuration (CRI Status, verbose)"},
    {"image", cmd_image, "images of a store root directly, without berthd (berthctl image --help)"},
    // pods, containers, logs, exec, stats, CRI images, run (docs/berthctl.md)
    {"pods", cmd_pods, "list pod sandboxes"},
    {"runp", cmd_runp, "run a pod sandbox from a PodSandboxConfig file (JSON or YAML)"},
    {"stopp", cmd_stopp, "stop pod sandboxes"},
    {"rmp", cmd_rmp, "remove pod sandboxes"},
    {"inspectp", cmd_inspectp, "status of pod sandboxes"},
    {"ps", cmd_ps, "list containers"},
    {"create", cmd_create, "create a container: POD_ID CONTAINER_CONFIG POD_CONFIG"},
    {"start", cmd_start, "start created containers"},
    {"stop", cmd_stop, "stop running containers"},
    {"rm", cmd_rm, "remove containers"},
    {"inspect", cmd_inspect, "status of containers"},
    {"logs", cmd_logs, "a container's log"},
    {"exec", cmd_exec, "run a command in a running container (ExecSync; -i/-t/--transport: streaming Exec)"},
    {"attach", cmd_attach, "attach to a running container's stdio (-i, -t, --transport spdy|websocket)"},
    {"port-forward", cmd_port_forward, "forward local ports to a pod: POD_ID LOCAL:REMOTE [...]"},
    {"stats", cmd_stats, "container resource usage"},
    {"images", cmd_images, "list images (CRI ListImages)"},
    {"pull", cmd_pull, "pull an image (CRI PullImage)"},
    {"rmi", cmd_rmi, "remove images (CRI RemoveImage)"},
    {"inspecti", cmd_inspecti, "status of images (CRI ImageStatus, verbose)"},
    {"run", cmd_run, "run IMAGE [-- CMD ARGS]: a pod and a container in one step"},
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: berthctl [--socket PATH] [-o table|json|yaml] COMMAND [ARGS]\n"
                 "\n"
                 "Talks to berthd over the CRI socket.\n"
                 "\n"
                 "commands:\n");
    for (const auto& c : kCommands)
        std::fprintf(out, "  %-10s %.*s\n", std::string(c.name).c_str(), static_cast<int>(c.help.size()),
                     c.help.data());
    std::fprintf(out,
                 "\n"
                 "  --socket PATH     berthd's socket (default: $BERTH_SOCKET, else %s)\n"
                 "  -o, --output FMT  table (default), json or yaml\n",
                 kDefaultSocket);
}

}  // namespace

int report(const Error& e) {
    std::fprintf(stderr, "berthctl: %s\n", e.message().c_str());
    return 1;
}

int run(int argc, char** argv) {
    GlobalOptions opts;
    const char* env_socket = std::getenv("BERTH_SOCKET");
    opts.socket_path = env_socket && *env_socket ? env_socket : kDefaultSocket;

    // The global flags may come before or after the command (as with crictl); every other argument, "--" and all
    // after it included, goes to the command. `image` parses everything after it itself (it knows -o/--output too).
    std::vector<std::string> positional;
    bool flags_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (positional.empty() && arg == "image") {
            return cmd_image(opts, std::vector<std::string>(argv + i + 1, argv + argc));
        }
        if (flags_done || !arg.starts_with("-") || arg == "-") {
            positional.emplace_back(arg);
            continue;
        }
        if (arg == "--") {
            flags_done = true;
            positional.emplace_back(arg);
            continue;
        }
        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        }
        std::string_view value;
        if (arg == "--socket" || arg == "-o" || arg == "--output") {
            if (i + 1 >= argc) return report(Error(0, fmt::format("{} needs a value", arg)));
            value = argv[++i];
        } else if (arg.starts_with("--socket=") || arg.starts_with("--output=")) {
            value = arg.substr(arg.find('=') + 1);
            arg = arg.substr(0, arg.find('='));
        } else if (!positional.empty()) {
            positional.emplace_back(arg);  // the command's own flag
            continue;
        } else {
            std::fprintf(stderr, "berthctl: unknown flag %.*s\n", static_cast<int>(arg.size()), arg.data());
            usage(stderr);
            return 2;
        }
        if (arg == "--socket") {
            opts.socket_path = std::string(value);
        } else {
            auto format = parse_output_format(value);
            if (!format) return report(format.error());
            opts.output = *format;
        }
    }
    if (positional.empty()) {
        usage(stderr);
        return 2;
    }
    const std::string name = positional.front();
    std::vector<std::string> args(positional.begin() + 1, positional.end());
    for (const auto& c : kCommands)
        if (c.name == name) return c.fn(opts, args);
    std::fprintf(stderr, "berthctl: unknown command %s\n", name.c_str());
    usage(stderr);
    return 2;
}

}  // namespace berth::ctl

int main(int argc, char** argv) {
    return berth::ctl::run(argc, argv);
}
