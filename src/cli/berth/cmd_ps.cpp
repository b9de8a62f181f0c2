// `berth ps`: the container's processes, as `ps` shows them (rows of the container's pids only), or as JSON.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "command.hpp"

namespace berth::cli {
namespace {

// Runs `ps args...` and returns its stdout.
Result<std::string> run_ps(const std::vector<std::string>& args) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
    pid_t pid = ::fork();
    if (pid < 0) return fail_sys("fork");
    if (pid == 0) {
        ::dup2(p[1], STDOUT_FILENO);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>("ps"));
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execvp("ps", argv.data());
        _exit(127);
    }
    ::close(p[1]);
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(p[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail("ps {}: failed (exit status {})", fmt::join(args, " "),
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return out;
}

std::vector<std::string> fields(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
}

}  // namespace

const Command& ps_command() {
    static const Command c{
        "ps",
        "[command options] <container-id> [ps options]",
        "list the processes of a container (ps options default to -ef)",
        {{{"format", "f"}, true, "table or json"}},
        [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
            std::string format = f.value("format", "table");
            if (format != "table" && format != "json")
                return report_error(Error(0, fmt::format("ps: invalid --format \"{}\": use table or json", format)));
            auto pids = runtime::container_processes(g, f.positional[0]);
            if (!pids) return report_error(pids.error());
            if (format == "json") {
                if (f.positional.size() > 1)
                    return report_error(Error(0, "ps: ps options cannot be used with --format json"));
                std::printf("%s\n", nlohmann::json(*pids).dump().c_str());
                return 0;
            }
            std::vector<std::string> args(f.positional.begin() + 1, f.positional.end());
            if (args.empty()) args = {"-ef"};
            auto out = run_ps(args);
            if (!out) return report_error(out.error());
            std::istringstream in(*out);
            std::string header;
            std::getline(in, header);
            auto cols = fields(header);
            size_t pid_col = cols.size();
            for (size_t i = 0; i < cols.size(); ++i)
                if (cols[i] == "PID") pid_col = i;
            if (pid_col == cols.size()) return report_error(Error(0, "ps: the output of ps has no PID column"));
            std::set<std::string> wanted;
            for (pid_t p : *pids) wanted.insert(std::to_string(p));
            std::printf("%s\n", header.c_str());
            std::string line;
            while (std::getline(in, line)) {
                auto fs = fields(line);
                if (pid_col < fs.size() && wanted.contains(fs[pid_col])) std::printf("%s\n", line.c_str());
            }
            return 0;
        },
        1,
        1000,
        true};
    return c;
}

}  // namespace berth::cli
