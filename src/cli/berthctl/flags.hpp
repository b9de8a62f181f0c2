// berthctl commands' own flags: crictl's spellings, flags and positionals in any order.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace berth::ctl {

// A command's own flags. `names` lists the spellings separated by '|' ("-a|--all"); the last one is the key used
// to look the flag up. `takes_value`: the next argument (or "=value") is its value; flags may repeat.
struct CmdFlag {
    std::string_view names;
    bool takes_value = false;
};

class ParsedArgs {
public:
    // Flags and positionals in any order; "--" ends the flags (what follows is in `after_dashdash`). Once
    // `max_positionals` positionals are seen, everything else is positional too (exec ID CMD -l, run IMAGE CMD).
    [[nodiscard]] static Result<ParsedArgs> parse(std::string_view command, const std::vector<std::string>& args,
                                                  std::initializer_list<CmdFlag> flags,
                                                  size_t max_positionals = std::numeric_limits<size_t>::max());

    bool has(std::string_view key) const;
    // The last value given for `key`.
    std::optional<std::string> value(std::string_view key) const;
    std::vector<std::string> values(std::string_view key) const;
    // The value as a non-negative integer; an error names the flag.
    [[nodiscard]] Result<std::optional<long long>> number(std::string_view key) const;
    // --label k=v values as a map; an error names the bad one.
    [[nodiscard]] Result<std::map<std::string, std::string>> labels(std::string_view key) const;

    std::vector<std::string> positional;
    bool dashdash = false;
    std::vector<std::string> after_dashdash;

private:
    std::vector<std::pair<std::string, std::string>> given_;  // key, value ("" for booleans)
};

}  // namespace berth::ctl
