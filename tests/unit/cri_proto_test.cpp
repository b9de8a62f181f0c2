// Wire facts of proto/api.proto, read back from the compiled descriptors and compared with the upstream CRI
// runtime.v1 values (k8s.io/cri-api api.proto). A renumbered or retyped field breaks kubelet silently; here it
// breaks a test.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::ServiceDescriptor;

// Reached through a generated type: that links the generated code in and builds its descriptors.
const DescriptorPool& pool() {
    return *::runtime::v1::VersionRequest::descriptor()->file()->pool();
}

struct FieldFact {
    const char* name;
    int number;
    FieldDescriptor::Type type;
    bool repeated = false;
    const char* message_type = nullptr;  // full name for message/enum fields
};

constexpr auto STRING = FieldDescriptor::TYPE_STRING;
constexpr auto BOOL = FieldDescriptor::TYPE_BOOL;
constexpr auto INT64 = FieldDescriptor::TYPE_INT64;
constexpr auto INT32 = FieldDescriptor::TYPE_INT32;
constexpr auto UINT32 = FieldDescriptor::TYPE_UINT32;
constexpr auto UINT64 = FieldDescriptor::TYPE_UINT64;
constexpr auto BYTES = FieldDescriptor::TYPE_BYTES;
constexpr auto DOUBLE = FieldDescriptor::TYPE_DOUBLE;
constexpr auto MSG = FieldDescriptor::TYPE_MESSAGE;
constexpr auto ENUM = FieldDescriptor::TYPE_ENUM;

// Checks every listed field, and that the message has no field beyond them.
void expect_fields(const std::string& message, const std::vector<FieldFact>& facts) {
    const Descriptor* d = pool().FindMessageTypeByName("runtime.v1." + message);
    ASSERT_NE(d, nullptr) << message;
    EXPECT_EQ(d->field_count(), static_cast<int>(facts.size())) << message << " has a different number of fields";
    for (const FieldFact& f : facts) {
        const FieldDescriptor* fd = d->FindFieldByName(f.name);
        ASSERT_NE(fd, nullptr) << message << "." << f.name << " is missing";
        EXPECT_EQ(fd->number(), f.number) << message << "." << f.name;
        EXPECT_EQ(fd->type(), f.type) << message << "." << f.name;
        EXPECT_EQ(fd->is_repeated(), f.repeated) << message << "." << f.name;
        if (f.message_type) {
            std::string got = fd->type() == ENUM ? fd->enum_type()->full_name() : fd->message_type()->full_name();
            EXPECT_EQ(got, f.message_type) << message << "." << f.name;
        }
    }
}

void expect_map(const std::string& message, const char* field, int number) {
    const Descriptor* d = pool().FindMessageTypeByName("runtime.v1." + message);
    ASSERT_NE(d, nullptr);
    const FieldDescriptor* fd = d->FindFieldByName(field);
    ASSERT_NE(fd, nullptr) << message << "." << field;
    EXPECT_TRUE(fd->is_map()) << message << "." << field;
    EXPECT_EQ(fd->number(), number) << message << "." << field;
}

void expect_enum(const std::string& name, const std::vector<std::pair<const char*, int>>& values) {
    const EnumDescriptor* e = pool().FindEnumTypeByName("runtime.v1." + name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->value_count(), static_cast<int>(values.size())) << name;
    for (const auto& [value_name, number] : values) {
        const auto* v = e->FindValueByName(value_name);
        ASSERT_NE(v, nullptr) << name << "." << value_name;
        EXPECT_EQ(v->number(), number) << name << "." << value_name;
    }
}

TEST(CriProto, FileAndPackage) {
    const auto* file = ::runtime::v1::VersionRequest::descriptor()->file();
    EXPECT_EQ(file->package(), "runtime.v1");
    EXPECT_EQ(file->syntax(), google::protobuf::FileDescriptor::SYNTAX_PROTO3);
    EXPECT_EQ(file->service_count(), 2);
}

TEST(CriProto, PodSandboxConfig) {
    expect_fields("PodSandboxConfig", {
                                          {"metadata", 1, MSG, false, "runtime.v1.PodSandboxMetadata"},
                                          {"hostname", 2, STRING},
                                          {"log_directory", 3, STRING},
                                          {"dns_config", 4, MSG, false, "runtime.v1.DNSConfig"},
                                          {"port_mappings", 5, MSG, true, "runtime.v1.PortMapping"},
                                          {"labels", 6, MSG, true},
                                          {"annotations", 7, MSG, true},
                                          {"linux", 8, MSG, false, "runtime.v1.LinuxPodSandboxConfig"},
                                          {"windows", 9, MSG, false, "runtime.v1.WindowsPodSandboxConfig"},
                                      });
    expect_map("PodSandboxConfig", "labels", 6);
    expect_map("PodSandboxConfig", "annotations", 7);
    expect_fields("PodSandboxMetadata",
                  {{"name", 1, STRING}, {"uid", 2, STRING}, {"namespace", 3, STRING}, {"attempt", 4, UINT32}});
}

TEST(CriProto, ContainerConfig) {
    expect_fields("ContainerConfig", {
                                         {"metadata", 1, MSG, false, "runtime.v1.ContainerMetadata"},
                                         {"image", 2, MSG, false, "runtime.v1.ImageSpec"},
                                         {"command", 3, STRING, true},
                                         {"args", 4, STRING, true},
                                         {"working_dir", 5, STRING},
                                         {"envs", 6, MSG, true, "runtime.v1.KeyValue"},
                                         {"mounts", 7, MSG, true, "runtime.v1.Mount"},
                                         {"devices", 8, MSG, true, "runtime.v1.Device"},
                                         {"labels", 9, MSG, true},
                                         {"annotations", 10, MSG, true},
                                         {"log_path", 11, STRING},
                                         {"stdin", 12, BOOL},
                                         {"stdin_once", 13, BOOL},
                                         {"tty", 14, BOOL},
                                         {"linux", 15, MSG, false, "runtime.v1.LinuxContainerConfig"},
                                         {"windows", 16, MSG, false, "runtime.v1.WindowsContainerConfig"},
                                         {"CDI_devices", 17, MSG, true, "runtime.v1.CDIDevice"},
                                         {"stop_signal", 18, ENUM, false, "runtime.v1.Signal"},
                                     });
    expect_fields("Mount", {
                               {"container_path", 1, STRING},
                               {"host_path", 2, STRING},
                               {"readonly", 3, BOOL},
                               {"selinux_relabel", 4, BOOL},
                               {"propagation", 5, ENUM, false, "runtime.v1.MountPropagation"},
                               {"uidMappings", 6, MSG, true, "runtime.v1.IDMapping"},
                               {"gidMappings", 7, MSG, true, "runtime.v1.IDMapping"},
                               {"recursive_read_only", 8, BOOL},
                               {"image", 9, MSG, false, "runtime.v1.ImageSpec"},
                               {"image_sub_path", 10, STRING},
                           });
    expect_fields("ImageSpec", {{"image", 1, STRING},
                                {"annotations", 2, MSG, true},
                                {"user_specified_image", 18, STRING},
                                {"runtime_handler", 19, STRING},
                                {"image_ref", 20, STRING}});
}

TEST(CriProto, SecurityContexts) {
    expect_fields("LinuxContainerSecurityContext",
                  {
                      {"capabilities", 1, MSG, false, "runtime.v1.Capability"},
                      {"privileged", 2, BOOL},
                      {"namespace_options", 3, MSG, false, "runtime.v1.NamespaceOption"},
                      {"selinux_options", 4, MSG, false, "runtime.v1.SELinuxOption"},
                      {"run_as_user", 5, MSG, false, "runtime.v1.Int64Value"},
                      {"run_as_username", 6, STRING},
                      {"readonly_rootfs", 7, BOOL},
                      {"supplemental_groups", 8, INT64, true},
                      {"apparmor_profile", 9, STRING},
                      {"seccomp_profile_path", 10, STRING},
                      {"no_new_privs", 11, BOOL},
                      {"run_as_group", 12, MSG, false, "runtime.v1.Int64Value"},
                      {"masked_paths", 13, STRING, true},
                      {"readonly_paths", 14, STRING, true},
                      {"seccomp", 15, MSG, false, "runtime.v1.SecurityProfile"},
                      {"apparmor", 16, MSG, false, "runtime.v1.SecurityProfile"},
                      {"supplemental_groups_policy", 17, ENUM, false, "runtime.v1.SupplementalGroupsPolicy"},
                  });
    expect_fields("LinuxSandboxSecurityContext",
                  {
                      {"namespace_options", 1, MSG, false, "runtime.v1.NamespaceOption"},
                      {"selinux_options", 2, MSG, false, "runtime.v1.SELinuxOption"},
                      {"run_as_user", 3, MSG, false, "runtime.v1.Int64Value"},
                      {"readonly_rootfs", 4, BOOL},
                      {"supplemental_groups", 5, INT64, true},
                      {"privileged", 6, BOOL},
                      {"seccomp_profile_path", 7, STRING},
                      {"run_as_group", 8, MSG, false, "runtime.v1.Int64Value"},
                      {"seccomp", 9, MSG, false, "runtime.v1.SecurityProfile"},
                      {"apparmor", 10, MSG, false, "runtime.v1.SecurityProfile"},
                      {"supplemental_groups_policy", 11, ENUM, false, "runtime.v1.SupplementalGroupsPolicy"},
                  });
    expect_fields("NamespaceOption", {{"network", 1, ENUM, false, "runtime.v1.NamespaceMode"},
                                      {"pid", 2, ENUM, false, "runtime.v1.NamespaceMode"},
                                      {"ipc", 3, ENUM, false, "runtime.v1.NamespaceMode"},
                                      {"target_id", 4, STRING},
                                      {"userns_options", 5, MSG, false, "runtime.v1.UserNamespace"}});
    expect_fields("LinuxContainerResources", {
                                                 {"cpu_period", 1, INT64},
                                                 {"cpu_quota", 2, INT64},
                                                 {"cpu_shares", 3, INT64},
                                                 {"memory_limit_in_bytes", 4, INT64},
                                                 {"oom_score_adj", 5, INT64},
                                                 {"cpuset_cpus", 6, STRING},
                                                 {"cpuset_mems", 7, STRING},
                                                 {"hugepage_limits", 8, MSG, true, "runtime.v1.HugepageLimit"},
                                                 {"unified", 9, MSG, true},
                                                 {"memory_swap_limit_in_bytes", 10, INT64},
                                             });
    // Namespace's only field is number 2 upstream.
    expect_fields("Namespace", {{"options", 2, MSG, false, "runtime.v1.NamespaceOption"}});
}

TEST(CriProto, StatusMessages) {
    expect_fields("ContainerStatus", {
                                         {"id", 1, STRING},
                                         {"metadata", 2, MSG, false, "runtime.v1.ContainerMetadata"},
                                         {"state", 3, ENUM, false, "runtime.v1.ContainerState"},
                                         {"created_at", 4, INT64},
                                         {"started_at", 5, INT64},
                                         {"finished_at", 6, INT64},
                                         {"exit_code", 7, INT32},
                                         {"image", 8, MSG, false, "runtime.v1.ImageSpec"},
                                         {"image_ref", 9, STRING},
                                         {"reason", 10, STRING},
                                         {"message", 11, STRING},
                                         {"labels", 12, MSG, true},
                                         {"annotations", 13, MSG, true},
                                         {"mounts", 14, MSG, true, "runtime.v1.Mount"},
                                         {"log_path", 15, STRING},
                                         {"resources", 16, MSG, false, "runtime.v1.ContainerResources"},
                                         {"image_id", 17, STRING},
                                         {"user", 18, MSG, false, "runtime.v1.ContainerUser"},
                                         {"stop_signal", 19, ENUM, false, "runtime.v1.Signal"},
                                     });
    expect_fields("StatusResponse", {{"status", 1, MSG, false, "runtime.v1.RuntimeStatus"},
                                     {"info", 2, MSG, true},
                                     {"runtime_handlers", 3, MSG, true, "runtime.v1.RuntimeHandler"},
                                     {"features", 4, MSG, false, "runtime.v1.RuntimeFeatures"}});
    expect_fields("VersionResponse", {{"version", 1, STRING},
                                      {"runtime_name", 2, STRING},
                                      {"runtime_version", 3, STRING},
                                      {"runtime_api_version", 4, STRING}});
    expect_fields("ExecSyncResponse", {{"stdout", 1, BYTES}, {"stderr", 2, BYTES}, {"exit_code", 3, INT32}});
    expect_fields("Image", {{"id", 1, STRING},
                            {"repo_tags", 2, STRING, true},
                            {"repo_digests", 3, STRING, true},
                            {"size", 4, UINT64},
                            {"uid", 5, MSG, false, "runtime.v1.Int64Value"},
                            {"username", 6, STRING},
                            {"spec", 7, MSG, false, "runtime.v1.ImageSpec"},
                            {"pinned", 8, BOOL}});
    expect_fields("PsiData", {{"Total", 1, UINT64}, {"Avg10", 2, DOUBLE}, {"Avg60", 3, DOUBLE}, {"Avg300", 4, DOUBLE}});
    expect_fields("MemoryUsage", {{"timestamp", 1, INT64},
                                  {"working_set_bytes", 2, MSG, false, "runtime.v1.UInt64Value"},
                                  {"available_bytes", 3, MSG, false, "runtime.v1.UInt64Value"},
                                  {"usage_bytes", 4, MSG, false, "runtime.v1.UInt64Value"},
                                  {"rss_bytes", 5, MSG, false, "runtime.v1.UInt64Value"},
                                  {"page_faults", 6, MSG, false, "runtime.v1.UInt64Value"},
                                  {"major_page_faults", 7, MSG, false, "runtime.v1.UInt64Value"},
                                  {"psi", 8, MSG, false, "runtime.v1.PsiStats"}});
    expect_fields("ExecRequest", {{"container_id", 1, STRING},
                                  {"cmd", 2, STRING, true},
                                  {"tty", 3, BOOL},
                                  {"stdin", 4, BOOL},
                                  {"stdout", 5, BOOL},
                                  {"stderr", 6, BOOL},
                                  {"audit_request_id", 7, STRING}});
}

TEST(CriProto, Enums) {
    expect_enum(
        "ContainerState",
        {{"CONTAINER_CREATED", 0}, {"CONTAINER_RUNNING", 1}, {"CONTAINER_EXITED", 2}, {"CONTAINER_UNKNOWN", 3}});
    expect_enum("PodSandboxState", {{"SANDBOX_READY", 0}, {"SANDBOX_NOTREADY", 1}});
    expect_enum("NamespaceMode", {{"POD", 0}, {"CONTAINER", 1}, {"NODE", 2}, {"TARGET", 3}});
    expect_enum("CgroupDriver", {{"SYSTEMD", 0}, {"CGROUPFS", 1}});
    expect_enum("MountPropagation",
                {{"PROPAGATION_PRIVATE", 0}, {"PROPAGATION_HOST_TO_CONTAINER", 1}, {"PROPAGATION_BIDIRECTIONAL", 2}});
    expect_enum("ContainerEventType", {{"CONTAINER_CREATED_EVENT", 0},
                                       {"CONTAINER_STARTED_EVENT", 1},
                                       {"CONTAINER_STOPPED_EVENT", 2},
                                       {"CONTAINER_DELETED_EVENT", 3}});
    expect_enum("SecurityProfile.ProfileType", {{"RuntimeDefault", 0}, {"Unconfined", 1}, {"Localhost", 2}});
    expect_enum("Protocol", {{"TCP", 0}, {"UDP", 1}, {"SCTP", 2}});
    expect_enum("SupplementalGroupsPolicy", {{"Merge", 0}, {"Strict", 1}});
    expect_enum("MetricType", {{"COUNTER", 0}, {"GAUGE", 1}});
    // The CRI's own signal numbering, a sample across the range.
    const EnumDescriptor* sig = pool().FindEnumTypeByName("runtime.v1.Signal");
    ASSERT_NE(sig, nullptr);
    EXPECT_EQ(sig->value_count(), 66);
    for (const auto& [name, number] : std::vector<std::pair<const char*, int>>{{"RUNTIME_DEFAULT", 0},
                                                                               {"SIGABRT", 1},
                                                                               {"SIGHUP", 8},
                                                                               {"SIGKILL", 13},
                                                                               {"SIGTERM", 23},
                                                                               {"SIGUSR1", 29},
                                                                               {"SIGXFSZ", 34},
                                                                               {"SIGRTMIN", 35},
                                                                               {"SIGRTMINPLUS15", 50},
                                                                               {"SIGRTMAXMINUS14", 51},
                                                                               {"SIGRTMAX", 65}}) {
        const auto* v = sig->FindValueByName(name);
        ASSERT_NE(v, nullptr) << name;
        EXPECT_EQ(v->number(), number) << name;
    }
}

struct RpcFact {
    const char* name;
    const char* input;
    const char* output;
    bool server_streaming = false;
};

void expect_service(const std::string& name, const std::vector<RpcFact>& rpcs) {
    const ServiceDescriptor* s = pool().FindServiceByName("runtime.v1." + name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->method_count(), static_cast<int>(rpcs.size())) << name;
    for (const RpcFact& r : rpcs) {
        const auto* m = s->FindMethodByName(r.name);
        ASSERT_NE(m, nullptr) << name << "." << r.name;
        EXPECT_EQ(m->input_type()->full_name(), std::string("runtime.v1.") + r.input) << r.name;
        EXPECT_EQ(m->output_type()->full_name(), std::string("runtime.v1.") + r.output) << r.name;
        EXPECT_EQ(m->server_streaming(), r.server_streaming) << r.name;
        EXPECT_FALSE(m->client_streaming()) << r.name;
    }
}

TEST(CriProto, RuntimeServiceRpcs) {
    expect_service(
        "RuntimeService",
        {
            {"Version", "VersionRequest", "VersionResponse"},
            {"RunPodSandbox", "RunPodSandboxRequest", "RunPodSandboxResponse"},
            {"StopPodSandbox", "StopPodSandboxRequest", "StopPodSandboxResponse"},
            {"RemovePodSandbox", "RemovePodSandboxRequest", "RemovePodSandboxResponse"},
            {"PodSandboxStatus", "PodSandboxStatusRequest", "PodSandboxStatusResponse"},
            {"ListPodSandbox", "ListPodSandboxRequest", "ListPodSandboxResponse"},
            {"StreamPodSandboxes", "StreamPodSandboxesRequest", "StreamPodSandboxesResponse", true},
            {"CreateContainer", "CreateContainerRequest", "CreateContainerResponse"},
            {"StartContainer", "StartContainerRequest", "StartContainerResponse"},
            {"StopContainer", "StopContainerRequest", "StopContainerResponse"},
            {"RemoveContainer", "RemoveContainerRequest", "RemoveContainerResponse"},
            {"ListContainers", "ListContainersRequest", "ListContainersResponse"},
            {"StreamContainers", "StreamContainersRequest", "StreamContainersResponse", true},
            {"ContainerStatus", "ContainerStatusRequest", "ContainerStatusResponse"},
            {"UpdateContainerResources", "UpdateContainerResourcesRequest", "UpdateContainerResourcesResponse"},
            {"ReopenContainerLog", "ReopenContainerLogRequest", "ReopenContainerLogResponse"},
            {"ExecSync", "ExecSyncRequest", "ExecSyncResponse"},
            {"Exec", "ExecRequest", "ExecResponse"},
            {"Attach", "AttachRequest", "AttachResponse"},
            {"PortForward", "PortForwardRequest", "PortForwardResponse"},
            {"ContainerStats", "ContainerStatsRequest", "ContainerStatsResponse"},
            {"ListContainerStats", "ListContainerStatsRequest", "ListContainerStatsResponse"},
            {"StreamContainerStats", "StreamContainerStatsRequest", "StreamContainerStatsResponse", true},
            {"PodSandboxStats", "PodSandboxStatsRequest", "PodSandboxStatsResponse"},
            {"ListPodSandboxStats", "ListPodSandboxStatsRequest", "ListPodSandboxStatsResponse"},
            {"StreamPodSandboxStats", "StreamPodSandboxStatsRequest", "StreamPodSandboxStatsResponse", true},
            {"UpdateRuntimeConfig", "UpdateRuntimeConfigRequest", "UpdateRuntimeConfigResponse"},
            {"Status", "StatusRequest", "StatusResponse"},
            {"CheckpointContainer", "CheckpointContainerRequest", "CheckpointContainerResponse"},
            {"GetContainerEvents", "GetEventsRequest", "ContainerEventResponse", true},
            {"ListMetricDescriptors", "ListMetricDescriptorsRequest", "ListMetricDescriptorsResponse"},
            {"ListPodSandboxMetrics", "ListPodSandboxMetricsRequest", "ListPodSandboxMetricsResponse"},
            {"StreamPodSandboxMetrics", "StreamPodSandboxMetricsRequest", "StreamPodSandboxMetricsResponse", true},
            {"RuntimeConfig", "RuntimeConfigRequest", "RuntimeConfigResponse"},
            {"UpdatePodSandboxResources", "UpdatePodSandboxResourcesRequest", "UpdatePodSandboxResourcesResponse"},
        });
}

TEST(CriProto, ImageServiceRpcs) {
    expect_service("ImageService", {
                                       {"ListImages", "ListImagesRequest", "ListImagesResponse"},
                                       {"StreamImages", "StreamImagesRequest", "StreamImagesResponse", true},
                                       {"ImageStatus", "ImageStatusRequest", "ImageStatusResponse"},
                                       {"PullImage", "PullImageRequest", "PullImageResponse"},
                                       {"RemoveImage", "RemoveImageRequest", "RemoveImageResponse"},
                                       {"ImageFsInfo", "ImageFsInfoRequest", "ImageFsInfoResponse"},
                                   });
}

}  // namespace
