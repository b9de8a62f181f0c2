// Running one CNI plugin binary: a fresh environment (the CNI_* parameters and PATH, nothing else of berthd's),
// the request on stdin, stdout and stderr collected, a deadline after which the plugin is killed.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/capture.hpp"
#include "common/error.hpp"

namespace berth::cni {

struct ExecRequest {
    std::string binary;  // absolute path
    std::vector<std::pair<std::string, std::string>> env;
    std::string stdin_data;
    std::chrono::milliseconds timeout{60000};  // the plugin is killed after it; <= 0: no deadline
};

// exit_code (128+signal when killed), timed_out, out and err (each capped at 1 MiB).
using ExecOutput = CaptureResult;

// Through common/capture (posix_spawn: nothing of the caller runs in the child). The child gets the default signal
// mask and dispositions and no fd but 0-2. A binary that cannot be executed is an error here ("start plugin
// <binary>: ...") or exit status 127.
[[nodiscard]] Result<ExecOutput> exec_plugin(const ExecRequest& r);

}  // namespace berth::cni
