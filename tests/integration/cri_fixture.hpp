// A berthd on a private root, state dir, socket and cgroup parent (/cricore-test/<pid>), with the busybox image of
// scripts/make-oci-busybox.sh imported into its root (as localhost/berth/busybox:latest), and CRI helpers.
// TearDown removes every pod through the daemon, kills it, and removes what it left (mounts, cgroups, dirs).
#pragma once

// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "berthd_process.hpp"

namespace berth::test {

namespace v1 = ::runtime::v1;

inline constexpr const char* kBusybox = "localhost/berth/busybox:latest";

class CriTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    // Starts (or restarts) berthd with the fixture's flags plus `extra`, and <dir>/berth.toml (written with CNI
    // disabled unless the test wrote one).
    void start_daemon(const std::vector<std::string>& extra = {});
    std::unique_ptr<v1::RuntimeService::Stub> runtime();

    // A pod config named `name` (namespace cricore, uid cricore-<name>), pid namespace CONTAINER, logs in
    // <dir>/logs/<name>.
    v1::PodSandboxConfig pod_config(const std::string& name);
    // RunPodSandbox; the id, or "" with a test failure.
    std::string run_pod(const v1::PodSandboxConfig& config, const std::string& handler = "");
    grpc::Status run_pod_status(const v1::PodSandboxConfig& config, std::string* id, const std::string& handler = "");
    // A container config running `sh -c script` in busybox, logging to <name>.log.
    v1::ContainerConfig container_config(const std::string& name, const std::string& script);
    grpc::Status create_container(const std::string& pod, const v1::ContainerConfig& c, const v1::PodSandboxConfig& pc,
                                  std::string* id);
    std::string create_and_start(const std::string& pod, const v1::ContainerConfig& c, const v1::PodSandboxConfig& pc);
    grpc::Status start_container(const std::string& id);
    grpc::Status stop_container(const std::string& id, int64_t timeout);
    grpc::Status remove_container(const std::string& id);
    grpc::Status stop_pod(const std::string& id);
    grpc::Status remove_pod(const std::string& id);
    v1::ContainerStatus container_status(const std::string& id, grpc::Status* st = nullptr);
    v1::PodSandboxStatus pod_status(const std::string& id, grpc::Status* st = nullptr);
    // Waits (bounded by `timeout_ms`) until the container is exited; its status.
    v1::ContainerStatus wait_exited(const std::string& id, int timeout_ms = 20000);

    std::string dir_;  // everything of the test
    std::string root_, state_, socket_, cgroup_parent_;
    std::unique_ptr<BerthdProcess> daemon_;
    std::vector<std::string> extra_;  // flags of the last start
};

// The busybox OCI layout, built once per test binary.
const std::string& busybox_layout();

}  // namespace berth::test
