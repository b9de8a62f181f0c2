// A spec from the CRI spec builder, run by the real `berth run` on a busybox rootfs: what the process sees (ids,
// groups, env, cwd, capabilities, the pod's bind-mounted files, hostname) must be what the CRI request asked for.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <sstream>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "cri/spec_builder.hpp"
#include "harness.hpp"
#include "spec/names.hpp"

namespace berth::test {
namespace {

using nlohmann::json;
namespace v1 = cri::v1;

// Containers of these tests live under their own cgroup parent, apart from every other test on the host.
constexpr const char* kCgroupParent = "/crispec-test";

class CriSpec : public BerthTest {
protected:
    void SetUp() override {
        BerthTest::SetUp();
        auto l = cgroups::detect_layout();
        ASSERT_TRUE(l) << l.error().message();
        layout_ = *l;
        write_text(rootfs_ + "/etc/group", "root:x:0:\ntty:x:5:\nstaff:x:50:tester\nnogroup:x:65534:\n");
        pod_dir_ = dir_ + "/pod";
        ASSERT_TRUE(mkdir_all(pod_dir_));
        write_text(pod_dir_ + "/hostname", "crispec-pod\n");
        write_text(pod_dir_ + "/hosts", "127.0.0.1 localhost crispec-pod\n");
        write_text(pod_dir_ + "/resolv.conf", "nameserver 127.0.0.53\n");
    }
    void TearDown() override {
        BerthTest::TearDown();
        // Whatever a failed test left: the container's cgroups, then the parent (removed only when empty).
        for (const auto& base : bases()) {
            std::string dir = base + cg_;
            if (!cg_.empty() && path_exists(dir)) (void)cgroups::CgroupManager::load({{"x", dir}}).destroy(true);
            ::rmdir((base + kCgroupParent).c_str());
        }
    }
    std::vector<std::string> bases() const {
        std::vector<std::string> out;
        for (const auto& [c, mount] : layout_.v1) out.push_back(mount);
        if (!layout_.unified.empty()) out.push_back(layout_.unified);
        return out;
    }

    cgroups::CgroupLayout layout_;
    std::string pod_dir_;
    std::string cg_;
};

uint64_t cap_mask(const json& names) {
    uint64_t m = 0;
    for (const auto& n : names) m |= uint64_t{1} << *spec::capability_from_name(n.get<std::string>());
    return m;
}

TEST_F(CriSpec, ProcessSeesWhatTheRequestAsked) {
    std::string id = fmt::format("crispec-{}", getpid());
    cg_ = std::string(kCgroupParent) + "/" + id;

    v1::ContainerConfig config;
    config.mutable_metadata()->set_name("probe");
    config.add_args("-c");
    config.add_args(
        "grep -E '^(Uid|Gid|Groups|CapEff|NoNewPrivs):' /proc/self/status; echo FOO=$FOO; echo BAR=$BAR; "
        "echo CWD=$(pwd); echo HOSTFILE=$(cat /etc/hostname); echo HOSTNAME=$(hostname); "
        "echo OOM=$(cat /proc/self/oom_score_adj); cat /etc/resolv.conf; echo from-container > /dev/shm/probe");
    config.set_working_dir("/tmp");
    auto* env = config.add_envs();
    env->set_key("FOO");
    env->set_value("from-cri");
    auto* sc = config.mutable_linux()->mutable_security_context();
    sc->set_run_as_username("tester");
    sc->add_supplemental_groups(4000);
    sc->set_no_new_privs(true);
    sc->mutable_capabilities()->add_drop_capabilities("KILL");
    sc->mutable_capabilities()->add_add_capabilities("net_admin");
    sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    sc->mutable_namespace_options()->set_pid(v1::CONTAINER);
    config.mutable_linux()->mutable_resources()->set_oom_score_adj(321);
    config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);

    v1::PodSandboxConfig pod_config;
    pod_config.mutable_metadata()->set_name("crispec-pod");
    pod_config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);

    cri::PodContext pod;
    pod.pod_id = "crispec-pod-id";
    pod.cgroup_parent = kCgroupParent;
    pod.hostname = "crispec-pod";
    pod.hostname_path = pod_dir_ + "/hostname";
    pod.hosts_path = pod_dir_ + "/hosts";
    pod.resolv_conf_path = pod_dir_ + "/resolv.conf";
    pod.shm_path = pod_dir_ + "/shm";
    ASSERT_TRUE(mkdir_all(pod.shm_path, 01777));
    ASSERT_EQ(::chmod(pod.shm_path.c_str(), 01777), 0);

    cri::ImageContext image;
    image.image_ref = "busybox-test";
    image.rootfs_path = rootfs_;
    image.config = json::parse(R"({"config": {"Entrypoint": ["/bin/sh"], "Cmd": ["-c", "exit 3"],
                                              "Env": ["PATH=/bin", "BAR=from-image"], "User": "nobody"}})");
    cri::HostContext host;

    auto spec = cri::build_container_spec(id, config, pod_config, pod, image, host);
    ASSERT_TRUE(spec) << spec.error().message();
    EXPECT_EQ((*spec)["linux"]["cgroupsPath"], cg_);
    write_config(*spec);
    auto r = berth({"run", "--bundle", bundle_, id});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;

    std::map<std::string, std::string> seen;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        auto sep = line.find_first_of(":=");
        if (sep == std::string::npos) continue;
        std::string value = line.substr(sep + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        seen[line.substr(0, sep)] = trim(value);
    }
    EXPECT_EQ(seen["Uid"], "1000\t1000\t1000\t1000") << r.out;
    EXPECT_EQ(seen["Gid"], "1000\t1000\t1000\t1000") << r.out;
    EXPECT_EQ(seen["Groups"], "50 1000 4000") << r.out;  // the kernel lists them sorted
    EXPECT_EQ(seen["NoNewPrivs"], "1");
    EXPECT_EQ(std::stoull(seen["CapEff"], nullptr, 16), 0u) << "a non-root user keeps no effective capabilities";
    EXPECT_EQ(seen["FOO"], "from-cri");
    EXPECT_EQ(seen["BAR"], "from-image");
    EXPECT_EQ(seen["CWD"], "/tmp");
    EXPECT_EQ(seen["HOSTFILE"], "crispec-pod");
    EXPECT_EQ(seen["HOSTNAME"], "crispec-pod");
    EXPECT_EQ(seen["OOM"], "321");
    EXPECT_NE(r.out.find("nameserver 127.0.0.53"), std::string::npos) << r.out;
    // /dev/shm is the pod's directory: what the container wrote there is on the host.
    EXPECT_EQ(trim(read_text(pod.shm_path + "/probe")), "from-container");
}

TEST_F(CriSpec, RootContainerHasTheRequestedCapabilities) {
    std::string id = fmt::format("crispec-caps-{}", getpid());
    cg_ = std::string(kCgroupParent) + "/" + id;

    v1::ContainerConfig config;
    config.mutable_metadata()->set_name("caps");
    config.add_command("/bin/sh");
    config.add_args("-c");
    config.add_args("grep -E '^Cap(Eff|Bnd):' /proc/self/status; id -u");
    auto* sc = config.mutable_linux()->mutable_security_context();
    sc->mutable_capabilities()->add_drop_capabilities("CAP_KILL");
    sc->mutable_capabilities()->add_add_capabilities("NET_ADMIN");
    sc->mutable_namespace_options()->set_pid(v1::CONTAINER);
    sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    v1::PodSandboxConfig pod_config;
    cri::PodContext pod;
    pod.pod_id = "crispec-pod-id";
    pod.cgroup_parent = kCgroupParent;
    cri::ImageContext image;
    image.image_ref = "busybox-test";
    image.rootfs_path = rootfs_;
    cri::HostContext host;

    auto spec = cri::build_container_spec(id, config, pod_config, pod, image, host);
    ASSERT_TRUE(spec) << spec.error().message();
    uint64_t want = cap_mask((*spec)["process"]["capabilities"]["effective"]);
    EXPECT_TRUE(want & (uint64_t{1} << *spec::capability_from_name("CAP_NET_ADMIN")));
    EXPECT_FALSE(want & (uint64_t{1} << *spec::capability_from_name("CAP_KILL")));
    write_config(*spec);
    auto r = berth({"run", "--bundle", bundle_, id});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_NE(r.out.find(fmt::format("CapEff:\t{:016x}", want)), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(fmt::format("CapBnd:\t{:016x}", want)), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\n0\n"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace berth::test
