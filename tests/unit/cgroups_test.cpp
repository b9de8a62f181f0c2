// Cgroup drivers against fake cgroup trees (temp dirs of plain files), layout detection against sample mountinfo,
// and the v2 device filter against the real unified tree when the host has one.
#include "cgroups/cgroups.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"

namespace berth::cgroups {
namespace {

constexpr std::string_view kHybrid =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";
constexpr std::string_view kV2 =
    "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
    "30 27 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
constexpr std::string_view kV1 =
    "32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    "33 31 0:29 / /mnt/again rw - cgroup cgroup rw,pids\n";

TEST(CgroupLayout, DetectsHybridV2AndV1) {
    auto h = detect_layout(kHybrid);
    ASSERT_TRUE(h) << h.error().message();
    EXPECT_EQ(h->mode, Mode::hybrid);
    EXPECT_EQ(h->unified, "/sys/fs/cgroup/unified");
    EXPECT_EQ(h->v1.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
    EXPECT_EQ(h->v1.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
    EXPECT_EQ(h->v1.at("memory"), "/sys/fs/cgroup/memory");
    EXPECT_EQ(h->v1.size(), 3U);  // name=systemd is not a controller

    auto v2 = detect_layout(kV2);
    ASSERT_TRUE(v2);
    EXPECT_EQ(v2->mode, Mode::v2);
    EXPECT_EQ(v2->unified, "/sys/fs/cgroup");
    EXPECT_TRUE(v2->v1.empty());

    auto v1 = detect_layout(kV1);
    ASSERT_TRUE(v1);
    EXPECT_EQ(v1->mode, Mode::v1);
    EXPECT_EQ(v1->v1.at("pids"), "/sys/fs/cgroup/pids");  // the first mount of a hierarchy wins

    auto none = detect_layout("27 1 254:0 / / rw - ext4 /dev/vda rw\n");
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("no cgroup"), std::string::npos);
}

TEST(CgroupLayout, ResolvesCgroupsPath) {
    EXPECT_EQ(resolve_cgroup_path("", "c1").value(), "/berth/c1");
    EXPECT_EQ(resolve_cgroup_path("pods/c1", "x").value(), "/berth/pods/c1");
    EXPECT_EQ(resolve_cgroup_path("/kubepods//burstable/c1/", "x").value(), "/kubepods/burstable/c1");
    for (const char* bad : {"../escape", "/a/../../b", "/", "/berth"}) {
        auto r = resolve_cgroup_path(bad, "x");
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message().find("linux.cgroupsPath"), std::string::npos);
    }
}

TEST(CgroupConvert, SharesAndBlkioWeights) {
    EXPECT_EQ(cpu_shares_to_weight(2), 1U);
    EXPECT_EQ(cpu_shares_to_weight(1024), 39U);
    EXPECT_EQ(cpu_shares_to_weight(262144), 10000U);
    EXPECT_EQ(blkio_weight_to_io_weight(10), 1U);
    EXPECT_EQ(blkio_weight_to_io_weight(500), 4950U);
    EXPECT_EQ(blkio_weight_to_io_weight(1000), 10000U);
}

// A temp dir holding fake hierarchies.
class FakeTree : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-cgtest-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override { (void)remove_all(root_); }
    void file(const std::string& rel, const std::string& content = "") {
        std::string p = path_join(root_, rel);
        ASSERT_TRUE(mkdir_all(p.substr(0, p.rfind('/'))));
        ASSERT_TRUE(write_file(p, content));
    }
    std::string text(const std::string& rel) {
        auto r = read_file(path_join(root_, rel));
        return r ? *r : "<missing>";
    }
    bool exists(const std::string& rel) { return path_exists(path_join(root_, rel)); }
    std::string root_;
};

constexpr const char* kAllV2 = "cpu cpuset hugetlb io memory pids rdma";

class FakeV2 : public FakeTree {
protected:
    void SetUp() override {
        FakeTree::SetUp();
        file("u/cgroup.controllers", kAllV2);
        file("u/cgroup.subtree_control");
        file("u/berth/cgroup.controllers", kAllV2);
        file("u/berth/cgroup.subtree_control");
        for (const char* f : {"cgroup.procs", "memory.max", "memory.swap.max", "memory.low", "cpu.weight",
                              "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight",
                              "io.max", "hugetlb.2MB.max", "rdma.max", "cgroup.freeze", "memory.high"})
            file(std::string("u/berth/c1/") + f);
        file("u/berth/c1/cgroup.controllers", kAllV2);
        file("u/berth/c1/cpu.max", "max 100000\n");
        layout_.mode = Mode::v2;
        layout_.unified = path_join(root_, "u");
    }
    CgroupLayout layout_;
};

TEST_F(FakeV2, WritesConvertedValuesAndEnablesControllers) {
    spec::Resources r;
    r.memory = spec::Memory{.limit = 64 << 20, .reservation = 32 << 20, .swap = 96 << 20};
    r.cpu = spec::Cpu{.shares = 1024, .quota = 50000, .burst = 1000, .cpus = "0", .mems = "0", .idle = 1};
    r.pids = spec::Pids{.limit = 10};
    r.block_io = spec::BlockIo{.weight = 500, .throttle_write_bps_device = {{8, 0, 1048576}}};
    r.hugepage_limits = {{"2MB", 4 << 21}};
    r.rdma["mlx5_0"] = spec::Rdma{.hca_handles = 3};
    r.unified["memory.high"] = "1000000";
    auto m = CgroupManager::create(layout_, "/berth/c1", &r);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(text("u/cgroup.subtree_control"), "+cpu +cpuset +hugetlb +io +memory +pids +rdma");
    EXPECT_EQ(text("u/berth/cgroup.subtree_control"), "+cpu +cpuset +hugetlb +io +memory +pids +rdma");
    EXPECT_EQ(text("u/berth/c1/memory.max"), std::to_string(64 << 20));
    EXPECT_EQ(text("u/berth/c1/memory.swap.max"), std::to_string(32 << 20));  // swap minus limit
    EXPECT_EQ(text("u/berth/c1/memory.low"), std::to_string(32 << 20));
    EXPECT_EQ(text("u/berth/c1/cpu.weight"), "39");
    EXPECT_EQ(text("u/berth/c1/cpu.max"), "50000 100000");
    EXPECT_EQ(text("u/berth/c1/cpu.max.burst"), "1000");
    EXPECT_EQ(text("u/berth/c1/cpu.idle"), "1");
    EXPECT_EQ(text("u/berth/c1/cpuset.cpus"), "0");
    EXPECT_EQ(text("u/berth/c1/pids.max"), "10");
    EXPECT_EQ(text("u/berth/c1/io.weight"), "default 4950");
    EXPECT_EQ(text("u/berth/c1/io.max"), "8:0 wbps=1048576");
    EXPECT_EQ(text("u/berth/c1/hugetlb.2MB.max"), std::to_string(4 << 21));
    EXPECT_EQ(text("u/berth/c1/rdma.max"), "mlx5_0 hca_handle=3");
    EXPECT_EQ(text("u/berth/c1/memory.high"), "1000000");
    EXPECT_EQ(m->paths().at("unified"), path_join(root_, "u/berth/c1"));
    EXPECT_EQ(m->paths().size(), 1U);

    // An update of the period alone keeps the quota; -1 means unlimited.
    spec::Resources upd;
    upd.cpu = spec::Cpu{.period = 200000};
    upd.memory = spec::Memory{.limit = -1};
    upd.pids = spec::Pids{.limit = -1};
    ASSERT_TRUE(m->apply(upd, true));
    EXPECT_EQ(text("u/berth/c1/cpu.max"), "50000 200000");
    EXPECT_EQ(text("u/berth/c1/memory.max"), "max");
    EXPECT_EQ(text("u/berth/c1/pids.max"), "max");
}

TEST_F(FakeV2, RefusesWhatV2CannotDoNamingTheField) {
    auto m = CgroupManager::create(layout_, "/berth/c1", nullptr);
    ASSERT_TRUE(m);
    auto expect_error = [&](spec::Resources r, std::string_view field, bool update = false) {
        auto res = m->apply(r, update);
        ASSERT_FALSE(res) << field;
        EXPECT_NE(res.error().message().find(field), std::string::npos) << res.error().message();
    };
    expect_error({.memory = spec::Memory{.swappiness = 10}}, "linux.resources.memory.swappiness");
    expect_error({.memory = spec::Memory{.disable_oom_killer = true}}, "linux.resources.memory.disableOOMKiller");
    expect_error({.memory = spec::Memory{.swap = 1000}}, "linux.resources.memory.swap");
    expect_error({.cpu = spec::Cpu{.realtime_runtime = 1000}}, "linux.resources.cpu.realtimeRuntime");
    expect_error({.network = spec::Network{.class_id = 1}}, "linux.resources.network.classID");
    expect_error({.hugepage_limits = {{"1GB", 0}}}, "linux.resources.hugepageLimits[0].pageSize");
    expect_error({.unified = {{"../memory.max", "1"}}}, "linux.resources.unified[\"../memory.max\"]");
    expect_error({.unified = {{"nosuch.file", "1"}}}, "linux.resources.unified[\"nosuch.file\"]");
    expect_error({.memory = spec::Memory{.limit = -5}}, "linux.resources.memory.limit");

    // checkBeforeUpdate: a limit below the current usage is refused on update.
    file("u/berth/c1/memory.current", "5000\n");
    spec::Resources low{.memory = spec::Memory{.limit = 4096, .check_before_update = true}};
    expect_error(low, "checkBeforeUpdate", true);
    ASSERT_TRUE(m->apply(low, false));  // not an update: written
    EXPECT_EQ(text("u/berth/c1/memory.max"), "4096");
}

TEST_F(FakeV2, FreezeThawPidsAndStats) {
    auto m = CgroupManager::create(layout_, "/berth/c1", nullptr);
    ASSERT_TRUE(m);
    file("u/berth/c1/cgroup.events", "populated 1\nfrozen 1\n");
    ASSERT_TRUE(m->freeze());
    EXPECT_EQ(text("u/berth/c1/cgroup.freeze"), "1");
    EXPECT_TRUE(m->frozen());
    ASSERT_TRUE(m->thaw());
    EXPECT_EQ(text("u/berth/c1/cgroup.freeze"), "0");
    EXPECT_FALSE(m->frozen());

    file("u/berth/c1/cgroup.procs", "12\n34\n");
    EXPECT_EQ(m->pids().value(), (std::vector<pid_t>{12, 34}));

    file("u/berth/c1/memory.current", "4096\n");
    file("u/berth/c1/memory.max", "max\n");
    file("u/berth/c1/memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n");
    file("u/berth/c1/memory.stat", "anon 100\nfile 200\n");
    file("u/berth/c1/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\n");
    file("u/berth/c1/pids.current", "2\n");
    file("u/berth/c1/pids.max", "max\n");
    file("u/berth/c1/io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
    file("u/berth/c1/hugetlb.2MB.current", "4194304\n");
    file("u/berth/c1/hugetlb.2MB.events", "max 3\n");
    EXPECT_EQ(m->oom_kill_count(), 1U);
    auto s = m->stats();
    ASSERT_TRUE(s);
    auto j = nlohmann::json::parse(stats_json(*s));
    EXPECT_EQ(j["memory"]["usage"]["usage"], 4096);
    EXPECT_EQ(j["memory"]["usage"]["limit"], 0);  // unlimited
    EXPECT_EQ(j["memory"]["usage"]["failcnt"], 7);
    EXPECT_EQ(j["memory"]["oom"], 2);
    EXPECT_EQ(j["memory"]["oomKill"], 1);
    EXPECT_EQ(j["memory"]["raw"]["file"], 200);
    EXPECT_EQ(j["cpu"]["usage"]["total"], 1500000);
    EXPECT_EQ(j["cpu"]["usage"]["kernel"], 500000);
    EXPECT_EQ(j["pids"]["current"], 2);
    EXPECT_EQ(j["blkio"]["ioServiceBytesRecursive"][1]["op"], "Write");
    EXPECT_EQ(j["blkio"]["ioServiceBytesRecursive"][1]["value"], 20);
    EXPECT_EQ(j["hugetlb"]["2MB"]["usage"], 4194304);
    EXPECT_EQ(j["hugetlb"]["2MB"]["failcnt"], 3);
}

TEST_F(FakeV2, OomNotifierWatchesMemoryEvents) {
    auto m = CgroupManager::create(layout_, "/berth/c1", nullptr);
    ASSERT_TRUE(m);
    file("u/berth/c1/memory.events", "oom 0\noom_kill 0\n");
    auto fd = m->oom_notifier();
    ASSERT_TRUE(fd) << fd.error().message();
    struct pollfd p = {fd->get(), POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0);
    file("u/berth/c1/memory.events", "oom 1\noom_kill 1\n");
    EXPECT_EQ(poll(&p, 1, 0), 1);
    EXPECT_EQ(m->oom_kill_count(), 1U);
}

// A hybrid host: v1 memory, and a unified tree offering only hugetlb. Memory goes to v1, hugetlb to v2, and a
// controller neither offers is an error naming the field.
TEST_F(FakeTree, HybridUsesEachControllerWhereItIs) {
    file("memory/berth/c1/memory.limit_in_bytes");
    file("u/cgroup.controllers", "hugetlb");
    file("u/cgroup.subtree_control");
    file("u/berth/cgroup.controllers", "hugetlb");
    file("u/berth/cgroup.subtree_control");
    file("u/berth/c1/cgroup.controllers", "hugetlb");
    file("u/berth/c1/hugetlb.2MB.max");
    CgroupLayout layout{Mode::hybrid, {{"memory", path_join(root_, "memory")}}, path_join(root_, "u")};
    spec::Resources r{.memory = spec::Memory{.limit = 1 << 20}, .hugepage_limits = {{"2MB", 2 << 20}}};
    auto m = CgroupManager::create(layout, "/berth/c1", &r);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(text("memory/berth/c1/memory.limit_in_bytes"), std::to_string(1 << 20));
    EXPECT_EQ(text("u/berth/c1/hugetlb.2MB.max"), std::to_string(2 << 20));
    EXPECT_EQ(text("u/cgroup.subtree_control"), "+hugetlb");
    EXPECT_EQ(m->paths().size(), 2U);
    auto res = m->apply({.pids = spec::Pids{.limit = 3}});
    ASSERT_FALSE(res);
    EXPECT_NE(res.error().message().find("linux.resources.pids.limit: the pids controller"), std::string::npos)
        << res.error().message();
}

class FakeV1 : public FakeTree {
protected:
    void SetUp() override {
        FakeTree::SetUp();
        for (const char* c : {"memory", "cpu", "pids", "devices", "freezer", "cpuset", "blkio"})
            layout_.v1[c] = path_join(root_, c);
        layout_.v1["cpuacct"] = path_join(root_, "cpu");
        layout_.mode = Mode::v1;
        for (const char* f :
             {"memory/berth/c1/memory.limit_in_bytes", "memory/berth/c1/memory.memsw.limit_in_bytes",
              "memory/berth/c1/memory.soft_limit_in_bytes", "memory/berth/c1/memory.swappiness",
              "memory/berth/c1/memory.oom_control", "cpu/berth/c1/cpu.shares", "cpu/berth/c1/cpu.cfs_quota_us",
              "cpu/berth/c1/cpu.cfs_period_us", "cpu/berth/c1/cpu.rt_runtime_us", "pids/berth/c1/pids.max",
              "devices/berth/c1/devices.allow", "devices/berth/c1/devices.deny", "freezer/berth/c1/freezer.state",
              "cpuset/berth/c1/cpuset.cpus", "blkio/berth/c1/blkio.throttle.read_iops_device"})
            file(f);
    }
    CgroupLayout layout_;
};

TEST_F(FakeV1, AllowOnlyDeviceRulesStartFromDenyAll) {
    // A new v1 cgroup inherits its parent's "a *:* rwm": without a deny-all first, allow rules would change nothing.
    spec::Resources r;
    r.devices = {{.allow = true, .type = "c", .major = 10, .minor = 229, .access = "rwm"}};
    auto m = CgroupManager::create(layout_, "/berth/c1", &r);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(text("devices/berth/c1/devices.deny"), "a");
}

TEST_F(FakeV1, WritesEachControllerInItsHierarchy) {
    spec::Resources r;
    r.memory = spec::Memory{
        .limit = 1 << 20, .reservation = 1 << 19, .swap = 2 << 20, .swappiness = 0, .disable_oom_killer = true};
    r.cpu = spec::Cpu{.shares = 512, .quota = 20000, .period = 100000, .realtime_runtime = 500, .cpus = "0-1"};
    r.pids = spec::Pids{.limit = 32};
    r.block_io = spec::BlockIo{.throttle_read_iops_device = {{8, 16, 300}}};
    r.devices = {{.allow = false, .access = "rwm"}, {.allow = true, .type = "c", .major = 10, .access = "rw"}};
    auto m = CgroupManager::create(layout_, "/berth/c1", &r);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(text("memory/berth/c1/memory.limit_in_bytes"), std::to_string(1 << 20));
    EXPECT_EQ(text("memory/berth/c1/memory.memsw.limit_in_bytes"), std::to_string(2 << 20));
    EXPECT_EQ(text("memory/berth/c1/memory.soft_limit_in_bytes"), std::to_string(1 << 19));
    EXPECT_EQ(text("memory/berth/c1/memory.swappiness"), "0");
    EXPECT_EQ(text("memory/berth/c1/memory.oom_control"), "1");
    EXPECT_EQ(text("cpu/berth/c1/cpu.shares"), "512");
    EXPECT_EQ(text("cpu/berth/c1/cpu.cfs_quota_us"), "20000");
    EXPECT_EQ(text("cpu/berth/c1/cpu.cfs_period_us"), "100000");
    EXPECT_EQ(text("cpu/berth/c1/cpu.rt_runtime_us"), "500");
    EXPECT_EQ(text("cpuset/berth/c1/cpuset.cpus"), "0-1");
    EXPECT_EQ(text("pids/berth/c1/pids.max"), "32");
    EXPECT_EQ(text("blkio/berth/c1/blkio.throttle.read_iops_device"), "8:16 300");
    // Plain files keep the last write: the deny-all rule went to devices.deny, the last default device to allow.
    EXPECT_EQ(text("devices/berth/c1/devices.deny"), "a");
    EXPECT_EQ(text("devices/berth/c1/devices.allow"), "c 136:* rwm");
    EXPECT_EQ(m->paths().at("cpuacct"), path_join(root_, "cpu/berth/c1"));
    EXPECT_EQ(m->paths().count("unified"), 0U);

    ASSERT_TRUE(m->freeze());
    EXPECT_EQ(text("freezer/berth/c1/freezer.state"), "FROZEN");
    EXPECT_TRUE(m->frozen());
    ASSERT_TRUE(m->thaw());
    EXPECT_FALSE(m->frozen());
}

TEST_F(FakeV1, FailedCreateRemovesWhatItMade) {
    // c2 does not exist: create makes berth/c2 in every hierarchy, and the new dirs have no control files.
    spec::Resources r{.pids = spec::Pids{.limit = 5}};
    {
        auto m = CgroupManager::create(layout_, "/berth/new/c2", &r);
        ASSERT_FALSE(m);
        EXPECT_NE(m.error().message().find("linux.resources.pids.limit"), std::string::npos) << m.error().message();
        EXPECT_NE(m.error().message().find("pids.max is missing"), std::string::npos) << m.error().message();
    }
    for (const char* c : {"memory", "cpu", "pids", "devices", "freezer", "cpuset", "blkio"}) {
        EXPECT_FALSE(exists(std::string(c) + "/berth/new")) << c;
        EXPECT_TRUE(exists(std::string(c) + "/berth/c1")) << c;  // what existed before stays
    }
    // An uncommitted manager removes its directories when it goes; a committed one leaves them.
    {
        auto m = CgroupManager::create(layout_, "/berth/new/c3", nullptr);
        ASSERT_TRUE(m);
        EXPECT_TRUE(exists("pids/berth/new/c3"));
    }
    EXPECT_FALSE(exists("pids/berth/new"));
    {
        auto m = CgroupManager::create(layout_, "/berth/new/c4", nullptr);
        ASSERT_TRUE(m);
        m->commit();
    }
    EXPECT_TRUE(exists("pids/berth/new/c4"));
}

TEST_F(FakeV1, NetworkBfqWeightsAndMemoryOrder) {
    layout_.v1["net_cls"] = path_join(root_, "net");
    layout_.v1["net_prio"] = path_join(root_, "net");
    file("net/berth/c1/net_cls.classid");
    file("net/berth/c1/net_prio.ifpriomap");
    file("blkio/berth/c1/blkio.bfq.weight");
    file("blkio/berth/c1/blkio.bfq.weight_device");
    file("memory/berth/c1/memory.limit_in_bytes", "1048576\n");
    spec::Resources r;
    r.network = spec::Network{.class_id = 0x100001, .priorities = {{"eth0", 5}}};
    r.block_io = spec::BlockIo{.weight = 300, .weight_device = {{.major = 8, .minor = 0, .weight = 400}}};
    r.memory = spec::Memory{.limit = 4 << 20, .swap = 8 << 20};
    auto m = CgroupManager::create(layout_, "/berth/c1", &r);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(text("net/berth/c1/net_cls.classid"), std::to_string(0x100001));
    EXPECT_EQ(text("net/berth/c1/net_prio.ifpriomap"), "eth0 5");
    // Kernels without CFQ offer only the bfq weight files: used with blkio's range unchanged.
    EXPECT_EQ(text("blkio/berth/c1/blkio.bfq.weight"), "300");
    EXPECT_EQ(text("blkio/berth/c1/blkio.bfq.weight_device"), "8:0 400");
    EXPECT_EQ(text("memory/berth/c1/memory.limit_in_bytes"), std::to_string(4 << 20));
    EXPECT_EQ(text("memory/berth/c1/memory.memsw.limit_in_bytes"), std::to_string(8 << 20));
    // Not mounted: rdma is an error naming the field.
    auto res = m->apply({.rdma = {{"mlx4_0", spec::Rdma{.hca_handles = 1}}}});
    ASSERT_FALSE(res);
    EXPECT_NE(res.error().message().find("linux.resources.rdma: the rdma controller"), std::string::npos)
        << res.error().message();
}

TEST_F(FakeV1, StatsFromV1Files) {
    auto m = CgroupManager::create(layout_, "/berth/c1", nullptr);
    ASSERT_TRUE(m);
    file("memory/berth/c1/memory.usage_in_bytes", "8192\n");
    file("memory/berth/c1/memory.limit_in_bytes", "1048576\n");
    file("memory/berth/c1/memory.max_usage_in_bytes", "9000\n");
    file("memory/berth/c1/memory.failcnt", "4\n");
    file("memory/berth/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    file("memory/berth/c1/memory.stat", "cache 10\nrss 20\n");
    file("cpu/berth/c1/cpuacct.usage", "5000\n");
    file("cpu/berth/c1/cpuacct.usage_percpu", "3000 2000 \n");
    file("cpu/berth/c1/cpuacct.stat", "user 3\nsystem 1\n");
    file("cpu/berth/c1/cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 777\n");
    file("pids/berth/c1/pids.current", "3\n");
    file("pids/berth/c1/pids.max", "max\n");
    file("blkio/berth/c1/blkio.throttle.io_service_bytes", "8:0 Read 100\n8:0 Write 200\nTotal 300\n");
    EXPECT_EQ(m->oom_kill_count(), 2U);
    auto s = m->stats();
    ASSERT_TRUE(s);
    auto j = nlohmann::json::parse(stats_json(*s));
    EXPECT_EQ(j["memory"]["usage"]["usage"], 8192);
    EXPECT_EQ(j["memory"]["usage"]["limit"], 1048576);
    EXPECT_EQ(j["memory"]["usage"]["max"], 9000);
    EXPECT_EQ(j["memory"]["usage"]["failcnt"], 4);
    EXPECT_EQ(j["memory"]["oomKill"], 2);
    EXPECT_EQ(j["memory"]["raw"]["rss"], 20);
    EXPECT_EQ(j["cpu"]["usage"]["total"], 5000);
    EXPECT_EQ(j["cpu"]["usage"]["percpu"], nlohmann::json({3000, 2000}));
    uint64_t tick_ns = 1000000000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
    EXPECT_EQ(j["cpu"]["usage"]["user"], 3 * tick_ns);
    EXPECT_EQ(j["cpu"]["throttling"]["throttledTime"], 777);
    EXPECT_EQ(j["pids"]["current"], 3);
    EXPECT_EQ(j["pids"]["limit"], 0);
    ASSERT_EQ(j["blkio"]["ioServiceBytesRecursive"].size(), 2U);
    EXPECT_EQ(j["blkio"]["ioServiceBytesRecursive"][0]["value"], 100);
}

TEST(CgroupValidate, BadValuesNameTheField) {
    auto msg = [](spec::Resources r) {
        auto v = validate_resources(r);
        return v ? std::string("ok") : v.error().message();
    };
    EXPECT_NE(msg({.memory = spec::Memory{.reservation = -2}}).find("linux.resources.memory.reservation"),
              std::string::npos);
    EXPECT_NE(msg({.memory = spec::Memory{.limit = 100, .swap = 50}}).find("linux.resources.memory.swap"),
              std::string::npos);
    EXPECT_NE(msg({.devices = {{.allow = true, .type = "x"}}}).find("linux.resources.devices[0].type"),
              std::string::npos);
    EXPECT_NE(msg({.devices = {{.allow = true, .access = "rwx"}}}).find("linux.resources.devices[0].access"),
              std::string::npos);
    EXPECT_NE(msg({.block_io = spec::BlockIo{.weight = 5}}).find("linux.resources.blockIO.weight"), std::string::npos);
    EXPECT_NE(msg({.unified = {{"a/b", "1"}}}).find("linux.resources.unified[\"a/b\"]"), std::string::npos);
    EXPECT_EQ(msg({.memory = spec::Memory{.limit = -1, .swap = -1}}), "ok");
}

// The BPF device filter on the host's real unified tree: with every device denied and /dev/kmsg (c 1:11) allowed
// for writing only, a task in the cgroup may open /dev/kmsg for writing but not for reading, and /dev/zero (one of
// the default devices) still opens.
TEST(CgroupDevices, BpfFilterDeniesAndAllows) {
    auto layout = detect_layout();
    if (!layout || layout->unified.empty() || geteuid() != 0 || !path_exists("/dev/kmsg"))
        GTEST_SKIP() << "needs root, a cgroup2 tree and /dev/kmsg";
    std::string dir = path_join(layout->unified, fmt::format("berth-unit-devices-{}", getpid()));
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << strerror(errno);
    struct Cleanup {
        std::string dir;
        ~Cleanup() { rmdir(dir.c_str()); }
    } cleanup{dir};
    std::vector<spec::DeviceCgroupRule> rules = {{.allow = false, .access = "rwm"},
                                                 {.allow = true, .type = "c", .major = 1, .minor = 11, .access = "rw"},
                                                 {.allow = false, .type = "c", .major = 1, .minor = 11, .access = "r"}};
    auto r = attach_device_filter(dir, rules);
    ASSERT_TRUE(r) << r.error().message();
    pid_t child = fork();
    if (child == 0) {
        if (!write_file(path_join(dir, "cgroup.procs"), std::to_string(getpid()))) _exit(10);
        if (open("/dev/kmsg", O_RDONLY) >= 0 || errno != EPERM) _exit(11);
        if (open("/dev/kmsg", O_WRONLY) < 0) _exit(12);
        if (open("/dev/zero", O_RDONLY) < 0) _exit(13);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "10: join failed, 11: reading /dev/kmsg not denied, 12: writing it denied, 13: /dev/zero denied";
}

}  // namespace
}  // namespace berth::cgroups
