// berthctl info: the CRI Status rpc, verbose: the runtime's conditions, its RuntimeClass handlers with their
// features, the network (CNI) state and the daemon's configuration.
#include <cstdio>

#include "command.hpp"

namespace berth::ctl {
namespace {

std::string yes_no(bool b) {
    return b ? "yes" : "no";
}

// A JSON value as one table cell: strings bare, arrays of strings joined by spaces, the rest as JSON.
std::string cell(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_array()) {
        std::string out;
        for (const auto& e : v) out += (out.empty() ? "" : " ") + (e.is_string() ? e.get<std::string>() : e.dump());
        return out;
    }
    return v.dump();
}

}  // namespace

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
    // The network as kubelet sees it: the NetworkReady condition (CNI details, when berthd gives them, are in the
    // verbose info beside the config).
    nlohmann::json network = {{"ready", false}, {"reason", ""}, {"message", "berthd reports no NetworkReady condition"}};
    for (const auto& c : st->status().conditions())
        if (c.type() == "NetworkReady") network = {{"ready", c.status()}, {"reason", c.reason()}, {"message", c.message()}};
    const nlohmann::json runtimes =
        info.contains("config") && info["config"].is_object() && info["config"].contains("berthConfig")
            ? info["config"]["berthConfig"].value("runtimes", nlohmann::json::object())
            : nlohmann::json::object();
    const std::string default_runtime =
        info.contains("config") && info["config"].is_object() && info["config"].contains("berthConfig")
            ? info["config"]["berthConfig"].value("default_runtime", "")
            : "";

    if (opts.output != OutputFormat::table) {
        auto status = message_to_json(st->status());
        if (!status) return report(status.error());
        nlohmann::json handlers = nlohmann::json::array();
        for (const auto& h : st->runtime_handlers()) {
            auto j = message_to_json(h);
            if (!j) return report(j.error());
            handlers.push_back(*j);
        }
        auto features = message_to_json(st->features());
        if (!features) return report(features.error());
        nlohmann::json out = {{"status", *status},
                              {"runtimeHandlers", handlers},
                              {"features", *features},
                              {"network", network}};
        for (auto& [key, value] : info.items()) out[key] = value;
        print_document(out, opts.output);
        return 0;
    }

    Table conditions({"CONDITION", "STATUS", "REASON", "MESSAGE"});
    for (const auto& c : st->status().conditions())
        conditions.add_row({c.type(), c.status() ? "true" : "false", c.reason(), c.message()});
    std::printf("%s", conditions.render().c_str());

    // Each handler with what berth.toml says it runs: the default ("" in the CRI) is the default_runtime's.
    Table handlers({"HANDLER", "RUNTIME", "RUNTIME ARGS", "RECURSIVE RO MOUNTS", "USER NAMESPACES"});
    for (const auto& h : st->runtime_handlers()) {
        const std::string name = h.name().empty() ? default_runtime : h.name();
        nlohmann::json rt = runtimes.value(name, nlohmann::json::object());
        std::string path = rt.value("path", "");
        if (path.empty()) path = "libberth (in berth-monitor)";
        std::string shown = h.name().empty() ? "(default) " + default_runtime : h.name();
        handlers.add_row({shown, path, cell(rt.value("runtime_args", nlohmann::json::array())),
                          yes_no(h.features().recursive_read_only_mounts()), yes_no(h.features().user_namespaces())});
    }
    std::printf("\n%s", handlers.render().c_str());
    std::printf("\nNETWORK\n  ready: %s\n", network["ready"].get<bool>() ? "true" : "false");
    if (!network["reason"].get<std::string>().empty())
        std::printf("  reason: %s\n", network["reason"].get<std::string>().c_str());
    if (!network["message"].get<std::string>().empty())
        std::printf("  message: %s\n", network["message"].get<std::string>().c_str());

    for (auto& [key, value] : info.items()) {
        std::printf("\n%s:\n", key.c_str());
        if (!value.is_object()) {
            std::printf("  %s\n", value.dump().c_str());
            continue;
        }
        for (auto& [k, v] : value.items()) {
            if (k == "berthConfig" && v.is_object()) {
                // berth.toml as loaded: one key per line, tables as JSON.
                std::printf("  %s:\n", k.c_str());
                for (auto& [ck, cv] : v.items()) std::printf("    %s: %s\n", ck.c_str(), cell(cv).c_str());
                continue;
            }
            std::printf("  %s: %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
        }
    }
    return 0;
}

}  // namespace berth::ctl
