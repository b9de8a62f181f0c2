#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "spec/config.hpp"

namespace berth::spec {
namespace {

using Json = nlohmann::json;

// A small valid config; each case below breaks one thing in it.
Json base_config() {
    return Json::parse(R"json({
      "ociVersion": "1.2.0",
      "process": {
        "args": ["sh"], "env": ["PATH=/bin"], "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]
      },
      "root": {"path": "rootfs"},
      "hostname": "c1",
      "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
      "hooks": {"poststop": [{"path": "/usr/bin/cleanup", "timeout": 10}]},
      "linux": {
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229}],
        "sysctl": {"net.core.somaxconn": "256"},
        "maskedPaths": ["/proc/kcore"],
        "seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
      }
    })json");
}

// Parses and validates; the error message of whichever step failed, or "" when both succeeded.
std::string check(const Json& doc) {
    auto c = parse_config(doc.dump());
    if (!c) return "parse: " + c.error().message();
    auto v = validate_config(*c);
    return v ? "" : v.error().message();
}

TEST(SpecValidate, BaseConfigIsValid) {
    EXPECT_EQ(check(base_config()), "");
}

struct BadCase {
    const char* name;
    std::function<void(Json&)> mutate;
    const char* message;  // the whole validation error
};

class SpecValidateBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(SpecValidateBad, ReportsPath) {
    Json doc = base_config();
    GetParam().mutate(doc);
    EXPECT_EQ(check(doc), GetParam().message);
}

Json& ns(Json& doc) {
    return doc["linux"]["namespaces"];
}

void drop_namespace(Json& doc, const char* type) {
    Json& list = ns(doc);
    for (auto it = list.begin(); it != list.end(); ++it) {
        if ((*it)["type"] == type) {
            list.erase(it);
            return;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SpecValidateBad,
    ::testing::Values(
        BadCase{"MissingVersion", [](Json& d) { d.erase("ociVersion"); }, "ociVersion: required"},
        BadCase{"WrongMajorVersion", [](Json& d) { d["ociVersion"] = "2.0.0"; },
                R"(ociVersion: "2.0.0" is not a 1.x version of the runtime spec)"},
        BadCase{"NotSemver", [](Json& d) { d["ociVersion"] = "1.2"; },
                R"(ociVersion: "1.2" is not a 1.x version of the runtime spec)"},
        BadCase{"MissingProcess", [](Json& d) { d.erase("process"); }, "process: required to create a container"},
        BadCase{"MissingArgs", [](Json& d) { d["process"].erase("args"); },
                "process.args: at least one argument is required"},
        BadCase{"EmptyExecutable", [](Json& d) { d["process"]["args"] = {""}; },
                "process.args[0]: the executable must not be empty"},
        BadCase{"RelativeCwd", [](Json& d) { d["process"]["cwd"] = "home"; },
                R"(process.cwd: must be an absolute path, got "home")"},
        BadCase{"MissingCwd", [](Json& d) { d["process"].erase("cwd"); }, "process.cwd: required"},
        BadCase{"EnvWithoutEquals", [](Json& d) { d["process"]["env"].push_back("FOO"); },
                R"(process.env[1]: expected KEY=value, got "FOO")"},
        BadCase{"NulInArg", [](Json& d) { d["process"]["args"].push_back(std::string("a\0b", 3)); },
                "process.args[1]: contains a NUL byte"},
        BadCase{"UnknownCapability", [](Json& d) { d["process"]["capabilities"]["permitted"].push_back("CAP_FLY"); },
                R"(process.capabilities.permitted[1]: unknown capability "CAP_FLY")"},
        BadCase{"DuplicateRlimit",
                [](Json& d) {
                    d["process"]["rlimits"].push_back({{"type", "RLIMIT_NOFILE"}, {"soft", 1}, {"hard", 1}});
                },
                R"(process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE" (also at index 0))"},
        BadCase{"SoftAboveHard",
                [](Json& d) { d["process"]["rlimits"][0] = {{"type", "RLIMIT_CORE"}, {"soft", 10}, {"hard", 5}}; },
                "process.rlimits[0]: soft limit 10 exceeds hard limit 5"},
        BadCase{"OomScoreAdjRange", [](Json& d) { d["process"]["oomScoreAdj"] = 1001; },
                "process.oomScoreAdj: 1001 is outside [-1000, 1000]"},
        BadCase{"UnknownSchedulerPolicy", [](Json& d) { d["process"]["scheduler"] = {{"policy", "SCHED_FAST"}}; },
                R"(process.scheduler.policy: unknown scheduler policy "SCHED_FAST")"},
        BadCase{"UnknownIoPriorityClass", [](Json& d) { d["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_X"}}; },
                R"(process.ioPriority.class: unknown I/O priority class "IOPRIO_CLASS_X")"},
        BadCase{"IoPriorityRange",
                [](Json& d) { d["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_RT"}, {"priority", 8}}; },
                "process.ioPriority.priority: 8 is outside [0, 7]"},
        BadCase{"SchedIso", [](Json& d) { d["process"]["scheduler"] = {{"policy", "SCHED_ISO"}}; },
                "process.scheduler.policy: SCHED_ISO is not implemented by Linux"},
        BadCase{"RealtimePriorityRange",
                [](Json& d) { d["process"]["scheduler"] = {{"policy", "SCHED_FIFO"}, {"priority", 100}}; },
                "process.scheduler.priority: 100 is outside [1, 99] for SCHED_FIFO"},
        BadCase{"RuntimeWithoutDeadline",
                [](Json& d) { d["process"]["scheduler"] = {{"policy", "SCHED_OTHER"}, {"runtime", 1000}}; },
                "process.scheduler.runtime: only valid with SCHED_DEADLINE"},
        BadCase{"UnknownSchedulerFlag",
                [](Json& d) { d["process"]["scheduler"] = {{"policy", "SCHED_OTHER"}, {"flags", {"SCHED_FLAG_X"}}}; },
                R"(process.scheduler.flags[0]: unknown scheduler flag "SCHED_FLAG_X")"},
        BadCase{"BadCpuAffinity", [](Json& d) { d["process"]["execCPUAffinity"] = {{"final", "3-1"}}; },
                R"(process.execCPUAffinity.final: not a CPU list: "3-1")"},
        BadCase{"MissingRoot", [](Json& d) { d.erase("root"); }, "root: required on Linux"},
        BadCase{"EmptyRootPath", [](Json& d) { d["root"]["path"] = ""; }, "root.path: required"},
        BadCase{"HostnameWithoutUts", [](Json& d) { drop_namespace(d, "uts"); },
                "hostname: setting the hostname needs a uts namespace in linux.namespaces"},
        BadCase{"DomainnameWithoutUts",
                [](Json& d) {
                    d.erase("hostname");
                    d["domainname"] = "example.test";
                    drop_namespace(d, "uts");
                },
                "domainname: setting the domainname needs a uts namespace in linux.namespaces"},
        BadCase{"EmptyMountDestination", [](Json& d) { d["mounts"][0]["destination"] = ""; },
                "mounts[0].destination: required"},
        BadCase{"MountUidMappingsWithoutGid",
                [](Json& d) {
                    d["mounts"][0]["uidMappings"] = Json::array({{{"containerID", 0}, {"hostID", 1}, {"size", 1}}});
                },
                "mounts[0].uidMappings: uidMappings and gidMappings must be given together"},
        BadCase{"IdmapWithoutUserns", [](Json& d) { d["mounts"][0]["options"] = {"idmap"}; },
                "mounts[0].options: idmap needs uidMappings/gidMappings or a user namespace"},
        BadCase{"RelativeHookPath", [](Json& d) { d["hooks"]["createRuntime"] = {{{"path", "hook"}}}; },
                R"(hooks.createRuntime[0].path: must be an absolute path, got "hook")"},
        BadCase{"ZeroHookTimeout", [](Json& d) { d["hooks"]["poststop"][0]["timeout"] = 0; },
                "hooks.poststop[0].timeout: must be greater than zero, got 0"},
        BadCase{"DuplicateNamespace", [](Json& d) { ns(d).push_back({{"type", "pid"}}); },
                R"(linux.namespaces[5].type: duplicate namespace type "pid" (also at index 0))"},
        BadCase{"RelativeNamespacePath", [](Json& d) { ns(d)[1]["path"] = "netns/x"; },
                R"(linux.namespaces[1].path: must be an absolute path, got "netns/x")"},
        BadCase{"UidMappingsWithoutUserns",
                [](Json& d) {
                    d["linux"]["uidMappings"] = Json::array({{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}});
                },
                R"(linux.uidMappings: mappings need a user namespace, but linux.namespaces has no "user")"},
        BadCase{"NewUsernsWithoutMappings", [](Json& d) { ns(d).push_back({{"type", "user"}}); },
                "linux.uidMappings: a new user namespace needs uid mappings"},
        BadCase{"NewUsernsWithoutGidMappings",
                [](Json& d) {
                    ns(d).push_back({{"type", "user"}});
                    d["linux"]["uidMappings"] = Json::array({{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}});
                },
                "linux.gidMappings: a new user namespace needs gid mappings"},
        BadCase{"ZeroSizeMapping",
                [](Json& d) {
                    ns(d).push_back({{"type", "user"}});
                    d["linux"]["uidMappings"] = Json::array({{{"containerID", 0}, {"hostID", 1000}, {"size", 0}}});
                    d["linux"]["gidMappings"] = d["linux"]["uidMappings"];
                },
                "linux.uidMappings[0].size: must be > 0"},
        BadCase{"TimeOffsetsWithoutTimens", [](Json& d) { d["linux"]["timeOffsets"] = {{"boottime", {{"secs", 1}}}}; },
                "linux.timeOffsets: offsets need a time namespace, but linux.namespaces has none"},
        BadCase{"TimeOffsetsJoinedTimens",
                [](Json& d) {
                    ns(d).push_back({{"type", "time"}, {"path", "/proc/1/ns/time"}});
                    d["linux"]["timeOffsets"] = {{"boottime", {{"secs", 1}}}};
                },
                "linux.timeOffsets: offsets need a new time namespace, not one joined by path"},
        BadCase{"UnknownClock",
                [](Json& d) {
                    ns(d).push_back({{"type", "time"}});
                    d["linux"]["timeOffsets"] = {{"realtime", {{"secs", 1}}}};
                },
                R"(linux.timeOffsets["realtime"]: unknown clock (want "monotonic" or "boottime"))"},
        BadCase{"BadDeviceType", [](Json& d) { d["linux"]["devices"][0]["type"] = "x"; },
                R"(linux.devices[0].type: unknown device type "x" (want c, b, u or p))"},
        BadCase{"RelativeDevicePath", [](Json& d) { d["linux"]["devices"][0]["path"] = "dev/fuse"; },
                R"(linux.devices[0].path: must be an absolute path, got "dev/fuse")"},
        BadCase{"DeviceRuleAccess",
                [](Json& d) { d["linux"]["resources"]["devices"] = {{{"allow", true}, {"access", "rwx"}}}; },
                R"(linux.resources.devices[0].access: "rwx" is not a combination of r, w and m)"},
        BadCase{"Swappiness", [](Json& d) { d["linux"]["resources"]["memory"] = {{"swappiness", 101}}; },
                "linux.resources.memory.swappiness: 101 is outside [0, 100]"},
        BadCase{"BurstAboveQuota",
                [](Json& d) { d["linux"]["resources"]["cpu"] = {{"quota", 1000}, {"burst", 2000}}; },
                "linux.resources.cpu.burst: 2000 is larger than quota 1000"},
        BadCase{"WeightDeviceWithoutWeight",
                [](Json& d) {
                    d["linux"]["resources"]["blockIO"] = {{"weightDevice", {{{"major", 8}, {"minor", 0}}}}};
                },
                "linux.resources.blockIO.weightDevice[0]: needs weight or leafWeight"},
        BadCase{"HugepageSize",
                [](Json& d) {
                    d["linux"]["resources"]["hugepageLimits"] = {{{"pageSize", "2M"}, {"limit", 1}}};
                },
                R"(linux.resources.hugepageLimits[0].pageSize: "2M" is not <size><unit>B such as 2MB)"},
        BadCase{"UnifiedEscapes",
                [](Json& d) { d["linux"]["resources"]["unified"] = {{"../../cgroup.procs", "1"}}; },
                R"(linux.resources.unified["../../cgroup.procs"]: not a cgroup file name)"},
        BadCase{"BadPropagation", [](Json& d) { d["linux"]["rootfsPropagation"] = "everywhere"; },
                R"(linux.rootfsPropagation: "everywhere" is not shared, slave, private or unbindable)"},
        BadCase{"UnknownSeccompDefault", [](Json& d) { d["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_MAYBE"; },
                R"(linux.seccomp.defaultAction: unknown seccomp action "SCMP_ACT_MAYBE")"},
        BadCase{"UnknownSeccompAction",
                [](Json& d) { d["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_EXPLODE"; },
                R"(linux.seccomp.syscalls[0].action: unknown seccomp action "SCMP_ACT_EXPLODE")"},
        BadCase{"ErrnoRetWithAllow", [](Json& d) { d["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_ALLOW"; },
                "linux.seccomp.syscalls[0].errnoRet: action SCMP_ACT_ALLOW takes no errno"},
        BadCase{"UnknownArchitecture", [](Json& d) { d["linux"]["seccomp"]["architectures"] = {"SCMP_ARCH_Z80"}; },
                R"(linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_Z80")"},
        BadCase{"UnknownSeccompFlag", [](Json& d) { d["linux"]["seccomp"]["flags"] = {"SECCOMP_FILTER_FLAG_FAST"}; },
                R"(linux.seccomp.flags[0]: unknown seccomp flag "SECCOMP_FILTER_FLAG_FAST")"},
        BadCase{"UnknownOperator",
                [](Json& d) {
                    d["linux"]["seccomp"]["syscalls"][0]["args"] = {
                        {{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_ALMOST"}}};
                },
                R"(linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_ALMOST")"},
        BadCase{"ArgIndex",
                [](Json& d) {
                    d["linux"]["seccomp"]["syscalls"][0]["args"] = {{{"index", 6}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}};
                },
                "linux.seccomp.syscalls[0].args[0].index: 6 is not an argument index (0-5)"},
        BadCase{"EmptySyscallNames", [](Json& d) { d["linux"]["seccomp"]["syscalls"][0]["names"] = Json::array(); },
                "linux.seccomp.syscalls[0].names: at least one name is required"},
        BadCase{"NotifyWithoutListener",
                [](Json& d) {
                    d["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY";
                    d["linux"]["seccomp"]["syscalls"][0].erase("errnoRet");
                },
                "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used"},
        BadCase{"MetadataWithoutListener", [](Json& d) { d["linux"]["seccomp"]["listenerMetadata"] = "x"; },
                "linux.seccomp.listenerMetadata: set without listenerPath"},
        BadCase{"NetSysctlWithoutNetns", [](Json& d) { drop_namespace(d, "network"); },
                R"(linux.sysctl["net.core.somaxconn"]: requires namespace type "network" in linux.namespaces)"},
        BadCase{"IpcSysctlWithoutIpcns",
                [](Json& d) {
                    drop_namespace(d, "ipc");
                    d["linux"]["sysctl"]["kernel.shmmax"] = "1";
                },
                R"(linux.sysctl["kernel.shmmax"]: requires namespace type "ipc" in linux.namespaces)"},
        BadCase{"HostnameSysctlWithoutUts",
                [](Json& d) {
                    d.erase("hostname");
                    drop_namespace(d, "uts");
                    d["linux"]["sysctl"]["kernel.hostname"] = "x";
                },
                R"(linux.sysctl["kernel.hostname"]: requires namespace type "uts" in linux.namespaces)"},
        BadCase{"HostSysctl", [](Json& d) { d["linux"]["sysctl"]["vm.swappiness"] = "0"; },
                R"(linux.sysctl["vm.swappiness"]: not a namespaced sysctl; setting it would change the host)"},
        BadCase{"RelativeMaskedPath", [](Json& d) { d["linux"]["maskedPaths"].push_back("proc/kcore"); },
                R"(linux.maskedPaths[1]: must be an absolute path, got "proc/kcore")"},
        BadCase{"RelativeReadonlyPath", [](Json& d) { d["linux"]["readonlyPaths"] = {"/proc/sys", "sys"}; },
                R"(linux.readonlyPaths[1]: must be an absolute path, got "sys")"},
        BadCase{"BadPersonality", [](Json& d) { d["linux"]["personality"] = {{"domain", "BSD"}}; },
                R"(linux.personality.domain: unknown domain "BSD" (want LINUX or LINUX32))"},
        BadCase{"PersonalityFlags",
                [](Json& d) { d["linux"]["personality"] = {{"domain", "LINUX"}, {"flags", {"ADDR_NO_RANDOMIZE"}}}; },
                R"(linux.personality.flags[0]: unsupported flag "ADDR_NO_RANDOMIZE")"},
        BadCase{"MemBwSchema", [](Json& d) { d["linux"]["intelRdt"] = {{"memBwSchema", "L3:0=1"}}; },
                R"(linux.intelRdt.memBwSchema: must start with "MB:" and be one line, got "L3:0=1")"},
        BadCase{"ClosIdEscapes", [](Json& d) { d["linux"]["intelRdt"] = {{"closID", "../x"}}; },
                R"(linux.intelRdt.closID: "../x" is not a plain directory name)"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(SpecValidate, RelativeMountDestinationIsAllowedForCompatibility) {
    // runtime-spec 1.2: "it MAY be a relative path, in which case it MUST be interpreted as relative to /".
    Json doc = base_config();
    doc["mounts"][0]["destination"] = "proc";
    EXPECT_EQ(check(doc), "");
}

TEST(SpecValidate, JoinedNamespacesSatisfyHostnameAndSysctl) {
    // Pod containers join their sandbox's UTS and network namespaces by path and still carry hostname and sysctls.
    Json doc = base_config();
    ns(doc) = Json::array({{{"type", "pid"}},
                           {{"type", "mount"}},
                           {{"type", "network"}, {"path", "/var/run/netns/pod"}},
                           {{"type", "uts"}, {"path", "/proc/1234/ns/uts"}},
                           {{"type", "ipc"}, {"path", "/proc/1234/ns/ipc"}}});
    doc["linux"]["sysctl"]["kernel.msgmax"] = "8192";
    doc["linux"]["sysctl"]["fs/mqueue/msg_max"] = "64";
    EXPECT_EQ(check(doc), "");
}

TEST(SpecValidate, JoinedUserNamespaceNeedsNoMappings) {
    Json doc = base_config();
    ns(doc).push_back({{"type", "user"}, {"path", "/proc/1234/ns/user"}});
    EXPECT_EQ(check(doc), "");
}

TEST(SpecValidate, ProcessChecksUseTheGivenPrefix) {
    Process p;
    p.args = {"ls"};
    p.cwd = "/";
    p.rlimits.push_back({"RLIMIT_NOFILE", -1, 5, 1});
    auto v = validate_process(p, "");
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().message(), "rlimits[0]: soft limit 5 exceeds hard limit 1");
    p.rlimits[0].type = "RLIMIT_NOPE";
    v = validate_process(p, "process");
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().message(), R"(process.rlimits[0].type: unknown rlimit "RLIMIT_NOPE")");
}

}  // namespace
}  // namespace berth::spec
