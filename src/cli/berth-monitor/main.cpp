// berth-monitor: the per-container monitor berthd starts (src/monitor). Argument parsing only.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "monitor/exec_reaper.hpp"
#include "monitor/monitor.hpp"

namespace {

void usage() {
    std::fprintf(stderr,
                 "usage: berth-monitor --id ID --bundle DIR --dir MONITOR_DIR --log-path FILE [--root DIR]\n"
                 "                     [--runtime PATH [--runtime-arg ARG]...] [--sync-fd N] [--start]\n"
                 "                     [--stdin [--stdin-once]]\n"
                 "                     [--terminal]\n"
                 "  --id         container id\n"
                 "  --bundle     OCI bundle (config.json + rootfs)\n"
                 "  --dir        the monitor's directory (made by the monitor; must not exist): exit, ctl, ...\n"
                 "  --log-path   the CRI log file of the container\n"
                 "  --root       state root of the runtime (default /run/berth)\n"
                 "  --runtime    external OCI runtime binary (runc, crun, runsc); default: libberth in process\n"
                 "  --runtime-arg  a global option of the external runtime, before each subcommand (repeatable)\n"
                 "  --sync-fd    fd (> 2) to report {\"pid\",\"container_pid\"} or {\"error\"} on, one JSON line\n"
                 "  --start      start the container once created (else: \"start\" on the ctl socket)\n"
                 "  --stdin      give the container a stdin pipe kept open (else /dev/null)\n"
                 "  --stdin-once close the container's stdin when the first attach client ends its input\n"
                 "  --terminal   process.terminal is true: take the pty master (console socket), log it as stdout\n"
                 "berth-monitor --pause: hold a pod's shared PID namespace as its PID 1 (started by berthd)\n"
                 "berth-monitor --reap-exec PID_FILE -- RUNTIME... exec --detach --pid-file PID_FILE ...:\n"
                 "  wait for a detached exec's process as a foreground exec would, exit with its status\n");
}

std::string absolute(const std::string& p) {
    return std::filesystem::absolute(p).lexically_normal().string();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "--pause") == 0) {
        // The holder of a pod's shared PID namespace (berthd starts it as the namespace's PID 1): nothing to do but
        // exist; SIGCHLD ignored so the kernel reaps the orphans it inherits.
        std::signal(SIGCHLD, SIG_IGN);
        for (;;) ::pause();
    }
    if (argc >= 4 && std::strcmp(argv[1], "--reap-exec") == 0 && std::strcmp(argv[3], "--") == 0)
        return berth::monitor::run_exec_reaper(argv[2], std::vector<std::string>(argv + 4, argv + argc));
    berth::monitor::MonitorOptions o;
    o.root = "/run/berth";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "berth-monitor: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            out = argv[++i];
        };
        std::string v;
        if (a == "--id") {
            value(o.id);
        } else if (a == "--bundle") {
            value(v), o.bundle = absolute(v);
        } else if (a == "--dir") {
            value(v), o.dir = absolute(v);
        } else if (a == "--log-path") {
            value(v), o.log_path = absolute(v);
        } else if (a == "--root") {
            value(v), o.root = absolute(v);
        } else if (a == "--runtime") {
            value(v), o.runtime = absolute(v);
        } else if (a == "--runtime-arg") {
            value(v), o.runtime_args.push_back(v);
        } else if (a == "--sync-fd") {
            value(v);
            char* end = nullptr;
            long fd = std::strtol(v.c_str(), &end, 10);
            if (*end != '\0' || fd < 0 || fd > 1 << 20) {
                std::fprintf(stderr, "berth-monitor: --sync-fd %s is not a file descriptor number\n", v.c_str());
                return 2;
            }
            o.sync_fd = static_cast<int>(fd);
        } else if (a == "--start") {
            o.start = true;
        } else if (a == "--terminal") {
            o.terminal = true;
        } else if (a == "--stdin") {
            o.stdin_pipe = true;
        } else if (a == "--stdin-once") {
            o.stdin_once = true;
        } else if (a == "--help" || a == "-h") {
            usage();
            return 0;
        } else {
            std::fprintf(stderr, "berth-monitor: unknown argument %s\n", a.c_str());
            usage();
            return 2;
        }
    }
    if (!o.runtime_args.empty() && o.runtime.empty()) {
        std::fprintf(stderr, "berth-monitor: --runtime-arg needs --runtime\n");
        return 2;
    }
    if (o.id.empty() || o.bundle.empty() || o.dir.empty() || o.log_path.empty()) {
        std::fprintf(stderr, "berth-monitor: --id, --bundle, --dir and --log-path are required\n");
        usage();
        return 2;
    }
    return berth::monitor::spawn_monitor(o);
}
