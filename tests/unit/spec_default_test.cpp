#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "spec/config.hpp"
#include "spec/state.hpp"

namespace berth::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Mount* find_mount(const Config& c, std::string_view destination) {
    for (const auto& m : c.mounts)
        if (m.destination == destination) return &m;
    return nullptr;
}

Config parse_and_validate(const std::string& text) {
    auto c = parse_config(text);
    EXPECT_TRUE(c) << c.error().message();
    if (!c) return {};
    auto v = validate_config(*c);
    EXPECT_TRUE(v) << v.error().message();
    return std::move(*c);
}

TEST(SpecDefault, RootfulConfigRoundTrips) {
    std::string text = default_config_json(false);
    // `berth spec` output is indented by two spaces, one key per line.
    EXPECT_THAT(text, HasSubstr("{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": {\n    \"terminal\": true,"));
    Config c = parse_and_validate(text);

    EXPECT_EQ(c.oci_version, kOciVersion);
    ASSERT_TRUE(c.process);
    EXPECT_TRUE(c.process->terminal);
    EXPECT_EQ(c.process->user.uid, 0u);
    EXPECT_EQ(c.process->user.gid, 0u);
    EXPECT_THAT(c.process->args, ElementsAre("sh"));
    EXPECT_THAT(c.process->env,
                ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"));
    EXPECT_EQ(c.process->cwd, "/");
    ASSERT_TRUE(c.process->capabilities);
    for (const auto* set :
         {&c.process->capabilities->bounding, &c.process->capabilities->effective, &c.process->capabilities->permitted})
        EXPECT_THAT(*set, ElementsAre("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"));
    EXPECT_TRUE(c.process->capabilities->ambient.empty());
    ASSERT_EQ(c.process->rlimits.size(), 1u);
    EXPECT_EQ(c.process->rlimits[0].type, "RLIMIT_NOFILE");
    EXPECT_EQ(c.process->rlimits[0].soft, 1024u);
    EXPECT_EQ(c.process->rlimits[0].hard, 1024u);
    EXPECT_TRUE(c.process->no_new_privileges);
    ASSERT_TRUE(c.root);
    EXPECT_EQ(c.root->path, "rootfs");
    EXPECT_TRUE(c.root->readonly);
    EXPECT_EQ(c.hostname, "berth");

    ASSERT_EQ(c.mounts.size(), 7u);
    std::vector<std::string> destinations;
    for (const auto& m : c.mounts) destinations.push_back(m.destination);
    EXPECT_THAT(destinations,
                ElementsAre("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"));
    EXPECT_EQ(find_mount(c, "/proc")->type, "proc");
    EXPECT_THAT(find_mount(c, "/dev")->options, ElementsAre("nosuid", "strictatime", "mode=755", "size=65536k"));
    EXPECT_THAT(find_mount(c, "/dev/pts")->options,
                ElementsAre("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"));
    EXPECT_THAT(find_mount(c, "/dev/shm")->options,
                ElementsAre("nosuid", "noexec", "nodev", "mode=1777", "size=65536k"));
    EXPECT_EQ(find_mount(c, "/dev/mqueue")->type, "mqueue");
    EXPECT_EQ(find_mount(c, "/sys")->type, "sysfs");
    EXPECT_THAT(find_mount(c, "/sys")->options, ElementsAre("nosuid", "noexec", "nodev", "ro"));
    EXPECT_THAT(find_mount(c, "/sys/fs/cgroup")->options, ElementsAre("nosuid", "noexec", "nodev", "relatime", "ro"));

    ASSERT_TRUE(c.linux);
    std::vector<NamespaceType> types;
    for (const auto& ns : c.linux->namespaces) {
        types.push_back(ns.type);
        EXPECT_TRUE(ns.path.empty());
    }
    EXPECT_THAT(types, ElementsAre(NamespaceType::pid, NamespaceType::network, NamespaceType::ipc, NamespaceType::uts,
                                   NamespaceType::mount, NamespaceType::cgroup));
    EXPECT_TRUE(c.linux->uid_mappings.empty());
    EXPECT_THAT(c.linux->masked_paths, ElementsAre("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                                   "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                                   "/proc/sched_debug", "/sys/firmware", "/proc/scsi"));
    EXPECT_THAT(c.linux->readonly_paths,
                ElementsAre("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"));
    ASSERT_TRUE(c.linux->resources);
    ASSERT_EQ(c.linux->resources->devices.size(), 1u);
    EXPECT_FALSE(c.linux->resources->devices[0].allow);
    EXPECT_EQ(c.linux->resources->devices[0].access, "rwm");
}

TEST(SpecDefault, RootlessConfigRoundTrips) {
    Config c = parse_and_validate(default_config_json(true, 1000, 1001));
    ASSERT_TRUE(c.linux);
    const Linux& l = *c.linux;

    ASSERT_NE(l.find_namespace(NamespaceType::user), nullptr);
    EXPECT_TRUE(l.find_namespace(NamespaceType::user)->path.empty());
    EXPECT_EQ(l.find_namespace(NamespaceType::network), nullptr);
    EXPECT_EQ(l.find_namespace(NamespaceType::cgroup), nullptr);
    EXPECT_NE(l.find_namespace(NamespaceType::pid), nullptr);
    EXPECT_NE(l.find_namespace(NamespaceType::uts), nullptr);

    ASSERT_EQ(l.uid_mappings.size(), 1u);
    EXPECT_EQ(l.uid_mappings[0].container_id, 0u);
    EXPECT_EQ(l.uid_mappings[0].host_id, 1000u);
    EXPECT_EQ(l.uid_mappings[0].size, 1u);
    ASSERT_EQ(l.gid_mappings.size(), 1u);
    EXPECT_EQ(l.gid_mappings[0].container_id, 0u);
    EXPECT_EQ(l.gid_mappings[0].host_id, 1001u);
    EXPECT_EQ(l.gid_mappings[0].size, 1u);
    EXPECT_FALSE(l.resources);

    EXPECT_EQ(find_mount(c, "/sys/fs/cgroup"), nullptr);
    const Mount* sys = find_mount(c, "/sys");
    ASSERT_NE(sys, nullptr);
    EXPECT_EQ(sys->source, "/sys");
    EXPECT_EQ(sys->type, "none");
    EXPECT_THAT(sys->options, ElementsAre("rbind", "nosuid", "noexec", "nodev", "ro"));
    const Mount* pts = find_mount(c, "/dev/pts");
    ASSERT_NE(pts, nullptr);
    EXPECT_EQ(std::count(pts->options.begin(), pts->options.end(), "gid=5"), 0);
    EXPECT_EQ(c.mounts.size(), 6u);
    // The process itself is unchanged: root inside the user namespace.
    ASSERT_TRUE(c.process);
    EXPECT_EQ(c.process->user.uid, 0u);
}

TEST(SpecState, JsonOmitsZeroPidAndEmptyAnnotations) {
    State s{"1.2.0", "c1", "creating", 0, "/run/bundles/c1", {}};
    EXPECT_EQ(state_to_json(s), R"({"ociVersion":"1.2.0","id":"c1","status":"creating","bundle":"/run/bundles/c1"})");
    s.status = "running";
    s.pid = 4242;
    s.annotations = {{"b", "2"}, {"a", "1"}};
    EXPECT_EQ(state_to_json(s),
              R"({"ociVersion":"1.2.0","id":"c1","status":"running","pid":4242,"bundle":"/run/bundles/c1",)"
              R"("annotations":{"a":"1","b":"2"}})");
}

TEST(SpecState, RoundTrips) {
    State s{"1.2.0", "web-1", "created", 77, "/b", {{"k", "v\"q"}}};
    auto back = parse_state(state_to_json(s));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->oci_version, "1.2.0");
    EXPECT_EQ(back->id, "web-1");
    EXPECT_EQ(back->status, "created");
    EXPECT_EQ(back->pid, 77);
    EXPECT_EQ(back->bundle, "/b");
    EXPECT_EQ(back->annotations.at("k"), "v\"q");
}

TEST(SpecState, InvalidUtf8IsReplacedNotThrown) {
    State s{"1.2.0", std::string("bad\xff", 4), "stopped", 0, "/b", {}};
    std::string j = state_to_json(s);
    EXPECT_THAT(j, HasSubstr("\"id\":\"bad\xEF\xBF\xBD\""));
}

TEST(SpecState, BadStatesNameTheField) {
    auto r = parse_state(R"({"ociVersion": "1.2.0", "id": "x", "status": "paused", "bundle": "/b"})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), R"(status: unknown status "paused")");
    r = parse_state(R"({"ociVersion": "1.2.0", "status": "running", "bundle": "/b"})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "id: required field is missing");
    r = parse_state(R"({"ociVersion": "1.2.0", "id": "x", "status": "running", "pid": -3, "bundle": "/b"})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "pid: must not be negative, got -3");
    r = parse_state(R"({"ociVersion": "1.2.0", "id": "x", "status": "running", "pid": "3", "bundle": "/b"})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "pid: expected int32, got string");
    r = parse_state("{");
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message(), HasSubstr("invalid JSON at byte "));
}

}  // namespace
}  // namespace berth::spec
