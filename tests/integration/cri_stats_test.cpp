// CRI stats against the host's real cgroups and a real network namespace: a process that burns cpu and touches
// memory in a cgroup of the test's own (/criimg-test/...), and UDP sent out of a dummy eth0 in a netns.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "cgroups/cgroups.hpp"
#include "cri/stats.hpp"
#include "harness.hpp"

namespace berth::test {
namespace {

namespace v1 = ::runtime::v1;

double cpu_s() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

TEST(CriStats, RealCgroupOfABusyProcess) {
    auto layout = cgroups::detect_layout();
    ASSERT_TRUE(layout) << layout.error().message();
    const std::string path = "/criimg-test/stats-" + std::to_string(::getpid());
    spec::Resources res;
    res.memory = spec::Memory{.limit = 256 << 20};
    auto mgr = cgroups::CgroupManager::create(*layout, path, &res);
    ASSERT_TRUE(mgr) << mgr.error().message();  // removes its directories (killing tasks) when it goes

    // The child joins the cgroup, burns 300 ms of cpu, touches 16 MiB of anonymous memory, says so, and waits.
    std::vector<std::string> procs;
    for (const auto& [controller, dir] : mgr->paths()) procs.push_back(dir + "/cgroup.procs");
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    constexpr size_t kTouched = 16 << 20;
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        for (const auto& p : procs) {
            int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(3);
            ::close(fd);
        }
        void* mem = ::mmap(nullptr, kTouched, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) ::_exit(4);
        std::memset(mem, 1, kTouched);
        // 300 ms of its own cpu time, however busy the machine is.
        volatile uint64_t spin = 0;
        while (cpu_s() < 0.3) spin = spin + 1;
        if (::write(ready[1], "r", 1) != 1) ::_exit(5);
        ::pause();
        ::_exit(0);
    }
    ::close(ready[1]);
    struct Reaper {
        pid_t pid;
        ~Reaper() {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reaper{pid};
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the child did not get ready";
    ::close(ready[0]);

    cri::ContainerStatsSource src;
    src.id = "stats";
    src.cgroups_path = path;
    v1::ContainerStats out;
    auto r = cri::fill_container_stats(src, &out);  // the host's own layout
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(out.has_cpu());
    EXPECT_GE(out.cpu().usage_core_nano_seconds().value(), 250'000'000u);
    ASSERT_TRUE(out.has_memory());
    EXPECT_GE(out.memory().usage_bytes().value(), kTouched);
    EXPECT_GE(out.memory().working_set_bytes().value(), kTouched);
    EXPECT_GE(out.memory().rss_bytes().value(), kTouched);
    EXPECT_GE(out.memory().page_faults().value(), kTouched / 4096 / 2);  // huge pages may serve some
    ASSERT_TRUE(out.memory().has_available_bytes()) << "a 256 MiB limit is set";
    EXPECT_LE(out.memory().available_bytes().value(), (256u << 20) - kTouched);
    EXPECT_GT(out.memory().available_bytes().value(), 0u);

    // The pod view of the same cgroup counts its one process.
    cri::PodStatsSource pod;
    pod.id = "pod";
    pod.cgroup_path = path;
    v1::PodSandboxStats pod_out;
    r = cri::fill_pod_stats(pod, &pod_out);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(pod_out.linux().has_process());
    EXPECT_EQ(pod_out.linux().process().process_count().value(), 1u);
    EXPECT_GE(pod_out.linux().cpu().usage_core_nano_seconds().value(), 250'000'000u);
}

// A network namespace with a veth pair eth0 (10.231.0.1/24) <-> net1 (no address) in it, and a static neighbour
// 10.231.0.2 on eth0, so datagrams to it leave by eth0 (counted as sent) and arrive on net1 (counted as received,
// then dropped). Removed at the end.
class Netns {
public:
    Netns() : name_("criimg-stats-" + std::to_string(::getpid())) {
        run({"/usr/sbin/ip", "netns", "add", name_});
        run({"/usr/sbin/ip", "-n", name_, "link", "add", "eth0", "type", "veth", "peer", "name", "net1"});
        run({"/usr/sbin/ip", "-n", name_, "link", "set", "eth0", "up"});
        run({"/usr/sbin/ip", "-n", name_, "link", "set", "net1", "up"});
        run({"/usr/sbin/ip", "-n", name_, "addr", "add", "10.231.0.1/24", "dev", "eth0"});
        run({"/usr/sbin/ip", "-n", name_, "neigh", "add", "10.231.0.2", "lladdr", "02:00:00:00:00:02", "dev", "eth0"});
    }
    ~Netns() { run_command({"/usr/sbin/ip", "netns", "del", name_}); }
    std::string path() const { return "/run/netns/" + name_; }

private:
    void run(const std::vector<std::string>& argv) {
        auto r = run_command(argv);
        EXPECT_EQ(r.exit_code, 0) << argv[3] << ": " << r.err;
    }
    std::string name_;
};

TEST(CriStats, PodNetworkFromItsNamespace) {
    Netns ns;
    // Send 10 UDP datagrams of 1000 bytes out of eth0, from a thread inside the namespace.
    bool sent = false;
    std::thread t([&] {
        int fd = ::open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) return;
        ::close(fd);
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0) return;
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        ::inet_pton(AF_INET, "10.231.0.2", &to.sin_addr);
        char buf[1000] = {};
        int ok = 0;
        for (int i = 0; i < 10; ++i)
            if (::sendto(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == sizeof buf) ++ok;
        ::close(s);
        sent = ok == 10;
    });
    t.join();
    ASSERT_TRUE(sent);

    cri::PodStatsSource pod;
    pod.id = "pod";
    pod.netns_path = ns.path();
    v1::PodSandboxStats out;
    auto r = cri::fill_pod_stats(pod, &out);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(out.linux().has_network());
    const auto& net = out.linux().network();
    EXPECT_GT(net.timestamp(), 0);
    ASSERT_TRUE(net.has_default_interface());
    EXPECT_EQ(net.default_interface().name(), "eth0");
    EXPECT_GE(net.default_interface().tx_bytes().value(), 10u * 1000);
    ASSERT_EQ(net.interfaces_size(), 1) << "net1; lo is left out";
    EXPECT_EQ(net.interfaces(0).name(), "net1");
    EXPECT_GE(net.interfaces(0).rx_bytes().value(), 10u * 1000);

    v1::NetworkUsage missing;
    EXPECT_FALSE(cri::read_network_usage("/run/netns/criimg-absent", &missing));
}

}  // namespace
}  // namespace berth::test
