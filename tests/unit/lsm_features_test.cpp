// AppArmor/SELinux decisions against this host, and the `berth features` structure.
#include <gtest/gtest.h>

#include "linux/capabilities.hpp"
#include "linux/lsm.hpp"
#include "linux/mount_options.hpp"
#include "linux/seccomp.hpp"
#include "runtime/features.hpp"
#include "spec/names.hpp"

namespace berth {
namespace {

TEST(Lsm, MountLabelOption) {
    EXPECT_EQ(sys::with_mount_label("", "system_u:object_r:container_file_t:s0"),
              R"(context="system_u:object_r:container_file_t:s0")");
    EXPECT_EQ(sys::with_mount_label("mode=755", "x_t"), R"(mode=755,context="x_t")");
    EXPECT_EQ(sys::with_mount_label("mode=755", ""), "mode=755");
    EXPECT_TRUE(sys::mount_takes_label("tmpfs"));
    EXPECT_TRUE(sys::mount_takes_label("devpts"));
    for (const char* t : {"proc", "sysfs", "cgroup", "cgroup2", "mqueue", "bind", ""})
        EXPECT_FALSE(sys::mount_takes_label(t)) << t;
}

TEST(Lsm, ResolvedAgainstTheHost) {
    spec::Process p;
    p.apparmor_profile = "berth-test-profile";
    auto r = sys::resolve_lsm(p, "system_u:object_r:x_t:s0");
    ASSERT_TRUE(r) << r.error().message();
    // Without AppArmor the profile is skipped (as runc); with it, it is applied.
    EXPECT_EQ(r->apparmor_profile, sys::apparmor_enabled() ? "berth-test-profile" : "");
    EXPECT_EQ(r->mount_label, sys::selinux_enabled() ? "system_u:object_r:x_t:s0" : "");

    p.selinux_label = "system_u:system_r:container_t:s0";
    r = sys::resolve_lsm(p, "", "process");
    if (sys::selinux_enabled()) {
        ASSERT_TRUE(r);
        EXPECT_EQ(r->selinux_label, p.selinux_label);
    } else {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().message(),
                  R"(process.selinuxLabel: SELinux label "system_u:system_r:container_t:s0" requested, but SELinux )"
                  "is not enabled on this host (no selinuxfs at /sys/fs/selinux)");
    }
}

TEST(Features, RequiredKeysAndVersions) {
    auto f = runtime::features();
    EXPECT_EQ(f["ociVersionMin"], "1.0.0");
    EXPECT_EQ(f["ociVersionMax"], "1.2.0");
    EXPECT_EQ(f["hooks"], nlohmann::json({"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                                          "poststop"}));
    const auto& l = f["linux"];
    EXPECT_EQ(l["cgroup"],
              nlohmann::json({{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", true}}));
    EXPECT_EQ(l["apparmor"]["enabled"], true);
    EXPECT_EQ(l["selinux"]["enabled"], true);
    EXPECT_EQ(l["intelRdt"]["enabled"], false);
    EXPECT_EQ(l["mountExtensions"]["idmap"]["enabled"], false);
    EXPECT_EQ(f["annotations"]["io.github.berth.version"], BERTH_VERSION);
    EXPECT_EQ(f["annotations"]["io.github.berth.host.apparmor.enabled"], sys::apparmor_enabled() ? "true" : "false");
    // features.md: no properties the spec does not define.
    for (const auto& [key, value] : f.items())
        EXPECT_TRUE(key == "ociVersionMin" || key == "ociVersionMax" || key == "hooks" || key == "mountOptions" ||
                    key == "annotations" || key == "linux")
            << key;
}

TEST(Features, ListsOnlyWhatBerthAccepts) {
    auto f = runtime::features();
    // Every mount option listed is one the parser interprets itself (not passed on as filesystem data).
    ASSERT_GT(f["mountOptions"].size(), 40u);
    for (const auto& opt : f["mountOptions"]) {
        auto r = sys::parse_mount_options({opt.get<std::string>()});
        ASSERT_TRUE(r) << opt;
        EXPECT_TRUE(r->data.empty()) << opt;
    }
    // idmap is reported disabled: the parser refuses it.
    EXPECT_FALSE(sys::parse_mount_options({"idmap"}));
    for (const auto& ns : f["linux"]["namespaces"])
        EXPECT_TRUE(spec::namespace_type_from_string(ns.get<std::string>())) << ns;
    EXPECT_EQ(f["linux"]["namespaces"].size(), 8u);
    ASSERT_EQ(f["linux"]["capabilities"].size(), spec::capability_names().size());
    for (const auto& cap : f["linux"]["capabilities"])
        EXPECT_TRUE(spec::capability_from_name(cap.get<std::string>())) << cap;
    const auto& sc = f["linux"]["seccomp"];
    EXPECT_EQ(sc["enabled"], true);
    EXPECT_EQ(sc["actions"].size(), 9u);
    EXPECT_EQ(sc["operators"].size(), 7u);
    EXPECT_EQ(sc["knownFlags"].size(), 4u);
    // Every architecture listed compiles.
    for (const auto& arch : sc["archs"]) {
        spec::Seccomp s;
        s.default_action = "SCMP_ACT_ALLOW";
        s.architectures = {arch.get<std::string>()};
        auto r = sys::compile_seccomp(s);
        EXPECT_TRUE(r) << arch << ": " << (r ? "" : r.error().message());
    }
    // Every supported flag compiles.
    for (const auto& flag : sc["supportedFlags"]) {
        spec::Seccomp s;
        s.default_action = "SCMP_ACT_ALLOW";
        s.flags = {flag.get<std::string>()};
        spec::SeccompSyscall notify;
        notify.names = {"getcwd"};
        notify.action = "SCMP_ACT_NOTIFY";
        s.syscalls.push_back(notify);
        auto r = sys::compile_seccomp(s);
        EXPECT_TRUE(r) << flag << ": " << (r ? "" : r.error().message());
    }
}

}  // namespace
}  // namespace berth
