// Runs a pull in the berth-pull helper process (protocol in store/pull_request.hpp) on behalf of PullImage.
#pragma once

#include <functional>
#include <string>

#include "common/error.hpp"
#include "store/pull_request.hpp"

namespace berth::cri {

// The berth-pull binary berthd uses: beside its own executable.
std::string default_pull_helper_path();

// Pulls `request` into the store at `root` through the helper at `helper_path` and returns the image id.
// `cancelled` is asked about once a second while the pull runs; when it answers true the helper is killed
// (SIGKILL: what it leaves behind is invisible and collected by the next prune) and the call fails with ECANCELED.
// Errors carry the helper's own error line (what failed, on which reference, URL or digest).
// `fetched_bytes`, when given, receives the compressed layer bytes the helper reports in its result line (also of a
// pull that failed midway; layers already in the store count nothing; 0 from a helper killed before its result).
[[nodiscard]] Result<std::string> run_pull_helper(const std::string& helper_path, const std::string& root,
                                                  const store::PullRequest& request,
                                                  const std::function<bool()>& cancelled,
                                                  uint64_t* fetched_bytes = nullptr);

}  // namespace berth::cri
