// berthctl version: the CRI Version rpc.
#include <cstdio>

#include "command.hpp"

namespace berth::ctl {

int cmd_version(const GlobalOptions& opts, const std::vector<std::string>& args) {
    if (!args.empty()) return report(Error(0, fmt::format("version: unexpected argument {:?}", args[0])));
    CriClient client(opts.socket_path);
    auto v = client.version();
    if (!v) return report(v.error());
    if (opts.output == OutputFormat::json) {
        auto j = message_to_json(*v);
        if (!j) return report(j.error());
        std::printf("%s\n", j->dump(2).c_str());
        return 0;
    }
    std::printf("Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n", v->version().c_str(),
                v->runtime_name().c_str(), v->runtime_version().c_str(), v->runtime_api_version().c_str());
    return 0;
}

}  // namespace berth::ctl
