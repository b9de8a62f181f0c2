// How berthctl prints: tables for people (the default), JSON for programs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "cri/api.hpp"

namespace berth::ctl {

enum class OutputFormat { table, json };

// "json" or "table"; anything else is an error naming the value.
[[nodiscard]] Result<OutputFormat> parse_output_format(std::string_view s);

// A message as JSON with the proto3 JSON names (lowerCamelCase) and default values printed.
[[nodiscard]] Result<nlohmann::json> message_to_json(const google::protobuf::Message& m);

}  // namespace berth::ctl
