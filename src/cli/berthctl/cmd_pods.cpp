// berthctl pods, runp, stopp, rmp, inspectp: the pod sandbox rpcs.
#include <cstdio>

#include "command.hpp"
#include "config_file.hpp"

namespace berth::ctl {
namespace {

using Stub = v1::RuntimeService::Stub;

const char* pod_state_name(v1::PodSandboxState s) {
    return s == v1::SANDBOX_READY ? "Ready" : "NotReady";
}

Result<v1::PodSandboxState> parse_pod_state(std::string_view s) {
    if (s == "ready" || s == "Ready" || s == "SANDBOX_READY") return v1::SANDBOX_READY;
    if (s == "notready" || s == "NotReady" || s == "SANDBOX_NOTREADY") return v1::SANDBOX_NOTREADY;
    return fail("--state {:?}: not ready or notready", s);
}

// Prints each id's PodSandboxStatus (verbose) as {"status": ..., "info": {...}}, one document per id.
Result<void> inspect_pod(CriClient& client, const std::string& id, OutputFormat format) {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    req.set_verbose(true);
    BERTH_ASSIGN(auto resp, client.runtime(&Stub::PodSandboxStatus, "PodSandboxStatus", req));
    BERTH_ASSIGN(auto status, message_to_json(resp.status()));
    nlohmann::json out = {{"status", status}};
    nlohmann::json info = nlohmann::json::object();
    for (const auto& [k, v] : resp.info()) {
        auto parsed = nlohmann::json::parse(v, nullptr, false);
        info[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
    }
    out["info"] = info;
    if (resp.containers_statuses_size() > 0) {
        nlohmann::json containers = nlohmann::json::array();
        for (const auto& c : resp.containers_statuses()) {
            BERTH_ASSIGN(auto cj, message_to_json(c));
            containers.push_back(std::move(cj));
        }
        out["containersStatuses"] = containers;
    }
    print_document(out, format);
    return {};
}

}  // namespace

int cmd_pods(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("pods", args,
                               {{"--id", true},
                                {"--name", true},
                                {"--namespace", true},
                                {"--label", true},
                                {"-s|--state", true},
                                {"-q|--quiet", false},
                                {"--no-trunc", false}});
    if (!p) return report(p.error());
    if (!p->positional.empty())
        return report(Error(0, fmt::format("pods: unexpected argument {:?}", p->positional[0])));
    v1::ListPodSandboxRequest req;
    auto* filter = req.mutable_filter();
    if (auto id = p->value("--id")) filter->set_id(*id);
    if (auto s = p->value("--state")) {
        auto st = parse_pod_state(*s);
        if (!st) return report(st.error());
        filter->mutable_state()->set_state(*st);
    }
    auto labels = p->labels("--label");
    if (!labels) return report(labels.error());
    for (const auto& [k, v] : *labels) (*filter->mutable_label_selector())[k] = v;

    CriClient client(opts.socket_path);
    auto resp = client.runtime(&Stub::ListPodSandbox, "ListPodSandbox", req);
    if (!resp) return report(resp.error());
    // Name and namespace are matched here: the CRI filter has no field for them. Substring match, as crictl does.
    const auto name = p->value("--name"), ns = p->value("--namespace");
    std::vector<const v1::PodSandbox*> pods;
    for (const auto& pod : resp->items()) {
        if (name && pod.metadata().name().find(*name) == std::string::npos) continue;
        if (ns && pod.metadata().namespace_().find(*ns) == std::string::npos) continue;
        pods.push_back(&pod);
    }
    std::sort(pods.begin(), pods.end(), [](auto* a, auto* b) { return a->created_at() > b->created_at(); });

    if (p->has("--quiet")) {
        for (auto* pod : pods) std::printf("%s\n", pod->id().c_str());
        return 0;
    }
    if (opts.output != OutputFormat::table) {
        nlohmann::json items = nlohmann::json::array();
        for (auto* pod : pods) {
            auto j = message_to_json(*pod);
            if (!j) return report(j.error());
            items.push_back(std::move(*j));
        }
        print_document({{"items", items}}, opts.output);
        return 0;
    }
    const bool no_trunc = p->has("--no-trunc");
    const int64_t now = now_ns();
    Table t({"POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"});
    for (auto* pod : pods)
        t.add_row({short_id(pod->id(), no_trunc), human_age(pod->created_at(), now), pod_state_name(pod->state()),
                   pod->metadata().name(), pod->metadata().namespace_(), std::to_string(pod->metadata().attempt()),
                   pod->runtime_handler().empty() ? "(default)" : pod->runtime_handler()});
    std::fputs(t.render().c_str(), stdout);
    return 0;
}

int cmd_runp(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("runp", args, {{"-r|--runtime", true}});
    if (!p) return report(p.error());
    if (p->positional.size() != 1) return report(Error(0, "runp: expected one argument, POD_CONFIG (JSON or YAML)"));
    v1::RunPodSandboxRequest req;
    if (auto r = load_message(p->positional[0], *req.mutable_config()); !r) return report(r.error());
    if (auto rt = p->value("--runtime")) req.set_runtime_handler(*rt);
    CriClient client(opts.socket_path);
    // Kubelet's own deadline for this rpc is 4 minutes (a CNI plugin may be slow).
    auto resp = client.runtime(&Stub::RunPodSandbox, "RunPodSandbox", req, std::chrono::seconds(240));
    if (!resp) return report(resp.error());
    std::printf("%s\n", resp->pod_sandbox_id().c_str());
    return 0;
}

int cmd_stopp(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("stopp", args, {});
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "stopp: expected POD_ID..."));
    CriClient client(opts.socket_path);
    int rc = 0;
    for (const auto& id : p->positional) {
        v1::StopPodSandboxRequest req;
        req.set_pod_sandbox_id(id);
        auto r = client.runtime(&Stub::StopPodSandbox, "StopPodSandbox", req, std::chrono::seconds(120));
        if (!r) {
            rc = report(r.error().wrap(id));
            continue;
        }
        std::printf("Stopped sandbox %s\n", id.c_str());
    }
    return rc;
}

int cmd_rmp(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("rmp", args, {{"-a|--all", false}, {"-f|--force", false}});
    if (!p) return report(p.error());
    CriClient client(opts.socket_path);
    std::vector<std::string> ids = p->positional;
    if (p->has("--all")) {
        if (!ids.empty()) return report(Error(0, "rmp: --all takes no POD_ID"));
        auto list = client.runtime(&Stub::ListPodSandbox, "ListPodSandbox", v1::ListPodSandboxRequest());
        if (!list) return report(list.error());
        for (const auto& pod : list->items()) ids.push_back(pod.id());
    } else if (ids.empty()) {
        return report(Error(0, "rmp: expected POD_ID... or --all"));
    }
    int rc = 0;
    for (const auto& id : ids) {
        // Without --force a ready pod is refused here, as crictl does; the CRI itself would stop it.
        if (!p->has("--force")) {
            v1::PodSandboxStatusRequest sreq;
            sreq.set_pod_sandbox_id(id);
            auto st = client.runtime(&Stub::PodSandboxStatus, "PodSandboxStatus", sreq);
            if (!st) {
                rc = report(st.error().wrap(id));
                continue;
            }
            if (st->status().state() == v1::SANDBOX_READY) {
                rc = report(Error(0, fmt::format("pod {} is ready: stop it first (stopp) or use --force", id)));
                continue;
            }
        } else {
            v1::StopPodSandboxRequest stop;
            stop.set_pod_sandbox_id(id);
            if (auto r = client.runtime(&Stub::StopPodSandbox, "StopPodSandbox", stop, std::chrono::seconds(120)); !r) {
                rc = report(r.error().wrap(id));
                continue;
            }
        }
        v1::RemovePodSandboxRequest req;
        req.set_pod_sandbox_id(id);
        if (auto r = client.runtime(&Stub::RemovePodSandbox, "RemovePodSandbox", req, std::chrono::seconds(120)); !r) {
            rc = report(r.error().wrap(id));
            continue;
        }
        std::printf("Removed sandbox %s\n", id.c_str());
    }
    return rc;
}

int cmd_inspectp(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("inspectp", args, {});
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "inspectp: expected POD_ID..."));
    CriClient client(opts.socket_path);
    int rc = 0;
    for (const auto& id : p->positional)
        if (auto r = inspect_pod(client, id, opts.output); !r) rc = report(r.error().wrap(id));
    return rc;
}

}  // namespace berth::ctl
