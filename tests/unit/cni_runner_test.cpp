// src/cni/network (Runner): plugin execution as the spec says, against fake plugins (python3 scripts) that log
// what they were given and answer what their configuration tells them to.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cni/network.hpp"
#include "common/fs.hpp"

namespace berth::cni {
namespace {

using json = nlohmann::json;

// Logs {"command", "env", "stdin"} as one JSON line to the "log" file of its config, then: sleeps "sleep" seconds,
// fails with "fail" (an error result) when the command is in "failOn", answers ADD with "result" or the prevResult.
constexpr const char* kFakePlugin = R"(#!/usr/bin/python3
import json, os, sys, time
conf = json.load(sys.stdin)
env = {k: v for k, v in os.environ.items() if k.startswith("CNI_") or k == "PATH"}
cmd = os.environ.get("CNI_COMMAND", "")
with open(conf["log"], "a") as f:
    f.write(json.dumps({"command": cmd, "env": env, "stdin": conf}) + "\n")
time.sleep(conf.get("sleep", 0))
if cmd in conf.get("failOn", []):
    print(json.dumps(conf["fail"]))
    sys.exit(1)
if cmd == "ADD":
    print(json.dumps(conf.get("result", conf.get("prevResult", {}))))
)";

class CniRunnerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/bcni-runner-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        bin_ = dir_ + "/bin";
        ASSERT_TRUE(mkdir_all(bin_));
        for (const char* name : {"first", "second"}) ASSERT_TRUE(write_file(bin_ + "/" + name, kFakePlugin, 0755));
        ASSERT_TRUE(write_file(bin_ + "/silent-fail", "#!/bin/sh\necho 'something broke' >&2\nexit 3\n", 0755));
        ASSERT_TRUE(write_file(bin_ + "/sleeper", "#!/bin/sh\nexec sleep 30\n", 0755));
        log_ = dir_ + "/calls.log";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    NetworkConfig network(const std::string& version, json extra_second = json::object()) {
        json second = {{"type", "second"}, {"log", log_}, {"capabilities", {{"portMappings", true}, {"mac", false}}}};
        second.update(extra_second);
        json list = {
            {"cniVersion", version},
            {"name", "testnet"},
            {"plugins",
             {{{"type", "first"}, {"log", log_}, {"result", first_result_}, {"runtimeConfig", "stale"}}, second}}};
        auto n = parse_network_config(list.dump(), "t.conflist", true);
        EXPECT_TRUE(n) << n.error().message();
        return *n;
    }
    Attachment attachment() {
        Attachment a;
        a.container_id = "c0ffee";
        a.netns = "/run/netns/x";
        a.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "p"}};
        a.capability_args = {{"portMappings", json::array({{{"hostPort", 8080}, {"containerPort", 80}}})},
                             {"mac", "aa:bb:cc:dd:ee:ff"}};
        return a;
    }
    std::vector<json> calls() {
        std::vector<json> out;
        std::ifstream in(log_);
        for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
        std::filesystem::remove(log_);
        return out;
    }
    Runner runner(int timeout_ms = 10000) {
        return Runner({dir_ + "/empty", bin_}, std::chrono::milliseconds(timeout_ms));
    }

    std::string dir_, bin_, log_;
    json first_result_ = {{"cniVersion", "1.0.0"},
                          {"interfaces", {{{"name", "eth0"}, {"sandbox", "/run/netns/x"}}}},
                          {"ips", {{{"address", "10.213.0.5/24"}, {"interface", 0}}}}};
};

TEST_F(CniRunnerTest, AddChainsPrevResultAndPassesDeclaredCapabilitiesOnly) {
    auto n = network("1.0.0");
    auto r = runner().add(n, attachment());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, first_result_);
    auto c = calls();
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0]["command"], "ADD");
    EXPECT_EQ(c[0]["env"]["CNI_CONTAINERID"], "c0ffee");
    EXPECT_EQ(c[0]["env"]["CNI_NETNS"], "/run/netns/x");
    EXPECT_EQ(c[0]["env"]["CNI_IFNAME"], "eth0");
    EXPECT_EQ(c[0]["env"]["CNI_ARGS"], "IgnoreUnknown=1;K8S_POD_NAME=p");
    EXPECT_EQ(c[0]["env"]["CNI_PATH"], dir_ + "/empty:" + bin_);
    EXPECT_TRUE(c[0]["env"].contains("PATH"));
    // Inserted name and cniVersion; no prevResult for the first; its own runtimeConfig key is not passed on.
    EXPECT_EQ(c[0]["stdin"]["name"], "testnet");
    EXPECT_EQ(c[0]["stdin"]["cniVersion"], "1.0.0");
    EXPECT_FALSE(c[0]["stdin"].contains("prevResult"));
    EXPECT_FALSE(c[0]["stdin"].contains("runtimeConfig"));
    // The second: prevResult = the first's result; runtimeConfig only with what it declares true; no capabilities.
    EXPECT_EQ(c[1]["stdin"]["prevResult"], first_result_);
    EXPECT_EQ(c[1]["stdin"]["runtimeConfig"], json({{"portMappings", {{{"hostPort", 8080}, {"containerPort", 80}}}}}));
    EXPECT_FALSE(c[1]["stdin"].contains("capabilities"));
}

TEST_F(CniRunnerTest, DelRunsInReverseOrderWithTheCachedResult) {
    auto n = network("1.0.0");
    ASSERT_TRUE(runner().del(n, attachment(), first_result_));
    auto c = calls();
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0]["stdin"]["type"], "second");
    EXPECT_EQ(c[1]["stdin"]["type"], "first");
    for (const auto& call : c) {
        EXPECT_EQ(call["command"], "DEL");
        EXPECT_EQ(call["stdin"]["prevResult"], first_result_);
    }
    // No netns (lost) and no result (unknown): still DEL, without them.
    Attachment a = attachment();
    a.netns = "";
    ASSERT_TRUE(runner().del(n, a, json()));
    c = calls();
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0]["env"]["CNI_NETNS"], "");
    EXPECT_FALSE(c[0]["stdin"].contains("prevResult"));
    // 0.3.1 predates prevResult on DEL.
    ASSERT_TRUE(runner().del(network("0.3.1"), attachment(), first_result_));
    c = calls();
    ASSERT_EQ(c.size(), 2u);
    EXPECT_FALSE(c[0]["stdin"].contains("prevResult"));
}

TEST_F(CniRunnerTest, APluginErrorNamesNetworkPluginCommandAndCode) {
    auto n = network(
        "1.0.0",
        {{"failOn", {"ADD"}},
         {"fail",
          {{"cniVersion", "1.0.0"}, {"code", 7}, {"msg", "Invalid Configuration"}, {"details", "subnet too small"}}}});
    auto r = runner().add(n, attachment());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(),
              "network \"testnet\": plugin \"second\" (ADD): Invalid Configuration: subnet too small (CNI error 7: "
              "invalid network config)");
    // Without an error result: the exit status and the last line of stderr.
    n.plugins[0] = {{"type", "silent-fail"}};
    r = runner().add(n, attachment());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "network \"testnet\": plugin \"silent-fail\" (ADD): exit status 3: something broke");
}

TEST_F(CniRunnerTest, AMissingBinaryFailsBeforeAnythingRuns) {
    auto n = network("1.0.0");
    n.plugins[1]["ipam"] = {{"type", "no-such-ipam"}};
    auto r = runner().add(n, attachment());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ENOENT);
    EXPECT_NE(r.error().message().find("plugin \"no-such-ipam\" not found in " + dir_ + "/empty:" + bin_),
              std::string::npos)
        << r.error().message();
    EXPECT_TRUE(calls().empty());
}

TEST_F(CniRunnerTest, ASlowPluginIsKilledAtTheTimeout) {
    auto n = network("1.0.0");
    n.plugins = {{{"type", "sleeper"}}};
    auto start = std::chrono::steady_clock::now();
    auto r = runner(1000).add(n, attachment());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ETIMEDOUT);
    EXPECT_NE(r.error().message().find("plugin \"sleeper\" (ADD): killed after 1000 ms"), std::string::npos)
        << r.error().message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(CniRunnerTest, CheckStatusAndGcFollowTheVersion) {
    // 1.0.0: CHECK runs (with prevResult), STATUS and GC do not.
    auto v100 = network("1.0.0");
    ASSERT_TRUE(runner().check(v100, attachment(), first_result_));
    ASSERT_TRUE(runner().status(v100));
    ASSERT_TRUE(runner().gc(v100, {{"c0ffee", "eth0"}}));
    auto c = calls();
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0]["command"], "CHECK");
    EXPECT_EQ(c[0]["stdin"]["prevResult"], first_result_);
    // 0.3.1: no CHECK.
    ASSERT_TRUE(runner().check(network("0.3.1"), attachment(), first_result_));
    EXPECT_TRUE(calls().empty());
    // disableCheck.
    auto no_check = network("1.0.0");
    no_check.disable_check = true;
    ASSERT_TRUE(runner().check(no_check, attachment(), first_result_));
    EXPECT_TRUE(calls().empty());

    // 1.1.0: STATUS (no container parameters) and GC with the valid attachments.
    auto v110 = network("1.1.0");
    ASSERT_TRUE(runner().status(v110));
    c = calls();
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0]["command"], "STATUS");
    EXPECT_FALSE(c[0]["env"].contains("CNI_CONTAINERID"));
    ASSERT_TRUE(runner().gc(v110, {{"c0ffee", "eth0"}, {"beef", "eth0"}}));
    c = calls();
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0]["command"], "GC");
    EXPECT_EQ(c[0]["stdin"]["cni.dev/valid-attachments"],
              json::parse(R"([{"containerID":"c0ffee","ifname":"eth0"},{"containerID":"beef","ifname":"eth0"}])"));
    v110.disable_gc = true;
    ASSERT_TRUE(runner().gc(v110, {}));
    EXPECT_TRUE(calls().empty());

    // A failing STATUS is the reason the network is not ready.
    auto down = network("1.1.0", {{"failOn", {"STATUS"}}, {"fail", {{"code", 50}, {"msg", "daemon down"}}}});
    auto r = runner().status(down);
    ASSERT_FALSE(r);
    EXPECT_EQ(
        r.error().message(),
        "network \"testnet\": plugin \"second\" (STATUS): daemon down (CNI error 50: the plugin is not available)");
}

}  // namespace
}  // namespace berth::cni
