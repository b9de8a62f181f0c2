// berthd's pod networking through CNI with Debian's containernetworking-plugins (/usr/lib/cni): bridge + host-local
// + portmap on a private bridge (bcni<N>), subnet (10.213.<N>.0/24), config dir and IPAM data dir per test. Pods
// reach each other by IP, hostPort reaches a pod from the host on 127.0.0.1, 100 cycles leak nothing, broken
// plugins and configs fail clearly and leave nothing, a config appearing later makes the network ready, DEL works
// after a berthd restart and after the pod's namespace was lost.
//
// TearDown removes the pods through berthd (their DEL), then the bridge, portmap's shared chains when no other
// port mapping is left in them, and restores net.ipv4.ip_forward (the bridge plugin's isGateway turns it on).
#include "cri_fixture.hpp"
// (cri_fixture.hpp includes the CRI headers first.)
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness.hpp"
#include "store/cri_records.hpp"

namespace berth::test {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kPluginDir = "/usr/lib/cni";

std::string read_sysctl(const std::string& name) {
    return trim(read_text("/proc/sys/" + name));
}

class CriNetworkTest : public CriTest {
protected:
    void SetUp() override {
        if (!fs::exists(std::string(kPluginDir) + "/bridge")) GTEST_SKIP() << "containernetworking-plugins missing";
        CriTest::SetUp();
        if (HasFatalFailure()) return;
        static std::atomic<int> counter{0};
        // A subnet and bridge per test, apart from other runs of this binary (by pid).
        index_ = static_cast<int>((::getpid() * 7 + counter++) % 200) + 20;
        bridge_ = "bcni" + std::to_string(index_);
        subnet_prefix_ = "10.213." + std::to_string(index_) + ".";
        conf_dir_ = dir_ + "/net.d";
        ipam_dir_ = dir_ + "/ipam";
        bin_dir_ = dir_ + "/bin";
        fs::create_directories(conf_dir_);
        fs::create_directories(bin_dir_);
        ip_forward_ = read_sysctl("net/ipv4/ip_forward");
        nat_before_ = run_command({"/usr/sbin/iptables", "-t", "nat", "-S"}).out;
        write_text(dir_ + "/berth.toml", "[cni]\nconf_dir = \"" + conf_dir_ + "\"\nbin_dirs = [\"" + bin_dir_ +
                                             "\", \"" + kPluginDir + "\"]\nplugin_timeout = 20\n");
    }

    void TearDown() override {
        if (dir_.empty()) return;
        CriTest::TearDown();  // pods removed through berthd: their DEL
        run_command({"/usr/sbin/ip", "link", "del", bridge_});
        // portmap leaves its shared chains; remove them when they hold nothing of anybody and were not there before.
        std::string nat = run_command({"/usr/sbin/iptables", "-t", "nat", "-S"}).out;
        if (nat_before_.find("CNI-HOSTPORT-DNAT") == std::string::npos &&
            nat.find("CNI-HOSTPORT-DNAT") != std::string::npos && nat.find("-N CNI-DN-") == std::string::npos) {
            run_command({"/bin/sh", "-c",
                         "iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT;"
                         "iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT;"
                         "iptables -t nat -D POSTROUTING -m comment --comment 'CNI portfwd requiring masquerade' "
                         "-j CNI-HOSTPORT-MASQ;"
                         "for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do "
                         "iptables -t nat -F $c; iptables -t nat -X $c; done"});
        }
        write_text("/proc/sys/net/ipv4/ip_forward", ip_forward_ + "\n");
    }

    // bridge (+ host-local on the test's subnet) then `more` plugins, as the test's only network.
    void write_network(const json& more = json::array(), const std::string& version = "1.0.0",
                       const std::string& file = "10-test.conflist") {
        json plugins = json::array();
        plugins.push_back({{"type", "bridge"},
                           {"bridge", bridge_},
                           {"isGateway", true},
                           {"ipMasq", false},
                           {"hairpinMode", true},
                           {"ipam",
                            {{"type", "host-local"},
                             {"dataDir", ipam_dir_},
                             {"ranges", {{{{"subnet", subnet_prefix_ + "0/24"}}}}}}}});
        for (const auto& p : more) plugins.push_back(p);
        write_text(conf_dir_ + "/" + file,
                   json{{"cniVersion", version}, {"name", "bcni-test"}, {"plugins", plugins}}.dump(2));
    }
    static json portmap() { return {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}; }

    v1::RuntimeCondition network_ready() {
        grpc::ClientContext ctx;
        v1::StatusResponse resp;
        grpc::Status st = runtime()->Status(&ctx, v1::StatusRequest(), &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        for (const auto& c : resp.status().conditions())
            if (c.type() == "NetworkReady") return c;
        ADD_FAILURE() << "no NetworkReady condition";
        return {};
    }
    json verbose_info(const std::string& pod) {
        grpc::ClientContext ctx;
        v1::PodSandboxStatusRequest req;
        req.set_pod_sandbox_id(pod);
        req.set_verbose(true);
        v1::PodSandboxStatusResponse resp;
        grpc::Status st = runtime()->PodSandboxStatus(&ctx, req, &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        return resp.info().contains("info") ? json::parse(resp.info().at("info")) : json();
    }

    // The veths plugged into the test's bridge (none once every pod is gone).
    std::vector<std::string> bridge_ports() {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator("/sys/class/net/" + bridge_ + "/brif", ec))
            out.push_back(e.path().filename());
        return out;
    }
    // host-local's reservations: one file per IP in <dataDir>/<network>, besides its lock and last_reserved_ip.
    std::vector<std::string> reservations() {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(ipam_dir_ + "/bcni-test", ec)) {
            std::string n = e.path().filename();
            if (n != "lock" && !n.starts_with("last_reserved_ip")) out.push_back(n);
        }
        return out;
    }
    std::vector<std::string> files_in(const std::string& dir) {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
        return out;
    }
    // Everything a pod's network leaves is gone: no veth, no IP, no pod dir (netns pin), no cached attachment.
    void expect_nothing_left() {
        EXPECT_TRUE(bridge_ports().empty()) << "veths left on " << bridge_ << ": " << bridge_ports().size();
        EXPECT_TRUE(reservations().empty()) << "IPs left: " << (reservations().empty() ? "" : reservations()[0]);
        EXPECT_TRUE(files_in(state_ + "/pods").empty()) << "pod dirs left";
        EXPECT_TRUE(files_in(root_ + "/cni").empty()) << "CNI caches left";
        EXPECT_EQ(run_command({"/usr/sbin/iptables", "-t", "nat", "-S"}).out.find("-N CNI-DN-"), std::string::npos);
    }

    v1::PodSandboxConfig net_pod(const std::string& name) {
        auto c = pod_config(name);
        fs::create_directories(c.log_directory());
        return c;
    }

    int index_ = 0;
    std::string bridge_, subnet_prefix_, conf_dir_, ipam_dir_, bin_dir_, ip_forward_, nat_before_;
};

TEST_F(CriNetworkTest, TwoPodsTalkByIpAndHostPortReachesAPodOnLoopback) {
    write_network(json::array({portmap()}));
    start_daemon();
    ASSERT_TRUE(network_ready().status()) << network_ready().message();

    const int host_port = 15450 + index_ % 40;
    auto server_cfg = net_pod("server");
    auto* pm = server_cfg.add_port_mappings();
    pm->set_protocol(v1::TCP);
    pm->set_container_port(8080);
    pm->set_host_port(host_port);
    pm->set_host_ip("127.0.0.1");
    std::string server = run_pod(server_cfg);
    ASSERT_FALSE(server.empty());
    auto server_status = pod_status(server);
    const std::string server_ip = server_status.network().ip();
    EXPECT_TRUE(server_ip.starts_with(subnet_prefix_)) << server_ip;
    EXPECT_EQ(server_status.network().additional_ips_size(), 0);
    auto info = verbose_info(server);
    EXPECT_EQ(info["cni"]["network"], "bcni-test");
    EXPECT_TRUE(info["cni"].contains("check"));  // (Debian's portmap 1.1.1 fails its own CHECK: docs/networking.md)
    create_and_start(server,
                     container_config("httpd",
                                      "mkdir -p /www && echo hello-from-server > /www/index.html && "
                                      "exec httpd -f -p 8080 -h /www"),
                     server_cfg);

    auto client_cfg = net_pod("client");
    client_cfg.mutable_dns_config()->add_servers("10.213.0.53");
    client_cfg.mutable_dns_config()->add_searches("bcni.svc");
    client_cfg.mutable_dns_config()->add_options("ndots:3");
    std::string client = run_pod(client_cfg);
    ASSERT_FALSE(client.empty());
    const std::string client_ip = pod_status(client).network().ip();
    EXPECT_TRUE(client_ip.starts_with(subnet_prefix_)) << client_ip;
    EXPECT_NE(client_ip, server_ip);
    // The request goes out with nc: Debian's busybox-static 1.35 `wget` crashes (SIGSEGV) before it connects, on
    // the host as in a container.
    std::string id =
        create_and_start(client,
                         container_config("client",
                                          "cat /etc/resolv.conf; ip -o -4 addr show eth0; for i in $(seq 50); do "
                                          "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 " +
                                              server_ip + " 8080 | grep hello && exit 0; sleep 0.2; done; exit 1"),
                         client_cfg);
    auto s = wait_exited(id, 30000);
    const std::string log = read_text(dir_ + "/logs/client/client.log");
    EXPECT_EQ(s.exit_code(), 0) << log << "\nserver: " << read_text(dir_ + "/logs/server/httpd.log");
    EXPECT_NE(log.find("hello-from-server"), std::string::npos) << log;
    EXPECT_NE(log.find("nameserver 10.213.0.53"), std::string::npos) << log;
    EXPECT_NE(log.find("options ndots:3"), std::string::npos) << log;
    EXPECT_NE(log.find("inet " + client_ip + "/24"), std::string::npos) << log;

    // hostPort from the host on 127.0.0.1: portmap's DNAT in OUTPUT; it sets route_localnet on the bridge and
    // masquerades the 127.0.0.1 source (by its mark only), so the reply finds its way back.
    std::string got;
    for (int i = 0; i < 50 && got.find("hello-from-server") == std::string::npos; ++i) {
        got =
            run_command({"/usr/bin/curl", "-s", "-m", "2", "http://127.0.0.1:" + std::to_string(host_port) + "/"}).out;
        if (got.find("hello-from-server") == std::string::npos)
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_NE(got.find("hello-from-server"), std::string::npos) << got;
    EXPECT_EQ(read_sysctl("net/ipv4/conf/" + bridge_ + "/route_localnet"), "1");

    // Stop runs DEL (idempotent): the veths, IPs and the port mapping's chain go.
    for (const auto& p : {server, client}) {
        ASSERT_TRUE(stop_pod(p).ok());
        ASSERT_TRUE(stop_pod(p).ok());
        EXPECT_EQ(pod_status(p).network().ip(), "");
    }
    EXPECT_TRUE(bridge_ports().empty());
    EXPECT_TRUE(reservations().empty());
    EXPECT_EQ(run_command({"/usr/sbin/iptables", "-t", "nat", "-S"}).out.find("-N CNI-DN-"), std::string::npos);
    for (const auto& p : {server, client}) ASSERT_TRUE(remove_pod(p).ok());
    expect_nothing_left();
}

TEST_F(CriNetworkTest, HundredCyclesLeakNoIpVethOrNamespace) {
    write_network(json::array({portmap()}));
    start_daemon();
    std::set<std::string> ips;
    for (int i = 0; i < 100; ++i) {
        auto cfg = net_pod("cycle");
        cfg.mutable_metadata()->set_attempt(static_cast<uint32_t>(i));
        std::string id = run_pod(cfg);
        ASSERT_FALSE(id.empty()) << "cycle " << i;
        ips.insert(pod_status(id).network().ip());
        ASSERT_TRUE(stop_pod(id).ok()) << "cycle " << i;
        ASSERT_TRUE(remove_pod(id).ok()) << "cycle " << i;
    }
    EXPECT_FALSE(ips.contains(""));
    expect_nothing_left();
}

TEST_F(CriNetworkTest, ABrokenPluginFailsRunPodSandboxClearlyAndLeavesNothing) {
    // Exits 1 with an error result on ADD, succeeds on DEL (as plugins must), after the bridge made a veth and an IP.
    write_text(
        bin_dir_ + "/bcni-broken",
        "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then\n"
        "  echo '{\"cniVersion\":\"1.0.0\",\"code\":101,\"msg\":\"firewall is on fire\",\"details\":\"rule 7\"}'\n"
        "  exit 1\nfi\nexit 0\n",
        0755);
    write_network(json::array({{{"type", "bcni-broken"}}}));
    start_daemon();
    ASSERT_TRUE(network_ready().status()) << network_ready().message();
    std::string id;
    grpc::Status st = run_pod_status(net_pod("broken"), &id);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error_message().find(
                  "network \"bcni-test\": plugin \"bcni-broken\" (ADD): firewall is on fire: rule 7 (CNI error 101)"),
              std::string::npos)
        << st.error_message();
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse pods;
    ASSERT_TRUE(runtime()->ListPodSandbox(&ctx, v1::ListPodSandboxRequest(), &pods).ok());
    EXPECT_EQ(pods.items_size(), 0);
    expect_nothing_left();
}

TEST_F(CriNetworkTest, BrokenConfigsMakeTheNetworkNotReadyWithTheReason) {
    start_daemon();
    // No config at all.
    auto c = network_ready();
    EXPECT_FALSE(c.status());
    EXPECT_EQ(c.reason(), "NetworkPluginNotReady");
    EXPECT_NE(c.message().find("CNI is not configured: no network configuration"), std::string::npos) << c.message();
    EXPECT_NE(c.message().find(conf_dir_), std::string::npos) << c.message();
    std::string id;
    grpc::Status st = run_pod_status(net_pod("early"), &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
    EXPECT_NE(st.error_message().find("network plugin is not ready"), std::string::npos) << st.error_message();
    // hostNetwork pods need no CNI.
    auto host_cfg = net_pod("hostnet");
    host_cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(v1::NODE);
    std::string host_pod = run_pod(host_cfg);
    EXPECT_FALSE(host_pod.empty());
    EXPECT_EQ(pod_status(host_pod).network().ip(), "");

    // A bad file: its name and the field.
    write_text(conf_dir_ + "/05-bad.conflist", R"({"cniVersion":"1.0.0","name":"bad","plugins":[{"bridge":"x"}]})");
    c = network_ready();
    EXPECT_FALSE(c.status());
    EXPECT_NE(c.message().find(conf_dir_ + "/05-bad.conflist: plugins[0].type: missing"), std::string::npos)
        << c.message();
    st = run_pod_status(net_pod("bad"), &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(st.error_message().find("05-bad.conflist: plugins[0].type: missing"), std::string::npos)
        << st.error_message();
    fs::remove(conf_dir_ + "/05-bad.conflist");

    // A missing plugin binary.
    write_network(json::array({{{"type", "bcni-no-such-plugin"}}}));
    c = network_ready();
    EXPECT_FALSE(c.status());
    EXPECT_NE(c.message().find("plugin \"bcni-no-such-plugin\" not found in " + bin_dir_ + ":" + kPluginDir),
              std::string::npos)
        << c.message();
    st = run_pod_status(net_pod("missing"), &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(st.error_message().find("bcni-no-such-plugin"), std::string::npos) << st.error_message();

    // A 1.1.0 network whose plugin's STATUS says it cannot take pods (code 50).
    write_text(bin_dir_ + "/bcni-down",
               "#!/bin/sh\ncat >/dev/null\ncase \"$CNI_COMMAND\" in\n"
               "VERSION) echo '{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"1.0.0\",\"1.1.0\"]}';;\n"
               "STATUS) echo '{\"cniVersion\":\"1.1.0\",\"code\":50,\"msg\":\"uplink daemon is down\"}'; exit 1;;\n"
               "esac\nexit 0\n",
               0755);
    write_text(conf_dir_ + "/10-test.conflist",
               R"({"cniVersion":"1.1.0","name":"down","plugins":[{"type":"bcni-down"}]})");
    c = network_ready();
    EXPECT_FALSE(c.status());
    EXPECT_NE(c.message().find("plugin \"bcni-down\" (STATUS): uplink daemon is down (CNI error 50"), std::string::npos)
        << c.message();
    ASSERT_TRUE(remove_pod(host_pod).ok());
    expect_nothing_left();
}

TEST_F(CriNetworkTest, AConfigAppearingLaterMakesTheNetworkReadyWithoutARestart) {
    start_daemon();
    EXPECT_FALSE(network_ready().status());
    const pid_t pid = daemon_->pid();
    write_network();
    auto c = network_ready();
    EXPECT_TRUE(c.status()) << c.message();
    EXPECT_EQ(c.reason(), "");
    std::string id = run_pod(net_pod("late"));
    ASSERT_FALSE(id.empty());
    EXPECT_TRUE(pod_status(id).network().ip().starts_with(subnet_prefix_));
    EXPECT_EQ(daemon_->pid(), pid);
    // CHECK of bridge + host-local against the cached result.
    EXPECT_EQ(verbose_info(id)["cni"]["check"], "ok");
    // And going away again makes it not ready; the pod's DEL still works from its cache.
    fs::remove(conf_dir_ + "/10-test.conflist");
    EXPECT_FALSE(network_ready().status());
    ASSERT_TRUE(remove_pod(id).ok());
    expect_nothing_left();
}

TEST_F(CriNetworkTest, DelWorksAfterARestartAndAfterTheNamespaceWasLost) {
    write_network(json::array({portmap()}));
    start_daemon();
    auto kept_cfg = net_pod("kept");
    auto* pm = kept_cfg.add_port_mappings();
    pm->set_container_port(80);
    pm->set_host_port(15490 + index_ % 10);
    std::string kept = run_pod(kept_cfg);
    std::string lost = run_pod(net_pod("lost"));
    ASSERT_FALSE(kept.empty());
    ASSERT_FALSE(lost.empty());
    EXPECT_EQ(reservations().size(), 2u);
    EXPECT_NE(run_command({"/usr/sbin/iptables", "-t", "nat", "-S"}).out.find("-N CNI-DN-"), std::string::npos);

    // berthd dies; the second pod's namespace pin goes (what a reboot does to a tmpfs state dir).
    daemon_->kill_hard();
    const std::string pin = state_ + "/pods/" + lost + "/ns/net";
    ASSERT_EQ(::umount2(pin.c_str(), MNT_DETACH), 0) << pin;
    ASSERT_EQ(::unlink(pin.c_str()), 0) << pin;
    start_daemon();
    EXPECT_EQ(pod_status(lost).state(), v1::SANDBOX_NOTREADY);
    // The kernel tears a namespace down in a workqueue after its last reference went: its veth goes soon, not at
    // once.
    for (int i = 0; i < 100 && bridge_ports().size() > 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(bridge_ports().size(), 1u) << "the lost namespace took its veth with it";

    // The config dir changes meanwhile: DEL uses what ADD used.
    fs::remove(conf_dir_ + "/10-test.conflist");
    for (const auto& p : {kept, lost}) {
        grpc::Status st = stop_pod(p);
        ASSERT_TRUE(st.ok()) << st.error_message();
    }
    EXPECT_TRUE(reservations().empty());
    EXPECT_TRUE(bridge_ports().empty());
    EXPECT_EQ(run_command({"/usr/sbin/iptables", "-t", "nat", "-S"}).out.find("-N CNI-DN-"), std::string::npos);
    for (const auto& p : {kept, lost}) ASSERT_TRUE(remove_pod(p).ok());
    expect_nothing_left();
}

TEST_F(CriNetworkTest, AttachmentsOfPodsWithoutARecordAreDeletedAtStartup) {
    write_network();
    start_daemon();
    std::string id = run_pod(net_pod("orphan"));
    ASSERT_FALSE(id.empty());
    ASSERT_EQ(reservations().size(), 1u);
    // The record goes behind berthd's back (as if its database was restored from before the pod).
    daemon_->kill_hard();
    auto records = store::CriRecords::open(root_);
    ASSERT_TRUE(records);
    ASSERT_TRUE((*records)->remove_pod(id));
    records->reset();
    start_daemon();
    EXPECT_TRUE(reservations().empty());
    EXPECT_TRUE(files_in(root_ + "/cni").empty());
    // Its pins are left for the test to remove (berthd no longer knows the pod).
    run_command({"/bin/sh", "-c", "umount -l " + state_ + "/pods/" + id + "/ns/* " + state_ + "/pods/" + id + "/shm"});
}

}  // namespace
}  // namespace berth::test
