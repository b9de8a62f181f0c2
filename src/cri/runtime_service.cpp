#include "cri/runtime_service.hpp"

#include "cri/grpc_status.hpp"

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

// ---- Not implemented yet: every answer names its rpc. ----

grpc::Status RuntimeService::RunPodSandbox(grpc::ServerContext*, const v1::RunPodSandboxRequest*,
                                           v1::RunPodSandboxResponse*) {
    return not_implemented("RunPodSandbox");
}

grpc::Status RuntimeService::StopPodSandbox(grpc::ServerContext*, const v1::StopPodSandboxRequest*,
                                            v1::StopPodSandboxResponse*) {
    return not_implemented("StopPodSandbox");
}

grpc::Status RuntimeService::RemovePodSandbox(grpc::ServerContext*, const v1::RemovePodSandboxRequest*,
                                              v1::RemovePodSandboxResponse*) {
    return not_implemented("RemovePodSandbox");
}

grpc::Status RuntimeService::PodSandboxStatus(grpc::ServerContext*, const v1::PodSandboxStatusRequest*,
                                              v1::PodSandboxStatusResponse*) {
    return not_implemented("PodSandboxStatus");
}

grpc::Status RuntimeService::ListPodSandbox(grpc::ServerContext*, const v1::ListPodSandboxRequest*,
                                            v1::ListPodSandboxResponse*) {
    return not_implemented("ListPodSandbox");
}

grpc::Status RuntimeService::StreamPodSandboxes(grpc::ServerContext*, const v1::StreamPodSandboxesRequest*,
                                                grpc::ServerWriter<v1::StreamPodSandboxesResponse>*) {
    return not_implemented("StreamPodSandboxes");
}

grpc::Status RuntimeService::CreateContainer(grpc::ServerContext*, const v1::CreateContainerRequest*,
                                             v1::CreateContainerResponse*) {
    return not_implemented("CreateContainer");
}

grpc::Status RuntimeService::StartContainer(grpc::ServerContext*, const v1::StartContainerRequest*,
                                            v1::StartContainerResponse*) {
    return not_implemented("StartContainer");
}

grpc::Status RuntimeService::StopContainer(grpc::ServerContext*, const v1::StopContainerRequest*,
                                           v1::StopContainerResponse*) {
    return not_implemented("StopContainer");
}

grpc::Status RuntimeService::RemoveContainer(grpc::ServerContext*, const v1::RemoveContainerRequest*,
                                             v1::RemoveContainerResponse*) {
    return not_implemented("RemoveContainer");
}

grpc::Status RuntimeService::ListContainers(grpc::ServerContext*, const v1::ListContainersRequest*,
                                            v1::ListContainersResponse*) {
    return not_implemented("ListContainers");
}

grpc::Status RuntimeService::StreamContainers(grpc::ServerContext*, const v1::StreamContainersRequest*,
                                              grpc::ServerWriter<v1::StreamContainersResponse>*) {
    return not_implemented("StreamContainers");
}

grpc::Status RuntimeService::ContainerStatus(grpc::ServerContext*, const v1::ContainerStatusRequest*,
                                             v1::ContainerStatusResponse*) {
    return not_implemented("ContainerStatus");
}

grpc::Status RuntimeService::UpdateContainerResources(grpc::ServerContext*, const v1::UpdateContainerResourcesRequest*,
                                                      v1::UpdateContainerResourcesResponse*) {
    return not_implemented("UpdateContainerResources");
}

grpc::Status RuntimeService::ReopenContainerLog(grpc::ServerContext*, const v1::ReopenContainerLogRequest*,
                                                v1::ReopenContainerLogResponse*) {
    return not_implemented("ReopenContainerLog");
}

grpc::Status RuntimeService::ExecSync(grpc::ServerContext*, const v1::ExecSyncRequest*, v1::ExecSyncResponse*) {
    return not_implemented("ExecSync");
}

grpc::Status RuntimeService::Exec(grpc::ServerContext*, const v1::ExecRequest*, v1::ExecResponse*) {
    return not_implemented("Exec");
}

grpc::Status RuntimeService::Attach(grpc::ServerContext*, const v1::AttachRequest*, v1::AttachResponse*) {
    return not_implemented("Attach");
}

grpc::Status RuntimeService::PortForward(grpc::ServerContext*, const v1::PortForwardRequest*,
                                         v1::PortForwardResponse*) {
    return not_implemented("PortForward");
}

grpc::Status RuntimeService::ContainerStats(grpc::ServerContext*, const v1::ContainerStatsRequest*,
                                            v1::ContainerStatsResponse*) {
    return not_implemented("ContainerStats");
}

grpc::Status RuntimeService::ListContainerStats(grpc::ServerContext*, const v1::ListContainerStatsRequest*,
                                                v1::ListContainerStatsResponse*) {
    return not_implemented("ListContainerStats");
}

grpc::Status RuntimeService::StreamContainerStats(grpc::ServerContext*, const v1::StreamContainerStatsRequest*,
                                                  grpc::ServerWriter<v1::StreamContainerStatsResponse>*) {
    return not_implemented("StreamContainerStats");
}

grpc::Status RuntimeService::PodSandboxStats(grpc::ServerContext*, const v1::PodSandboxStatsRequest*,
                                             v1::PodSandboxStatsResponse*) {
    return not_implemented("PodSandboxStats");
}

grpc::Status RuntimeService::ListPodSandboxStats(grpc::ServerContext*, const v1::ListPodSandboxStatsRequest*,
                                                 v1::ListPodSandboxStatsResponse*) {
    return not_implemented("ListPodSandboxStats");
}

grpc::Status RuntimeService::StreamPodSandboxStats(grpc::ServerContext*, const v1::StreamPodSandboxStatsRequest*,
                                                   grpc::ServerWriter<v1::StreamPodSandboxStatsResponse>*) {
    return not_implemented("StreamPodSandboxStats");
}

grpc::Status RuntimeService::CheckpointContainer(grpc::ServerContext*, const v1::CheckpointContainerRequest*,
                                                 v1::CheckpointContainerResponse*) {
    return not_implemented("CheckpointContainer");
}

grpc::Status RuntimeService::GetContainerEvents(grpc::ServerContext*, const v1::GetEventsRequest*,
                                                grpc::ServerWriter<v1::ContainerEventResponse>*) {
    return not_implemented("GetContainerEvents");
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
