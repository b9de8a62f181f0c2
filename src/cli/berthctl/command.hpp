// berthctl subcommands: one file each, all with the same signature.
#pragma once

#include <string>
#include <vector>

#include "client.hpp"
#include "output.hpp"

namespace berth::ctl {

struct GlobalOptions {
    std::string socket_path;
    OutputFormat output = OutputFormat::table;
};

// Runs with the arguments after the command name; returns the exit code. Errors are printed by the command.
using CommandFn = int (*)(const GlobalOptions& opts, const std::vector<std::string>& args);

int cmd_version(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_info(const GlobalOptions& opts, const std::vector<std::string>& args);
// image SUBCOMMAND [--root DIR] [-o json] ...: works on a store root directly (cmd_image.cpp).
int cmd_image(const GlobalOptions& opts, const std::vector<std::string>& args);

// Prints "berthctl: <message>" to stderr and returns 1.
int report(const Error& e);

}  // namespace berth::ctl
