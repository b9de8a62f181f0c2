// berthctl subcommands: one file per group, all with the same signature.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client.hpp"
#include "flags.hpp"
#include "output.hpp"

namespace berth::ctl {

struct GlobalOptions {
    std::string socket_path;
    OutputFormat output = OutputFormat::table;
};

// Runs with the arguments after the command name; returns the exit code. Errors are printed by the command.
using CommandFn = int (*)(const GlobalOptions& opts, const std::vector<std::string>& args);

int cmd_version(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_info(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_pods.cpp
int cmd_pods(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_runp(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_stopp(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_rmp(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_inspectp(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_containers.cpp
int cmd_ps(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_create(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_start(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_stop(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_rm(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_inspect(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_stats(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_logs.cpp, cmd_exec.cpp, cmd_run.cpp
int cmd_logs(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_exec(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_run(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_stream.cpp: exec -i/-t (Exec rpc + streaming), attach, port-forward
int exec_streaming(const GlobalOptions& opts, const ParsedArgs& p, const std::vector<std::string>& cmd);
int cmd_attach(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_port_forward(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_images.cpp (CRI ImageService; `berthctl image ...` works on the store directly)
int cmd_images(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_pull(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_rmi(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_inspecti(const GlobalOptions& opts, const std::vector<std::string>& args);
// image SUBCOMMAND [--root DIR] [-o json] ...: works on a store root directly (cmd_image.cpp).
int cmd_image(const GlobalOptions& opts, const std::vector<std::string>& args);

// Prints "berthctl: <message>" to stderr and returns 1.
int report(const Error& e);

// Follows the CRI log of `container_id` (from its ContainerStatus.log_path) to stdout/stderr until the container
// is no longer running (`follow`) or the end of the file. `tail` < 0: every line. Used by logs and run.
struct LogOptions {
    bool follow = false;
    long long tail = -1;
    int64_t since_ns = 0;
    bool timestamps = false;
    const std::atomic<bool>* interrupted = nullptr;  // set from a signal handler: stop following
};
[[nodiscard]] Result<void> print_container_logs(CriClient& client, const std::string& container_id,
                                                const LogOptions& o);

}  // namespace berth::ctl
