// berthctl ps, create, start, stop, rm, inspect, stats: the container rpcs.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>

#include "command.hpp"
#include "config_file.hpp"

namespace berth::ctl {
namespace {

using Stub = v1::RuntimeService::Stub;

const char* container_state_name(v1::ContainerState s) {
    switch (s) {
        case v1::CONTAINER_CREATED:
            return "Created";
        case v1::CONTAINER_RUNNING:
            return "Running";
        case v1::CONTAINER_EXITED:
            return "Exited";
        default:
            return "Unknown";
    }
}

Result<v1::ContainerState> parse_container_state(std::string_view s) {
    std::string l(s);
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
    if (l == "created" || l == "container_created") return v1::CONTAINER_CREATED;
    if (l == "running" || l == "container_running") return v1::CONTAINER_RUNNING;
    if (l == "exited" || l == "container_exited") return v1::CONTAINER_EXITED;
    if (l == "unknown" || l == "container_unknown") return v1::CONTAINER_UNKNOWN;
    return fail("--state {:?}: not created, running, exited or unknown", s);
}

// The image column: what the user asked for when known, else the reference the daemon resolved; bare image ids
// are shortened like every other id.
std::string image_column(const v1::ImageSpec& spec, const std::string& image_ref, bool no_trunc) {
    std::string image = !spec.user_specified_image().empty() ? spec.user_specified_image()
                        : !spec.image().empty()              ? spec.image()
                                                             : image_ref;
    if (image.starts_with("sha256:") ||
        (image.size() == 64 && image.find_first_not_of("0123456789abcdef") == std::string::npos))
        return short_id(image, no_trunc);
    return image;
}

Result<void> inspect_container(CriClient& client, const std::string& id, OutputFormat format) {
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    req.set_verbose(true);
    BERTH_ASSIGN(auto resp, client.runtime(&Stub::ContainerStatus, "ContainerStatus", req));
    BERTH_ASSIGN(auto status, message_to_json(resp.status()));
    nlohmann::json info = nlohmann::json::object();
    for (const auto& [k, v] : resp.info()) {
        auto parsed = nlohmann::json::parse(v, nullptr, false);
        info[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
    }
    print_document({{"status", status}, {"info", info}}, format);
    return {};
}

int for_each_id(const std::vector<std::string>& ids, const std::function<Result<void>(const std::string&)>& fn) {
    int rc = 0;
    for (const auto& id : ids)
        if (auto r = fn(id); !r) rc = report(r.error().wrap(id));
    return rc;
}

}  // namespace

int cmd_ps(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("ps", args,
                               {{"-a|--all", false},
                                {"--id", true},
                                {"-p|--pod", true},
                                {"--name", true},
                                {"-s|--state", true},
                                {"--label", true},
                                {"-q|--quiet", false},
                                {"--no-trunc", false}});
    if (!p) return report(p.error());
    if (!p->positional.empty()) return report(Error(0, fmt::format("ps: unexpected argument {:?}", p->positional[0])));
    v1::ListContainersRequest req;
    auto* filter = req.mutable_filter();
    if (auto id = p->value("--id")) filter->set_id(*id);
    if (auto pod = p->value("--pod")) filter->set_pod_sandbox_id(*pod);
    if (auto s = p->value("--state")) {
        auto st = parse_container_state(*s);
        if (!st) return report(st.error());
        filter->mutable_state()->set_state(*st);
    } else if (!p->has("--all")) {
        filter->mutable_state()->set_state(v1::CONTAINER_RUNNING);
    }
    auto labels = p->labels("--label");
    if (!labels) return report(labels.error());
    for (const auto& [k, v] : *labels) (*filter->mutable_label_selector())[k] = v;

    CriClient client(opts.socket_path);
    auto resp = client.runtime(&Stub::ListContainers, "ListContainers", req);
    if (!resp) return report(resp.error());
    const auto name = p->value("--name");
    std::vector<const v1::Container*> containers;
    for (const auto& c : resp->containers())
        if (!name || c.metadata().name().find(*name) != std::string::npos) containers.push_back(&c);
    std::sort(containers.begin(), containers.end(), [](auto* a, auto* b) { return a->created_at() > b->created_at(); });

    if (p->has("--quiet")) {
        for (auto* c : containers) std::printf("%s\n", c->id().c_str());
        return 0;
    }
    if (opts.output != OutputFormat::table) {
        nlohmann::json items = nlohmann::json::array();
        for (auto* c : containers) {
            auto j = message_to_json(*c);
            if (!j) return report(j.error());
            items.push_back(std::move(*j));
        }
        print_document({{"containers", items}}, opts.output);
        return 0;
    }
    // The POD column names the pod: one ListPodSandbox for all rows.
    std::map<std::string, std::string> pod_names;
    if (!containers.empty()) {
        auto pods = client.runtime(&Stub::ListPodSandbox, "ListPodSandbox", v1::ListPodSandboxRequest());
        if (!pods) return report(pods.error());
        for (const auto& pod : pods->items()) pod_names[pod.id()] = pod.metadata().name();
    }
    const bool no_trunc = p->has("--no-trunc");
    const int64_t now = now_ns();
    Table t({"CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"});
    for (auto* c : containers)
        t.add_row({short_id(c->id(), no_trunc), image_column(c->image(), c->image_ref(), no_trunc),
                   human_age(c->created_at(), now), container_state_name(c->state()), c->metadata().name(),
                   std::to_string(c->metadata().attempt()), short_id(c->pod_sandbox_id(), no_trunc),
                   pod_names.contains(c->pod_sandbox_id()) ? pod_names[c->pod_sandbox_id()] : ""});
    std::fputs(t.render().c_str(), stdout);
    return 0;
}

int cmd_create(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("create", args, {});
    if (!p) return report(p.error());
    if (p->positional.size() != 3)
        return report(Error(0, "create: expected POD_ID CONTAINER_CONFIG POD_CONFIG (config files: JSON or YAML)"));
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(p->positional[0]);
    if (auto r = load_message(p->positional[1], *req.mutable_config()); !r) return report(r.error());
    if (auto r = load_message(p->positional[2], *req.mutable_sandbox_config()); !r) return report(r.error());
    CriClient client(opts.socket_path);
    auto resp = client.runtime(&Stub::CreateContainer, "CreateContainer", req, std::chrono::seconds(240));
    if (!resp) return report(resp.error());
    std::printf("%s\n", resp->container_id().c_str());
    return 0;
}

int cmd_start(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("start", args, {});
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "start: expected CONTAINER_ID..."));
    CriClient client(opts.socket_path);
    return for_each_id(p->positional, [&](const std::string& id) -> Result<void> {
        v1::StartContainerRequest req;
        req.set_container_id(id);
        BERTH_TRY(client.runtime(&Stub::StartContainer, "StartContainer", req, std::chrono::seconds(120)));
        std::printf("%s\n", id.c_str());
        return {};
    });
}

namespace {

Result<void> stop_container(CriClient& client, const std::string& id, long long timeout) {
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    // The daemon waits up to `timeout` before its SIGKILL: give the rpc that long and a margin.
    BERTH_TRY(client.runtime(&Stub::StopContainer, "StopContainer", req, std::chrono::seconds(timeout + 30)));
    return {};
}

}  // namespace

int cmd_stop(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("stop", args, {{"-t|--timeout", true}});
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "stop: expected CONTAINER_ID..."));
    auto timeout = p->number("--timeout");
    if (!timeout) return report(timeout.error());
    CriClient client(opts.socket_path);
    return for_each_id(p->positional, [&](const std::string& id) -> Result<void> {
        BERTH_TRY(stop_container(client, id, timeout->value_or(0)));
        std::printf("%s\n", id.c_str());
        return {};
    });
}

int cmd_rm(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("rm", args, {{"-f|--force", false}, {"-a|--all", false}});
    if (!p) return report(p.error());
    CriClient client(opts.socket_path);
    std::vector<std::string> ids = p->positional;
    if (p->has("--all")) {
        if (!ids.empty()) return report(Error(0, "rm: --all takes no CONTAINER_ID"));
        auto list = client.runtime(&Stub::ListContainers, "ListContainers", v1::ListContainersRequest());
        if (!list) return report(list.error());
        for (const auto& c : list->containers()) ids.push_back(c.id());
    } else if (ids.empty()) {
        return report(Error(0, "rm: expected CONTAINER_ID... or --all"));
    }
    const bool force = p->has("--force");
    return for_each_id(ids, [&](const std::string& id) -> Result<void> {
        v1::ContainerStatusRequest sreq;
        sreq.set_container_id(id);
        BERTH_ASSIGN(auto st, client.runtime(&Stub::ContainerStatus, "ContainerStatus", sreq));
        if (st.status().state() == v1::CONTAINER_RUNNING) {
            if (!force) return fail("container is running: stop it first or use --force");
            BERTH_TRY(stop_container(client, id, 0));
        }
        v1::RemoveContainerRequest req;
        req.set_container_id(id);
        BERTH_TRY(client.runtime(&Stub::RemoveContainer, "RemoveContainer", req, std::chrono::seconds(120)));
        std::printf("%s\n", id.c_str());
        return {};
    });
}

int cmd_inspect(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("inspect", args, {});
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "inspect: expected CONTAINER_ID..."));
    CriClient client(opts.socket_path);
    return for_each_id(p->positional,
                       [&](const std::string& id) { return inspect_container(client, id, opts.output); });
}

int cmd_stats(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("stats", args,
                               {{"--id", true}, {"-p|--pod", true}, {"--label", true}, {"--no-trunc", false}}, 1);
    if (!p) return report(p.error());
    v1::ListContainerStatsRequest req;
    auto* filter = req.mutable_filter();
    if (p->positional.size() > 1) return report(Error(0, "stats: at most one CONTAINER_ID"));
    if (!p->positional.empty()) filter->set_id(p->positional[0]);
    if (auto id = p->value("--id")) filter->set_id(*id);
    if (auto pod = p->value("--pod")) filter->set_pod_sandbox_id(*pod);
    auto labels = p->labels("--label");
    if (!labels) return report(labels.error());
    for (const auto& [k, v] : *labels) (*filter->mutable_label_selector())[k] = v;
    CriClient client(opts.socket_path);
    auto resp = client.runtime(&Stub::ListContainerStats, "ListContainerStats", req);
    if (!resp) return report(resp.error());
    if (opts.output != OutputFormat::table) {
        nlohmann::json items = nlohmann::json::array();
        for (const auto& s : resp->stats()) {
            auto j = message_to_json(s);
            if (!j) return report(j.error());
            items.push_back(std::move(*j));
        }
        print_document({{"stats", items}}, opts.output);
        return 0;
    }
    const bool no_trunc = p->has("--no-trunc");
    Table t({"CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"});
    for (const auto& s : resp->stats()) {
        // usage_nano_cores is a rate: nanoseconds of CPU per second of wall time; 1e9 = one core busy = 100%.
        std::string cpu = s.cpu().has_usage_nano_cores()
                              ? fmt::format("{:.2f}", static_cast<double>(s.cpu().usage_nano_cores().value()) / 1e7)
                              : "-";
        std::string mem =
            s.memory().has_working_set_bytes() ? decimal_size(s.memory().working_set_bytes().value()) : "-";
        std::string disk =
            s.writable_layer().has_used_bytes() ? decimal_size(s.writable_layer().used_bytes().value()) : "-";
        std::string inodes =
            s.writable_layer().has_inodes_used() ? std::to_string(s.writable_layer().inodes_used().value()) : "-";
        t.add_row({short_id(s.attributes().id(), no_trunc), s.attributes().metadata().name(), cpu, mem, disk, inodes});
    }
    std::fputs(t.render().c_str(), stdout);
    return 0;
}

}  // namespace berth::ctl
