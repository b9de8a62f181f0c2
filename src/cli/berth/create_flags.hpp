// Flags shared by `create` and `run`.
#pragma once

#include "command.hpp"

namespace berth::cli {

std::vector<FlagSpec> create_flag_specs();
// Fills CreateOptions from parsed flags; the container id is the first positional argument.
[[nodiscard]] Result<runtime::CreateOptions> create_options(const ParsedFlags& f);

}  // namespace berth::cli
