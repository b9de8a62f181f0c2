#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "common/fs.hpp"
#include "spec/config.hpp"
#include "spec/names.hpp"

namespace berth::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A config that sets every field the model knows, each to a value distinct from its default.
constexpr std::string_view kFullConfig = R"json({
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1000, "gid": 1001, "umask": 18, "additionalGids": [5, 6, 4294967295], "username": "alice"},
    "args": ["/bin/sh", "-c", "echo hi"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
    "cwd": "/home/alice",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL"],
      "effective": ["CAP_KILL"],
      "inheritable": ["CAP_CHOWN"],
      "permitted": ["CAP_KILL", "CAP_BPF"],
      "ambient": ["CAP_CHECKPOINT_RESTORE"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
      {"type": "RLIMIT_RTTIME", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "apparmorProfile": "berth-default",
    "oomScoreAdj": -500,
    "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
    "scheduler": {"policy": "SCHED_DEADLINE", "nice": -5, "priority": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"],
                  "runtime": 10000000, "deadline": 20000000, "period": 30000000},
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
    "commandLine": "ignored on Linux"
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "box",
  "domainname": "example.test",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "none", "source": "/srv/data", "options": ["rbind", "ro", "idmap"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1000}]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/pre", "args": ["pre", "a"], "env": ["X=1"], "timeout": 5}],
    "createRuntime": [{"path": "/usr/bin/cr"}],
    "createContainer": [{"path": "/usr/bin/cc", "timeout": 1}],
    "startContainer": [{"path": "/bin/sc"}],
    "poststart": [{"path": "/usr/bin/ps1"}, {"path": "/usr/bin/ps2"}],
    "poststop": [{"path": "/usr/bin/stop", "args": ["stop"]}]
  },
  "annotations": {"org.example.key": "value", "io.kubernetes.cri.container-type": "container"},
  "linux": {
    "namespaces": [
      {"type": "pid"}, {"type": "network", "path": "/var/run/netns/pod"}, {"type": "mount"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time"}
    ],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}, {"containerID": 70000, "hostID": 5, "size": 1}],
    "timeOffsets": {"monotonic": {"secs": -86400, "nanosecs": 500}, "boottime": {"secs": 3600}},
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 7},
      {"path": "/dev/fifo0", "type": "p"}
    ],
    "cgroupsPath": "/berth/box",
    "resources": {
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
      "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": -1, "kernelTCP": 1048576,
                 "swappiness": 30, "disableOOMKiller": true, "useHierarchy": false, "checkBeforeUpdate": true},
      "cpu": {"shares": 1024, "quota": 100000, "burst": 50000, "period": 200000, "realtimeRuntime": -1,
              "realtimePeriod": 1000000, "cpus": "0-3", "mems": "0", "idle": 1},
      "pids": {"limit": 32771},
      "blockIO": {
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 700, "leafWeight": 100}, {"major": 8, "minor": 16, "weight": 200}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 1, "rate": 700}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 2, "rate": 800}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]
      },
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}, {"name": "eth1", "priority": 1000}]},
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 100}},
      "unified": {"io.max": "259:0 rbps=2097152", "memory.high": "1073741824"}
    },
    "rootfsPropagation": "rslave",
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 38,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      "flags": ["SECCOMP_FILTER_FLAG_LOG"],
      "listenerPath": "/run/agent.sock",
      "listenerMetadata": "meta",
      "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 0, "value": 8, "valueTwo": 255, "op": "SCMP_CMP_MASKED_EQ"}, {"index": 1, "value": 0, "op": "SCMP_CMP_NE"}]},
        {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}
      ]
    },
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"},
    "maskedPaths": ["/proc/kcore", "/proc/keys"],
    "readonlyPaths": ["/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "intelRdt": {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20", "enableCMT": true, "enableMBM": true},
    "personality": {"domain": "LINUX32", "flags": []},
    "netDevices": {"eth1": {"name": "net1"}}
  },
  "someFutureKey": {"nested": [1, 2, 3]}
})json";

Config parse_ok(std::string_view text) {
    auto r = parse_config(text);
    EXPECT_TRUE(r) << r.error().message();
    return r ? std::move(*r) : Config{};
}

TEST(SpecParse, FullConfigFillsEveryField) {
    Config c = parse_ok(kFullConfig);
    EXPECT_EQ(c.oci_version, "1.2.0");

    ASSERT_TRUE(c.process);
    const Process& p = *c.process;
    EXPECT_TRUE(p.terminal);
    ASSERT_TRUE(p.console_size);
    EXPECT_EQ(p.console_size->height, 25u);
    EXPECT_EQ(p.console_size->width, 80u);
    EXPECT_EQ(p.user.uid, 1000u);
    EXPECT_EQ(p.user.gid, 1001u);
    EXPECT_EQ(p.user.umask, 18u);
    EXPECT_THAT(p.user.additional_gids, ElementsAre(5u, 6u, 4294967295u));
    EXPECT_EQ(p.user.username, "alice");
    EXPECT_THAT(p.args, ElementsAre("/bin/sh", "-c", "echo hi"));
    EXPECT_THAT(p.env, ElementsAre("PATH=/usr/bin:/bin", "TERM=xterm"));
    EXPECT_EQ(p.cwd, "/home/alice");
    ASSERT_TRUE(p.capabilities);
    EXPECT_THAT(p.capabilities->bounding, ElementsAre("CAP_AUDIT_WRITE", "CAP_KILL"));
    EXPECT_THAT(p.capabilities->effective, ElementsAre("CAP_KILL"));
    EXPECT_THAT(p.capabilities->inheritable, ElementsAre("CAP_CHOWN"));
    EXPECT_THAT(p.capabilities->permitted, ElementsAre("CAP_KILL", "CAP_BPF"));
    EXPECT_THAT(p.capabilities->ambient, ElementsAre("CAP_CHECKPOINT_RESTORE"));
    ASSERT_EQ(p.rlimits.size(), 2u);
    EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
    EXPECT_EQ(p.rlimits[0].resource, RLIMIT_NOFILE);
    EXPECT_EQ(p.rlimits[0].soft, 1024u);
    EXPECT_EQ(p.rlimits[0].hard, 4096u);
    EXPECT_EQ(p.rlimits[1].resource, RLIMIT_RTTIME);
    EXPECT_EQ(p.rlimits[1].hard, UINT64_MAX);
    EXPECT_TRUE(p.no_new_privileges);
    EXPECT_EQ(p.apparmor_profile, "berth-default");
    EXPECT_EQ(p.oom_score_adj, -500);
    EXPECT_EQ(p.selinux_label, "system_u:system_r:container_t:s0:c1,c2");
    ASSERT_TRUE(p.scheduler);
    EXPECT_EQ(p.scheduler->policy, "SCHED_DEADLINE");
    EXPECT_EQ(p.scheduler->nice, -5);
    EXPECT_EQ(p.scheduler->priority, 7);
    EXPECT_THAT(p.scheduler->flags, ElementsAre("SCHED_FLAG_RESET_ON_FORK"));
    EXPECT_EQ(p.scheduler->runtime, 10000000u);
    EXPECT_EQ(p.scheduler->deadline, 20000000u);
    EXPECT_EQ(p.scheduler->period, 30000000u);
    ASSERT_TRUE(p.io_priority);
    EXPECT_EQ(p.io_priority->klass, "IOPRIO_CLASS_BE");
    EXPECT_EQ(p.io_priority->priority, 4);
    ASSERT_TRUE(p.exec_cpu_affinity);
    EXPECT_EQ(p.exec_cpu_affinity->initial, "7");
    EXPECT_EQ(p.exec_cpu_affinity->final_, "0-3,7");

    ASSERT_TRUE(c.root);
    EXPECT_EQ(c.root->path, "rootfs");
    EXPECT_TRUE(c.root->readonly);
    EXPECT_EQ(c.hostname, "box");
    EXPECT_EQ(c.domainname, "example.test");

    ASSERT_EQ(c.mounts.size(), 2u);
    EXPECT_EQ(c.mounts[0].destination, "/proc");
    EXPECT_EQ(c.mounts[0].type, "proc");
    EXPECT_TRUE(c.mounts[0].options.empty());
    const Mount& data = c.mounts[1];
    EXPECT_EQ(data.source, "/srv/data");
    EXPECT_THAT(data.options, ElementsAre("rbind", "ro", "idmap"));
    ASSERT_EQ(data.uid_mappings.size(), 1u);
    EXPECT_EQ(data.uid_mappings[0].host_id, 100000u);
    EXPECT_EQ(data.uid_mappings[0].size, 65536u);
    ASSERT_EQ(data.gid_mappings.size(), 1u);
    EXPECT_EQ(data.gid_mappings[0].host_id, 200000u);
    EXPECT_EQ(data.gid_mappings[0].size, 1000u);

    ASSERT_EQ(c.hooks.prestart.size(), 1u);
    EXPECT_EQ(c.hooks.prestart[0].path, "/usr/bin/pre");
    EXPECT_THAT(c.hooks.prestart[0].args, ElementsAre("pre", "a"));
    EXPECT_THAT(c.hooks.prestart[0].env, ElementsAre("X=1"));
    EXPECT_EQ(c.hooks.prestart[0].timeout, 5);
    ASSERT_EQ(c.hooks.create_runtime.size(), 1u);
    EXPECT_EQ(c.hooks.create_runtime[0].path, "/usr/bin/cr");
    EXPECT_FALSE(c.hooks.create_runtime[0].timeout);
    ASSERT_EQ(c.hooks.create_container.size(), 1u);
    EXPECT_EQ(c.hooks.create_container[0].timeout, 1);
    ASSERT_EQ(c.hooks.start_container.size(), 1u);
    EXPECT_EQ(c.hooks.start_container[0].path, "/bin/sc");
    ASSERT_EQ(c.hooks.poststart.size(), 2u);
    EXPECT_EQ(c.hooks.poststart[1].path, "/usr/bin/ps2");
    ASSERT_EQ(c.hooks.poststop.size(), 1u);
    EXPECT_THAT(c.hooks.poststop[0].args, ElementsAre("stop"));

    EXPECT_EQ(c.annotations.size(), 2u);
    EXPECT_EQ(c.annotations.at("org.example.key"), "value");

    ASSERT_TRUE(c.linux);
    const Linux& l = *c.linux;
    ASSERT_EQ(l.namespaces.size(), 8u);
    EXPECT_EQ(l.namespaces[0].type, NamespaceType::pid);
    EXPECT_EQ(l.namespaces[1].type, NamespaceType::network);
    EXPECT_EQ(l.namespaces[1].path, "/var/run/netns/pod");
    EXPECT_EQ(l.namespaces[7].type, NamespaceType::time);
    ASSERT_NE(l.find_namespace(NamespaceType::cgroup), nullptr);
    EXPECT_EQ(l.find_namespace(NamespaceType::cgroup), &l.namespaces[6]);
    EXPECT_EQ(l.find_namespace(NamespaceType::network)->path, "/var/run/netns/pod");
    ASSERT_EQ(l.uid_mappings.size(), 1u);
    EXPECT_EQ(l.uid_mappings[0].container_id, 0u);
    EXPECT_EQ(l.uid_mappings[0].host_id, 100000u);
    ASSERT_EQ(l.gid_mappings.size(), 2u);
    EXPECT_EQ(l.gid_mappings[1].container_id, 70000u);
    EXPECT_EQ(l.gid_mappings[1].host_id, 5u);
    EXPECT_EQ(l.gid_mappings[1].size, 1u);
    ASSERT_EQ(l.time_offsets.size(), 2u);
    EXPECT_EQ(l.time_offsets.at("monotonic").secs, -86400);
    EXPECT_EQ(l.time_offsets.at("monotonic").nanosecs, 500u);
    EXPECT_EQ(l.time_offsets.at("boottime").secs, 3600);
    EXPECT_EQ(l.time_offsets.at("boottime").nanosecs, 0u);
    ASSERT_EQ(l.devices.size(), 2u);
    EXPECT_EQ(l.devices[0].type, "c");
    EXPECT_EQ(l.devices[0].path, "/dev/fuse");
    EXPECT_EQ(l.devices[0].major, 10);
    EXPECT_EQ(l.devices[0].minor, 229);
    EXPECT_EQ(l.devices[0].file_mode, 438u);
    EXPECT_EQ(l.devices[0].uid, 0u);
    EXPECT_EQ(l.devices[0].gid, 7u);
    EXPECT_EQ(l.devices[1].type, "p");
    EXPECT_FALSE(l.devices[1].file_mode);
    EXPECT_EQ(l.cgroups_path, "/berth/box");

    ASSERT_TRUE(l.resources);
    const Resources& r = *l.resources;
    ASSERT_EQ(r.devices.size(), 2u);
    EXPECT_FALSE(r.devices[0].allow);
    EXPECT_EQ(r.devices[0].access, "rwm");
    EXPECT_FALSE(r.devices[0].major);
    EXPECT_TRUE(r.devices[1].allow);
    EXPECT_EQ(r.devices[1].type, "c");
    EXPECT_EQ(r.devices[1].major, 10);
    EXPECT_EQ(r.devices[1].minor, 229);
    ASSERT_TRUE(r.memory);
    EXPECT_EQ(r.memory->limit, 536870912);
    EXPECT_EQ(r.memory->reservation, 268435456);
    EXPECT_EQ(r.memory->swap, -1);
    EXPECT_EQ(r.memory->kernel, -1);
    EXPECT_EQ(r.memory->kernel_tcp, 1048576);
    EXPECT_EQ(r.memory->swappiness, 30u);
    EXPECT_EQ(r.memory->disable_oom_killer, true);
    EXPECT_EQ(r.memory->use_hierarchy, false);
    EXPECT_EQ(r.memory->check_before_update, true);
    ASSERT_TRUE(r.cpu);
    EXPECT_EQ(r.cpu->shares, 1024u);
    EXPECT_EQ(r.cpu->quota, 100000);
    EXPECT_EQ(r.cpu->burst, 50000u);
    EXPECT_EQ(r.cpu->period, 200000u);
    EXPECT_EQ(r.cpu->realtime_runtime, -1);
    EXPECT_EQ(r.cpu->realtime_period, 1000000u);
    EXPECT_EQ(r.cpu->cpus, "0-3");
    EXPECT_EQ(r.cpu->mems, "0");
    EXPECT_EQ(r.cpu->idle, 1);
    ASSERT_TRUE(r.pids);
    EXPECT_EQ(r.pids->limit, 32771);
    ASSERT_TRUE(r.block_io);
    EXPECT_EQ(r.block_io->weight, 500);
    EXPECT_EQ(r.block_io->leaf_weight, 300);
    ASSERT_EQ(r.block_io->weight_device.size(), 2u);
    EXPECT_EQ(r.block_io->weight_device[0].weight, 700);
    EXPECT_EQ(r.block_io->weight_device[0].leaf_weight, 100);
    EXPECT_EQ(r.block_io->weight_device[1].minor, 16);
    EXPECT_FALSE(r.block_io->weight_device[1].leaf_weight);
    ASSERT_EQ(r.block_io->throttle_read_bps_device.size(), 1u);
    EXPECT_EQ(r.block_io->throttle_read_bps_device[0].rate, 600u);
    ASSERT_EQ(r.block_io->throttle_write_bps_device.size(), 1u);
    EXPECT_EQ(r.block_io->throttle_write_bps_device[0].minor, 1);
    EXPECT_EQ(r.block_io->throttle_write_bps_device[0].rate, 700u);
    ASSERT_EQ(r.block_io->throttle_read_iops_device.size(), 1u);
    EXPECT_EQ(r.block_io->throttle_read_iops_device[0].rate, 800u);
    ASSERT_EQ(r.block_io->throttle_write_iops_device.size(), 1u);
    EXPECT_EQ(r.block_io->throttle_write_iops_device[0].major, 8);
    EXPECT_EQ(r.block_io->throttle_write_iops_device[0].rate, 300u);
    ASSERT_EQ(r.hugepage_limits.size(), 2u);
    EXPECT_EQ(r.hugepage_limits[0].page_size, "2MB");
    EXPECT_EQ(r.hugepage_limits[0].limit, 209715200u);
    EXPECT_EQ(r.hugepage_limits[1].page_size, "1GB");
    ASSERT_TRUE(r.network);
    EXPECT_EQ(r.network->class_id, 1048577u);
    ASSERT_EQ(r.network->priorities.size(), 2u);
    EXPECT_EQ(r.network->priorities[1].name, "eth1");
    EXPECT_EQ(r.network->priorities[1].priority, 1000u);
    ASSERT_EQ(r.rdma.size(), 2u);
    EXPECT_EQ(r.rdma.at("mlx5_1").hca_handles, 3u);
    EXPECT_EQ(r.rdma.at("mlx5_1").hca_objects, 10000u);
    EXPECT_FALSE(r.rdma.at("rxe3").hca_handles);
    EXPECT_EQ(r.unified.at("io.max"), "259:0 rbps=2097152");
    EXPECT_EQ(r.unified.at("memory.high"), "1073741824");

    EXPECT_EQ(l.rootfs_propagation, "rslave");
    ASSERT_TRUE(l.seccomp);
    const Seccomp& s = *l.seccomp;
    EXPECT_EQ(s.default_action, "SCMP_ACT_ERRNO");
    EXPECT_EQ(s.default_errno_ret, 38u);
    EXPECT_THAT(s.architectures, ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"));
    EXPECT_THAT(s.flags, ElementsAre("SECCOMP_FILTER_FLAG_LOG"));
    EXPECT_EQ(s.listener_path, "/run/agent.sock");
    EXPECT_EQ(s.listener_metadata, "meta");
    ASSERT_EQ(s.syscalls.size(), 3u);
    EXPECT_THAT(s.syscalls[0].names, ElementsAre("read", "write"));
    EXPECT_EQ(s.syscalls[0].action, "SCMP_ACT_ALLOW");
    EXPECT_FALSE(s.syscalls[0].errno_ret);
    EXPECT_EQ(s.syscalls[1].errno_ret, 1u);
    ASSERT_EQ(s.syscalls[1].args.size(), 2u);
    EXPECT_EQ(s.syscalls[1].args[0].index, 0u);
    EXPECT_EQ(s.syscalls[1].args[0].value, 8u);
    EXPECT_EQ(s.syscalls[1].args[0].value_two, 255u);
    EXPECT_EQ(s.syscalls[1].args[0].op, "SCMP_CMP_MASKED_EQ");
    EXPECT_EQ(s.syscalls[1].args[1].index, 1u);
    EXPECT_EQ(s.syscalls[1].args[1].value_two, 0u);
    EXPECT_EQ(s.syscalls[1].args[1].op, "SCMP_CMP_NE");
    EXPECT_EQ(s.syscalls[2].action, "SCMP_ACT_NOTIFY");

    EXPECT_EQ(l.sysctl.at("net.ipv4.ip_forward"), "1");
    EXPECT_EQ(l.sysctl.at("kernel.shmmax"), "4096");
    EXPECT_THAT(l.masked_paths, ElementsAre("/proc/kcore", "/proc/keys"));
    EXPECT_THAT(l.readonly_paths, ElementsAre("/proc/sys"));
    EXPECT_EQ(l.mount_label, "system_u:object_r:container_file_t:s0");
    ASSERT_TRUE(l.intel_rdt);
    EXPECT_EQ(l.intel_rdt->clos_id, "guaranteed");
    EXPECT_EQ(l.intel_rdt->l3_cache_schema, "L3:0=7f0");
    EXPECT_EQ(l.intel_rdt->mem_bw_schema, "MB:0=20");
    EXPECT_TRUE(l.intel_rdt->enable_cmt);
    EXPECT_TRUE(l.intel_rdt->enable_mbm);
    ASSERT_TRUE(l.personality);
    EXPECT_EQ(l.personality->domain, "LINUX32");
    EXPECT_TRUE(l.personality->flags.empty());
}

TEST(SpecParse, FullConfigValidates) {
    Config c = parse_ok(kFullConfig);
    auto v = validate_config(c);
    EXPECT_TRUE(v) << v.error().message();
}

TEST(SpecParse, MinimalConfigLeavesDefaults) {
    Config c = parse_ok(R"({"ociVersion": "1.0.2"})");
    EXPECT_EQ(c.oci_version, "1.0.2");
    EXPECT_FALSE(c.process);
    EXPECT_FALSE(c.root);
    EXPECT_FALSE(c.linux);
    EXPECT_TRUE(c.mounts.empty());
    EXPECT_TRUE(c.hooks.poststop.empty());
    EXPECT_TRUE(c.annotations.empty());
}

TEST(SpecParse, NullCountsAsAbsent) {
    Config c = parse_ok(R"({"ociVersion": "1.2.0", "process": {"cwd": "/", "args": null, "capabilities": null,
                            "oomScoreAdj": null}, "linux": {"namespaces": null, "sysctl": {"a": null}}})");
    ASSERT_TRUE(c.process);
    EXPECT_TRUE(c.process->args.empty());
    EXPECT_FALSE(c.process->capabilities);
    EXPECT_FALSE(c.process->oom_score_adj);
    ASSERT_TRUE(c.linux);
    EXPECT_TRUE(c.linux->namespaces.empty());
    EXPECT_TRUE(c.linux->sysctl.empty());
}

TEST(SpecParse, EveryRlimitResolves) {
    const std::pair<const char*, int> all[] = {
        {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
        {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
        {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
        {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    };
    nlohmann::json rl = nlohmann::json::array();
    for (const auto& [name, value] : all) rl.push_back({{"type", name}, {"soft", 1}, {"hard", 2}});
    nlohmann::json doc = {{"ociVersion", "1.2.0"}, {"process", {{"cwd", "/"}, {"rlimits", rl}}}};
    Config c = parse_ok(doc.dump());
    ASSERT_TRUE(c.process);
    ASSERT_EQ(c.process->rlimits.size(), 16u);
    for (size_t i = 0; i < 16; ++i) {
        EXPECT_EQ(c.process->rlimits[i].resource, all[i].second) << all[i].first;
        EXPECT_EQ(rlimit_from_name(all[i].first), all[i].second);
    }
    EXPECT_FALSE(rlimit_from_name("RLIMIT_OFILE"));
}

TEST(SpecParse, NamespaceNamesRoundTrip) {
    for (auto t : {NamespaceType::pid, NamespaceType::network, NamespaceType::mount, NamespaceType::ipc,
                   NamespaceType::uts, NamespaceType::user, NamespaceType::cgroup, NamespaceType::time})
        EXPECT_EQ(namespace_type_from_string(to_string(t)), t);
    EXPECT_EQ(to_string(NamespaceType::network), "network");
    EXPECT_EQ(to_string(NamespaceType::mount), "mount");
    EXPECT_FALSE(namespace_type_from_string("net"));
}

TEST(SpecParse, CapabilityTable) {
    EXPECT_EQ(capability_from_name("CAP_CHOWN"), 0);
    EXPECT_EQ(capability_from_name("CAP_SETFCAP"), 31);
    EXPECT_EQ(capability_from_name("CAP_PERFMON"), 38);
    EXPECT_EQ(capability_from_name("CAP_BPF"), 39);
    EXPECT_EQ(capability_from_name("CAP_CHECKPOINT_RESTORE"), 40);
    EXPECT_FALSE(capability_from_name("CAP_FOO"));
    EXPECT_FALSE(capability_from_name("CHOWN"));
    EXPECT_EQ(capability_names().size(), 41u);
}

// ---- bad input: each case names the exact JSON path --------------------------------------------------------------

struct BadCase {
    const char* json;
    const char* message;  // the whole error message
};

class SpecParseBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(SpecParseBad, ReportsPath) {
    auto r = parse_config(GetParam().json);
    ASSERT_FALSE(r) << "parsed: " << GetParam().json;
    EXPECT_EQ(r.error().message(), GetParam().message);
    EXPECT_EQ(r.error().code(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SpecParseBad,
    ::testing::Values(
        BadCase{R"({"ociVersion": "1.2.0", "mounts": [{"destination": 5}]})",
                "mounts[0].destination: expected string, got number"},
        BadCase{R"({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                                          {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]}})",
                R"(process.rlimits[1].type: unknown rlimit "RLIMIT_FOO")"},
        BadCase{R"({"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "foo"}]}})",
                R"(linux.namespaces[2].type: unknown namespace type "foo")"},
        BadCase{R"({"linux": {"namespaces": [{"path": "/proc/1/ns/net"}]}})",
                "linux.namespaces[0].type: required field is missing"},
        BadCase{R"({"process": {"terminal": "yes"}})", "process.terminal: expected boolean, got string"},
        BadCase{R"({"process": {"user": {"uid": -1}}})", "process.user.uid: -1 is out of range for uint32"},
        BadCase{R"({"process": {"user": {"gid": 4294967296}}})",
                "process.user.gid: 4294967296 is out of range for uint32"},
        BadCase{R"({"process": {"user": {"additionalGids": [1, "2"]}}})",
                "process.user.additionalGids[1]: expected uint32, got string"},
        BadCase{R"({"process": {"oomScoreAdj": 1.5}})",
                "process.oomScoreAdj: expected int32, got non-integer number 1.5"},
        BadCase{R"({"process": {"args": "sh"}})", "process.args: expected array, got string"},
        BadCase{R"({"process": {"capabilities": ["CAP_KILL"]}})", "process.capabilities: expected object, got array"},
        BadCase{R"({"process": {"rlimits": [{"type": "RLIMIT_CORE", "hard": 1}]}})",
                "process.rlimits[0].soft: required field is missing"},
        BadCase{R"({"process": {"consoleSize": {"height": 1}}})",
                "process.consoleSize.width: required field is missing"},
        BadCase{R"({"hooks": {"poststop": [{"path": "/x", "timeout": "5"}]}})",
                "hooks.poststop[0].timeout: expected int32, got string"},
        BadCase{R"({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000}]}})",
                "linux.uidMappings[0].size: required field is missing"},
        BadCase{R"({"linux": {"devices": [{"type": "c", "path": "/dev/x", "minor": 1}]}})",
                "linux.devices[0].major: required field is missing"},
        BadCase{R"({"linux": {"devices": [{"path": "/dev/x", "major": 1, "minor": 1}]}})",
                "linux.devices[0].type: required field is missing"},
        BadCase{R"({"process": {"rlimits": [{"type": "RLIMIT_CORE", "soft": 1024.0, "hard": 1}]}})",
                "process.rlimits[0].soft: expected uint64, got non-integer number 1024.0"},
        BadCase{R"({"process": {"user": {"umask": 1e3}}})",
                "process.user.umask: expected uint32, got non-integer number 1000.0"},
        BadCase{R"({"linux": {"resources": {"memory": {"limit": "1G"}}}})",
                "linux.resources.memory.limit: expected int64, got string"},
        BadCase{R"({"linux": {"resources": {"memory": {"swappiness": -1}}}})",
                "linux.resources.memory.swappiness: -1 is out of range for uint64"},
        BadCase{R"({"linux": {"resources": {"blockIO": {"weight": 70000}}}})",
                "linux.resources.blockIO.weight: 70000 is out of range for uint16"},
        BadCase{R"({"linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}}}})",
                "linux.resources.blockIO.throttleReadBpsDevice[0].rate: required field is missing"},
        BadCase{R"({"linux": {"resources": {"pids": {}}}})", "linux.resources.pids.limit: required field is missing"},
        BadCase{R"({"linux": {"resources": {"devices": [{"access": "rwm"}]}}})",
                "linux.resources.devices[0].allow: required field is missing"},
        BadCase{R"({"linux": {"resources": {"rdma": {"mlx5": {"hcaHandles": true}}}}})",
                R"(linux.resources.rdma["mlx5"].hcaHandles: expected uint32, got boolean)"},
        BadCase{R"({"linux": {"resources": {"unified": {"memory.max": 5}}}})",
                R"(linux.resources.unified["memory.max"]: expected string, got number)"},
        BadCase{R"({"linux": {"sysctl": {"net.ipv4.ip_forward": 1}}})",
                R"(linux.sysctl["net.ipv4.ip_forward"]: expected string, got number)"},
        BadCase{R"({"linux": {"seccomp": {"syscalls": []}}})",
                "linux.seccomp.defaultAction: required field is missing"},
        BadCase{R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                             "args": [{"index": 0, "value": 1, "valueTwo": -2, "op": "SCMP_CMP_EQ"}]}]}}})",
                "linux.seccomp.syscalls[0].args[0].valueTwo: -2 is out of range for uint64"},
        BadCase{R"({"linux": {"timeOffsets": {"monotonic": {"nanosecs": -1}}}})",
                R"(linux.timeOffsets["monotonic"].nanosecs: -1 is out of range for uint32)"},
        BadCase{R"({"linux": {"intelRdt": {"enableCMT": 1}}})",
                "linux.intelRdt.enableCMT: expected boolean, got number"},
        BadCase{R"({"linux": {"personality": {"flags": []}}})", "linux.personality.domain: required field is missing"},
        BadCase{R"({"annotations": {"a": "b", "c": ["d"]}})", R"(annotations["c"]: expected string, got array)"},
        BadCase{R"({"linux": []})", "linux: expected object, got array"},
        BadCase{R"([1, 2])", "(root): expected object, got array"}));

TEST(SpecParse, InvalidJsonNamesTheOffset) {
    auto r = parse_config("{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": {,}\n}");
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message(), StartsWith("invalid JSON at byte "));
    EXPECT_THAT(r.error().message(), HasSubstr("line 3"));
    auto empty = parse_config("");
    ASSERT_FALSE(empty);
    EXPECT_THAT(empty.error().message(), StartsWith("invalid JSON at byte "));
    auto trailing = parse_config(R"({"ociVersion": "1.2.0"} x)");
    ASSERT_FALSE(trailing);
    EXPECT_THAT(trailing.error().message(), StartsWith("invalid JSON at byte "));
}

TEST(SpecParse, DeepNestingIsAnErrorOrIgnoredNotACrash) {
    // Unknown keys are skipped, but the document is still parsed whole: it must not exhaust the stack.
    std::string deep = R"({"ociVersion": "1.2.0", "x": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto r = parse_config(deep);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->oci_version, "1.2.0");
}

TEST(SpecParse, ProcessJsonPathsAreRootedAtTheProcess) {
    auto p = parse_process(R"({"args": ["ls"], "cwd": "/", "rlimits": [{"type": "RLIMIT_X", "soft": 1, "hard": 1}]})");
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().message(), R"(rlimits[0].type: unknown rlimit "RLIMIT_X")");

    auto ok = parse_process(R"({"terminal": false, "args": ["ls", "-l"], "env": ["A=1"], "cwd": "/tmp",
                                "user": {"uid": 5, "gid": 6}, "capabilities": {"bounding": ["CAP_KILL"]}})");
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_THAT(ok->args, ElementsAre("ls", "-l"));
    EXPECT_EQ(ok->user.uid, 5u);
    EXPECT_EQ(ok->cwd, "/tmp");
    EXPECT_TRUE(validate_process(*ok, ""));

    ok->cwd = "tmp";
    auto v = validate_process(*ok, "");
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().message(), R"(cwd: must be an absolute path, got "tmp")");
}

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/berth-spec-test-XXXXXX";
        if (::mkdtemp(tmpl)) path_ = tmpl;
    }
    ~TempDir() {
        if (!path_.empty()) (void)remove_all(path_);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

TEST(SpecParse, LoadConfigPrefixesErrorsWithTheFile) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    std::string file = dir.path() + "/config.json";

    auto missing = load_config(dir.path());
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_THAT(missing.error().message(), HasSubstr(file));

    ASSERT_TRUE(write_file(file, R"({"ociVersion": "1.2.0", "hostname": 7})"));
    auto bad = load_config(dir.path());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message(), file + ": hostname: expected string, got number");

    ASSERT_TRUE(write_file(file, kFullConfig));
    auto good = load_config(dir.path());
    ASSERT_TRUE(good) << good.error().message();
    EXPECT_EQ(good->hostname, "box");
}

}  // namespace
}  // namespace berth::spec
