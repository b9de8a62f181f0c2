#include "cri/runtime_service.hpp"

#include "cri/container_manager.hpp"
#include "cri/grpc_status.hpp"
#include "cri/pod_manager.hpp"
#include "cri/stream_targets.hpp"
#include "stream/server.hpp"

namespace berth::cri {

// kubelet checks VersionResponse.version against the CRI version it speaks; "0.1.0" is what every runtime.v1
// runtime answers there.
constexpr const char* kCriVersion = "0.1.0";

grpc::Status RuntimeService::Version(grpc::ServerContext*, const v1::VersionRequest*, v1::VersionResponse* resp) {
    resp->set_version(kCriVersion);
    resp->set_runtime_name("berth");
    resp->set_runtime_version(BERTH_VERSION);
    resp->set_runtime_api_version("v1");
    return grpc::Status::OK;
}

grpc::Status RuntimeService::Status(grpc::ServerContext*, const v1::StatusRequest* req, v1::StatusResponse* resp) {
    for (const RuntimeCondition& c : state_.conditions()) {
        v1::RuntimeCondition* out = resp->mutable_status()->add_conditions();
        out->set_type(c.type);
        out->set_status(c.status);
        out->set_reason(c.reason);
        out->set_message(c.message);
    }
    // The default handler (empty name). Its features are false until berth implements them for pods.
    resp->add_runtime_handlers()->mutable_features();
    // Then every handler a pod may name in runtime_handler.
    for (const auto& [name, h] : state_.config().handlers) {
        v1::RuntimeHandler* out = resp->add_runtime_handlers();
        out->set_name(name);
        out->mutable_features();
    }
    resp->mutable_features();
    if (req->verbose()) (*resp->mutable_info())["config"] = state_.verbose_config().dump();
    return grpc::Status::OK;
}

grpc::Status RuntimeService::RuntimeConfig(grpc::ServerContext*, const v1::RuntimeConfigRequest*,
                                           v1::RuntimeConfigResponse* resp) {
    // berth drives cgroupfs directly (src/cgroups); the systemd driver is not there yet.
    resp->mutable_linux()->set_cgroup_driver(v1::CGROUPFS);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::UpdateRuntimeConfig(grpc::ServerContext*, const v1::UpdateRuntimeConfigRequest* req,
                                                 v1::UpdateRuntimeConfigResponse*) {
    // Only the pod CIDR is carried by this rpc; it is kept for the CNI configuration to come.
    state_.set_pod_cidr(req->runtime_config().network_config().pod_cidr());
    return grpc::Status::OK;
}

// ---- Not implemented yet (streaming and stats come from other work): every answer names its rpc. ----

grpc::Status RuntimeService::RunPodSandbox(grpc::ServerContext*, const v1::RunPodSandboxRequest* req,
                                           v1::RunPodSandboxResponse* resp) {
    auto id = pods_.run(*req);
    if (!id) return to_status(id.error());
    resp->set_pod_sandbox_id(*id);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::StopPodSandbox(grpc::ServerContext*, const v1::StopPodSandboxRequest* req,
                                            v1::StopPodSandboxResponse*) {
    if (req->pod_sandbox_id().empty()) return to_status(Error(EINVAL, "pod_sandbox_id: empty"));
    auto r = pods_.stop(req->pod_sandbox_id());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::RemovePodSandbox(grpc::ServerContext*, const v1::RemovePodSandboxRequest* req,
                                              v1::RemovePodSandboxResponse*) {
    if (req->pod_sandbox_id().empty()) return to_status(Error(EINVAL, "pod_sandbox_id: empty"));
    auto r = pods_.remove(req->pod_sandbox_id());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::PodSandboxStatus(grpc::ServerContext*, const v1::PodSandboxStatusRequest* req,
                                              v1::PodSandboxStatusResponse* resp) {
    auto r = pods_.status(req->pod_sandbox_id(), req->verbose(), resp);
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::ListPodSandbox(grpc::ServerContext*, const v1::ListPodSandboxRequest* req,
                                            v1::ListPodSandboxResponse* resp) {
    auto r = pods_.list(req->has_filter() ? &req->filter() : nullptr, resp);
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::StreamPodSandboxes(grpc::ServerContext*, const v1::StreamPodSandboxesRequest* req,
                                                grpc::ServerWriter<v1::StreamPodSandboxesResponse>* writer) {
    v1::ListPodSandboxResponse list;
    auto r = pods_.list(req->has_filter() ? &req->filter() : nullptr, &list);
    if (!r) return to_status(r.error());
    v1::StreamPodSandboxesResponse out;
    *out.mutable_pod_sandboxes() = std::move(*list.mutable_items());
    writer->Write(out);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::CreateContainer(grpc::ServerContext*, const v1::CreateContainerRequest* req,
                                             v1::CreateContainerResponse* resp) {
    auto id = containers_.create(*req);
    if (!id) return to_status(id.error());
    resp->set_container_id(*id);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::StartContainer(grpc::ServerContext*, const v1::StartContainerRequest* req,
                                            v1::StartContainerResponse*) {
    auto r = containers_.start(req->container_id());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::StopContainer(grpc::ServerContext*, const v1::StopContainerRequest* req,
                                           v1::StopContainerResponse*) {
    if (req->container_id().empty()) return to_status(Error(EINVAL, "container_id: empty"));
    auto r = containers_.stop(req->container_id(), req->timeout());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::RemoveContainer(grpc::ServerContext*, const v1::RemoveContainerRequest* req,
                                             v1::RemoveContainerResponse*) {
    if (req->container_id().empty()) return to_status(Error(EINVAL, "container_id: empty"));
    auto r = containers_.remove(req->container_id());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::ListContainers(grpc::ServerContext*, const v1::ListContainersRequest* req,
                                            v1::ListContainersResponse* resp) {
    auto r = containers_.list(req->has_filter() ? &req->filter() : nullptr, resp);
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::StreamContainers(grpc::ServerContext*, const v1::StreamContainersRequest* req,
                                              grpc::ServerWriter<v1::StreamContainersResponse>* writer) {
    v1::ListContainersResponse list;
    auto r = containers_.list(req->has_filter() ? &req->filter() : nullptr, &list);
    if (!r) return to_status(r.error());
    v1::StreamContainersResponse out;
    *out.mutable_containers() = std::move(*list.mutable_containers());
    writer->Write(out);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::ContainerStatus(grpc::ServerContext*, const v1::ContainerStatusRequest* req,
                                             v1::ContainerStatusResponse* resp) {
    auto r = containers_.status(req->container_id(), req->verbose(), resp);
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::UpdateContainerResources(grpc::ServerContext*,
                                                      const v1::UpdateContainerResourcesRequest* req,
                                                      v1::UpdateContainerResourcesResponse*) {
    auto r = containers_.update_resources(req->container_id(), req->linux());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::ReopenContainerLog(grpc::ServerContext*, const v1::ReopenContainerLogRequest* req,
                                                v1::ReopenContainerLogResponse*) {
    auto r = containers_.reopen_log(req->container_id());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::ExecSync(grpc::ServerContext*, const v1::ExecSyncRequest* req,
                                      v1::ExecSyncResponse* resp) {
    auto r = containers_.exec_sync(*req, resp);
    return r ? grpc::Status::OK : to_status(r.error());
}

// ---- Streaming: the rpcs validate and hand out a single-use URL of the streaming server (src/stream/server). ----

namespace {

grpc::Status streaming_unavailable() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "berthd: the streaming server is not running");
}

// The CRI's rules for the stdio flags: at least one stream, and a tty merges stderr into stdout.
Result<void> check_stdio(bool in, bool out, bool err, bool tty) {
    if (!in && !out && !err) return std::unexpected(Error(EINVAL, "one of stdin, stdout and stderr must be true"));
    if (tty && err) return std::unexpected(Error(EINVAL, "tty and stderr cannot both be true (a tty has one output)"));
    return {};
}

}  // namespace

grpc::Status RuntimeService::Exec(grpc::ServerContext*, const v1::ExecRequest* req, v1::ExecResponse* resp) {
    if (!stream_targets_ || !stream_server_) return streaming_unavailable();
    if (req->container_id().empty()) return to_status(Error(EINVAL, "container_id: empty"));
    if (req->cmd().empty()) return to_status(Error(EINVAL, "cmd: empty"));
    if (auto r = check_stdio(req->stdin(), req->stdout(), req->stderr(), req->tty()); !r) return to_status(r.error());
    ExecOptions o{.container_id = req->container_id(),
                  .cmd = {req->cmd().begin(), req->cmd().end()},
                  .tty = req->tty(),
                  .stdin = req->stdin(),
                  .stdout = req->stdout(),
                  .stderr = req->stderr()};
    if (auto r = stream_targets_->check_exec(o); !r) return to_status(r.error());
    auto url = stream_server_->exec_url(o);
    if (!url) return to_status(url.error());
    resp->set_url(*url);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::Attach(grpc::ServerContext*, const v1::AttachRequest* req, v1::AttachResponse* resp) {
    if (!stream_targets_ || !stream_server_) return streaming_unavailable();
    if (req->container_id().empty()) return to_status(Error(EINVAL, "container_id: empty"));
    if (auto r = check_stdio(req->stdin(), req->stdout(), req->stderr(), req->tty()); !r) return to_status(r.error());
    AttachOptions o{.container_id = req->container_id(),
                    .tty = req->tty(),
                    .stdin = req->stdin(),
                    .stdout = req->stdout(),
                    .stderr = req->stderr()};
    if (auto r = stream_targets_->check_attach(o); !r) return to_status(r.error());
    auto url = stream_server_->attach_url(o);
    if (!url) return to_status(url.error());
    resp->set_url(*url);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::PortForward(grpc::ServerContext*, const v1::PortForwardRequest* req,
                                         v1::PortForwardResponse* resp) {
    if (!stream_targets_ || !stream_server_) return streaming_unavailable();
    if (req->pod_sandbox_id().empty()) return to_status(Error(EINVAL, "pod_sandbox_id: empty"));
    std::vector<uint16_t> ports;
    for (int i = 0; i < req->port_size(); ++i) {
        int32_t p = req->port(i);
        if (p < 1 || p > 65535) return to_status(Error(EINVAL, fmt::format("port[{}]: {} is not a TCP port", i, p)));
        ports.push_back(static_cast<uint16_t>(p));
    }
    if (auto r = stream_targets_->check_port_forward(req->pod_sandbox_id()); !r) return to_status(r.error());
    auto url = stream_server_->port_forward_url(req->pod_sandbox_id(), std::move(ports));
    if (!url) return to_status(url.error());
    resp->set_url(*url);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::ContainerStats(grpc::ServerContext*, const v1::ContainerStatsRequest* req,
                                            v1::ContainerStatsResponse* resp) {
    auto r = containers_.stats(req->container_id(), resp->mutable_stats());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::ListContainerStats(grpc::ServerContext*, const v1::ListContainerStatsRequest* req,
                                                v1::ListContainerStatsResponse* resp) {
    auto r = containers_.list_stats(req->has_filter() ? &req->filter() : nullptr, resp);
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::StreamContainerStats(grpc::ServerContext*, const v1::StreamContainerStatsRequest* req,
                                                  grpc::ServerWriter<v1::StreamContainerStatsResponse>* writer) {
    v1::ListContainerStatsResponse list;
    auto r = containers_.list_stats(req->has_filter() ? &req->filter() : nullptr, &list);
    if (!r) return to_status(r.error());
    v1::StreamContainerStatsResponse out;
    *out.mutable_container_stats() = std::move(*list.mutable_stats());
    writer->Write(out);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::PodSandboxStats(grpc::ServerContext*, const v1::PodSandboxStatsRequest* req,
                                             v1::PodSandboxStatsResponse* resp) {
    auto r = pods_.stats(req->pod_sandbox_id(), resp->mutable_stats());
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::ListPodSandboxStats(grpc::ServerContext*, const v1::ListPodSandboxStatsRequest* req,
                                                 v1::ListPodSandboxStatsResponse* resp) {
    auto r = pods_.list_stats(req->has_filter() ? &req->filter() : nullptr, resp);
    return r ? grpc::Status::OK : to_status(r.error());
}

grpc::Status RuntimeService::StreamPodSandboxStats(grpc::ServerContext*, const v1::StreamPodSandboxStatsRequest* req,
                                                   grpc::ServerWriter<v1::StreamPodSandboxStatsResponse>* writer) {
    v1::ListPodSandboxStatsResponse list;
    auto r = pods_.list_stats(req->has_filter() ? &req->filter() : nullptr, &list);
    if (!r) return to_status(r.error());
    v1::StreamPodSandboxStatsResponse out;
    *out.mutable_pod_sandbox_stats() = std::move(*list.mutable_stats());
    writer->Write(out);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::CheckpointContainer(grpc::ServerContext*, const v1::CheckpointContainerRequest*,
                                                 v1::CheckpointContainerResponse*) {
    return not_implemented("CheckpointContainer");
}

grpc::Status RuntimeService::GetContainerEvents(grpc::ServerContext* ctx, const v1::GetEventsRequest*,
                                                grpc::ServerWriter<v1::ContainerEventResponse>* writer) {
    auto sub = events_.subscribe();
    // Woken by each event; the short wait only bounds how late a client's hang-up is noticed.
    constexpr int kCancelCheckMs = 500;
    v1::ContainerEventResponse ev;
    while (!ctx->IsCancelled()) {
        if (!sub->next(ev, kCancelCheckMs)) continue;
        if (!writer->Write(ev)) break;
    }
    events_.unsubscribe(sub);
    return grpc::Status::OK;
}

grpc::Status RuntimeService::ListMetricDescriptors(grpc::ServerContext*, const v1::ListMetricDescriptorsRequest*,
                                                   v1::ListMetricDescriptorsResponse*) {
    return not_implemented("ListMetricDescriptors");
}

grpc::Status RuntimeService::ListPodSandboxMetrics(grpc::ServerContext*, const v1::ListPodSandboxMetricsRequest*,
                                                   v1::ListPodSandboxMetricsResponse*) {
    return not_implemented("ListPodSandboxMetrics");
}

grpc::Status RuntimeService::StreamPodSandboxMetrics(grpc::ServerContext*, const v1::StreamPodSandboxMetricsRequest*,
                                                     grpc::ServerWriter<v1::StreamPodSandboxMetricsResponse>*) {
    return not_implemented("StreamPodSandboxMetrics");
}

grpc::Status RuntimeService::UpdatePodSandboxResources(grpc::ServerContext*,
                                                       const v1::UpdatePodSandboxResourcesRequest*,
                                                       v1::UpdatePodSandboxResourcesResponse*) {
    return not_implemented("UpdatePodSandboxResources");
}

}  // namespace berth::cri
