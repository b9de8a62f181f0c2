// One berth subcommand: its flags and its handler. Each lives in cmd_<name>.cpp.
#pragma once

#include <string>
#include <vector>

#include "args.hpp"
#include "runtime/runtime.hpp"

namespace berth::cli {

struct Command {
    std::string name;
    std::string usage;  // "[command options] <container-id>"
    std::string summary;
    std::vector<FlagSpec> flags;
    // Returns the process exit code. Errors are reported through report_error().
    int (*run)(const runtime::GlobalOptions& g, const ParsedFlags& f);
    size_t min_args = 0, max_args = 0;
    bool stop_at_positional = false;
    // Takes every argument as given, without flag parsing: for commands that only answer "not supported", so that
    // a client passing runc's flags of that command (`ps --format json`) gets that answer, not a flag error.
    bool raw_args = false;
};

// Prints "berth: msg" on stderr and logs it at error level (containerd's shim reads the JSON log). Returns 1.
int report_error(const Error& e);
// Converts a flag value to an int in [lo, hi] or reports an error naming the flag.
[[nodiscard]] Result<long> int_flag(const ParsedFlags& f, const std::string& name, long lo, long hi, long fallback);

const Command& create_command();
const Command& start_command();
const Command& state_command();
const Command& kill_command();
const Command& delete_command();
const Command& run_command();
const Command& list_command();
const Command& spec_command();
const Command& exec_command();
const Command& pause_command();
const Command& resume_command();
const Command& update_command();
const Command& events_command();
const Command& ps_command();
const Command& features_command();
// Commands of runc's command line that berth does not implement yet: each exits 1 with "not supported".
std::vector<Command> unsupported_commands();

}  // namespace berth::cli
