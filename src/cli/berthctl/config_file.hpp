// Pod and container config files as crictl reads them: the CRI message in its protobuf JSON mapping
// (lowerCamelCase or the proto field names), written as JSON or as YAML.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "cri/api.hpp"

namespace berth::ctl {

// One YAML document as JSON. Plain scalars become what YAML 1.1 reads them as (true/false/yes/no/on/off, null
// and ~, integers, floats); quoted and block scalars stay strings. Errors carry the YAML parser's line and column.
[[nodiscard]] Result<nlohmann::json> yaml_to_json(std::string_view text);

// Fills `msg` from `text`: JSON when it starts with '{' (after white space), YAML otherwise. Unknown fields are
// errors. `origin` names the source in errors (a path).
[[nodiscard]] Result<void> parse_message(std::string_view text, std::string_view origin,
                                         google::protobuf::Message& msg);

// parse_message over the file at `path`.
[[nodiscard]] Result<void> load_message(const std::string& path, google::protobuf::Message& msg);

}  // namespace berth::ctl
