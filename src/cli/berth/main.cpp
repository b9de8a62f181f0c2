// berth: the OCI runtime command line. Parsing and printing only; the work is in libberth.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "command.hpp"
#include "common/log.hpp"
#include "spec/config.hpp"

namespace berth::cli {
namespace {

const std::vector<FlagSpec>& global_flags() {
    static const std::vector<FlagSpec> flags = {
        {{"root"}, true, "root directory for storage of container state (default \"/run/berth\")"},
        {{"log"}, true, "log file path (default: stderr)"},
        {{"log-format"}, true, "log format: text or json"},
        {{"debug"}, false, "enable debug logging"},
        {{"systemd-cgroup"}, false, "use the systemd cgroup driver (not supported yet)"},
        {{"rootless"}, true, "ignored: berth detects rootless operation itself"},
        {{"criu"}, true, "ignored: checkpoint/restore is not supported"},
        {{"help", "h"}, false, "show help"},
        {{"version", "v"}, false, "print the version"},
    };
    return flags;
}

std::vector<Command> all_commands() {
    std::vector<Command> cmds = {create_command(), start_command(),  state_command(),  kill_command(),
                                 delete_command(), run_command(),    list_command(),   spec_command(),
                                 exec_command(),   pause_command(),  resume_command(), update_command(),
                                 events_command(), ps_command(),     features_command()};
    for (auto& c : unsupported_commands()) cmds.push_back(std::move(c));
    return cmds;
}

void print_help(const std::vector<Command>& cmds) {
    std::printf(
        "berth - an OCI container runtime\n\nUSAGE:\n   berth [global options] command [command options] "
        "[arguments...]\n\nCOMMANDS:\n");
    for (const auto& c : cmds) std::printf("   %-12s %s\n", c.name.c_str(), c.summary.c_str());
    std::printf("\nGLOBAL OPTIONS:\n%s", usage_of(global_flags()).c_str());
}

int main_impl(int argc, char** argv) {
    std::vector<std::string> args(argv, argv + argc);
    size_t cmd_index = 0;
    auto globals = parse_flags(global_flags(), args, 1, true, &cmd_index);
    if (!globals) return report_error(globals.error());
    const ParsedFlags& gf = *globals;

    std::string format = gf.value("log-format", "text");
    if (format != "text" && format != "json") {
        std::fprintf(stderr, "berth: invalid log format \"%s\": use text or json\n", format.c_str());
        return 1;
    }
    log::init(gf.value("log"), format == "json" ? log::Format::json : log::Format::text, gf.flag("debug"));

    auto cmds = all_commands();
    if (gf.flag("version")) {
        std::printf("berth version %s\nspec: %s\n", BERTH_VERSION, std::string(spec::kOciVersion).c_str());
        return 0;
    }
    if (gf.flag("help") || cmd_index >= args.size() || args[cmd_index] == "help") {
        print_help(cmds);
        return cmd_index >= args.size() && !gf.flag("help") ? 1 : 0;
    }

    runtime::GlobalOptions g;
    if (gf.has("root")) g.root = gf.value("root");
    g.systemd_cgroup = gf.flag("systemd-cgroup");

    const std::string& name = args[cmd_index];
    for (const auto& c : cmds) {
        if (c.name != name) continue;
        if (c.raw_args) {
            ParsedFlags raw;
            raw.positional.assign(args.begin() + static_cast<std::ptrdiff_t>(cmd_index) + 1, args.end());
            return c.run(g, raw);
        }
        std::vector<FlagSpec> specs = c.flags;
        specs.push_back({{"help", "h"}, false, "show help"});
        auto f = parse_flags(specs, args, cmd_index + 1, c.stop_at_positional);
        if (!f) return report_error(f.error().wrap(name));
        if (f->flag("help")) {
            std::printf("berth %s - %s\n\nUSAGE:\n   berth %s %s\n\nOPTIONS:\n%s", c.name.c_str(), c.summary.c_str(),
                        c.name.c_str(), c.usage.c_str(), usage_of(specs).c_str());
            return 0;
        }
        if (f->positional.size() < c.min_args || f->positional.size() > c.max_args)
            return report_error(
                Error(0, fmt::format("{}: expected {} argument(s): {}", name,
                                     c.min_args == c.max_args ? std::to_string(c.min_args)
                                                              : fmt::format("{} to {}", c.min_args, c.max_args),
                                     c.usage)));
        return c.run(g, *f);
    }
    return report_error(Error(0, fmt::format("no such command \"{}\" (see berth --help)", name)));
}

}  // namespace

int report_error(const Error& e) {
    log::error("{}", e.message());
    // With a log file the error also goes to stderr, where people and conmon look for it.
    if (log::fd() != STDERR_FILENO) std::fprintf(stderr, "berth: %s\n", e.message().c_str());
    return 1;
}

Result<long> int_flag(const ParsedFlags& f, const std::string& name, long lo, long hi, long fallback) {
    if (!f.has(name)) return fallback;
    std::string v = f.value(name);
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || n < lo || n > hi)
        return fail("--{}: invalid value \"{}\" (expected an integer from {} to {})", name, v, lo, hi);
    return n;
}

}  // namespace berth::cli

int main(int argc, char** argv) {
    return berth::cli::main_impl(argc, argv);
}
