// The `berthctl image` subcommands that live in files of their own.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "command.hpp"
#include "image/manifest.hpp"

namespace berth::ctl {

// image pull REF ... (cmd_image_pull.cpp)
int image_pull(const GlobalOptions& opts, const std::vector<std::string>& args);

// "os/arch[/variant]" as --platform takes it; an error names the value.
[[nodiscard]] Result<image::Platform> parse_platform(std::string_view text);

}  // namespace berth::ctl
