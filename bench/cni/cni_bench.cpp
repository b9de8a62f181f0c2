// cni_bench: what pod networking costs in RunPodSandbox, read against the CNI plugins' own exec time.
//
//   cni_bench --berthd PATH [--pods N] [--plugins DIR]
//
// One berthd with a private network (bridge bcnibench0 + host-local on 10.213.250.0/24 + portmap, a config dir
// and IPAM data dir of its own) and one with cni.enabled = false. Medians over N pods (default 30) of:
//   - RunPodSandbox with the network (ADD into the pinned namespace),
//   - RunPodSandbox with hostNetwork (no namespace, no CNI),
//   - RunPodSandbox with a namespace but CNI disabled (what the namespace alone costs),
//   - the same plugin chain's ADD run directly through src/cni into a namespace pinned here: the plugins' own
//     exec time (fork + exec + their work), and its DEL.
// Goal (issue 6): RunPodSandbox(network) - RunPodSandbox(hostNetwork) < plugin ADD time + 2 ms.
// Everything made is removed at the end (pods through berthd, the bridge, portmap's shared chains if this run
// made them), and net.ipv4.ip_forward is restored (the bridge plugin's isGateway sets it).
// clang-format off
#include "cri/api.hpp"  // before <signal.h>: see src/cri/api.hpp
// clang-format on
#include <fcntl.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cni/config.hpp"
#include "cni/network.hpp"

namespace {

namespace v1 = ::runtime::v1;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr const char* kBridge = "bcnibench0";
constexpr const char* kSubnet = "10.213.250.0/24";

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "cni_bench: %s\n", what.c_str());
    std::exit(1);
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int sh(const std::string& cmd) {
    int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// "median (min-max)" of samples, for the report.
std::string spread(const std::vector<double>& v) {
    if (v.empty()) return "-";
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    char buf[96];
    std::snprintf(buf, sizeof buf, "%8.2f  (%.2f-%.2f)", median(v), *lo, *hi);
    return buf;
}

struct Daemon {
    pid_t pid = -1;
    std::string socket;
    std::unique_ptr<v1::RuntimeService::Stub> stub;
};

Daemon start_berthd(const std::string& berthd, const std::string& dir, const std::string& toml) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/berth.toml") << toml;
    Daemon d;
    d.socket = dir + "/b.sock";
    d.pid = ::fork();
    if (d.pid == 0) {
        int log = ::open((dir + "/berthd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(log, 1);
        ::dup2(log, 2);
        ::execl(berthd.c_str(), berthd.c_str(), "--config", (dir + "/berth.toml").c_str(), "--socket", d.socket.c_str(),
                "--root", (dir + "/root").c_str(), "--state-dir", (dir + "/s").c_str(), "--cgroup-parent",
                "/bcni-bench", "--log-level", "warn", nullptr);
        ::_exit(127);
    }
    for (int i = 0; i < 200 && ::access(d.socket.c_str(), F_OK) != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (::access(d.socket.c_str(), F_OK) != 0) die("berthd did not start: " + slurp(dir + "/berthd.log"));
    d.stub = v1::RuntimeService::NewStub(grpc::CreateChannel("unix:" + d.socket, grpc::InsecureChannelCredentials()));
    return d;
}

void stop_berthd(Daemon& d) {
    if (d.pid <= 0) return;
    ::kill(d.pid, SIGTERM);
    ::waitpid(d.pid, nullptr, 0);
    d.pid = -1;
}

v1::PodSandboxConfig pod(const std::string& name, int i, bool host_network) {
    v1::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("bcni-bench");
    c.mutable_metadata()->set_uid(name + "-" + std::to_string(i));
    c.mutable_metadata()->set_attempt(static_cast<uint32_t>(i));
    auto* nso = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    nso->set_pid(v1::CONTAINER);
    if (host_network) nso->set_network(v1::NODE);
    return c;
}

// RunPodSandbox latencies of `n` pods (each stopped and removed before the next, not timed).
std::vector<double> run_pods(Daemon& d, const std::string& name, int n, bool host_network) {
    std::vector<double> t;
    for (int i = 0; i < n; ++i) {
        v1::RunPodSandboxRequest req;
        *req.mutable_config() = pod(name, i, host_network);
        v1::RunPodSandboxResponse resp;
        grpc::ClientContext ctx;
        auto start = Clock::now();
        grpc::Status st = d.stub->RunPodSandbox(&ctx, req, &resp);
        auto took = Clock::now() - start;
        if (!st.ok()) die("RunPodSandbox " + name + ": " + st.error_message());
        t.push_back(ms(took));
        for (int step = 0; step < 2; ++step) {
            grpc::ClientContext c2;
            grpc::Status s2;
            if (step == 0) {
                v1::StopPodSandboxRequest r;
                r.set_pod_sandbox_id(resp.pod_sandbox_id());
                v1::StopPodSandboxResponse o;
                s2 = d.stub->StopPodSandbox(&c2, r, &o);
            } else {
                v1::RemovePodSandboxRequest r;
                r.set_pod_sandbox_id(resp.pod_sandbox_id());
                v1::RemovePodSandboxResponse o;
                s2 = d.stub->RemovePodSandbox(&c2, r, &o);
            }
            if (!s2.ok()) die("stop/remove " + name + ": " + s2.error_message());
        }
    }
    return t;
}

// A network namespace pinned at `path` by a child that unshares it and bind-mounts its ns file (as berthd does).
void pin_netns(const std::string& path) {
    std::ofstream(path).flush();
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::unshare(CLONE_NEWNET) < 0) ::_exit(1);
        if (::mount("/proc/self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) < 0) ::_exit(2);
        ::_exit(0);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("pin a network namespace at " + path);
}

}  // namespace

int main(int argc, char** argv) {
    std::string berthd, plugins = "/usr/lib/cni";
    int n = 30;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--berthd")
            berthd = next();
        else if (a == "--pods")
            n = std::stoi(next());
        else if (a == "--plugins")
            plugins = next();
        else
            die("unknown argument " + a);
    }
    if (berthd.empty()) die("usage: cni_bench --berthd PATH [--pods N] [--plugins DIR]");
    if (::geteuid() != 0) die("needs root (network namespaces, bridges, iptables)");
    if (!std::filesystem::exists(plugins + "/bridge")) die("no CNI plugins in " + plugins);
    ::signal(SIGPIPE, SIG_IGN);

    char tmpl[] = "/tmp/bcni-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp");
    const std::string tmp = tmpl;
    const std::string conf_dir = tmp + "/net.d", ipam_dir = tmp + "/ipam";
    std::filesystem::create_directories(conf_dir);
    const std::string ip_forward = slurp("/proc/sys/net/ipv4/ip_forward");
    const bool had_portmap_chains = sh("iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1") == 0;
    json conflist = {
        {"cniVersion", "1.0.0"},
        {"name", "bcni-bench"},
        {"plugins",
         {{{"type", "bridge"},
           {"bridge", kBridge},
           {"isGateway", true},
           {"ipMasq", false},
           {"hairpinMode", true},
           {"ipam", {{"type", "host-local"}, {"dataDir", ipam_dir}, {"ranges", {{{{"subnet", kSubnet}}}}}}}},
          {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}}}};
    std::ofstream(conf_dir + "/10-bench.conflist") << conflist.dump(2);

    std::printf("cni_bench: %d pods per mode; network bridge + host-local + portmap (%s, %s), plugins from %s\n", n,
                kBridge, kSubnet, plugins.c_str());
    Daemon net = start_berthd(berthd, tmp + "/net",
                              "[cni]\nconf_dir = \"" + conf_dir + "\"\nbin_dirs = [\"" + plugins + "\"]\n");
    Daemon off = start_berthd(berthd, tmp + "/off", "[cni]\nenabled = false\n");
    auto cleanup = [&] {
        stop_berthd(net);
        stop_berthd(off);
        sh(std::string("ip link del ") + kBridge + " 2>/dev/null");
        if (!had_portmap_chains && sh("iptables -t nat -S | grep -q -- '-N CNI-DN-'") != 0)
            sh("iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null;"
               "iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null;"
               "iptables -t nat -D POSTROUTING -m comment --comment 'CNI portfwd requiring masquerade' "
               "-j CNI-HOSTPORT-MASQ 2>/dev/null;"
               "for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do "
               "iptables -t nat -F $c 2>/dev/null; iptables -t nat -X $c 2>/dev/null; done");
        std::ofstream("/proc/sys/net/ipv4/ip_forward") << ip_forward;
        sh("find /sys/fs/cgroup/*/bcni-bench -depth -type d -exec rmdir {} + 2>/dev/null");
        std::error_code ec;
        std::filesystem::remove_all(tmp, ec);
    };

    // One warm-up of each, so the bridge exists and caches are hot before anything is timed.
    run_pods(net, "warm", 1, false);
    run_pods(net, "warmhost", 1, true);
    // The plugin chain by hand: same config, same parameters berthd passes, into namespaces pinned here.
    auto cfg = berth::cni::parse_network_config(conflist.dump(), "bench", true);
    if (!cfg) die(cfg.error().message());
    berth::cni::Runner runner({plugins}, std::chrono::seconds(60));
    std::vector<double> add_t, del_t;
    int direct_count = 0;
    auto direct = [&](int count) {
        for (int k = 0; k < count; ++k) {
            const int i = direct_count++;
            const std::string ns = tmp + "/ns" + std::to_string(i);
            pin_netns(ns);
            berth::cni::Attachment a;
            a.container_id = "bcnibench" + std::to_string(i);
            a.netns = ns;
            a.args = {{"IgnoreUnknown", "1"},
                      {"K8S_POD_NAMESPACE", "bcni-bench"},
                      {"K8S_POD_NAME", "direct"},
                      {"K8S_POD_INFRA_CONTAINER_ID", a.container_id},
                      {"K8S_POD_UID", "direct"}};
            auto start = Clock::now();
            auto r = runner.add(*cfg, a);
            add_t.push_back(ms(Clock::now() - start));
            if (!r) {
                cleanup();
                die("direct ADD: " + r.error().message());
            }
            start = Clock::now();
            auto d = runner.del(*cfg, a, *r);
            del_t.push_back(ms(Clock::now() - start));
            ::umount2(ns.c_str(), MNT_DETACH);
            ::unlink(ns.c_str());
            if (!d) {
                cleanup();
                die("direct DEL: " + d.error().message());
            }
        }
    };
    // Interleaved in rounds, so load from elsewhere on the host falls on every mode alike.
    std::vector<double> net_t, host_t, off_t;
    const int rounds = 5;
    for (int r = 0; r < rounds; ++r) {
        const int per = n / rounds + (r < n % rounds ? 1 : 0);
        for (double v : run_pods(net, "net" + std::to_string(r), per, false)) net_t.push_back(v);
        for (double v : run_pods(net, "host" + std::to_string(r), per, true)) host_t.push_back(v);
        for (double v : run_pods(off, "off" + std::to_string(r), per, false)) off_t.push_back(v);
        direct(per);
    }
    const double with_net = median(net_t), host_net = median(host_t), netns_only = median(off_t);

    const double plugin_add = median(add_t);
    cleanup();

    const double added = with_net - host_net;
    std::printf("\nRunPodSandbox, ms: median (min-max)\n");
    std::printf("  with the bridge network       %s\n", spread(net_t).c_str());
    std::printf("  hostNetwork                   %s\n", spread(host_t).c_str());
    std::printf("  own netns, CNI disabled       %s   (the namespace alone: +%.2f)\n", spread(off_t).c_str(),
                netns_only - host_net);
    std::printf("plugin chain run directly, ms: median (min-max)\n");
    std::printf("  ADD bridge+host-local+portmap %s\n", spread(add_t).c_str());
    std::printf("  DEL                           %s\n", spread(del_t).c_str());
    std::printf("\nnetworking adds %.2f ms to RunPodSandbox; plugins' own ADD %.2f ms + 2 ms = %.2f ms budget\n", added,
                plugin_add, plugin_add + 2.0);
    std::printf("ratio added / plugin ADD = %.3f; berthd's own share = %.2f ms -> %s\n", added / plugin_add,
                added - plugin_add, added < plugin_add + 2.0 ? "goal met" : "goal MISSED");
    return 0;
}
