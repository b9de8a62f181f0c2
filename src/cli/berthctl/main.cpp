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

constexpr std::pair<std::string_view, CommandFn> kCommands[] = {
    {"version", cmd_version},
    {"info", cmd_info},
    {"image", cmd_image},
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: berthctl [--socket PATH] [-o json|table] COMMAND [ARGS]\n"
                 "\n"
                 "Talks to berthd over the CRI socket.\n"
                 "\n"
                 "commands:\n"
                 "  version   runtime name and versions (CRI Version)\n"
                 "  info      runtime conditions and configuration (CRI Status, verbose)\n"
                 "  image     pull, list, inspect, remove, import, export, prune, mount images of a store root\n"
                 "            directly, without berthd (berthctl image --help)\n"
                 "\n"
                 "  --socket PATH     berthd's socket (default: $BERTH_SOCKET, else %s)\n"
                 "  -o, --output FMT  table (default) or json\n",
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

    // Flags may come before or after the command; "--" ends them. `image` has flags of its own: everything after it
    // is its to parse (it knows -o/--output too).
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
    for (const auto& [cmd, fn] : kCommands)
        if (cmd == name) return fn(opts, args);
    std::fprintf(stderr, "berthctl: unknown command %s\n", name.c_str());
    usage(stderr);
    return 2;
}

}  // namespace berth::ctl

int main(int argc, char** argv) {
    return berth::ctl::run(argc, argv);
}
