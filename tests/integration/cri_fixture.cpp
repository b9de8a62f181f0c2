#include "cri_fixture.hpp"

#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "store/images.hpp"

namespace berth::test {

const std::string& busybox_layout() {
    static const std::string layout = [] {
        std::string dir = "/tmp/cricore-busybox-" + std::to_string(::getpid());
        auto made = run_command({"/bin/bash", BERTH_SOURCE_DIR "/scripts/make-oci-busybox.sh", dir});
        EXPECT_EQ(made.exit_code, 0) << made.err;
        std::atexit([] { run_command({"/bin/rm", "-rf", "/tmp/cricore-busybox-" + std::to_string(::getpid())}); });
        return dir;
    }();
    return layout;
}

void CriTest::SetUp() {
    char tmpl[] = "/tmp/cricore-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/root";
    state_ = dir_ + "/s";  // short: monitor sockets live under it
    socket_ = dir_ + "/berth.sock";
    cgroup_parent_ = "/cricore-test/" + std::to_string(::getpid());
    auto images = store::Images::open(root_);
    ASSERT_TRUE(images) << images.error().message();
    auto imported = images->import_oci_layout(busybox_layout());
    ASSERT_TRUE(imported) << imported.error().message();
}

void CriTest::TearDown() {
    if (daemon_ && daemon_->running()) {
        auto stub = runtime();
        grpc::ClientContext ctx;
        v1::ListPodSandboxResponse pods;
        if (stub->ListPodSandbox(&ctx, v1::ListPodSandboxRequest(), &pods).ok())
            for (const auto& p : pods.items()) remove_pod(p.id());
    }
    daemon_.reset();
    // Whatever the daemon left: monitors of containers (their processes), mounts under the temp dir, cgroups.
    run_command({"/bin/sh", "-c",
                 "for p in $(pgrep -f '[b]erth-monitor --id .* --dir " + state_ +
                     "'); do kill -9 $p; done; for p in $(cat $(find /sys/fs/cgroup/pids" + cgroup_parent_ +
                     " -name cgroup.procs 2>/dev/null) 2>/dev/null); do kill -9 $p; done; sleep 0.2; grep -o ' " +
                     dir_ +
                     "[^ ]*' /proc/self/mountinfo | sort -r | while read m; do umount -l $m; done; "
                     "find /sys/fs/cgroup/*" +
                     cgroup_parent_ + " -depth -type d -exec rmdir {} + 2>/dev/null; rm -rf " + dir_});
}

void CriTest::start_daemon(const std::vector<std::string>& extra) {
    extra_ = extra;
    daemon_ = std::make_unique<BerthdProcess>();
    // A configuration file of the test's own: nothing of the host's /etc/berth is used, nor the host's CNI
    // networks (pods get loopback only); CNI tests write their own before starting the daemon.
    if (!std::filesystem::exists(dir_ + "/berth.toml")) write_text(dir_ + "/berth.toml", "[cni]\nenabled = false\n");
    std::vector<std::string> args = {"--config", dir_ + "/berth.toml", "--root",       root_,       "--state-dir",
                                     state_,     "--cgroup-parent",    cgroup_parent_, "--monitor", BERTH_MONITOR_BIN};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(daemon_->start(socket_, args)) << "berthd did not start (exit " << daemon_->exit_code() << "):\n"
                                               << daemon_->output();
}

std::unique_ptr<v1::RuntimeService::Stub> CriTest::runtime() {
    return v1::RuntimeService::NewStub(grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
}

v1::PodSandboxConfig CriTest::pod_config(const std::string& name) {
    v1::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("cricore");
    c.mutable_metadata()->set_uid("cricore-" + name);
    c.set_hostname(name);
    c.set_log_directory(dir_ + "/logs/" + name);
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);
    (*c.mutable_labels())["app"] = name;
    return c;
}

grpc::Status CriTest::run_pod_status(const v1::PodSandboxConfig& config, std::string* id, const std::string& handler) {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    req.set_runtime_handler(handler);
    v1::RunPodSandboxResponse resp;
    grpc::Status st = runtime()->RunPodSandbox(&ctx, req, &resp);
    if (id) *id = resp.pod_sandbox_id();
    return st;
}

std::string CriTest::run_pod(const v1::PodSandboxConfig& config, const std::string& handler) {
    std::string id;
    grpc::Status st = run_pod_status(config, &id, handler);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return id;
}

v1::ContainerConfig CriTest::container_config(const std::string& name, const std::string& script) {
    v1::ContainerConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_image()->set_image(kBusybox);
    c.add_command("/bin/sh");
    c.add_args("-c");
    c.add_args(script);
    c.set_log_path(name + ".log");
    (*c.mutable_labels())["ctr"] = name;
    return c;
}

grpc::Status CriTest::create_container(const std::string& pod, const v1::ContainerConfig& c,
                                       const v1::PodSandboxConfig& pc, std::string* id) {
    grpc::ClientContext ctx;
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_config() = c;
    *req.mutable_sandbox_config() = pc;
    v1::CreateContainerResponse resp;
    grpc::Status st = runtime()->CreateContainer(&ctx, req, &resp);
    if (id) *id = resp.container_id();
    return st;
}

std::string CriTest::create_and_start(const std::string& pod, const v1::ContainerConfig& c,
                                      const v1::PodSandboxConfig& pc) {
    std::string id;
    grpc::Status st = create_container(pod, c, pc, &id);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (!st.ok()) return "";
    st = start_container(id);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return id;
}

grpc::Status CriTest::start_container(const std::string& id) {
    grpc::ClientContext ctx;
    v1::StartContainerRequest req;
    req.set_container_id(id);
    v1::StartContainerResponse resp;
    return runtime()->StartContainer(&ctx, req, &resp);
}

grpc::Status CriTest::stop_container(const std::string& id, int64_t timeout) {
    grpc::ClientContext ctx;
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    v1::StopContainerResponse resp;
    return runtime()->StopContainer(&ctx, req, &resp);
}

grpc::Status CriTest::remove_container(const std::string& id) {
    grpc::ClientContext ctx;
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    v1::RemoveContainerResponse resp;
    return runtime()->RemoveContainer(&ctx, req, &resp);
}

grpc::Status CriTest::stop_pod(const std::string& id) {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse resp;
    return runtime()->StopPodSandbox(&ctx, req, &resp);
}

grpc::Status CriTest::remove_pod(const std::string& id) {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse resp;
    return runtime()->RemovePodSandbox(&ctx, req, &resp);
}

v1::ContainerStatus CriTest::container_status(const std::string& id, grpc::Status* out) {
    grpc::ClientContext ctx;
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    v1::ContainerStatusResponse resp;
    grpc::Status st = runtime()->ContainerStatus(&ctx, req, &resp);
    if (out) *out = st;
    return resp.status();
}

v1::PodSandboxStatus CriTest::pod_status(const std::string& id, grpc::Status* out) {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    v1::PodSandboxStatusResponse resp;
    grpc::Status st = runtime()->PodSandboxStatus(&ctx, req, &resp);
    if (out) *out = st;
    return resp.status();
}

v1::ContainerStatus CriTest::wait_exited(const std::string& id, int timeout_ms) {
    // Status is read again after each GetContainerEvents-free sleep: the test side may poll, the daemon does not.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    v1::ContainerStatus s;
    while (std::chrono::steady_clock::now() < deadline) {
        s = container_status(id);
        if (s.state() == v1::CONTAINER_EXITED) return s;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "container " << id << " did not exit in " << timeout_ms << " ms";
    return s;
}

}  // namespace berth::test
