#include "config_file.hpp"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <fstream>
#include <regex>
#include <sstream>

namespace berth::ctl {
namespace {

Result<nlohmann::json> scalar_to_json(const YAML::Node& node) {
    const std::string& s = node.Scalar();
    // yaml-cpp tags quoted and block scalars "!": they are strings whatever they look like.
    if (node.Tag() == "!") return nlohmann::json(s);
    static const std::regex null_re(R"(^(~|null|Null|NULL)?$)");
    static const std::regex true_re(R"(^(true|True|TRUE|yes|Yes|YES|on|On|ON)$)");
    static const std::regex false_re(R"(^(false|False|FALSE|no|No|NO|off|Off|OFF)$)");
    static const std::regex int_re(R"(^[-+]?[0-9]+$)");
    static const std::regex float_re(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
    if (std::regex_match(s, null_re)) return nlohmann::json(nullptr);
    if (std::regex_match(s, true_re)) return nlohmann::json(true);
    if (std::regex_match(s, false_re)) return nlohmann::json(false);
    if (std::regex_match(s, int_re)) {
        errno = 0;
        char* end = nullptr;
        if (s.front() == '-') {
            long long v = std::strtoll(s.c_str(), &end, 10);
            if (errno == 0) return nlohmann::json(v);
        } else {
            unsigned long long v = std::strtoull(s.c_str(), &end, 10);
            if (errno == 0) return nlohmann::json(v);
        }
        return nlohmann::json(s);  // out of range: leave the digits to the protobuf parser
    }
    if (std::regex_match(s, float_re)) return nlohmann::json(std::strtod(s.c_str(), nullptr));
    return nlohmann::json(s);
}

Result<nlohmann::json> node_to_json(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            return nlohmann::json(nullptr);
        case YAML::NodeType::Scalar:
            return scalar_to_json(node);
        case YAML::NodeType::Sequence: {
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& item : node) {
                BERTH_ASSIGN(auto v, node_to_json(item));
                arr.push_back(std::move(v));
            }
            return arr;
        }
        case YAML::NodeType::Map: {
            nlohmann::json obj = nlohmann::json::object();
            for (const auto& kv : node) {
                if (!kv.first.IsScalar())
                    return fail("line {}: a mapping key must be a scalar", kv.first.Mark().line + 1);
                BERTH_ASSIGN(auto v, node_to_json(kv.second));
                obj[kv.first.Scalar()] = std::move(v);
            }
            return obj;
        }
    }
    return fail("line {}: unknown YAML node", node.Mark().line + 1);
}

}  // namespace

Result<nlohmann::json> yaml_to_json(std::string_view text) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        return fail("YAML line {}, column {}: {}", e.mark.line + 1, e.mark.column + 1, e.msg);
    }
    return node_to_json(root);
}

Result<void> parse_message(std::string_view text, std::string_view origin, google::protobuf::Message& msg) {
    size_t first = text.find_first_not_of(" \t\r\n");
    std::string json;
    if (first != std::string_view::npos && text[first] == '{') {
        json = std::string(text);
    } else {
        auto j = yaml_to_json(text);
        if (!j) return fail("{}: {}", origin, j.error().message());
        if (!j->is_object()) return fail("{}: not a {} (the document is not a mapping)", origin, msg.GetTypeName());
        json = j->dump();
    }
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    if (auto st = google::protobuf::util::JsonStringToMessage(json, &msg, opts); !st.ok())
        return fail("{}: not a valid {}: {}", origin, msg.GetTypeName(), st.ToString());
    return {};
}

Result<void> load_message(const std::string& path, google::protobuf::Message& msg) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail_sys("open {}", path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return fail_sys("read {}", path);
    return parse_message(ss.str(), path, msg);
}

}  // namespace berth::ctl
