#include "flags.hpp"

#include <cerrno>
#include <cstdlib>

namespace berth::ctl {

Result<ParsedArgs> ParsedArgs::parse(std::string_view command, const std::vector<std::string>& args,
                                     std::initializer_list<CmdFlag> flags, size_t max_positionals) {
    ParsedArgs out;
    auto find = [&](std::string_view name) -> const CmdFlag* {
        for (const auto& f : flags) {
            std::string_view names = f.names;
            while (!names.empty()) {
                size_t bar = names.find('|');
                if (names.substr(0, bar) == name) return &f;
                names = bar == std::string_view::npos ? std::string_view() : names.substr(bar + 1);
            }
        }
        return nullptr;
    };
    auto key_of = [](const CmdFlag& f) {
        size_t bar = f.names.rfind('|');
        return std::string(bar == std::string_view::npos ? f.names : f.names.substr(bar + 1));
    };
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (out.dashdash) {
            out.after_dashdash.push_back(arg);
            continue;
        }
        if (arg == "--") {
            out.dashdash = true;
            continue;
        }
        if (!arg.starts_with("-") || arg == "-" || out.positional.size() >= max_positionals) {
            out.positional.push_back(arg);
            continue;
        }
        std::string name = arg;
        std::optional<std::string> inline_value;
        if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
            name = arg.substr(0, eq);
            inline_value = arg.substr(eq + 1);
        }
        const CmdFlag* f = find(name);
        if (!f) return fail("{}: unknown flag {}", command, name);
        if (!f->takes_value) {
            if (inline_value) return fail("{}: flag {} takes no value", command, name);
            out.given_.emplace_back(key_of(*f), "");
            continue;
        }
        if (!inline_value) {
            if (i + 1 >= args.size()) return fail("{}: flag {} needs a value", command, name);
            inline_value = args[++i];
        }
        out.given_.emplace_back(key_of(*f), *inline_value);
    }
    return out;
}

bool ParsedArgs::has(std::string_view key) const {
    for (const auto& [k, v] : given_)
        if (k == key) return true;
    return false;
}

std::optional<std::string> ParsedArgs::value(std::string_view key) const {
    std::optional<std::string> last;
    for (const auto& [k, v] : given_)
        if (k == key) last = v;
    return last;
}

std::vector<std::string> ParsedArgs::values(std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : given_)
        if (k == key) out.push_back(v);
    return out;
}

Result<std::optional<long long>> ParsedArgs::number(std::string_view key) const {
    auto v = value(key);
    if (!v) return std::optional<long long>();
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || errno != 0 || n < 0) return fail("{} {:?}: not a non-negative integer", key, *v);
    return std::optional<long long>(n);
}

Result<std::map<std::string, std::string>> ParsedArgs::labels(std::string_view key) const {
    std::map<std::string, std::string> out;
    for (const auto& v : values(key)) {
        size_t eq = v.find('=');
        if (eq == std::string::npos || eq == 0) return fail("{} {:?}: not KEY=VALUE", key, v);
        out[v.substr(0, eq)] = v.substr(eq + 1);
    }
    return out;
}

}  // namespace berth::ctl
