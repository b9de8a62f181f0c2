// Cgroups on this host: limits written and enforced, exec joining, freeze, update, events, ps, removal.
#include "cgroups/cgroups.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/fs.hpp"
#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;


class Cgroups : public BerthTest {
protected:
    void SetUp() override {
        BerthTest::SetUp();
        auto l = cgroups::detect_layout();
        ASSERT_TRUE(l) << l.error().message();
        layout_ = *l;
        cg_ = fmt::format("/berth-it-{}-{}", getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
    void TearDown() override {
        BerthTest::TearDown();
        // Whatever a failed test left: kill its tasks, thaw, remove the directories.
        for (const auto& dir : dirs())
            if (path_exists(dir)) (void)cgroups::CgroupManager::load({{"x", dir}}).destroy(true);
    }
    // The container's directory in every hierarchy of this host.
    std::vector<std::string> dirs() const {
        std::vector<std::string> out;
        for (const auto& [c, mount] : layout_.v1) out.push_back(mount + cg_);
        if (!layout_.unified.empty()) out.push_back(layout_.unified + cg_);
        return out;
    }
    std::string v1(const std::string& controller, const std::string& file) const {
        return layout_.v1.at(controller) + cg_ + "/" + file;
    }
    json config(const std::vector<std::string>& args, const json& resources = json::object()) {
        json cfg = base_config(args);
        cfg["linux"]["cgroupsPath"] = cg_;
        if (!resources.empty()) cfg["linux"]["resources"] = resources;
        return cfg;
    }
    // Starts a detached container; returns its id and init pid.
    std::pair<std::string, int> start(const json& cfg) {
        write_config(cfg);
        std::string id = next_id();
        auto r = berth({"run", "-d", "--bundle", bundle_, id});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        auto st = berth({"state", id});
        if (st.exit_code != 0) return {id, 0};
        return {id, json::parse(st.out)["pid"].get<int>()};
    }
    std::string status(const std::string& id) { return json::parse(berth({"state", id}).out)["status"]; }

    cgroups::CgroupLayout layout_;
    std::string cg_;
};

TEST_F(Cgroups, MemoryLimitIsEnforcedAndOomIsReported) {
    if (!layout_.v1.contains("memory")) GTEST_SKIP() << "no v1 memory controller on this host";
    const int64_t limit = 32 << 20;
    auto [id, pid] = start(config({"sleep", "600"}, {{"memory", {{"limit", limit}, {"swap", limit}}}}));
    ASSERT_GT(pid, 0);
    EXPECT_EQ(trim(read_text(v1("memory", "memory.limit_in_bytes"))), std::to_string(limit));

    // `berth events` streams; its first line (stats) comes after the OOM watch is registered.
    int out[2];
    ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_t events = fork();
    if (events == 0) {
        dup2(out[1], 1);
        execl(BERTH_BIN, BERTH_BIN, "--root", root_.c_str(), "events", "--interval", "1s", id.c_str(), nullptr);
        _exit(127);
    }
    close(out[1]);
    struct Stop {
        pid_t pid;
        int fd;
        ~Stop() {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            close(fd);
        }
    } stop{events, out[0]};
    std::string seen;
    auto read_until = [&](std::string_view needle) {
        for (int i = 0; i < 600 && seen.find(needle) == std::string::npos; ++i) {
            struct pollfd p = {out[0], POLLIN, 0};
            if (poll(&p, 1, 100) > 0) {
                char buf[4096];
                ssize_t n = read(out[0], buf, sizeof buf);
                if (n <= 0) break;
                seen.append(buf, static_cast<size_t>(n));
            }
        }
        return seen.find(needle) != std::string::npos;
    };
    ASSERT_TRUE(read_until("\"type\":\"stats\"")) << seen;

    // busybox tail buffers a line that never ends: it grows until the OOM killer takes it.
    auto r = berth({"exec", id, "tail", "/dev/zero"});
    EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
    EXPECT_TRUE(read_until("\"type\":\"oom\"")) << seen;
    EXPECT_NE(read_text(v1("memory", "memory.oom_control")).find("oom_kill 1"), std::string::npos);
    EXPECT_EQ(status(id), "running");

    auto st = berth({"events", "--stats", id});
    ASSERT_EQ(st.exit_code, 0) << st.err;
    json ev = json::parse(st.out);
    EXPECT_EQ(ev["type"], "stats");
    EXPECT_EQ(ev["id"], id);
    EXPECT_EQ(ev["data"]["memory"]["usage"]["limit"], limit);
    EXPECT_GE(ev["data"]["memory"]["oomKill"].get<int>(), 1);
    EXPECT_GE(ev["data"]["pids"]["current"].get<int>(), 1);
    EXPECT_GT(ev["data"]["cpu"]["usage"]["total"].get<uint64_t>(), 0U);
}

TEST_F(Cgroups, PidsLimitStopsAForkBomb) {
    if (!layout_.v1.contains("pids")) GTEST_SKIP() << "no v1 pids controller on this host";
    auto [id, pid] = start(config({"sleep", "600"}, {{"pids", {{"limit", 8}}}}));
    ASSERT_GT(pid, 0);
    EXPECT_EQ(trim(read_text(v1("pids", "pids.max"))), "8");
    // Exec'd directly (no shell applets): each `sleep` is a real fork + exec.
    auto r =
        berth({"exec", id, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do /bin/sleep 60 & done; wait"});
    EXPECT_NE(r.err.find("can't fork"), std::string::npos) << r.out << r.err;
    // The shell gives up at its first failed fork: what remains is init and the sleeps that got a pid.
    EXPECT_LE(std::stoi(read_text(v1("pids", "pids.current"))), 8);
    EXPECT_NE(read_text(v1("pids", "pids.events")), "max 0\n");  // the kernel counted refused forks
    EXPECT_EQ(status(id), "running");
    EXPECT_EQ(read_text("/proc/" + std::to_string(pid) + "/comm"), "sleep\n");
}

TEST_F(Cgroups, CpuFilesWritten) {
    if (!layout_.v1.contains("cpu") || !layout_.v1.contains("cpuset")) GTEST_SKIP() << "no v1 cpu/cpuset";
    auto [id, pid] = start(
        config({"sleep", "600"}, {{"cpu", {{"shares", 512}, {"quota", 50000}, {"period", 100000}, {"cpus", "0"}}}}));
    ASSERT_GT(pid, 0);
    EXPECT_EQ(trim(read_text(v1("cpu", "cpu.shares"))), "512");
    EXPECT_EQ(trim(read_text(v1("cpu", "cpu.cfs_quota_us"))), "50000");
    EXPECT_EQ(trim(read_text(v1("cpu", "cpu.cfs_period_us"))), "100000");
    EXPECT_EQ(trim(read_text(v1("cpuset", "cpuset.cpus"))), "0");
    EXPECT_NE(read_text("/proc/" + std::to_string(pid) + "/status").find("Cpus_allowed_list:\t0\n"), std::string::npos);
}

TEST_F(Cgroups, ExecJoinsTheContainersCgroups) {
    auto [id, pid] = start(config({"sleep", "600"}));
    ASSERT_GT(pid, 0);
    std::string pidfile = dir_ + "/exec.pid";
    auto r = berth({"exec", "-d", "--pid-file", pidfile, id, "sleep", "60"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string init_cg = read_text("/proc/" + std::to_string(pid) + "/cgroup");
    std::string exec_cg = read_text("/proc/" + trim(read_text(pidfile)) + "/cgroup");
    EXPECT_EQ(exec_cg, init_cg);
    for (const auto& [controller, mount] : layout_.v1)
        EXPECT_NE(init_cg.find(controller), std::string::npos) << init_cg;
    if (!layout_.unified.empty()) {
        EXPECT_NE(init_cg.find("0::" + cg_ + "\n"), std::string::npos) << init_cg;
    }
    EXPECT_NE(init_cg.find(":memory:" + cg_ + "\n"), std::string::npos) << init_cg;

    // ps: the table holds both processes, JSON the pid list.
    auto table = berth({"ps", id});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("PID"), std::string::npos);
    EXPECT_NE(table.out.find("sleep 60"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("sleep 600"), std::string::npos) << table.out;
    auto js = berth({"ps", "--format", "json", id});
    ASSERT_EQ(js.exit_code, 0) << js.err;
    auto pids = json::parse(js.out).get<std::vector<int>>();
    EXPECT_EQ(pids.size(), 2U);
    EXPECT_NE(std::find(pids.begin(), pids.end(), pid), pids.end());

    // kill --all reaches the exec'd process through the cgroup too.
    int exec_pid = std::stoi(read_text(pidfile));
    ASSERT_EQ(berth({"kill", "--all", id, "KILL"}).exit_code, 0);
    for (int i = 0; i < 1000 && (kill(exec_pid, 0) == 0 || status(id) != "stopped"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(status(id), "stopped");
    EXPECT_NE(kill(exec_pid, 0), 0);
}

TEST_F(Cgroups, CgroupNamespaceIsRootedAtTheContainersCgroup) {
    json cfg = config({"cat", "/proc/self/cgroup"});
    cfg["linux"]["namespaces"].push_back({{"type", "cgroup"}});
    auto r = run_config(cfg);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Init unshared its cgroup namespace once inside its cgroups: each managed hierarchy shows "/".
    if (layout_.v1.contains("memory")) {
        EXPECT_NE(r.out.find(":memory:/\n"), std::string::npos) << r.out;
    }
    if (!layout_.unified.empty()) {
        EXPECT_NE(r.out.find("0::/\n"), std::string::npos) << r.out;
    }
    EXPECT_EQ(r.out.find(cg_), std::string::npos) << r.out;
}

TEST_F(Cgroups, DeviceRulesAreEnforced) {
    if (!layout_.v1.contains("devices") && layout_.unified.empty()) GTEST_SKIP() << "no device controller";
    // Everything denied, then c 1:11 (kmsg) allowed for mknod only: the node can be made but not opened; the
    // default devices (/dev/zero) stay usable.
    json cfg = config({"sh", "-c",
                       "mknod /tmp/kmsg c 1 11 && echo made; head -c 1 /tmp/kmsg > /dev/null && echo opened; "
                       "head -c 1 /dev/zero > /dev/null && echo zero-ok; mknod /tmp/mem c 1 1 && echo mem"},
                      {{"devices",
                        {{{"allow", false}, {"access", "rwm"}},
                         {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 11}, {"access", "m"}}}}});
    cfg["process"]["capabilities"] = {{"bounding", {"CAP_MKNOD", "CAP_DAC_OVERRIDE"}},
                                      {"effective", {"CAP_MKNOD", "CAP_DAC_OVERRIDE"}},
                                      {"permitted", {"CAP_MKNOD", "CAP_DAC_OVERRIDE"}}};
    auto r = run_config(cfg);
    EXPECT_EQ(r.out, "made\nzero-ok\n") << r.err;
    EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
}

TEST_F(Cgroups, PauseFreezesAndResumeThaws) {
    // A busy loop appending to a file: its size is the progress made.
    auto [id, pid] = start(config({"sh", "-c", "while true; do echo x >> /tmp/count; done"}));
    ASSERT_GT(pid, 0);
    std::string counter = rootfs_ + "/tmp/count";
    auto value = [&]() -> long {
        struct stat st {};
        return ::stat(counter.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : 0;
    };
    for (int i = 0; i < 1000 && value() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_GT(value(), 0);

    auto p = berth({"pause", id});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    EXPECT_EQ(status(id), "paused");
    if (layout_.v1.contains("freezer")) {
        EXPECT_EQ(trim(read_text(v1("freezer", "freezer.state"))), "FROZEN");
    }
    long frozen = value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(value(), frozen) << "the loop ran while paused";
    EXPECT_NE(berth({"pause", id}).exit_code, 0);  // already paused
    auto ex = berth({"exec", id, "true"});
    EXPECT_NE(ex.exit_code, 0);
    EXPECT_NE(ex.err.find("paused"), std::string::npos) << ex.err;

    auto r = berth({"resume", id});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(status(id), "running");
    bool moved = false;
    for (int i = 0; i < 1000 && !moved; ++i) {
        moved = value() > frozen;
        if (!moved) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(moved) << "the loop did not run again after resume";
    EXPECT_NE(berth({"resume", id}).exit_code, 0);  // not paused

    // A paused container is deleted with --force (thawed so that its tasks can die).
    ASSERT_EQ(berth({"pause", id}).exit_code, 0);
    auto d = berth({"delete", "--force", id});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    for (const auto& dir : dirs()) EXPECT_FALSE(path_exists(dir)) << dir;
}

TEST_F(Cgroups, ACreatedContainerCanBePausedAndResumed) {
    write_config(config({"sleep", "600"}));
    std::string id = next_id();
    ASSERT_EQ(berth({"create", "--bundle", bundle_, id}).exit_code, 0);
    ASSERT_EQ(berth({"pause", id}).exit_code, 0);
    EXPECT_EQ(status(id), "paused");
    EXPECT_NE(berth({"start", id}).exit_code, 0);
    ASSERT_EQ(berth({"resume", id}).exit_code, 0);
    EXPECT_EQ(status(id), "created");
    auto r = berth({"start", id});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(status(id), "running");
}

TEST_F(Cgroups, UpdateChangesLiveLimits) {
    if (!layout_.v1.contains("memory") || !layout_.v1.contains("pids") || !layout_.v1.contains("cpu"))
        GTEST_SKIP() << "needs v1 memory, pids and cpu";
    auto [id, pid] = start(config({"sleep", "600"}, {{"memory", {{"limit", 64 << 20}}}}));
    ASSERT_GT(pid, 0);
    auto r = berth({"update", "--memory", "48m", "--pids-limit", "20", "--cpu-shares", "256", id});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim(read_text(v1("memory", "memory.limit_in_bytes"))), std::to_string(48 << 20));
    EXPECT_EQ(trim(read_text(v1("pids", "pids.max"))), "20");
    EXPECT_EQ(trim(read_text(v1("cpu", "cpu.shares"))), "256");

    r = berth({"update", "--resources", "-", id}, R"({"cpu":{"quota":30000,"period":100000},"pids":{"limit":-1}})");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim(read_text(v1("cpu", "cpu.cfs_quota_us"))), "30000");
    EXPECT_EQ(trim(read_text(v1("pids", "pids.max"))), "max");

    r = berth({"update", "--resources", "-", id}, R"({"memory":{"limit":-5}})");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("linux.resources.memory.limit"), std::string::npos) << r.err;
    EXPECT_EQ(trim(read_text(v1("memory", "memory.limit_in_bytes"))), std::to_string(48 << 20));

    r = berth({"update", "--kernel-memory", "1m", id});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("not supported"), std::string::npos) << r.err;
    r = berth({"update", "--l3-cache-schema", "L3:0=f", id});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("not supported"), std::string::npos) << r.err;
}

TEST_F(Cgroups, HugetlbLimitGoesThroughTheUnifiedTree) {
    bool v1_hugetlb = layout_.v1.contains("hugetlb");
    if (!v1_hugetlb) {
        if (layout_.unified.empty()) GTEST_SKIP() << "no hugetlb controller: neither v1 nor a unified tree";
        if (read_text(layout_.unified + "/cgroup.controllers").find("hugetlb") == std::string::npos)
            GTEST_SKIP() << "the hugetlb controller is not available in " << layout_.unified;
    }
    if (!path_exists("/sys/kernel/mm/hugepages/hugepages-2048kB")) GTEST_SKIP() << "no 2MB huge pages";
    auto [id, pid] = start(config({"sleep", "600"}, {{"hugepageLimits", {{{"pageSize", "2MB"}, {"limit", 4 << 20}}}}}));
    ASSERT_GT(pid, 0);
    std::string file =
        v1_hugetlb ? v1("hugetlb", "hugetlb.2MB.limit_in_bytes") : layout_.unified + cg_ + "/hugetlb.2MB.max";
    ASSERT_TRUE(path_exists(file)) << file;
    EXPECT_EQ(trim(read_text(file)), std::to_string(4 << 20));
}

TEST_F(Cgroups, DeleteRemovesEveryCgroupDirectory) {
    auto [id, pid] = start(config({"sleep", "600"}));
    ASSERT_GT(pid, 0);
    for (const auto& dir : dirs()) {
        EXPECT_TRUE(path_exists(dir)) << dir;
        EXPECT_NE(read_text(dir + "/cgroup.procs").find(std::to_string(pid)), std::string::npos) << dir;
    }
    // A process that is not init keeps the cgroup busy until delete kills it.
    ASSERT_EQ(berth({"exec", "-d", id, "sleep", "60"}).exit_code, 0);
    auto d = berth({"delete", "--force", id});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    for (const auto& dir : dirs()) EXPECT_FALSE(path_exists(dir)) << dir;
}

TEST_F(Cgroups, DefaultPathIsNamedAfterTheContainer) {
    if (!layout_.v1.contains("memory")) GTEST_SKIP() << "no v1 memory controller";
    json cfg = base_config({"sleep", "600"});
    write_config(cfg);
    std::string id = fmt::format("cgdefault-{}", getpid());
    ASSERT_EQ(berth({"run", "-d", "--bundle", bundle_, id}).exit_code, 0);
    std::string dir = layout_.v1.at("memory") + "/berth/" + id;
    EXPECT_TRUE(path_exists(dir)) << dir;
    ASSERT_EQ(berth({"delete", "--force", id}).exit_code, 0);
    EXPECT_FALSE(path_exists(dir)) << dir;
}

TEST_F(Cgroups, BadInputNamesTheFieldAndLeavesNoCgroup) {
    auto expect_refused = [&](const json& resources, std::string_view field) {
        write_config(config({"true"}, resources));
        auto r = berth({"run", "--bundle", bundle_, next_id()});
        EXPECT_NE(r.exit_code, 0);
        EXPECT_NE(r.err.find(field), std::string::npos) << r.err;
        for (const auto& dir : dirs()) EXPECT_FALSE(path_exists(dir)) << dir;
        EXPECT_TRUE(root_entries().empty());
    };
    expect_refused({{"memory", {{"limit", -5}}}}, "linux.resources.memory.limit");
    expect_refused({{"devices", {{{"allow", true}, {"type", "c"}, {"access", "rwx"}}}}},
                   "linux.resources.devices[0].access");
    expect_refused({{"devices", {{{"allow", true}, {"type", "q"}, {"access", "r"}}}}},
                   "linux.resources.devices[0].type");
    expect_refused({{"unified", {{"../memory.max", "1"}}}}, "linux.resources.unified");
    // Refused by the kernel after the directories were made: the quota is below the kernel's 1ms minimum.
    if (layout_.v1.contains("cpu"))
        expect_refused({{"cpu", {{"quota", 500}, {"period", 100000}}}}, "linux.resources.cpu.quota");
    // The unified key names no file of this host's unified cgroup.
    if (!layout_.unified.empty())
        expect_refused({{"unified", {{"nosuch.file", "1"}}}}, "linux.resources.unified[\"nosuch.file\"]");
}

}  // namespace
}  // namespace berth::test
