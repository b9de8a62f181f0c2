// berthctl info: the CRI Status rpc, verbose.
#include <cstdio>

#include "command.hpp"

namespace berth::ctl {

int cmd_info(const GlobalOptions& opts, const std::vector<std::string>& args) {
    if (!args.empty()) return report(Error(0, fmt::format("info: unexpected argument {:?}", args[0])));
    CriClient client(opts.socket_path);
    auto st = client.status(true);
    if (!st) return report(st.error());

    // The verbose info values are JSON documents; show them as such, not as strings.
    nlohmann::json info = nlohmann::json::object();
    for (const auto& [key, value] : st->info()) {
        nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
        info[key] = parsed.is_discarded() ? nlohmann::json(value) : parsed;
    }

    if (opts.output == OutputFormat::json) {
        auto status = message_to_json(st->status());
        if (!status) return report(status.error());
        nlohmann::json out = {{"status", *status}};
        for (auto& [key, value] : info.items()) out[key] = value;
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    std::printf("%-14s %-7s %-22s %s\n", "CONDITION", "STATUS", "REASON", "MESSAGE");
    for (const auto& c : st->status().conditions())
        std::printf("%-14s %-7s %-22s %s\n", c.type().c_str(), c.status() ? "true" : "false", c.reason().c_str(),
                    c.message().c_str());
    for (auto& [key, value] : info.items()) {
        std::printf("\n%s:\n", key.c_str());
        if (value.is_object()) {
            for (auto& [k, v] : value.items())
                std::printf("  %s: %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
        } else {
            std::printf("  %s\n", value.dump().c_str());
        }
    }
    return 0;
}

}  // namespace berth::ctl
