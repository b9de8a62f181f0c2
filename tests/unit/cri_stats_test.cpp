// CRI stats from fake cgroup trees (v1 and v2 files as the kernel writes them), /proc/net/dev text, writable
// layer usage; and the CRI Image of an image record.
#include "cri/api.hpp"  // first: see src/cri/api.hpp
//
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "cri/image_service.hpp"
#include "cri/stats.hpp"

namespace berth::cri {
namespace {

class FakeCgroups : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/criimg-stats-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override { (void)remove_all(root_); }
    void file(const std::string& rel, const std::string& content) {
        std::string p = path_join(root_, rel);
        ASSERT_TRUE(mkdir_all(p.substr(0, p.rfind('/'))));
        ASSERT_TRUE(write_file(p, content));
    }

    cgroups::CgroupLayout v2_layout() {
        cgroups::CgroupLayout l;
        l.mode = cgroups::Mode::v2;
        l.unified = path_join(root_, "u");
        return l;
    }
    cgroups::CgroupLayout v1_layout() {
        cgroups::CgroupLayout l;
        l.mode = cgroups::Mode::v1;
        for (const char* c : {"memory", "cpu", "cpuacct", "pids"}) l.v1[c] = path_join(root_, c);
        return l;
    }

    // A v2 container cgroup at /berth/<name> (10 MiB used, 2 MiB of it inactive page cache, 4 MiB anonymous).
    void v2_cgroup(const std::string& name, const std::string& max) {
        std::string d = "u/berth/" + name + "/";
        file(d + "cgroup.controllers", "cpu io memory pids");
        file(d + "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n");
        file(d + "memory.current", "10485760\n");
        file(d + "memory.max", max + "\n");
        file(d + "memory.stat", "anon 4194304\nfile 6291456\ninactive_file 2097152\npgfault 100\npgmajfault 3\n");
        file(d + "memory.swap.current", "4096\n");
        file(d + "memory.swap.max", "65536\n");
        file(d + "pids.current", "3\n");
    }
    // The same numbers in v1 files; `limit` in bytes (v1 writes its "unlimited" as a huge number).
    void v1_cgroup(const std::string& name, const std::string& limit) {
        std::string rel = "/berth/" + name + "/";
        file("memory" + rel + "memory.usage_in_bytes", "10485760\n");
        file("memory" + rel + "memory.limit_in_bytes", limit + "\n");
        file("memory" + rel + "memory.memsw.usage_in_bytes", "10489856\n");  // memory + 4096 of swap
        file("memory" + rel + "memory.memsw.limit_in_bytes", "9223372036854771712\n");
        // The non-total_ keys are this cgroup alone: the stats must use the hierarchical totals.
        file("memory" + rel + "memory.stat",
             "rss 1\ninactive_file 1\npgfault 1\ntotal_rss 4194304\ntotal_inactive_file 2097152\ntotal_pgfault "
             "100\ntotal_pgmajfault 3\n");
        file("cpuacct" + rel + "cpuacct.usage", "1500000\n");
        file("cpuacct" + rel + "cpuacct.stat", "user 1\nsystem 1\n");
        file("cpu" + rel + "cpu.stat", "nr_periods 0\n");
        file("pids" + rel + "pids.current", "2\n");
    }

    ContainerStatsSource source(const std::string& id) {
        ContainerStatsSource s;
        s.id = id;
        s.metadata.set_name("app");
        s.metadata.set_attempt(2);
        s.labels = {{"l", "1"}};
        s.annotations = {{"a", "2"}};
        s.cgroups_path = "/berth/" + id;
        return s;
    }

    std::string root_;
};

TEST_F(FakeCgroups, V2ContainerStats) {
    v2_cgroup("c1", "20971520");
    v1::ContainerStats out;
    auto r = fill_container_stats(source("c1"), v2_layout(), &out);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(out.attributes().id(), "c1");
    EXPECT_EQ(out.attributes().metadata().name(), "app");
    EXPECT_EQ(out.attributes().metadata().attempt(), 2u);
    EXPECT_EQ(out.attributes().labels().at("l"), "1");
    EXPECT_EQ(out.attributes().annotations().at("a"), "2");

    ASSERT_TRUE(out.has_cpu());
    EXPECT_GT(out.cpu().timestamp(), 0);
    EXPECT_EQ(out.cpu().usage_core_nano_seconds().value(), 1500000u);
    EXPECT_FALSE(out.cpu().has_usage_nano_cores()) << "a rate needs two samples: kubelet computes it";

    ASSERT_TRUE(out.has_memory());
    EXPECT_EQ(out.memory().usage_bytes().value(), 10485760u);
    EXPECT_EQ(out.memory().working_set_bytes().value(), 10485760u - 2097152u);
    EXPECT_EQ(out.memory().rss_bytes().value(), 4194304u);
    EXPECT_EQ(out.memory().page_faults().value(), 100u);
    EXPECT_EQ(out.memory().major_page_faults().value(), 3u);
    EXPECT_EQ(out.memory().available_bytes().value(), 20971520u - (10485760u - 2097152u));

    ASSERT_TRUE(out.has_swap());
    EXPECT_EQ(out.swap().swap_usage_bytes().value(), 4096u);
    EXPECT_EQ(out.swap().swap_available_bytes().value(), 65536u - 4096u);
    EXPECT_FALSE(out.has_writable_layer());
}

TEST_F(FakeCgroups, V2WithoutALimitHasNoAvailableBytes) {
    v2_cgroup("c1", "max");
    v1::ContainerStats out;
    ASSERT_TRUE(fill_container_stats(source("c1"), v2_layout(), &out));
    ASSERT_TRUE(out.has_memory());
    EXPECT_FALSE(out.memory().has_available_bytes());
}

TEST_F(FakeCgroups, V1ContainerStatsUseHierarchicalTotals) {
    v1_cgroup("c1", "9223372036854771712");
    v1::ContainerStats out;
    auto r = fill_container_stats(source("c1"), v1_layout(), &out);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(out.cpu().usage_core_nano_seconds().value(), 1500000u);
    EXPECT_EQ(out.memory().usage_bytes().value(), 10485760u);
    EXPECT_EQ(out.memory().working_set_bytes().value(), 10485760u - 2097152u);
    EXPECT_EQ(out.memory().rss_bytes().value(), 4194304u);
    EXPECT_EQ(out.memory().page_faults().value(), 100u);
    EXPECT_EQ(out.memory().major_page_faults().value(), 3u);
    EXPECT_FALSE(out.memory().has_available_bytes()) << "unlimited";
    ASSERT_TRUE(out.has_swap());
    EXPECT_EQ(out.swap().swap_usage_bytes().value(), 4096u) << "memsw counts memory and swap together";
}

TEST_F(FakeCgroups, V1LimitGivesAvailableBytes) {
    v1_cgroup("c1", "16777216");
    v1::ContainerStats out;
    ASSERT_TRUE(fill_container_stats(source("c1"), v1_layout(), &out));
    EXPECT_EQ(out.memory().available_bytes().value(), 16777216u - (10485760u - 2097152u));
}

TEST_F(FakeCgroups, GoneCgroupGivesAttributesOnly) {
    v1::ContainerStats out;
    auto r = fill_container_stats(source("gone"), v2_layout(), &out);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(out.attributes().id(), "gone");
    EXPECT_FALSE(out.has_cpu());
    EXPECT_FALSE(out.has_memory());
}

TEST_F(FakeCgroups, WritableLayerUsage) {
    v2_cgroup("c1", "max");
    file("upper/a/big", std::string(3 * 4096, 'x'));
    file("upper/b", "y");
    ASSERT_EQ(::link(path_join(root_, "upper/b").c_str(), path_join(root_, "upper/a/b-link").c_str()), 0);
    auto src = source("c1");
    src.writable_layer_dir = path_join(root_, "upper");
    src.image_fs_mountpoint = "/var/lib/berth";
    v1::ContainerStats out;
    auto r = fill_container_stats(src, v2_layout(), &out);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(out.has_writable_layer());
    EXPECT_EQ(out.writable_layer().fs_id().mountpoint(), "/var/lib/berth");
    // upper, a, big, b (with its second name counted once).
    EXPECT_EQ(out.writable_layer().inodes_used().value(), 4u);
    EXPECT_GE(out.writable_layer().used_bytes().value(), 3u * 4096);

    auto du = disk_usage(path_join(root_, "upper"));
    ASSERT_TRUE(du);
    EXPECT_EQ(du->inodes, 4u);
    EXPECT_FALSE(disk_usage(path_join(root_, "nothing")));
}

TEST_F(FakeCgroups, PodStatsV2) {
    v2_cgroup("pod1", "max");
    v2_cgroup("pod1/c1", "20971520");
    file("u/berth/pod1/pids.current", "5\n");
    PodStatsSource pod;
    pod.id = "pod1";
    pod.metadata.set_name("p");
    pod.metadata.set_namespace_("ns");
    pod.metadata.set_uid("uid-1");
    pod.cgroup_path = "/berth/pod1";
    auto c = source("c1");
    c.cgroups_path = "/berth/pod1/c1";
    pod.containers.push_back(c);
    v1::PodSandboxStats out;
    auto r = fill_pod_stats(pod, v2_layout(), &out);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(out.attributes().id(), "pod1");
    EXPECT_EQ(out.attributes().metadata().namespace_(), "ns");
    ASSERT_TRUE(out.has_linux());
    EXPECT_EQ(out.linux().cpu().usage_core_nano_seconds().value(), 1500000u);
    EXPECT_EQ(out.linux().memory().working_set_bytes().value(), 10485760u - 2097152u);
    EXPECT_EQ(out.linux().process().process_count().value(), 5u);
    EXPECT_FALSE(out.linux().has_network()) << "host network: no netns given";
    ASSERT_EQ(out.linux().containers_size(), 1);
    EXPECT_EQ(out.linux().containers(0).attributes().id(), "c1");
    EXPECT_EQ(out.linux().containers(0).memory().available_bytes().value(), 20971520u - (10485760u - 2097152u));
}

TEST(NetDev, DefaultInterfaceOthersAndNoLoopback) {
    const char* text =
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
        "carrier compressed\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0 "
        "      0          0\n"
        "  eth0: 1234567      10    2    0    0     0          0         0   765432       9    1    0    0     0 "
        "      0          0\n"
        "  net1:      10       1    0    0    0     0          0         0       20       2    0    0    0     0 "
        "      0          0\n";
    v1::NetworkUsage u;
    parse_net_dev(text, &u);
    ASSERT_TRUE(u.has_default_interface());
    EXPECT_EQ(u.default_interface().name(), "eth0");
    EXPECT_EQ(u.default_interface().rx_bytes().value(), 1234567u);
    EXPECT_EQ(u.default_interface().rx_errors().value(), 2u);
    EXPECT_EQ(u.default_interface().tx_bytes().value(), 765432u);
    EXPECT_EQ(u.default_interface().tx_errors().value(), 1u);
    ASSERT_EQ(u.interfaces_size(), 1);
    EXPECT_EQ(u.interfaces(0).name(), "net1");
    EXPECT_EQ(u.interfaces(0).tx_bytes().value(), 20u);
}

store::ImageRecord record_with_user(const std::string& user) {
    store::ImageRecord rec;
    rec.id = *image::Digest::parse("sha256:" + std::string(64, 'a'));
    rec.manifest_digest = *image::Digest::parse("sha256:" + std::string(64, 'b'));
    rec.size = 1234;
    rec.names = {"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest",
                 "quay.io/x/y@sha256:" + std::string(64, 'b')};
    rec.config_json = R"({"architecture":"amd64","os":"linux","config":{"User":")" + user + R"("}})";
    return rec;
}

TEST(CriImage, FieldsFromTheRecord) {
    v1::Image img;
    fill_image(record_with_user(""), &img);
    EXPECT_EQ(img.id(), "sha256:" + std::string(64, 'a'));
    EXPECT_EQ(std::vector<std::string>(img.repo_tags().begin(), img.repo_tags().end()),
              (std::vector<std::string>{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest"}));
    EXPECT_EQ(std::vector<std::string>(img.repo_digests().begin(), img.repo_digests().end()),
              (std::vector<std::string>{"docker.io/library/busybox@sha256:" + std::string(64, 'b'),
                                        "quay.io/x/y@sha256:" + std::string(64, 'b')}));
    EXPECT_EQ(img.size(), 1234u);
    EXPECT_EQ(img.spec().image(), img.id());
    EXPECT_FALSE(img.has_uid());
    EXPECT_EQ(img.username(), "");
    EXPECT_FALSE(img.pinned());
}

TEST(CriImage, UserIsAUidOrAName) {
    v1::Image numeric;
    fill_image(record_with_user("1000:1000"), &numeric);
    ASSERT_TRUE(numeric.has_uid());
    EXPECT_EQ(numeric.uid().value(), 1000);
    EXPECT_EQ(numeric.username(), "");

    v1::Image root;
    fill_image(record_with_user("0"), &root);
    ASSERT_TRUE(root.has_uid());
    EXPECT_EQ(root.uid().value(), 0);

    v1::Image named;
    fill_image(record_with_user("nobody:nogroup"), &named);
    EXPECT_FALSE(named.has_uid());
    EXPECT_EQ(named.username(), "nobody");
}

}  // namespace
}  // namespace berth::cri
