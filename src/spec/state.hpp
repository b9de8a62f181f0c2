// The runtime-spec's container state (runtime.md "State"): what `berth state` prints and hooks read on stdin.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace berth::spec {

struct State {
    std::string oci_version;  // ociVersion
    std::string id;
    std::string status;  // "creating", "created", "running" or "stopped"
    int pid = 0;         // 0: no process (omitted from the JSON)
    std::string bundle;  // absolute path
    std::map<std::string, std::string> annotations;
};

// One line of JSON: ociVersion, id, status, pid (omitted when 0), bundle, annotations (omitted when empty).
// Strings that are not valid UTF-8 are written with U+FFFD in place of the bad bytes; it never throws.
std::string state_to_json(const State& state);

// Parses a state document. ociVersion, id, status and bundle are required; status must be one of the four
// values above and pid non-negative. Errors name the field.
[[nodiscard]] Result<State> parse_state(std::string_view json_text);

}  // namespace berth::spec
