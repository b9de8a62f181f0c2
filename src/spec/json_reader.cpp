#include "spec/json_reader.hpp"

#include <cstring>

namespace berth::spec::detail {

void JsonPath::append_to(std::string& out) const {
    if (parent_) parent_->append_to(out);
    switch (kind_) {
        case Kind::root:
            break;
        case Kind::member:
            if (!out.empty()) out += '.';
            out += text_;
            break;
        case Kind::index:
            out += fmt::format("[{}]", index_);
            break;
        case Kind::map_key:
            out += '[';
            out += quote(text_);
            out += ']';
            break;
    }
}

std::string JsonPath::str() const {
    std::string out;
    append_to(out);
    if (out.empty()) out = "(root)";
    return out;
}

std::string quote(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                    out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
                else
                    out += c;
        }
    }
    out += '"';
    return out;
}

std::unexpected<Error> type_error(const Json& j, const JsonPath& p, std::string_view expected) {
    return path_error(p, "expected {}, got {}", expected, j.type_name());
}

Result<void> parse_json(std::string_view text, Json& out) {
    try {
        out = Json::parse(text.begin(), text.end());
        return {};
    } catch (const Json::parse_error& e) {
        // what() is "[json.exception.parse_error.101] parse error at line L, column C: ..."; the bracketed
        // exception id means nothing to a user.
        std::string_view what = e.what();
        if (auto close = what.find("] "); what.starts_with("[json.exception") && close != std::string_view::npos)
            what.remove_prefix(close + 2);
        return fail("invalid JSON at byte {}: {}", e.byte, what);
    } catch (const std::exception& e) {
        return fail("invalid JSON: {}", e.what());
    }
}

Result<void> read(Json& j, const JsonPath& p, std::string& out) {
    if (!j.is_string()) return type_error(j, p, "string");
    out = std::move(j.get_ref<std::string&>());
    return {};
}

Result<void> read(Json& j, const JsonPath& p, bool& out) {
    if (!j.is_boolean()) return type_error(j, p, "boolean");
    out = j.get<bool>();
    return {};
}

Result<ObjectReader> as_object(Json& j, const JsonPath& p) {
    if (!j.is_object()) return type_error(j, p, "object");
    return ObjectReader(j, p);
}

}  // namespace berth::spec::detail
