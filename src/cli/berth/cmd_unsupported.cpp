// runc commands that berth does not implement yet. They fail loudly instead of pretending.
#include "command.hpp"

namespace berth::cli {

std::vector<Command> unsupported_commands() {
    static const char* names[][2] = {
        {"checkpoint", "checkpoint a running container"},
        {"restore", "restore a container from a checkpoint"},
    };
    std::vector<Command> out;
    for (const auto& [name, summary] : names) {
        Command c;
        c.name = name;
        c.usage = "<container-id> ...";
        c.summary = std::string(summary) + " (not supported yet)";
        c.stop_at_positional = true;
        c.raw_args = true;
        c.max_args = 1000;
        c.run = [](const runtime::GlobalOptions&, const ParsedFlags&) {
            return report_error(Error(ENOTSUP, "this command is not supported by this version of berth"));
        };
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace berth::cli
