#include "linux/mountinfo.hpp"

#include <gtest/gtest.h>

namespace berth::sys {
namespace {

constexpr std::string_view kSample =
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,nosuid,relatime master:3 shared:9 - cgroup cgroup rw,cpu\n"
    "40 31 0:37 /a/b /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "50 27 0:40 / /tmp/with\\040space rw - tmpfs none rw\n"
    "51 50 0:41 / /tmp/with\\040space/sub ro - tmpfs none rw\n";

TEST(Mountinfo, ParsesFieldsOptionalFieldsAndEscapes) {
    auto r = parse_mountinfo(kSample);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 7U);
    const MountInfo& root = (*r)[1];
    EXPECT_EQ(root.id, 27);
    EXPECT_EQ(root.parent_id, 1);
    EXPECT_EQ(root.major, 254U);
    EXPECT_EQ(root.minor, 0U);
    EXPECT_EQ(root.mount_point, "/");
    EXPECT_EQ(root.fstype, "ext4");
    EXPECT_EQ(root.source, "/dev/vda");
    ASSERT_EQ(root.optional_fields.size(), 1U);
    EXPECT_EQ(root.optional_fields[0], "shared:1");
    const MountInfo& cpu = (*r)[3];
    EXPECT_EQ(cpu.optional_fields.size(), 2U);
    EXPECT_TRUE(cpu.has_option("nosuid"));
    EXPECT_FALSE(cpu.has_option("nodev"));
    EXPECT_TRUE(cpu.has_super_option("cpu"));
    EXPECT_FALSE(cpu.has_super_option("cpuacct"));
    EXPECT_EQ((*r)[4].root, "/a/b");
    EXPECT_TRUE((*r)[4].has_super_option("name=systemd"));
    EXPECT_EQ((*r)[5].mount_point, "/tmp/with space");
}

TEST(Mountinfo, FindMountForPicksLongestPrefixOnComponentBoundary) {
    auto r = parse_mountinfo(kSample);
    ASSERT_TRUE(r);
    EXPECT_EQ(find_mount_for(*r, "/sys/fs/cgroup/cpu/x")->id, 32);
    EXPECT_EQ(find_mount_for(*r, "/sys/fs/cgroup/cpux")->id, 31);
    EXPECT_EQ(find_mount_for(*r, "/etc")->id, 27);
    EXPECT_EQ(find_mount_for(*r, "/tmp/with space/sub")->id, 51);
}

TEST(Mountinfo, MalformedLineIsAnError) {
    auto r = parse_mountinfo("12 1 0:3 / /x rw shared:1 ext4 /dev/x rw\n");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("malformed"), std::string::npos);
    EXPECT_FALSE(parse_mountinfo("x 1 0:3 / /x rw - ext4 /dev/x rw\n"));
}

TEST(Mountinfo, ReadsOwnMountinfo) {
    auto r = read_mountinfo();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_NE(find_mount_for(*r, "/"), nullptr);
}

}  // namespace
}  // namespace berth::sys
