// Flags of the `berthctl image` subcommands: each subcommand names the flags it takes; --root and -o/--output are
// everyone's. Flags and positional arguments may be mixed; "--" ends the flags.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "command.hpp"

namespace berth::ctl {

struct FlagSpec {
    std::string_view name;   // "--upper"
    std::string_view alias;  // "-u" or ""
    bool takes_value = true;
    bool repeatable = false;
};

struct ImageArgs {
    std::string root;
    OutputFormat output = OutputFormat::table;
    std::vector<std::string> positional;
    std::map<std::string, std::vector<std::string>, std::less<>> values;  // by the flag's long name

    bool has(std::string_view flag) const { return values.contains(flag); }
    // The (last) value of a flag, or `fallback`.
    std::string value(std::string_view flag, std::string fallback = {}) const;
    const std::vector<std::string>& all(std::string_view flag) const;
};

inline constexpr const char* kDefaultImageRoot = "/var/lib/berth";

// Parses `args` for subcommand `sub` (named in errors). Defaults: root from $BERTH_ROOT else kDefaultImageRoot,
// output from `global`.
[[nodiscard]] Result<ImageArgs> parse_image_args(std::string_view sub, const std::vector<std::string>& args,
                                                 const GlobalOptions& global, std::initializer_list<FlagSpec> flags);

}  // namespace berth::ctl
