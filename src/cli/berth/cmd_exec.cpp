#include <cstdlib>

#include "command.hpp"

namespace berth::cli {

const Command& exec_command() {
    static const Command c{
        "exec", "[command options] <container-id> <command> [command options]  ||  -p process.json <container-id>",
        "execute a new process inside a container",
        {
            {{"console-socket"}, true, "AF_UNIX socket that receives the pty master"},
            {{"cwd"}, true, "current working directory in the container"},
            {{"env", "e"}, true, "set an environment variable (repeatable)"},
            {{"tty", "t"}, false, "allocate a pseudo-TTY"},
            {{"user", "u"}, true, "UID (format: <uid>[:<gid>])"},
            {{"additional-gids", "g"}, true, "additional gids (repeatable)"},
            {{"process", "p"}, true, "path to a process.json"},
            {{"detach", "d"}, false, "detach from the process"},
            {{"pid-file"}, true, "file to write the process id to"},
            {{"process-label"}, true, "SELinux label for the process"},
            {{"apparmor"}, true, "AppArmor profile for the process"},
            {{"no-new-privs"}, false, "set no_new_privs for the process"},
            {{"cap", "c"}, true, "add a capability (repeatable)"},
            {{"preserve-fds"}, true, "pass N additional file descriptors (from 3) to the process"},
            {{"cgroup"}, true, "sub-cgroup to run the process in (not supported)"},
            {{"ignore-paused"}, false, "allow exec in a paused container"},
        },
        [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
            runtime::ExecOptions o;
            o.id = f.positional[0];
            o.args.assign(f.positional.begin() + 1, f.positional.end());
            o.process_file = f.value("process");
            o.tty = f.flag("tty");
            o.console_socket = f.value("console-socket");
            o.detach = f.flag("detach");
            o.pid_file = f.value("pid-file");
            o.cwd = f.value("cwd");
            o.env = f.all("env");
            o.user = f.value("user");
            for (const auto& gid : f.all("additional-gids")) {
                char* end = nullptr;
                unsigned long v = std::strtoul(gid.c_str(), &end, 10);
                if (gid.empty() || *end || v > 0xffffffffUL)
                    return report_error(Error(0, fmt::format("exec: --additional-gids: invalid gid \"{}\"", gid)));
                o.additional_gids.push_back(static_cast<uint32_t>(v));
            }
            o.caps = f.all("cap");
            o.no_new_privs = f.flag("no-new-privs");
            o.process_label = f.value("process-label");
            o.apparmor = f.value("apparmor");
            o.ignore_paused = f.flag("ignore-paused");
            if (f.has("cgroup"))
                return report_error(Error(ENOTSUP, "exec: --cgroup (a sub-cgroup for the process) is not supported"));
            auto n = int_flag(f, "preserve-fds", 0, 100000, 0);
            if (!n) return report_error(n.error());
            o.preserve_fds = static_cast<int>(*n);
            auto r = runtime::exec_in_container(g, o);
            if (!r) return report_error(r.error());
            return *r;
        },
        1, 100000, true};
    return c;
}

}  // namespace berth::cli
