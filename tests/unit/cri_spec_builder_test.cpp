// The CRI -> OCI translation of src/cri/spec_builder: every rule, each result parsed and validated by src/spec.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/spec_builder.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "cri/user_lookup.hpp"
#include "linux/seccomp.hpp"
#include "spec/config.hpp"
#include "spec/names.hpp"

namespace berth::cri {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",           "CAP_MKNOD",      "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID",       "CAP_SETFCAP", "CAP_SETPCAP",          "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE",
};

std::vector<std::string> strings(const json& j) { return j.get<std::vector<std::string>>(); }

const json* find_mount(const json& spec, const std::string& dest) {
    for (const auto& m : spec["mounts"])
        if (m["destination"] == dest) return &m;
    return nullptr;
}

const json* find_ns(const json& spec, const std::string& type) {
    for (const auto& n : spec["linux"]["namespaces"])
        if (n["type"] == type) return &n;
    return nullptr;
}

bool has_option(const json& mount, const std::string& opt) {
    if (!mount.contains("options")) return false;
    auto o = strings(mount["options"]);
    return std::find(o.begin(), o.end(), opt) != o.end();
}

class SpecBuilderTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/crispec-spec-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        rootfs_ = dir_ + "/rootfs";
        ASSERT_TRUE(mkdir_all(rootfs_ + "/etc"));
        ASSERT_TRUE(write_file(rootfs_ + "/etc/passwd",
                               "root:x:0:0:root:/root:/bin/sh\n"
                               "# a comment\n"
                               "daemon:x:1:1::/:/sbin/nologin\n"
                               "broken:x:notanumber:1::/:/bin/sh\n"
                               "www:x:33:33:www:/var/www:/bin/sh\n"
                               "app:x:1000:1001::/home/app:/bin/sh\n"));
        ASSERT_TRUE(write_file(rootfs_ + "/etc/group",
                               "root:x:0:\n"
                               "daemon:x:1:\n"
                               "www-data:x:33:\n"
                               "appgrp:x:1001:\n"
                               "wheel:x:10:root,app\n"
                               "audio:x:29:app\n"
                               "staff:x:50:www\n"));

        config_.mutable_metadata()->set_name("web");
        config_.mutable_image()->set_image("busybox:latest");
        pod_config_.mutable_metadata()->set_name("pod1");
        pod_config_.mutable_metadata()->set_namespace_("default");
        pod_config_.mutable_metadata()->set_uid("uid-1");
        // Kubelet's default: each container its own PID namespace (the enum's zero, POD, shares the pod's).
        pod_ns()->set_pid(v1::CONTAINER);
        sc()->mutable_namespace_options()->set_pid(v1::CONTAINER);
        pod_.pod_id = "pod-abc";
        pod_.netns_path = "/run/berth/netns/pod-abc";
        pod_.ipcns_path = "/run/berth/ipcns/pod-abc";
        pod_.utsns_path = "/run/berth/utsns/pod-abc";
        pod_.cgroup_parent = "/kubepods/pod-abc";
        pod_.hostname = "pod1-host";
        pod_.resolv_conf_path = "/var/lib/berth/pods/pod-abc/resolv.conf";
        pod_.hosts_path = "/var/lib/berth/pods/pod-abc/hosts";
        pod_.hostname_path = "/var/lib/berth/pods/pod-abc/hostname";
        pod_.shm_path = "/run/berth/pods/pod-abc/shm";
        image_.image_ref = "busybox:latest";
        image_.rootfs_path = rootfs_;
        image_.config = json::parse(R"({"config": {"Entrypoint": ["/bin/entry"], "Cmd": ["--flag", "x"],
                                        "Env": ["PATH=/usr/bin:/bin", "FOO=image", "BAR=image"],
                                        "WorkingDir": "/srv"}})");
    }
    void TearDown() override {
        if (!dir_.empty()) {
            EXPECT_TRUE(remove_all(dir_));
        }
    }

    void set_image(const std::string& key, const json& value) { image_.config["config"][key] = value; }
    v1::LinuxContainerSecurityContext* sc() { return config_.mutable_linux()->mutable_security_context(); }
    v1::LinuxContainerResources* res() { return config_.mutable_linux()->mutable_resources(); }
    v1::NamespaceOption* pod_ns() {
        return pod_config_.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    }

    Result<json> try_build() { return build_container_spec("ctr1", config_, pod_config_, pod_, image_, host_); }

    // Builds, and checks the result is a config berth parses and accepts.
    json build() {
        auto r = try_build();
        EXPECT_TRUE(r) << r.error().message();
        if (!r) return json::object();
        auto parsed = spec::parse_config(r->dump());
        EXPECT_TRUE(parsed) << parsed.error().message();
        if (parsed) {
            auto v = spec::validate_config(*parsed);
            EXPECT_TRUE(v) << v.error().message();
        }
        return *r;
    }

    // Builds expecting a failure whose message contains `needle`.
    void expect_error(const std::string& needle) {
        auto r = try_build();
        ASSERT_FALSE(r) << "built: " << r->dump();
        EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
    }

    std::string dir_, rootfs_;
    v1::ContainerConfig config_;
    v1::PodSandboxConfig pod_config_;
    PodContext pod_;
    ImageContext image_;
    HostContext host_;
};

// ---- process.args -----------------------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, ArgsAreImageEntrypointPlusCmd) {
    EXPECT_EQ(strings(build()["process"]["args"]), (std::vector<std::string>{"/bin/entry", "--flag", "x"}));
}

TEST_F(SpecBuilderTest, CriCommandReplacesEntrypointAndDropsCmd) {
    config_.add_command("/bin/sh");
    EXPECT_EQ(strings(build()["process"]["args"]), (std::vector<std::string>{"/bin/sh"}));
}

TEST_F(SpecBuilderTest, CriArgsReplaceCmdAndKeepEntrypoint) {
    config_.add_args("-c");
    config_.add_args("true");
    EXPECT_EQ(strings(build()["process"]["args"]), (std::vector<std::string>{"/bin/entry", "-c", "true"}));
}

TEST_F(SpecBuilderTest, CriCommandAndArgs) {
    config_.add_command("/bin/sh");
    config_.add_args("-c");
    config_.add_args("id");
    EXPECT_EQ(strings(build()["process"]["args"]), (std::vector<std::string>{"/bin/sh", "-c", "id"}));
}

TEST_F(SpecBuilderTest, ImageCmdOnly) {
    image_.config["config"].erase("Entrypoint");
    EXPECT_EQ(strings(build()["process"]["args"]), (std::vector<std::string>{"--flag", "x"}));
}

TEST_F(SpecBuilderTest, NoCommandAnywhereIsAnError) {
    image_.config["config"].erase("Entrypoint");
    set_image("Cmd", nullptr);
    expect_error("config.command");
}

TEST_F(SpecBuilderTest, MalformedImageEntrypointIsAnError) {
    set_image("Entrypoint", "not-an-array");
    expect_error("config.Entrypoint");
}

// ---- process.env, cwd, terminal ---------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, EnvMergesImageThenCriInPlace) {
    auto* e = config_.add_envs();
    e->set_key("FOO");
    e->set_value("cri");
    e = config_.add_envs();
    e->set_key("NEW");
    e->set_value("1=2");
    EXPECT_EQ(strings(build()["process"]["env"]),
              (std::vector<std::string>{"HOSTNAME=pod1-host", "PATH=/usr/bin:/bin", "FOO=cri", "BAR=image",
                                        "NEW=1=2"}));
}

TEST_F(SpecBuilderTest, EnvGetsDefaultPathWhenImageHasNone) {
    set_image("Env", json::array({"A=b"}));
    pod_.hostname.clear();
    auto env = strings(build()["process"]["env"]);
    ASSERT_EQ(env.size(), 2u);
    EXPECT_TRUE(env[0].starts_with("PATH=/usr/local/sbin:")) << env[0];
    EXPECT_EQ(env[1], "A=b");
}

TEST_F(SpecBuilderTest, EmptyEnvKeyIsAnError) {
    config_.add_envs()->set_value("x");
    expect_error("config.envs[0].key");
}

TEST_F(SpecBuilderTest, CwdFromCriThenImageThenRoot) {
    EXPECT_EQ(build()["process"]["cwd"], "/srv");
    config_.set_working_dir("/work//dir/");
    EXPECT_EQ(build()["process"]["cwd"], "/work/dir");
    config_.clear_working_dir();
    image_.config["config"].erase("WorkingDir");
    EXPECT_EQ(build()["process"]["cwd"], "/");
}

TEST_F(SpecBuilderTest, RelativeCwdIsAnError) {
    config_.set_working_dir("rel");
    expect_error("config.working_dir");
}

TEST_F(SpecBuilderTest, RelativeImageWorkingDirIsAnError) {
    set_image("WorkingDir", "rel");
    expect_error("config.WorkingDir");
}

TEST_F(SpecBuilderTest, TerminalFollowsTty) {
    EXPECT_EQ(build()["process"]["terminal"], false);
    config_.set_tty(true);
    EXPECT_EQ(build()["process"]["terminal"], true);
}

// ---- process.user -----------------------------------------------------------------------------------------------

struct UserCase {
    const char* image_user;
    uint32_t uid, gid;
    std::vector<uint32_t> gids;
};

TEST_F(SpecBuilderTest, ImageUserForms) {
    const UserCase cases[] = {
        {"", 0, 0, {0, 10}},                // root, member of wheel
        {"app", 1000, 1001, {1001, 10, 29}},  // name: primary group from passwd, memberships from group
        {"33", 33, 33, {33, 50}},           // uid known to passwd
        {"4242", 4242, 0, {0}},             // uid unknown: gid 0, no memberships
        {"1000:50", 1000, 50, {50, 10, 29}},
        {"app:audio", 1000, 29, {29, 10}},
        {"33:wheel", 33, 10, {10, 50}},
        {"www:7", 33, 7, {7, 50}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.image_user);
        set_image("User", c.image_user);
        json user = build()["process"]["user"];
        EXPECT_EQ(user["uid"], c.uid);
        EXPECT_EQ(user["gid"], c.gid);
        EXPECT_EQ(user["additionalGids"].get<std::vector<uint32_t>>(), c.gids);
    }
}

TEST_F(SpecBuilderTest, UnknownImageUserOrGroupIsAnError) {
    set_image("User", "nobody-here");
    expect_error("config.User: user \"nobody-here\" not found in /etc/passwd");
    set_image("User", "app:nogroup");
    expect_error("config.User: group \"nogroup\" not found in /etc/group");
    set_image("User", "broken");  // its line is malformed, so it does not exist
    expect_error("config.User: user \"broken\"");
}

TEST_F(SpecBuilderTest, RunAsUserOverridesImageUser) {
    set_image("User", "app:audio");
    sc()->mutable_run_as_user()->set_value(33);
    json user = build()["process"]["user"];
    EXPECT_EQ(user["uid"], 33);
    EXPECT_EQ(user["gid"], 33);
    EXPECT_EQ(user["additionalGids"].get<std::vector<uint32_t>>(), (std::vector<uint32_t>{33, 50}));
}

TEST_F(SpecBuilderTest, RunAsUsernameAndRunAsGroup) {
    sc()->set_run_as_username("app");
    sc()->mutable_run_as_group()->set_value(77);
    sc()->add_supplemental_groups(5000);
    sc()->add_supplemental_groups(10);  // already there through /etc/group: listed once
    json user = build()["process"]["user"];
    EXPECT_EQ(user["uid"], 1000);
    EXPECT_EQ(user["gid"], 77);
    EXPECT_EQ(user["additionalGids"].get<std::vector<uint32_t>>(), (std::vector<uint32_t>{77, 10, 29, 5000}));
}

TEST_F(SpecBuilderTest, StrictSupplementalGroupsPolicyIgnoresEtcGroup) {
    sc()->set_run_as_username("app");
    sc()->set_supplemental_groups_policy(v1::Strict);
    sc()->add_supplemental_groups(5000);
    EXPECT_EQ(build()["process"]["user"]["additionalGids"].get<std::vector<uint32_t>>(),
              (std::vector<uint32_t>{1001, 5000}));
}

TEST_F(SpecBuilderTest, UnknownRunAsUsernameNamesTheField) {
    sc()->set_run_as_username("www-x");
    expect_error("config.linux.security_context.run_as_username: user \"www-x\" not found in /etc/passwd");
}

TEST_F(SpecBuilderTest, NegativeIdsAreErrors) {
    sc()->mutable_run_as_user()->set_value(-1);
    expect_error("config.linux.security_context.run_as_user");
    sc()->mutable_run_as_user()->set_value(0);
    sc()->mutable_run_as_group()->set_value(-5);
    expect_error("config.linux.security_context.run_as_group");
    sc()->clear_run_as_group();
    sc()->add_supplemental_groups(-2);
    expect_error("config.linux.security_context.supplemental_groups[0]");
}

TEST_F(SpecBuilderTest, NoPasswdInImageMeansNumericIdsOnly) {
    ASSERT_EQ(::unlink((rootfs_ + "/etc/passwd").c_str()), 0);
    ASSERT_EQ(::unlink((rootfs_ + "/etc/group").c_str()), 0);
    set_image("User", "1234:99");
    json user = build()["process"]["user"];
    EXPECT_EQ(user["uid"], 1234);
    EXPECT_EQ(user["gid"], 99);
    set_image("User", "app");
    expect_error("config.User: user \"app\" not found");
}

// A hostile image whose /etc/passwd is a symlink to a host file: the name must not resolve from the host's file.
TEST_F(SpecBuilderTest, SymlinkedPasswdIsNotFollowedOutOfTheRootfs) {
    std::string host_passwd = dir_ + "/host-passwd";
    std::string host_group = dir_ + "/host-group";
    ASSERT_TRUE(write_file(host_passwd, "evil:x:4242:4242::/:/bin/sh\n"));
    ASSERT_TRUE(write_file(host_group, "evilgrp:x:4343:evil\n"));
    ASSERT_EQ(::unlink((rootfs_ + "/etc/passwd").c_str()), 0);
    ASSERT_EQ(::unlink((rootfs_ + "/etc/group").c_str()), 0);
    ASSERT_EQ(::symlink(host_passwd.c_str(), (rootfs_ + "/etc/passwd").c_str()), 0);
    // A relative symlink climbing out with "..": at the rootfs' top ".." stays there.
    std::string up = "../../../../../../../../../../../.." + host_group;
    ASSERT_EQ(::symlink(up.c_str(), (rootfs_ + "/etc/group").c_str()), 0);
    set_image("User", "evil");
    expect_error("config.User: user \"evil\" not found in /etc/passwd");
    set_image("User", "0:evilgrp");
    expect_error("config.User: group \"evilgrp\" not found in /etc/group");

    // The same symlinks resolve inside the rootfs when the target exists there.
    ASSERT_TRUE(mkdir_all(rootfs_ + dir_));
    ASSERT_TRUE(write_file(rootfs_ + host_passwd, "inside:x:7:8::/:/bin/sh\n"));
    set_image("User", "inside");
    json user = build()["process"]["user"];
    EXPECT_EQ(user["uid"], 7);
    EXPECT_EQ(user["gid"], 8);
}

TEST(UserLookupTest, ParsesPasswdAndGroupTolerantly) {
    auto pw = parse_passwd("a:x:1:2:gecos:/home/a:/bin/sh\r\n+nis\n-nis\nshort:x:3\nneg:x:-1:0::/:\n"
                           "b:x:4294967294:5\n\nc:x:4294967295:0::/:\n");
    ASSERT_EQ(pw.size(), 2u);
    EXPECT_EQ(pw[0].name, "a");
    EXPECT_EQ(pw[0].uid, 1u);
    EXPECT_EQ(pw[0].gid, 2u);
    EXPECT_EQ(pw[0].home, "/home/a");
    EXPECT_EQ(pw[1].name, "b");
    EXPECT_EQ(pw[1].uid, 4294967294u);
    auto gr = parse_group("g:x:5:a,b,,c\nh:x:6\nbad:x:z:a\n");
    ASSERT_EQ(gr.size(), 2u);
    EXPECT_EQ(gr[0].members, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_TRUE(gr[1].members.empty());
    RootfsUsers users(pw, gr);
    EXPECT_EQ(users.groups_of("b"), (std::vector<uint32_t>{5}));
    EXPECT_EQ(users.user_by_uid(4294967294u)->name, "b");
    EXPECT_EQ(users.user_by_name("zz"), nullptr);
}

TEST(UserLookupTest, MissingRootfsIsAnError) {
    auto r = RootfsUsers::load("/nonexistent/crispec-rootfs");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("/nonexistent/crispec-rootfs"), std::string::npos) << r.error().message();
}

// ---- capabilities, no_new_privs, apparmor, oom ------------------------------------------------------------------

TEST_F(SpecBuilderTest, DefaultCapabilities) {
    json caps = build()["process"]["capabilities"];
    for (const char* set : {"bounding", "effective", "permitted"}) EXPECT_EQ(strings(caps[set]), kDefaultCaps) << set;
    EXPECT_FALSE(caps.contains("inheritable"));
    EXPECT_FALSE(caps.contains("ambient"));
}

TEST_F(SpecBuilderTest, CapabilityAddAndDropWithOrWithoutPrefix) {
    sc()->mutable_capabilities()->add_add_capabilities("net_admin");
    sc()->mutable_capabilities()->add_add_capabilities("CAP_SYS_PTRACE");
    sc()->mutable_capabilities()->add_drop_capabilities("KILL");
    sc()->mutable_capabilities()->add_drop_capabilities("CAP_NET_RAW");
    auto caps = strings(build()["process"]["capabilities"]["bounding"]);
    auto has = [&](const char* c) { return std::find(caps.begin(), caps.end(), c) != caps.end(); };
    EXPECT_TRUE(has("CAP_NET_ADMIN"));
    EXPECT_TRUE(has("CAP_SYS_PTRACE"));
    EXPECT_FALSE(has("CAP_KILL"));
    EXPECT_FALSE(has("CAP_NET_RAW"));
    EXPECT_TRUE(has("CAP_CHOWN"));
    EXPECT_EQ(caps.size(), kDefaultCaps.size());
}

TEST_F(SpecBuilderTest, CapabilityAllForms) {
    sc()->mutable_capabilities()->add_drop_capabilities("ALL");
    sc()->mutable_capabilities()->add_add_capabilities("NET_BIND_SERVICE");
    EXPECT_EQ(strings(build()["process"]["capabilities"]["effective"]),
              (std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));

    sc()->mutable_capabilities()->Clear();
    sc()->mutable_capabilities()->add_add_capabilities("all");
    sc()->mutable_capabilities()->add_drop_capabilities("SYS_ADMIN");
    auto caps = strings(build()["process"]["capabilities"]["permitted"]);
    EXPECT_EQ(caps.size(), spec::capability_names().size() - 1);
    EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), caps.end());
}

TEST_F(SpecBuilderTest, UnknownCapabilityNamesTheField) {
    sc()->mutable_capabilities()->add_add_capabilities("CHOWN");
    sc()->mutable_capabilities()->add_add_capabilities("FLY");
    expect_error("config.linux.security_context.capabilities.add_capabilities[1]: unknown capability \"FLY\"");
    sc()->mutable_capabilities()->Clear();
    sc()->mutable_capabilities()->add_drop_capabilities("CAP_NOPE");
    expect_error("capabilities.drop_capabilities[0]");
}

TEST_F(SpecBuilderTest, AmbientCapabilitiesArePermittedAndInheritable) {
    sc()->mutable_capabilities()->add_drop_capabilities("ALL");
    sc()->mutable_capabilities()->add_add_ambient_capabilities("NET_BIND_SERVICE");
    json caps = build()["process"]["capabilities"];
    std::vector<std::string> want = {"CAP_NET_BIND_SERVICE"};
    for (const char* set : {"bounding", "effective", "permitted", "inheritable", "ambient"})
        EXPECT_EQ(strings(caps[set]), want) << set;
}

TEST_F(SpecBuilderTest, PrivilegedGetsEveryCapability) {
    sc()->set_privileged(true);
    sc()->mutable_capabilities()->add_drop_capabilities("ALL");  // ignored
    auto caps = strings(build()["process"]["capabilities"]["bounding"]);
    EXPECT_EQ(caps.size(), spec::capability_names().size());
    EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), caps.end());
}

TEST_F(SpecBuilderTest, NoNewPrivileges) {
    EXPECT_EQ(build()["process"]["noNewPrivileges"], false);
    sc()->set_no_new_privs(true);
    EXPECT_EQ(build()["process"]["noNewPrivileges"], true);
}

TEST_F(SpecBuilderTest, AppArmorOnlyWhenTheHostHasIt) {
    sc()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Localhost);
    sc()->mutable_apparmor()->set_localhost_ref("localhost/my-profile");
    EXPECT_FALSE(build()["process"].contains("apparmorProfile"));
    host_.apparmor_enabled = true;
    EXPECT_EQ(build()["process"]["apparmorProfile"], "my-profile");
    sc()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Unconfined);
    EXPECT_FALSE(build()["process"].contains("apparmorProfile"));
    sc()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    expect_error("config.linux.security_context.apparmor: RuntimeDefault");
    host_.apparmor_default_profile = "berth-default";
    EXPECT_EQ(build()["process"]["apparmorProfile"], "berth-default");
    sc()->set_privileged(true);
    EXPECT_FALSE(build()["process"].contains("apparmorProfile"));
}

TEST_F(SpecBuilderTest, DeprecatedAppArmorField) {
    host_.apparmor_enabled = true;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    sc()->set_apparmor_profile("localhost/legacy");
    EXPECT_EQ(build()["process"]["apparmorProfile"], "legacy");
    sc()->set_apparmor_profile("bogus");
#pragma GCC diagnostic pop
    expect_error("config.linux.security_context.apparmor_profile: unknown profile \"bogus\"");
}

TEST_F(SpecBuilderTest, SelinuxOptionsAreAccepted) {
    sc()->mutable_selinux_options()->set_type("container_t");
    EXPECT_FALSE(build()["process"].contains("selinuxLabel"));
}

TEST_F(SpecBuilderTest, OomScoreAdj) {
    EXPECT_FALSE(build()["process"].contains("oomScoreAdj"));
    res()->set_oom_score_adj(-997);
    EXPECT_EQ(build()["process"]["oomScoreAdj"], -997);
    host_.clamp_oom_score_adj = true;
    host_.daemon_oom_score = -500;
    EXPECT_EQ(build()["process"]["oomScoreAdj"], -500);
    host_.daemon_oom_score = 0;
    EXPECT_EQ(build()["process"]["oomScoreAdj"], 0);
    res()->set_oom_score_adj(1000);
    EXPECT_EQ(build()["process"]["oomScoreAdj"], 1000);
    res()->set_oom_score_adj(1001);
    expect_error("config.linux.resources.oom_score_adj");
}

TEST_F(SpecBuilderTest, NoRlimitsByDefault) { EXPECT_FALSE(build()["process"].contains("rlimits")); }

// ---- root and mounts --------------------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, Root) {
    json spec = build();
    EXPECT_EQ(spec["root"]["path"], rootfs_);
    EXPECT_EQ(spec["root"]["readonly"], false);
    sc()->set_readonly_rootfs(true);
    EXPECT_EQ(build()["root"]["readonly"], true);
}

TEST_F(SpecBuilderTest, StandardMounts) {
    json spec = build();
    struct Want {
        const char *dest, *type, *source;
    };
    for (const Want& w : {Want{"/proc", "proc", "proc"}, Want{"/dev", "tmpfs", "tmpfs"},
                          Want{"/dev/pts", "devpts", "devpts"}, Want{"/dev/mqueue", "mqueue", "mqueue"},
                          Want{"/sys", "sysfs", "sysfs"}, Want{"/sys/fs/cgroup", "cgroup", "cgroup"},
                          Want{"/dev/shm", "bind", "/run/berth/pods/pod-abc/shm"},
                          Want{"/etc/resolv.conf", "bind", "/var/lib/berth/pods/pod-abc/resolv.conf"},
                          Want{"/etc/hosts", "bind", "/var/lib/berth/pods/pod-abc/hosts"},
                          Want{"/etc/hostname", "bind", "/var/lib/berth/pods/pod-abc/hostname"}}) {
        SCOPED_TRACE(w.dest);
        const json* m = find_mount(spec, w.dest);
        ASSERT_NE(m, nullptr);
        EXPECT_EQ((*m)["type"], w.type);
        EXPECT_EQ((*m)["source"], w.source);
    }
    EXPECT_EQ(spec["mounts"].size(), 10u);
    EXPECT_TRUE(has_option(*find_mount(spec, "/sys"), "ro"));
    EXPECT_TRUE(has_option(*find_mount(spec, "/sys/fs/cgroup"), "ro"));
    EXPECT_TRUE(has_option(*find_mount(spec, "/etc/hosts"), "rw"));
    EXPECT_TRUE(has_option(*find_mount(spec, "/dev/shm"), "rbind"));
}

TEST_F(SpecBuilderTest, PrivilegedSysIsWritable) {
    sc()->set_privileged(true);
    json spec = build();
    EXPECT_TRUE(has_option(*find_mount(spec, "/sys"), "rw"));
    EXPECT_FALSE(has_option(*find_mount(spec, "/sys"), "ro"));
}

TEST_F(SpecBuilderTest, PrivateShmAndNoPodFiles) {
    pod_.shm_path.clear();
    pod_.resolv_conf_path.clear();
    pod_.hosts_path.clear();
    pod_.hostname_path.clear();
    json spec = build();
    const json* shm = find_mount(spec, "/dev/shm");
    ASSERT_NE(shm, nullptr);
    EXPECT_EQ((*shm)["type"], "tmpfs");
    EXPECT_TRUE(has_option(*shm, "mode=1777"));
    EXPECT_EQ(find_mount(spec, "/etc/hosts"), nullptr);
    EXPECT_EQ(find_mount(spec, "/etc/resolv.conf"), nullptr);
    EXPECT_EQ(find_mount(spec, "/etc/hostname"), nullptr);
}

TEST_F(SpecBuilderTest, PodFilesAreReadOnlyWithAReadOnlyRootfs) {
    sc()->set_readonly_rootfs(true);
    json spec = build();
    for (const char* dest : {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"})
        EXPECT_TRUE(has_option(*find_mount(spec, dest), "ro")) << dest;
}

TEST_F(SpecBuilderTest, CriMountsWithPropagation) {
    auto* m = config_.add_mounts();
    m->set_container_path("/data");
    m->set_host_path("/srv/data");
    m = config_.add_mounts();
    m->set_container_path("/logs");
    m->set_host_path("/var/log/pod");
    m->set_readonly(true);
    m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
    m->set_selinux_relabel(true);  // accepted, ignored
    json spec = build();
    const json* data = find_mount(spec, "/data");
    ASSERT_NE(data, nullptr);
    EXPECT_EQ((*data)["type"], "bind");
    EXPECT_EQ((*data)["source"], "/srv/data");
    EXPECT_EQ(strings((*data)["options"]), (std::vector<std::string>{"rbind", "rprivate", "rw"}));
    const json* logs = find_mount(spec, "/logs");
    ASSERT_NE(logs, nullptr);
    EXPECT_EQ(strings((*logs)["options"]), (std::vector<std::string>{"rbind", "rslave", "ro"}));
    EXPECT_EQ(spec["linux"]["rootfsPropagation"], "rslave");

    m = config_.add_mounts();
    m->set_container_path("/shared");
    m->set_host_path("/mnt/shared");
    m->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
    spec = build();
    EXPECT_TRUE(has_option(*find_mount(spec, "/shared"), "rshared"));
    EXPECT_EQ(spec["linux"]["rootfsPropagation"], "rshared");
}

TEST_F(SpecBuilderTest, RecursiveReadOnlyMount) {
    auto* m = config_.add_mounts();
    m->set_container_path("/data");
    m->set_host_path("/srv/data");
    m->set_readonly(true);
    m->set_recursive_read_only(true);
    EXPECT_EQ(strings((*find_mount(build(), "/data"))["options"]), (std::vector<std::string>{"rbind", "rprivate", "rro"}));
    m->set_readonly(false);
    expect_error("config.mounts[0].recursive_read_only: requires readonly");
    m->set_readonly(true);
    m->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
    expect_error("config.mounts[0].recursive_read_only: requires propagation");
}

TEST_F(SpecBuilderTest, CriMountReplacesAStandardMount) {
    auto* m = config_.add_mounts();
    m->set_container_path("/etc/hosts");
    m->set_host_path("/tmp/my-hosts");
    json spec = build();
    int count = 0;
    for (const auto& mm : spec["mounts"])
        if (mm["destination"] == "/etc/hosts") {
            ++count;
            EXPECT_EQ(mm["source"], "/tmp/my-hosts");
        }
    EXPECT_EQ(count, 1);
}

TEST_F(SpecBuilderTest, MountsAreSortedParentsFirst) {
    for (const char* dest : {"/data/a/b", "/data", "/data/a"}) {
        auto* m = config_.add_mounts();
        m->set_container_path(dest);
        m->set_host_path("/srv");
    }
    json spec = build();
    std::vector<std::string> order;
    for (const auto& m : spec["mounts"]) order.push_back(m["destination"]);
    auto pos = [&](const std::string& d) { return std::find(order.begin(), order.end(), d) - order.begin(); };
    EXPECT_LT(pos("/data"), pos("/data/a"));
    EXPECT_LT(pos("/data/a"), pos("/data/a/b"));
    EXPECT_LT(pos("/dev"), pos("/dev/pts"));
    EXPECT_LT(pos("/sys"), pos("/sys/fs/cgroup"));
    // Every parent comes before each of its children.
    for (size_t i = 0; i < order.size(); ++i)
        for (size_t j = 0; j < i; ++j) EXPECT_FALSE(order[j].starts_with(order[i] + "/")) << order[j] << " " << order[i];
}

TEST_F(SpecBuilderTest, BadCriMountsNameTheField) {
    auto* m = config_.add_mounts();
    m->set_container_path("relative");
    m->set_host_path("/srv");
    expect_error("config.mounts[0].container_path");
    m->set_container_path("/ok");
    m->set_host_path("srv");
    expect_error("config.mounts[0].host_path");
    m->set_host_path("");
    m->mutable_image()->set_image("busybox");
    expect_error("config.mounts[0].image: image volumes are not supported");
    m->clear_image();
    m->set_host_path("/srv");
    m->add_uidmappings()->set_length(1);
    expect_error("config.mounts[0]: id-mapped mounts");
}

TEST_F(SpecBuilderTest, ImageVolumesGetNoMount) {
    set_image("Volumes", json::parse(R"({"/var/lib/data": {}})"));
    EXPECT_EQ(find_mount(build(), "/var/lib/data"), nullptr);
}

// ---- namespaces and cgroups ------------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, NamespacesJoinThePods) {
    json spec = build();
    EXPECT_EQ((*find_ns(spec, "network"))["path"], pod_.netns_path);
    EXPECT_EQ((*find_ns(spec, "ipc"))["path"], pod_.ipcns_path);
    EXPECT_EQ((*find_ns(spec, "uts"))["path"], pod_.utsns_path);
    ASSERT_NE(find_ns(spec, "pid"), nullptr);
    EXPECT_FALSE(find_ns(spec, "pid")->contains("path"));
    EXPECT_FALSE(find_ns(spec, "mount")->contains("path"));
    EXPECT_FALSE(find_ns(spec, "cgroup")->contains("path"));
    EXPECT_EQ(find_ns(spec, "user"), nullptr);
    EXPECT_FALSE(spec.contains("hostname"));  // set in the pod's UTS namespace already
}

TEST_F(SpecBuilderTest, PidNamespaceModes) {
    auto* ns = sc()->mutable_namespace_options();
    ns->set_pid(v1::CONTAINER);
    EXPECT_FALSE(find_ns(build(), "pid")->contains("path"));
    ns->set_pid(v1::POD);
    expect_error("config.linux.security_context.namespace_options.pid: POD");
    pod_.pidns_path = "/proc/4242/ns/pid";
    EXPECT_EQ((*find_ns(build(), "pid"))["path"], "/proc/4242/ns/pid");
    ns->set_pid(v1::NODE);
    EXPECT_EQ(find_ns(build(), "pid"), nullptr);
    ns->set_pid(v1::TARGET);
    expect_error("namespace_options.pid: TARGET");
}

TEST_F(SpecBuilderTest, HostNetworkAndIpc) {
    pod_ns()->set_network(v1::NODE);
    pod_ns()->set_ipc(v1::NODE);
    sc()->mutable_namespace_options()->set_pid(v1::CONTAINER);
    pod_.netns_path.clear();
    pod_.utsns_path.clear();
    pod_.ipcns_path.clear();
    json spec = build();
    EXPECT_EQ(find_ns(spec, "network"), nullptr);
    EXPECT_EQ(find_ns(spec, "uts"), nullptr);
    EXPECT_EQ(find_ns(spec, "ipc"), nullptr);
    EXPECT_FALSE(spec.contains("hostname"));
}

TEST_F(SpecBuilderTest, NewUtsNamespaceGetsThePodHostname) {
    pod_.utsns_path.clear();
    json spec = build();
    EXPECT_FALSE(find_ns(spec, "uts")->contains("path"));
    EXPECT_EQ(spec["hostname"], "pod1-host");
}

TEST_F(SpecBuilderTest, UserNamespacesAreNotSupported) {
    auto* u = pod_ns()->mutable_userns_options();
    u->set_mode(v1::NODE);
    build();
    u->set_mode(v1::POD);
    auto* map = u->add_uids();
    map->set_host_id(100000);
    map->set_length(65536);
    expect_error("userns_options: user namespaces are not supported");
}

TEST_F(SpecBuilderTest, CgroupsPath) {
    EXPECT_EQ(build()["linux"]["cgroupsPath"], "/kubepods/pod-abc/ctr1");
    pod_.cgroup_parent = "kubepods/burstable/pod-x/";
    EXPECT_EQ(build()["linux"]["cgroupsPath"], "/kubepods/burstable/pod-x/ctr1");
    pod_.cgroup_parent = "kubepods-pod.slice";
    expect_error("cgroup_parent");
}

// ---- resources, sysctls, masked paths, devices ------------------------------------------------------------------

TEST_F(SpecBuilderTest, Resources) {
    res()->set_cpu_shares(512);
    res()->set_cpu_quota(50000);
    res()->set_cpu_period(100000);
    res()->set_cpuset_cpus("0-1");
    res()->set_cpuset_mems("0");
    res()->set_memory_limit_in_bytes(64 << 20);
    res()->set_memory_swap_limit_in_bytes(128 << 20);
    auto* h = res()->add_hugepage_limits();
    h->set_page_size("2MB");
    h->set_limit(4 << 21);
    (*res()->mutable_unified())["memory.high"] = "50000000";
    host_.hugepage_sizes = {"2MB", "1GB"};
    json r = build()["linux"]["resources"];
    EXPECT_EQ(r["cpu"]["shares"], 512);
    EXPECT_EQ(r["cpu"]["quota"], 50000);
    EXPECT_EQ(r["cpu"]["period"], 100000);
    EXPECT_EQ(r["cpu"]["cpus"], "0-1");
    EXPECT_EQ(r["cpu"]["mems"], "0");
    EXPECT_EQ(r["memory"]["limit"], 64 << 20);
    EXPECT_EQ(r["memory"]["swap"], 128 << 20);
    ASSERT_EQ(r["hugepageLimits"].size(), 1u);
    EXPECT_EQ(r["hugepageLimits"][0]["pageSize"], "2MB");
    EXPECT_EQ(r["hugepageLimits"][0]["limit"], 4 << 21);
    EXPECT_EQ(r["unified"]["memory.high"], "50000000");

    host_.hugetlb_available = false;
    EXPECT_FALSE(build()["linux"]["resources"].contains("hugepageLimits"));
}

TEST_F(SpecBuilderTest, NoResourcesMeansNoLimits) {
    json r = build()["linux"]["resources"];
    EXPECT_FALSE(r.contains("cpu"));
    EXPECT_FALSE(r.contains("memory"));
}

TEST_F(SpecBuilderTest, BadResourcesNameTheField) {
    host_.hugepage_sizes = {"2MB"};
    res()->add_hugepage_limits()->set_page_size("1GB");
    expect_error("config.linux.resources.hugepage_limits[0].page_size: \"1GB\"");
    res()->clear_hugepage_limits();
    res()->set_cpu_shares(-1);
    expect_error("config.linux.resources.cpu_shares");
    res()->set_cpu_shares(0);
    res()->set_memory_limit_in_bytes(100 << 20);
    res()->set_memory_swap_limit_in_bytes(50 << 20);
    expect_error("config.linux.resources.memory_swap_limit_in_bytes");
    res()->set_memory_swap_limit_in_bytes(0);
    (*res()->mutable_unified())["../escape"] = "1";
    expect_error("config.linux.resources.unified");
}

TEST_F(SpecBuilderTest, Sysctls) {
    auto& s = *pod_config_.mutable_linux()->mutable_sysctls();
    s["net.ipv4.ip_unprivileged_port_start"] = "0";
    s["kernel.shm_rmid_forced"] = "1";
    s["fs.mqueue.msg_max"] = "20";
    json spec = build();
    EXPECT_EQ(spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
    EXPECT_EQ(spec["linux"]["sysctl"]["kernel.shm_rmid_forced"], "1");
    EXPECT_EQ(spec["linux"]["sysctl"]["fs.mqueue.msg_max"], "20");

    pod_ns()->set_network(v1::NODE);
    expect_error("pod_config.linux.sysctls[\"net.ipv4.ip_unprivileged_port_start\"]: the pod uses the host's network");
    pod_ns()->set_network(v1::POD);
    pod_ns()->set_ipc(v1::NODE);
    expect_error("the pod uses the host's IPC namespace");
    pod_ns()->set_ipc(v1::POD);
    s.clear();
    s["vm.swappiness"] = "10";
    expect_error("pod_config.linux.sysctls[\"vm.swappiness\"]: not a namespaced sysctl");
}

TEST_F(SpecBuilderTest, MaskedAndReadonlyPaths) {
    json spec = build();
    auto masked = strings(spec["linux"]["maskedPaths"]);
    EXPECT_NE(std::find(masked.begin(), masked.end(), "/proc/kcore"), masked.end());
    EXPECT_NE(std::find(masked.begin(), masked.end(), "/sys/firmware"), masked.end());
    auto ro = strings(spec["linux"]["readonlyPaths"]);
    EXPECT_NE(std::find(ro.begin(), ro.end(), "/proc/sys"), ro.end());

    sc()->add_masked_paths("/proc/only");
    sc()->add_readonly_paths("/proc/ro");
    spec = build();
    EXPECT_EQ(strings(spec["linux"]["maskedPaths"]), (std::vector<std::string>{"/proc/only"}));
    EXPECT_EQ(strings(spec["linux"]["readonlyPaths"]), (std::vector<std::string>{"/proc/ro"}));

    sc()->set_privileged(true);
    spec = build();
    EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
    EXPECT_FALSE(spec["linux"].contains("readonlyPaths"));

    sc()->set_privileged(false);
    sc()->add_masked_paths("relative");
    expect_error("config.linux.security_context.masked_paths[1]");
}

TEST_F(SpecBuilderTest, Devices) {
    auto* d = config_.add_devices();
    d->set_host_path("/dev/null");
    d->set_container_path("/dev/mynull");
    d = config_.add_devices();
    d->set_host_path("/dev/zero");
    d->set_container_path("/dev/zero");
    d->set_permissions("r");
    json spec = build();
    ASSERT_EQ(spec["linux"]["devices"].size(), 2u);
    json dev = spec["linux"]["devices"][0];
    EXPECT_EQ(dev["path"], "/dev/mynull");
    EXPECT_EQ(dev["type"], "c");
    EXPECT_EQ(dev["major"], 1);
    EXPECT_EQ(dev["minor"], 3);
    json rules = spec["linux"]["resources"]["devices"];
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[0]["allow"], false);
    EXPECT_EQ(rules[1]["access"], "rwm");
    EXPECT_EQ(rules[1]["major"], 1);
    EXPECT_EQ(rules[1]["minor"], 3);
    EXPECT_EQ(rules[2]["access"], "r");
    EXPECT_EQ(rules[2]["minor"], 5);
}

TEST_F(SpecBuilderTest, BadDevicesNameTheField) {
    auto* d = config_.add_devices();
    d->set_host_path("/dev/null");
    d->set_container_path("/dev/null");
    d->set_permissions("rx");
    expect_error("config.devices[0].permissions");
    d->set_permissions("rw");
    d->set_host_path(rootfs_ + "/etc/passwd");
    expect_error("config.devices[0].host_path: " + rootfs_ + "/etc/passwd is not a character or block device");
    d->set_host_path("/dev/crispec-none");
    expect_error("config.devices[0].host_path: stat /dev/crispec-none");
}

TEST_F(SpecBuilderTest, PrivilegedMayUseEveryDevice) {
    sc()->set_privileged(true);
    json rules = build()["linux"]["resources"]["devices"];
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(rules[0]["allow"], true);
    EXPECT_EQ(rules[0]["access"], "rwm");
}

// ---- seccomp ----------------------------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, SeccompProfiles) {
    EXPECT_FALSE(build()["linux"].contains("seccomp"));  // nothing asked: unconfined, as kubelet's default
    sc()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    EXPECT_EQ(build()["linux"]["seccomp"], default_seccomp_profile());
    sc()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
    EXPECT_FALSE(build()["linux"].contains("seccomp"));
    sc()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    sc()->set_privileged(true);
    EXPECT_FALSE(build()["linux"].contains("seccomp"));
}

TEST_F(SpecBuilderTest, SeccompLocalhostProfiles) {
    std::string root = dir_ + "/seccomp";
    ASSERT_TRUE(mkdir_all(root + "/profiles"));
    ASSERT_TRUE(write_file(root + "/profiles/audit.json",
                           R"({"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"],
                               "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]})"));
    ASSERT_TRUE(write_file(root + "/docker.json",
                           R"({"defaultAction": "SCMP_ACT_ALLOW",
                               "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                            "subArchitectures": ["SCMP_ARCH_X86"]}],
                               "syscalls": [{"name": "reboot", "action": "SCMP_ACT_ERRNO"}]})"));
    ASSERT_TRUE(write_file(root + "/bad.json", R"({"defaultAction": "SCMP_ACT_NOPE"})"));
    host_.seccomp_profile_root = root;
    sc()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);

    sc()->mutable_seccomp()->set_localhost_ref(root + "/profiles/audit.json");
    json s = build()["linux"]["seccomp"];
    EXPECT_EQ(s["defaultAction"], "SCMP_ACT_LOG");
    EXPECT_EQ(s["syscalls"][0]["names"][0], "mount");

    sc()->mutable_seccomp()->set_localhost_ref("profiles/audit.json");  // relative to the profile root
    EXPECT_EQ(build()["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_LOG");

    sc()->mutable_seccomp()->set_localhost_ref("docker.json");
    s = build()["linux"]["seccomp"];
    EXPECT_EQ(strings(s["architectures"]), (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
    EXPECT_EQ(s["syscalls"][0]["names"][0], "reboot");

    sc()->mutable_seccomp()->set_localhost_ref("missing.json");
    expect_error("config.linux.security_context.seccomp.localhost_ref");
    sc()->mutable_seccomp()->set_localhost_ref("bad.json");
    expect_error("defaultAction");

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    sc()->clear_seccomp();
    sc()->set_seccomp_profile_path("localhost/" + root + "/profiles/audit.json");
    EXPECT_EQ(build()["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_LOG");
    sc()->set_seccomp_profile_path("runtime/default");
    EXPECT_EQ(build()["linux"]["seccomp"], default_seccomp_profile());
    sc()->set_seccomp_profile_path("unconfined");
    EXPECT_FALSE(build()["linux"].contains("seccomp"));
    sc()->set_seccomp_profile_path("whatever");
#pragma GCC diagnostic pop
    expect_error("config.linux.security_context.seccomp_profile_path: unknown profile \"whatever\"");
}

TEST(DefaultSeccompProfileTest, CompilesAndDeniesTheEscapeSyscalls) {
    json doc = {{"ociVersion", spec::kOciVersion}, {"linux", {{"seccomp", default_seccomp_profile()}}}};
    auto parsed = spec::parse_config(doc.dump());
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_TRUE(parsed->linux && parsed->linux->seccomp);
    const spec::Seccomp& s = *parsed->linux->seccomp;
    EXPECT_EQ(s.default_action, "SCMP_ACT_ERRNO");
    ASSERT_TRUE(s.default_errno_ret);
    EXPECT_EQ(*s.default_errno_ret, 1u);  // EPERM
    auto filter = sys::compile_seccomp(s);
    ASSERT_TRUE(filter) << filter.error().message();

    std::vector<std::string> allowed;
    for (const auto& sc : s.syscalls)
        if (sc.action == "SCMP_ACT_ALLOW")
            allowed.insert(allowed.end(), sc.names.begin(), sc.names.end());
    auto has = [&](const char* n) { return std::find(allowed.begin(), allowed.end(), n) != allowed.end(); };
    for (const char* denied : {"mount", "umount2", "unshare", "setns", "pivot_root", "bpf", "ptrace", "kexec_load",
                               "init_module", "open_by_handle_at", "userfaultfd", "keyctl", "reboot", "swapon"})
        EXPECT_FALSE(has(denied)) << denied;
    for (const char* needed : {"read", "write", "execve", "openat", "mmap", "futex", "exit_group", "clone"})
        EXPECT_TRUE(has(needed)) << needed;
}

// ---- annotations and stop signal --------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, Annotations) {
    (*config_.mutable_annotations())["example.com/key"] = "value";
    (*config_.mutable_annotations())["io.kubernetes.cri.container-type"] = "spoofed";
    json a = build()["annotations"];
    EXPECT_EQ(a["example.com/key"], "value");
    EXPECT_EQ(a["io.kubernetes.cri.container-type"], "container");
    EXPECT_EQ(a["io.kubernetes.cri.container-name"], "web");
    EXPECT_EQ(a["io.kubernetes.cri.sandbox-id"], "pod-abc");
    EXPECT_EQ(a["io.kubernetes.cri.sandbox-name"], "pod1");
    EXPECT_EQ(a["io.kubernetes.cri.sandbox-namespace"], "default");
    EXPECT_EQ(a["io.kubernetes.cri.sandbox-uid"], "uid-1");
    EXPECT_EQ(a["io.kubernetes.cri.image-name"], "busybox:latest");
}

TEST_F(SpecBuilderTest, BadContainerIdOrRootfs) {
    auto r = build_container_spec("a/b", config_, pod_config_, pod_, image_, host_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("a/b"), std::string::npos);
    image_.rootfs_path = "relative";
    expect_error("rootfs path \"relative\"");
}

TEST(ImageStopSignalTest, Forms) {
    auto sig = [](const json& cfg) { return image_stop_signal(cfg); };
    EXPECT_EQ(*sig(json::object()), SIGTERM);
    EXPECT_EQ(*sig(json::parse(R"({"config": {}})")), SIGTERM);
    EXPECT_EQ(*sig(json::parse(R"({"config": {"StopSignal": "SIGQUIT"}})")), SIGQUIT);
    EXPECT_EQ(*sig(json::parse(R"({"config": {"StopSignal": "QUIT"}})")), SIGQUIT);
    EXPECT_EQ(*sig(json::parse(R"({"config": {"StopSignal": "9"}})")), SIGKILL);
    EXPECT_EQ(*sig(json::parse(R"({"config": {"StopSignal": "sigint"}})")), SIGINT);
    auto bad = sig(json::parse(R"({"config": {"StopSignal": "SIGNOPE"}})"));
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("StopSignal"), std::string::npos) << bad.error().message();
    EXPECT_FALSE(sig(json::parse(R"({"config": {"StopSignal": 3}})")));
}

}  // namespace
}  // namespace berth::cri
