// Command-line parsing in the style of runc's (urfave/cli): global flags, a command, its flags, then positional
// arguments. Long flags take one or two dashes; values come as `--flag value` or `--flag=value`; booleans may be
// given as `--flag=false`. Flag parsing stops at the first positional argument or at `--`.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace berth::cli {

struct FlagSpec {
    std::vector<std::string> names;  // "bundle", "b"
    bool takes_value = false;
    std::string help;
};

struct ParsedFlags {
    std::map<std::string, std::string> values;  // by first name, the last one given; booleans hold "true"/"false"
    std::map<std::string, std::vector<std::string>> repeated;  // every value of a flag given several times
    std::vector<std::string> positional;

    bool has(const std::string& name) const { return values.count(name) > 0; }
    bool flag(const std::string& name) const;
    std::string value(const std::string& name, const std::string& fallback = {}) const;
    // Every value given for a value flag, in order (`-e A=1 -e B=2`).
    std::vector<std::string> all(const std::string& name) const;
};

// Parses argv[start..) against `specs`. With stop_at_positional, everything after the first positional argument
// is positional too (runc's behaviour: `berth exec id sh -c x`).
[[nodiscard]] Result<ParsedFlags> parse_flags(const std::vector<FlagSpec>& specs, const std::vector<std::string>& args,
                                              size_t start, bool stop_at_positional, size_t* end_out = nullptr);

std::string usage_of(const std::vector<FlagSpec>& specs);

}  // namespace berth::cli
