#include "output.hpp"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <regex>

namespace berth::ctl {

Result<OutputFormat> parse_output_format(std::string_view s) {
    if (s == "table") return OutputFormat::table;
    if (s == "json") return OutputFormat::json;
    if (s == "yaml") return OutputFormat::yaml;
    return fail("-o {:?}: unsupported output format (json, yaml, table)", s);
}

Result<nlohmann::json> message_to_json(const google::protobuf::Message& m) {
    google::protobuf::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = true;
    std::string text;
    if (auto st = google::protobuf::util::MessageToJsonString(m, &text, opts); !st.ok())
        return fail("encode {} as JSON: {}", m.GetTypeName(), st.ToString());
    return nlohmann::json::parse(text);
}

namespace {

// A plain YAML scalar that a reader would take for something other than this string (a bool, null, a number,
// or syntax) must be quoted.
bool needs_quotes(const std::string& s) {
    if (s.empty()) return true;
    static const std::regex special(
        R"(^(true|false|yes|no|on|off|y|n|null|~|True|False|TRUE|FALSE|Yes|No|YES|NO|On|Off|ON|OFF|Null|NULL|Y|N)$)");
    static const std::regex number(
        R"(^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^0x[0-9a-fA-F]+$|^0o[0-7]+$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$)");
    if (std::regex_match(s, special) || std::regex_match(s, number)) return true;
    if (std::string_view(":-?[]{},#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) return true;
    if (s.front() == ' ' || s.back() == ' ') return true;
    if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos || s.back() == ':') return true;
    return std::any_of(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\t' || (c >= 0 && c < 0x20); });
}

void emit(YAML::Emitter& out, const nlohmann::json& j) {
    switch (j.type()) {
        case nlohmann::json::value_t::object:
            if (j.empty()) out << YAML::Flow;  // "{}" on the key's line
            out << YAML::BeginMap;
            for (const auto& [k, v] : j.items()) {
                out << YAML::Key;
                if (needs_quotes(k)) out << YAML::DoubleQuoted;
                out << k << YAML::Value;
                emit(out, v);
            }
            out << YAML::EndMap;
            break;
        case nlohmann::json::value_t::array:
            if (j.empty()) out << YAML::Flow;
            out << YAML::BeginSeq;
            for (const auto& v : j) emit(out, v);
            out << YAML::EndSeq;
            break;
        case nlohmann::json::value_t::string: {
            const auto& s = j.get_ref<const std::string&>();
            if (needs_quotes(s)) out << YAML::DoubleQuoted;
            out << s;
            break;
        }
        case nlohmann::json::value_t::boolean:
            out << (j.get<bool>() ? "true" : "false");
            break;
        case nlohmann::json::value_t::null:
        case nlohmann::json::value_t::discarded:
            out << YAML::Null;
            break;
        default:  // numbers: JSON's text is valid YAML
            out << j.dump();
            break;
    }
}

// Counts UTF-8 code points (continuation bytes are not counted).
size_t display_width(std::string_view s) {
    return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

std::string json_to_yaml(const nlohmann::json& j) {
    YAML::Emitter out;
    out.SetIndent(2);
    emit(out, j);
    std::string text = out.c_str();
    if (text.empty() || text.back() != '\n') text += '\n';
    return text;
}

void print_document(const nlohmann::json& j, OutputFormat format) {
    if (format == OutputFormat::yaml) {
        std::fputs(json_to_yaml(j).c_str(), stdout);
        return;
    }
    std::printf("%s\n", j.dump(2).c_str());
}

void Table::add_row(std::vector<std::string> cells) {
    cells.resize(std::max(cells.size(), headers_.size()));
    rows_.push_back(std::move(cells));
}

std::string Table::render() const {
    std::vector<size_t> widths(headers_.size(), 0);
    auto measure = [&](const std::vector<std::string>& cells) {
        for (size_t i = 0; i < cells.size() && i < widths.size(); ++i)
            widths[i] = std::max(widths[i], display_width(cells[i]));
    };
    measure(headers_);
    for (const auto& r : rows_) measure(r);
    std::string out;
    auto line = [&](const std::vector<std::string>& cells) {
        std::string l;
        for (size_t i = 0; i < cells.size(); ++i) {
            l += cells[i];
            if (i + 1 < cells.size()) l.append(widths[i] - display_width(cells[i]) + 3, ' ');
        }
        while (!l.empty() && l.back() == ' ') l.pop_back();
        out += l;
        out += '\n';
    };
    line(headers_);
    for (const auto& r : rows_) line(r);
    return out;
}

std::string short_id(std::string_view id, bool no_trunc) {
    if (id.starts_with("sha256:")) id.remove_prefix(7);
    if (no_trunc || id.size() <= 13) return std::string(id);
    return std::string(id.substr(0, 13));
}

std::string human_age(int64_t then_ns, int64_t now) {
    if (then_ns <= 0) return "";
    const int64_t s = std::max<int64_t>(0, (now - then_ns) / 1'000'000'000);
    auto plural = [](int64_t n, const char* unit) { return fmt::format("{} {}{} ago", n, unit, n == 1 ? "" : "s"); };
    if (s < 1) return "Less than a second ago";
    if (s < 60) return plural(s, "second");
    const int64_t m = s / 60;
    if (m == 1) return "About a minute ago";
    if (m < 60) return plural(m, "minute");
    const int64_t h = m / 60;
    if (h == 1) return "About an hour ago";
    if (h < 48) return plural(h, "hour");
    if (h < 24 * 7 * 2) return plural(h / 24, "day");
    if (h < 24 * 30 * 2) return plural(h / 24 / 7, "week");
    if (h < 24 * 365 * 2) return plural(h / 24 / 30, "month");
    return plural(h / 24 / 365, "year");
}

std::string decimal_size(uint64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = static_cast<double>(bytes);
    size_t u = 0;
    while (v >= 1000 && u + 1 < std::size(kUnits)) {
        v /= 1000;
        ++u;
    }
    if (u == 0) return fmt::format("{}B", bytes);
    // Three significant digits, trailing zeros dropped: 1.44MB, 12.5MB, 130MB.
    std::string num = fmt::format("{:.{}f}", v, v < 10 ? 2 : v < 100 ? 1 : 0);
    if (num.find('.') != std::string::npos) {
        while (num.back() == '0') num.pop_back();
        if (num.back() == '.') num.pop_back();
    }
    return num + kUnits[u];
}

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace berth::ctl
