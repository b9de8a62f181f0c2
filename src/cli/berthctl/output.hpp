// How berthctl prints: tables for people (the default), JSON or YAML for programs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "cri/api.hpp"

namespace berth::ctl {

enum class OutputFormat { table, json, yaml };

// "json", "yaml" or "table"; anything else is an error naming the value.
[[nodiscard]] Result<OutputFormat> parse_output_format(std::string_view s);

// A message as JSON with the proto3 JSON names (lowerCamelCase) and default values printed.
[[nodiscard]] Result<nlohmann::json> message_to_json(const google::protobuf::Message& m);

// A JSON document as block-style YAML (keys in the document's order, strings quoted where YAML would misread them).
std::string json_to_yaml(const nlohmann::json& j);

// Prints `j` to stdout as JSON (indented) or YAML; a table format prints JSON (the commands that have a table
// print it themselves).
void print_document(const nlohmann::json& j, OutputFormat format);

// Columns aligned for a terminal: every column but the last is padded to its widest cell plus three spaces.
// Widths count UTF-8 code points, not bytes.
class Table {
public:
    explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
    // A row with fewer cells than headers is padded with empty cells; extra cells are an error of the caller.
    void add_row(std::vector<std::string> cells);
    std::string render() const;
    size_t rows() const { return rows_.size(); }

private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

// crictl's short ids: a "sha256:" prefix dropped, then the first 13 characters, unless `no_trunc`.
std::string short_id(std::string_view id, bool no_trunc);

// "5 seconds ago", "About a minute ago", "3 hours ago" for a time in nanoseconds since the epoch (`now_ns` given
// for tests); "" for 0.
std::string human_age(int64_t then_ns, int64_t now_ns);

// 1000-based sizes as crictl prints them: "512B", "1.44MB", "4.2GB".
std::string decimal_size(uint64_t bytes);

// Current time in nanoseconds since the epoch.
int64_t now_ns();

}  // namespace berth::ctl
