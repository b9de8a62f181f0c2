// berthctl exec: ExecSync; with -i, -t or --transport the Exec rpc and a streaming session (cmd_stream.cpp).
#include <cstdio>

#include "command.hpp"

namespace berth::ctl {

int cmd_exec(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("exec", args,
                               {{"--timeout", true},
                                {"-i|--interactive", false},
                                {"-t|--tty", false},
                                {"-it", false},
                                {"-ti", false},
                                {"-s|--sync", false},
                                {"--transport", true},
                                {"--stream-ca", true},
                                {"--stream-insecure", false}},
                               1);
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "exec: expected CONTAINER_ID [--] CMD [ARGS...]"));
    bool streaming = p->has("--interactive") || p->has("--tty") || p->has("-it") || p->has("-ti") ||
                     p->has("--transport");
    if (streaming && !p->has("--sync")) {
        std::vector<std::string> cmd(p->positional.begin() + 1, p->positional.end());
        cmd.insert(cmd.end(), p->after_dashdash.begin(), p->after_dashdash.end());
        if (cmd.empty()) return report(Error(0, "exec: no command given"));
        return exec_streaming(opts, *p, cmd);
    }
    v1::ExecSyncRequest req;
    req.set_container_id(p->positional[0]);
    for (size_t i = 1; i < p->positional.size(); ++i) req.add_cmd(p->positional[i]);
    for (const auto& a : p->after_dashdash) req.add_cmd(a);
    if (req.cmd().empty()) return report(Error(0, "exec: no command given"));
    auto timeout = p->number("--timeout");
    if (!timeout) return report(timeout.error());
    req.set_timeout(timeout->value_or(0));
    CriClient client(opts.socket_path);
    // No deadline of our own unless the command has one (the daemon enforces it; a margin for the rpc itself).
    auto resp = client.runtime(&v1::RuntimeService::Stub::ExecSync, "ExecSync", req,
                               std::chrono::seconds(req.timeout() > 0 ? req.timeout() + 30 : 0));
    if (!resp) return report(resp.error());
    std::fwrite(resp->stdout().data(), 1, resp->stdout().size(), stdout);
    std::fwrite(resp->stderr().data(), 1, resp->stderr().size(), stderr);
    std::fflush(stdout);
    return resp->exit_code();
}

}  // namespace berth::ctl
