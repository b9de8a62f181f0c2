#include "args.hpp"

namespace berth::cli {

bool ParsedFlags::flag(const std::string& name) const {
    auto it = values.find(name);
    return it != values.end() && it->second != "false";
}

std::string ParsedFlags::value(const std::string& name, const std::string& fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
}

std::vector<std::string> ParsedFlags::all(const std::string& name) const {
    auto it = repeated.find(name);
    return it == repeated.end() ? std::vector<std::string>{} : it->second;
}

Result<ParsedFlags> parse_flags(const std::vector<FlagSpec>& specs, const std::vector<std::string>& args, size_t start,
                                bool stop_at_positional, size_t* end_out) {
    ParsedFlags out;
    size_t i = start;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.size() < 2 || a[0] != '-') {
            if (stop_at_positional) break;
            out.positional.push_back(a);
            continue;
        }
        std::string body = a.substr(a[1] == '-' ? 2 : 1);
        std::optional<std::string> inline_value;
        if (auto eq = body.find('='); eq != std::string::npos) {
            inline_value = body.substr(eq + 1);
            body.resize(eq);
        }
        const FlagSpec* spec = nullptr;
        for (const auto& s : specs)
            for (const auto& n : s.names)
                if (n == body) spec = &s;
        if (!spec) return fail("flag provided but not defined: -{}", body);
        const std::string& key = spec->names.front();
        if (spec->takes_value) {
            if (!inline_value) {
                if (i + 1 >= args.size()) return fail("flag needs an argument: -{}", body);
                inline_value = args[++i];
            }
            out.values[key] = *inline_value;
            out.repeated[key].push_back(*inline_value);
        } else {
            std::string v = inline_value.value_or("true");
            if (v != "true" && v != "false" && v != "1" && v != "0")
                return fail("invalid boolean value \"{}\" for -{}", v, body);
            out.values[key] = (v == "true" || v == "1") ? "true" : "false";
        }
    }
    if (end_out) *end_out = i;
    for (; i < args.size(); ++i) out.positional.push_back(args[i]);
    return out;
}

std::string usage_of(const std::vector<FlagSpec>& specs) {
    std::string out;
    for (const auto& s : specs) {
        std::string names;
        for (const auto& n : s.names) {
            if (!names.empty()) names += ", ";
            names += (n.size() == 1 ? "-" : "--") + n;
        }
        if (s.takes_value) names += " value";
        out += fmt::format("   {:<32} {}\n", names, s.help);
    }
    return out;
}

}  // namespace berth::cli
