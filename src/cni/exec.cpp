#include "cni/exec.hpp"

#include "common/capture.hpp"

namespace berth::cni {
namespace {

constexpr size_t kOutputCap = 1 << 20;

}  // namespace

Result<ExecOutput> exec_plugin(const ExecRequest& r) {
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : r.env) env_strings.push_back(k + "=" + v);
    // Spawned (no copy of berthd's page tables per plugin, as a fork of the daemon would make on every ADD/DEL):
    // 0-2 and nothing else, the default signal mask and dispositions. stdin is a socket: the config is sent with
    // MSG_NOSIGNAL, so a plugin that exits without reading it is EPIPE, never SIGPIPE, in whatever process
    // (berthd, a test, the benchmark) runs this.
    return capture({.spawn = {.path = r.binary, .env = &env_strings, .default_signals = true},
                    .label = "plugin " + r.binary,
                    .input = r.stdin_data,
                    .stdin_socket = true,
                    .timeout = r.timeout,
                    .cap = kOutputCap});
}

}  // namespace berth::cni
