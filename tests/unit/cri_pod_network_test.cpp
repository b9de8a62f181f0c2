// cri::PodNetwork's pure parts: the capability arguments a pod config turns into (portMappings, bandwidth, ips,
// mac), and NetworkReady of a config dir without a daemon.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/fs.hpp"
#include "cri/pod_network.hpp"

namespace berth::cri {
namespace {

using json = nlohmann::json;

TEST(PodNetworkCapabilities, PortMappingsWithAHostPortOnly) {
    v1::PodSandboxConfig c;
    auto* a = c.add_port_mappings();
    a->set_protocol(v1::TCP);
    a->set_container_port(80);
    a->set_host_port(8080);
    auto* b = c.add_port_mappings();
    b->set_protocol(v1::UDP);
    b->set_container_port(53);
    b->set_host_port(5353);
    b->set_host_ip("127.0.0.1");
    auto* none = c.add_port_mappings();  // a container port alone: nothing on the host
    none->set_container_port(9000);
    auto caps = PodNetwork::capability_args(c);
    ASSERT_TRUE(caps) << caps.error().message();
    EXPECT_EQ(*caps, json::parse(R"({"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}]})"));
    a->set_container_port(0);
    auto bad = PodNetwork::capability_args(c);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), EINVAL);
    EXPECT_NE(bad.error().message().find("config.port_mappings[0]"), std::string::npos);
}

TEST(PodNetworkCapabilities, BandwidthIpsAndMacFromAnnotations) {
    v1::PodSandboxConfig c;
    (*c.mutable_annotations())["kubernetes.io/ingress-bandwidth"] = "10M";
    (*c.mutable_annotations())["kubernetes.io/egress-bandwidth"] = "1Gi";
    (*c.mutable_annotations())["berth.dev/ips"] = "10.213.9.7/24, fd00::7/64";
    (*c.mutable_annotations())["berth.dev/mac"] = "02:42:ac:11:00:07";
    auto caps = PodNetwork::capability_args(c);
    ASSERT_TRUE(caps) << caps.error().message();
    EXPECT_EQ((*caps)["bandwidth"]["ingressRate"], 10000000u);
    EXPECT_EQ((*caps)["bandwidth"]["egressRate"], 1073741824u);
    EXPECT_EQ((*caps)["bandwidth"]["ingressBurst"], 4294967295u);
    EXPECT_EQ((*caps)["ips"], json::parse(R"(["10.213.9.7/24", "fd00::7/64"])"));
    EXPECT_EQ((*caps)["mac"], "02:42:ac:11:00:07");
    (*c.mutable_annotations())["kubernetes.io/ingress-bandwidth"] = "ten";
    auto bad = PodNetwork::capability_args(c);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("config.annotations[kubernetes.io/ingress-bandwidth]: \"ten\""),
              std::string::npos)
        << bad.error().message();
    EXPECT_EQ(*PodNetwork::capability_args(v1::PodSandboxConfig()), json::object());
}

TEST(PodNetworkReady, FollowsTheConfigDir) {
    char tmpl[] = "/tmp/bcni-ready-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    DaemonConfig cfg;
    cfg.root_dir = dir + "/root";
    cfg.cni_conf_dir = dir + "/net.d";
    cfg.cni_bin_dirs = {dir + "/bin"};
    PodNetwork net(cfg);
    auto c = net.condition();
    EXPECT_FALSE(c.status);
    EXPECT_EQ(c.reason, "NetworkPluginNotReady");
    EXPECT_NE(c.message.find("CNI is not configured: no network configuration"), std::string::npos) << c.message;
    ASSERT_TRUE(mkdir_all(cfg.cni_conf_dir));
    ASSERT_TRUE(write_file(cfg.cni_conf_dir + "/1.conflist",
                           R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"fake"}]})"));
    c = net.condition();
    EXPECT_FALSE(c.status);
    EXPECT_NE(c.message.find("plugin \"fake\" not found in " + dir + "/bin"), std::string::npos) << c.message;
    ASSERT_TRUE(mkdir_all(dir + "/bin"));
    ASSERT_TRUE(write_file(dir + "/bin/fake", "#!/bin/sh\nexit 0\n", 0755));
    c = net.condition();
    EXPECT_TRUE(c.status) << c.message;
    EXPECT_EQ(c.reason, "");
    DaemonConfig off = cfg;
    off.cni_enabled = false;
    c = PodNetwork(off).condition();
    EXPECT_FALSE(c.status);
    EXPECT_NE(c.message.find("CNI is disabled"), std::string::npos);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace berth::cri
