// src/cni/result: results of every spec version, the pod IPs picked from them, error results.
#include <gtest/gtest.h>

#include "cni/result.hpp"

namespace berth::cni {
namespace {

using json = nlohmann::json;

TEST(CniResult, Version100PicksTheSandboxInterfaceIps) {
    auto r = parse_add_result(json::parse(R"({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0", "mac": "00:11:22:33:44:55"},
                       {"name": "veth1", "mac": "55:44:33:22:11:11"},
                       {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "fd00::5/64", "interface": 2},
                {"address": "10.1.0.1/16", "interface": 0},
                {"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["10.1.0.1"], "search": ["a.b"], "options": ["ndots:2"], "domain": "b"}})"));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->interfaces.size(), 3u);
    EXPECT_EQ(r->interfaces[2].sandbox, "/run/netns/x");
    ASSERT_EQ(r->ips.size(), 3u);
    EXPECT_EQ(r->ips[0].family, 6);
    EXPECT_EQ(r->ips[2].gateway, "10.1.0.1");
    // The host bridge's address is not the pod's; IPv4 first.
    EXPECT_EQ(r->pod_ips("eth0"), (std::vector<std::string>{"10.1.0.5", "fd00::5"}));
    EXPECT_TRUE(r->pod_ips("net1").empty());
    EXPECT_EQ(r->dns_nameservers, std::vector<std::string>{"10.1.0.1"});
    EXPECT_EQ(r->dns_options, std::vector<std::string>{"ndots:2"});
    EXPECT_EQ(r->dns_domain, "b");
}

TEST(CniResult, Version03And04CarryAVersionField) {
    auto r = parse_add_result(json::parse(R"({"cniVersion": "0.3.1",
        "interfaces": [{"name": "eth0", "sandbox": "/proc/1/ns/net"}],
        "ips": [{"version": "4", "address": "10.2.0.7/24", "interface": 0},
                {"version": "6", "address": "2001:db8::7/64", "interface": 0}]})"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->pod_ips("eth0"), (std::vector<std::string>{"10.2.0.7", "2001:db8::7"}));
    auto bad = parse_add_result(
        json::parse(R"({"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "10.2.0.7/24"}]})"));
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("ips[0].version"), std::string::npos) << bad.error().message();
}

TEST(CniResult, AnIpamStyleResultWithoutInterfacesGivesEveryIp) {
    auto r = parse_add_result(json::parse(R"({"ips": [{"address": "10.3.0.2/24", "gateway": "10.3.0.1"}]})"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->pod_ips("eth0"), std::vector<std::string>{"10.3.0.2"});
}

TEST(CniResult, Version02HasIp4AndIp6Objects) {
    auto r = parse_add_result(json::parse(R"({"cniVersion": "0.2.0",
        "ip4": {"ip": "10.4.0.9/16", "gateway": "10.4.0.1"}, "ip6": {"ip": "fd01::9/64"}})"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->pod_ips("eth0"), (std::vector<std::string>{"10.4.0.9", "fd01::9"}));
    EXPECT_FALSE(parse_add_result(json::parse(R"({"ip4": {"ip": "fd01::9/64"}})")));
}

TEST(CniResult, BadFieldsAreNamed) {
    auto msg = [](const char* text) {
        auto r = parse_add_result(json::parse(text));
        return r ? std::string("(parsed)") : r.error().message();
    };
    EXPECT_EQ(msg(R"({"ips": [{"address": "10.0.0.1"}]})"), "ips[0].address: \"10.0.0.1\" is not an IP in CIDR form");
    EXPECT_EQ(msg(R"({"ips": [{"address": "300.0.0.1/8"}]})"),
              "ips[0].address: \"300.0.0.1/8\" is not an IP in CIDR form");
    EXPECT_EQ(msg(R"({"ips": [{"address": "10.0.0.1/99"}]})"),
              "ips[0].address: \"10.0.0.1/99\" is not an IP in CIDR form");
    EXPECT_EQ(msg(R"({"interfaces": [], "ips": [{"address": "10.0.0.1/8", "interface": 3}]})"),
              "ips[0].interface: 3 is past the 0 interfaces");
    EXPECT_EQ(msg(R"({"ips": {}})"), "ips: not an array");
    EXPECT_EQ(msg(R"([1])"), "result: not a JSON object");
    EXPECT_EQ(msg(R"({"dns": {"nameservers": [1]}})"), "dns.nameservers[0]: not a string");
}

TEST(CniResult, ErrorResults) {
    auto e =
        parse_plugin_error(R"({"cniVersion":"1.0.0","code":7,"msg":"Invalid Configuration","details":"too small"})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, 7);
    EXPECT_EQ(e->msg, "Invalid Configuration");
    EXPECT_EQ(e->details, "too small");
    EXPECT_FALSE(parse_plugin_error("plain text"));
    EXPECT_FALSE(parse_plugin_error(R"({"msg": "no code"})"));
    EXPECT_EQ(error_code_text(11), "try again later");
    EXPECT_EQ(error_code_text(50), "the plugin is not available");
    EXPECT_EQ(error_code_text(123), "");
}

}  // namespace
}  // namespace berth::cni
