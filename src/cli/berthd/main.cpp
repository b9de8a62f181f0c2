// berthd: the CRI daemon. Parses flags and hands over to cri::run_daemon; no logic here.
#include <cstdio>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "cri/daemon.hpp"

namespace {

constexpr const char* kDefaultSocket = "/run/berth/berth.sock";

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: berthd [--socket PATH] [--root DIR] [--state-dir DIR] [--runtime NAME=PATH[:ROOT]]...\n"
                 "              [--cgroup-parent PATH] [--monitor PATH] [--debug]\n"
                 "\n"
                 "Serves the Kubernetes CRI (runtime.v1 RuntimeService and ImageService) on a unix socket.\n"
                 "\n"
                 "  --socket PATH  socket to serve on (default %s), created with mode 0660\n"
                 "  --root DIR     images and container records (default /var/lib/berth)\n"
                 "  --state-dir DIR  runtime state: monitors, bundles, pinned namespaces (default /run/berth)\n"
                 "  --runtime NAME=PATH[:ROOT]  a RuntimeClass handler run through an OCI runtime binary\n"
                 "  --cgroup-parent PATH  parent of pod cgroups when kubelet names none (default /berth)\n"
                 "  --monitor PATH berth-monitor binary (default: beside berthd)\n"
                 "  --debug        debug logging\n"
                 "  --version      print the version and exit\n"
                 "  --help         this text\n",
                 kDefaultSocket);
}

}  // namespace

int main(int argc, char** argv) {
    berth::cri::DaemonConfig config{.socket_path = kDefaultSocket};
    bool debug = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--socket") {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "berthd: --socket needs a path\n");
                return 2;
            }
            config.socket_path = argv[++i];
        } else if (arg.starts_with("--socket=")) {
            config.socket_path = std::string(arg.substr(9));
        } else if (arg == "--root" || arg == "--state-dir" || arg == "--runtime" || arg == "--cgroup-parent" ||
                   arg == "--monitor") {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "berthd: %.*s needs a value\n", static_cast<int>(arg.size()), arg.data());
                return 2;
            }
            std::string v = argv[++i];
            if (arg == "--root") {
                config.root_dir = v;
            } else if (arg == "--state-dir") {
                config.state_dir = v;
            } else if (arg == "--cgroup-parent") {
                config.cgroup_parent = v;
            } else if (arg == "--monitor") {
                config.monitor_path = v;
            } else {
                auto eq = v.find('=');
                if (eq == std::string::npos || eq == 0 || eq + 1 >= v.size() || v[eq + 1] != '/') {
                    std::fprintf(stderr, "berthd: --runtime %s: want NAME=/absolute/path[:ROOT]\n", v.c_str());
                    return 2;
                }
                berth::cri::RuntimeHandler h;
                h.name = v.substr(0, eq);
                std::string rest = v.substr(eq + 1);
                auto colon = rest.find(':');
                h.path = rest.substr(0, colon);
                if (colon != std::string::npos) h.root = rest.substr(colon + 1);
                config.handlers[h.name] = h;
            }
        } else if (arg == "--debug") {
            debug = true;
        } else if (arg == "--version") {
            std::printf("berthd version %s\n", BERTH_VERSION);
            return 0;
        } else if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "berthd: unknown argument %.*s\n", static_cast<int>(arg.size()), arg.data());
            usage(stderr);
            return 2;
        }
    }
    berth::log::init("", berth::log::Format::text, debug);
    if (auto r = berth::cri::run_daemon(config); !r) {
        berth::log::error("{}", r.error().message());
        return 1;
    }
    return 0;
}
