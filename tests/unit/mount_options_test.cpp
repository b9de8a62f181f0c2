#include "linux/mount_options.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>

namespace berth::sys {
namespace {

MountFlags parse_ok(std::vector<std::string> opts) {
    auto r = parse_mount_options(opts);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return r ? *r : MountFlags{};
}

TEST(MountOptions, GenericFlagsSetAndClear) {
    MountFlags f = parse_ok({"nosuid", "noexec", "nodev", "ro", "relatime"});
    EXPECT_EQ(f.flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY | MS_RELATIME);
    EXPECT_EQ(f.clear, 0UL);
    EXPECT_TRUE(f.data.empty());
    EXPECT_FALSE(f.bind);

    f = parse_ok({"rw", "suid", "dev", "exec", "atime", "diratime", "norelatime", "nostrictatime", "async", "nomand",
                  "nolazytime", "loud", "symfollow", "noiversion"});
    EXPECT_EQ(f.flags, 0UL);
    EXPECT_EQ(f.clear, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME |
                           MS_STRICTATIME | MS_SYNCHRONOUS | MS_MANDLOCK | MS_LAZYTIME | MS_SILENT | MS_NOSYMFOLLOW |
                           MS_I_VERSION);

    f = parse_ok({"sync", "dirsync", "remount", "mand", "noatime", "nodiratime", "strictatime", "lazytime", "silent",
                  "nosymfollow", "iversion", "defaults"});
    EXPECT_EQ(f.flags, MS_SYNCHRONOUS | MS_DIRSYNC | MS_REMOUNT | MS_MANDLOCK | MS_NOATIME | MS_NODIRATIME |
                           MS_STRICTATIME | MS_LAZYTIME | MS_SILENT | MS_NOSYMFOLLOW | MS_I_VERSION);
}

TEST(MountOptions, LaterOptionWins) {
    MountFlags f = parse_ok({"ro", "rw"});
    EXPECT_EQ(f.flags & MS_RDONLY, 0UL);
    EXPECT_EQ(f.clear, static_cast<unsigned long>(MS_RDONLY));
    f = parse_ok({"rw", "ro"});
    EXPECT_EQ(f.flags, static_cast<unsigned long>(MS_RDONLY));
    EXPECT_EQ(f.clear, 0UL);
}

TEST(MountOptions, BindAndRbind) {
    MountFlags f = parse_ok({"bind", "ro"});
    EXPECT_TRUE(f.bind);
    EXPECT_FALSE(f.rbind);
    EXPECT_EQ(f.flags, static_cast<unsigned long>(MS_RDONLY));  // MS_BIND is not mixed into flags
    f = parse_ok({"rbind"});
    EXPECT_TRUE(f.bind);
    EXPECT_TRUE(f.rbind);
}

TEST(MountOptions, Propagation) {
    EXPECT_EQ(parse_ok({"rprivate"}).propagation, MS_PRIVATE | MS_REC);
    EXPECT_EQ(parse_ok({"private"}).propagation, static_cast<unsigned long>(MS_PRIVATE));
    EXPECT_EQ(parse_ok({"rshared"}).propagation, MS_SHARED | MS_REC);
    EXPECT_EQ(parse_ok({"shared"}).propagation, static_cast<unsigned long>(MS_SHARED));
    EXPECT_EQ(parse_ok({"rslave"}).propagation, MS_SLAVE | MS_REC);
    EXPECT_EQ(parse_ok({"slave"}).propagation, static_cast<unsigned long>(MS_SLAVE));
    EXPECT_EQ(parse_ok({"runbindable"}).propagation, MS_UNBINDABLE | MS_REC);
    EXPECT_EQ(parse_ok({"unbindable"}).propagation, static_cast<unsigned long>(MS_UNBINDABLE));
    EXPECT_EQ(parse_ok({"rbind", "rslave", "rslave"}).propagation, MS_SLAVE | MS_REC);

    auto conflict = parse_mount_options({"rprivate", "rshared"});
    ASSERT_FALSE(conflict);
    EXPECT_NE(conflict.error().message().find("\"rprivate\" and \"rshared\""), std::string::npos)
        << conflict.error().message();
}

TEST(MountOptions, RecursiveAttributes) {
    MountFlags f = parse_ok({"rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"});
    EXPECT_TRUE(f.recursive_readonly);
    EXPECT_EQ(f.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                              MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW);
    EXPECT_EQ(f.attr_clr, 0U);
    EXPECT_EQ(f.flags, 0UL);

    f = parse_ok({"rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"});
    EXPECT_FALSE(f.recursive_readonly);
    EXPECT_EQ(f.attr_set, 0U);
    EXPECT_EQ(f.attr_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                              MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW);

    f = parse_ok({"rro", "rrw"});
    EXPECT_FALSE(f.recursive_readonly);
    EXPECT_EQ(f.attr_set, 0U);
    EXPECT_EQ(f.attr_clr, static_cast<uint64_t>(MOUNT_ATTR_RDONLY));
}

TEST(MountOptions, RecursiveAtimeIsOneValueWithAtimeMaskCleared) {
    MountFlags f = parse_ok({"rnoatime"});
    EXPECT_EQ(f.attr_set, static_cast<uint64_t>(MOUNT_ATTR_NOATIME));
    EXPECT_EQ(f.attr_clr, static_cast<uint64_t>(MOUNT_ATTR__ATIME));
    f = parse_ok({"rnoatime", "rstrictatime"});
    EXPECT_EQ(f.attr_set, static_cast<uint64_t>(MOUNT_ATTR_STRICTATIME));
    EXPECT_EQ(f.attr_clr, static_cast<uint64_t>(MOUNT_ATTR__ATIME));
    f = parse_ok({"rnoatime", "rrelatime"});
    EXPECT_EQ(f.attr_set, static_cast<uint64_t>(MOUNT_ATTR_RELATIME));
    EXPECT_TRUE(f.has_recursive_attrs());
    f = parse_ok({"ratime"});
    EXPECT_EQ(f.attr_set & MOUNT_ATTR__ATIME, static_cast<uint64_t>(MOUNT_ATTR_RELATIME));
    f = parse_ok({"rnorelatime"});
    EXPECT_EQ(f.attr_set, static_cast<uint64_t>(MOUNT_ATTR_STRICTATIME));
    f = parse_ok({"rnostrictatime"});
    EXPECT_EQ(f.attr_set, static_cast<uint64_t>(MOUNT_ATTR_RELATIME));
}

TEST(MountOptions, UnknownOptionsGoToDataInOrder) {
    MountFlags f = parse_ok({"nosuid", "mode=755", "size=65536k", "newinstance", "ptmxmode=0666"});
    EXPECT_EQ(f.data, "mode=755,size=65536k,newinstance,ptmxmode=0666");
    EXPECT_EQ(f.flags, static_cast<unsigned long>(MS_NOSUID));
}

TEST(MountOptions, Tmpcopyup) {
    MountFlags f = parse_ok({"nosuid", "tmpcopyup", "mode=755"});
    EXPECT_TRUE(f.tmpcopyup);
    EXPECT_EQ(f.data, "mode=755");
    EXPECT_FALSE(parse_ok({"nosuid"}).tmpcopyup);
}

TEST(MountOptions, UnsupportedOptionsAreErrors) {
    for (std::string opt : {"idmap", "ridmap"}) {
        auto r = parse_mount_options({"rbind", opt});
        ASSERT_FALSE(r) << opt;
        EXPECT_NE(r.error().message().find("\"" + opt + "\" is not supported"), std::string::npos)
            << r.error().message();
    }
    EXPECT_FALSE(parse_mount_options({""}));
}

TEST(MountOptions, RootfsPropagation) {
    EXPECT_EQ(*parse_propagation(""), 0UL);
    EXPECT_EQ(*parse_propagation("rslave"), MS_SLAVE | MS_REC);
    EXPECT_EQ(*parse_propagation("shared"), static_cast<unsigned long>(MS_SHARED));
    EXPECT_EQ(*parse_propagation("runbindable"), MS_UNBINDABLE | MS_REC);
    auto bad = parse_propagation("sideways");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("\"sideways\""), std::string::npos);
}

}  // namespace
}  // namespace berth::sys
