// The pull helper's protocol: berthd does not pull in its own process. It runs `berth-pull --root DIR`, writes
// one PullRequest as JSON on its stdin and reads JSON lines from its stdout: progress events, then one result
// line, {"image": {"id", "names"}} or {"error": "..."}, either with "fetched_bytes" (the compressed layer bytes
// fetched from the registry, for berthd's metrics). So the daemon never maps the registry client (libcurl and its
// TLS stack) or the layer unpacker (libarchive), a pull's buffers are gone when it ends, hostile layers are parsed
// outside the daemon, and a cancelled PullImage kills its pull.
//
// Credentials travel over the pipe, never on a command line.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.hpp"
#include "store/pull.hpp"

namespace berth::store {

struct PullRequest {
    std::string reference;
    image::Platform platform = image::host_platform();
    image::Credentials credentials;
    image::RegistryConfig registries;
    unsigned max_parallel_layers = 4;
};

nlohmann::json to_json(const PullRequest& r);
// Errors name the request field that is missing or of the wrong type.
[[nodiscard]] Result<PullRequest> pull_request_from_json(const nlohmann::json& j);

// A PullEvent as one JSON object ({"event": "layer_bytes", "digest": ..., "done": ..., "total": ...}).
nlohmann::json to_json(const PullEvent& e);

}  // namespace berth::store
