// berthctl subcommands: one file per group, all with the same signature.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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

// A command's own flags. `names` lists the spellings separated by '|' ("-a|--all"); the last one is the key used
// to look the flag up. `takes_value`: the next argument (or "=value") is its value; flags may repeat.
struct FlagSpec {
    std::string_view names;
    bool takes_value = false;
};

class ParsedArgs {
public:
    // Flags and positionals in any order; "--" ends the flags (what follows is in `after_dashdash`). Once
    // `max_positionals` positionals are seen, everything else is positional too (exec ID CMD -l, run IMAGE CMD).
    [[nodiscard]] static Result<ParsedArgs> parse(std::string_view command, const std::vector<std::string>& args,
                                                  std::initializer_list<FlagSpec> flags,
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

int cmd_version(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_info(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_pods.cpp
int cmd_pods(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_runp(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_stopp(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_rmp(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_inspectp(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_containers.cpp
int cmd_ps(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_create(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_start(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_stop(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_rm(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_inspect(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_stats(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_logs.cpp, cmd_exec.cpp, cmd_run.cpp
int cmd_logs(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_exec(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_run(const GlobalOptions& opts, const std::vector<std::string>& args);
// cmd_images.cpp (CRI ImageService; `berthctl image ...` works on the store directly)
int cmd_images(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_pull(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_rmi(const GlobalOptions& opts, const std::vector<std::string>& args);
int cmd_inspecti(const GlobalOptions& opts, const std::vector<std::string>& args);

// Prints "berthctl: <message>" to stderr and returns 1.
int report(const Error& e);

// Follows the CRI log of `container_id` (from its ContainerStatus.log_path) to stdout/stderr until the container
// is no longer running (`follow`) or the end of the file. `tail` < 0: every line. Used by logs and run.
struct LogOptions {
    bool follow = false;
    long long tail = -1;
    int64_t since_ns = 0;
    bool timestamps = false;
    const std::atomic<bool>* interrupted = nullptr;  // set from a signal handler: stop following
};
[[nodiscard]] Result<void> print_container_logs(CriClient& client, const std::string& container_id,
                                                const LogOptions& o);

}  // namespace berth::ctl
