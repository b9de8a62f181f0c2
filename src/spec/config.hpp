// The OCI runtime-spec 1.2 configuration (config.json), Linux parts, as typed structs.
//
// Field names follow the spec's JSON keys. Optional JSON values are std::optional; absent arrays and maps are
// empty. parse_config() fills these from JSON (unknown keys are ignored) and validate_config() checks them; both
// report the JSON path of the offending field, e.g. `process.rlimits[1].type: unknown rlimit "RLIMIT_FOO"`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace berth::spec {

inline constexpr std::string_view kOciVersion = "1.2.0";

struct Rlimit {
    std::string type;   // "RLIMIT_NOFILE", ...
    int resource = -1;  // resolved RLIMIT_* number, set by parse_config
    uint64_t soft = 0;
    uint64_t hard = 0;
};

struct Capabilities {
    std::vector<std::string> bounding, effective, inheritable, permitted, ambient;
};

struct ConsoleSize {
    unsigned height = 0;
    unsigned width = 0;
};

struct User {
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::optional<uint32_t> umask;
    std::vector<uint32_t> additional_gids;  // additionalGids
    std::string username;
};

struct Scheduler {
    std::string policy;  // SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE
    int32_t nice = 0;
    int32_t priority = 0;
    std::vector<std::string> flags;
    uint64_t runtime = 0, deadline = 0, period = 0;
};

struct IoPriority {
    std::string klass;  // "class": IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE
    int32_t priority = 0;
};

struct CpuAffinity {
    std::string initial;  // cpu list, e.g. "0-3,7"
    std::string final_;   // "final"
};

struct Process {
    bool terminal = false;
    std::optional<ConsoleSize> console_size;
    User user;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd;
    std::optional<Capabilities> capabilities;
    std::vector<Rlimit> rlimits;
    bool no_new_privileges = false;
    std::string apparmor_profile;
    std::optional<int> oom_score_adj;
    std::string selinux_label;
    std::optional<Scheduler> scheduler;
    std::optional<IoPriority> io_priority;
    std::optional<CpuAffinity> exec_cpu_affinity;
};

struct Root {
    std::string path;  // as written; resolve against the bundle when relative
    bool readonly = false;
};

struct IdMapping {
    uint32_t container_id = 0;  // containerID
    uint32_t host_id = 0;       // hostID
    uint32_t size = 0;
};

struct Mount {
    std::string destination;
    std::string type;
    std::string source;
    std::vector<std::string> options;
    std::vector<IdMapping> uid_mappings, gid_mappings;
};

struct Hook {
    std::string path;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::optional<int> timeout;  // seconds, > 0
};

struct Hooks {
    std::vector<Hook> prestart;  // deprecated by the spec, still run (after createRuntime's namespace set-up)
    std::vector<Hook> create_runtime, create_container, start_container, poststart, poststop;
};

enum class NamespaceType { pid, network, mount, ipc, uts, user, cgroup, time };
std::string_view to_string(NamespaceType t);
// The inverse of to_string: the spec's namespace type names; nullopt for any other string.
std::optional<NamespaceType> namespace_type_from_string(std::string_view name);

struct Namespace {
    NamespaceType type = NamespaceType::pid;
    std::string path;  // empty: create a new one
};

struct Device {
    std::string type;  // "c", "b", "u", "p"
    std::string path;
    int64_t major = 0, minor = 0;
    std::optional<uint32_t> file_mode;  // fileMode
    std::optional<uint32_t> uid, gid;
};

struct DeviceCgroupRule {
    bool allow = false;
    std::string type;  // "a", "c", "b"; empty means "a"
    std::optional<int64_t> major, minor;
    std::string access;  // subset of "rwm"
};

struct Memory {
    std::optional<int64_t> limit, reservation, swap, kernel, kernel_tcp;
    std::optional<uint64_t> swappiness;
    std::optional<bool> disable_oom_killer, use_hierarchy, check_before_update;
};

struct Cpu {
    std::optional<uint64_t> shares;
    std::optional<int64_t> quota;
    std::optional<uint64_t> burst;
    std::optional<uint64_t> period;
    std::optional<int64_t> realtime_runtime;
    std::optional<uint64_t> realtime_period;
    std::string cpus, mems;
    std::optional<int64_t> idle;
};

struct Pids {
    std::optional<int64_t> limit;
};

struct WeightDevice {
    int64_t major = 0, minor = 0;
    std::optional<uint16_t> weight, leaf_weight;
};

struct ThrottleDevice {
    int64_t major = 0, minor = 0;
    uint64_t rate = 0;
};

struct BlockIo {
    std::optional<uint16_t> weight, leaf_weight;
    std::vector<WeightDevice> weight_device;
    std::vector<ThrottleDevice> throttle_read_bps_device, throttle_write_bps_device, throttle_read_iops_device,
        throttle_write_iops_device;
};

struct HugepageLimit {
    std::string page_size;  // "2MB", "1GB", ...
    uint64_t limit = 0;
};

struct InterfacePriority {
    std::string name;
    uint32_t priority = 0;
};

struct Network {
    std::optional<uint32_t> class_id;
    std::vector<InterfacePriority> priorities;
};

struct Rdma {
    std::optional<uint32_t> hca_handles, hca_objects;
};

struct Resources {
    std::vector<DeviceCgroupRule> devices;
    std::optional<Memory> memory;
    std::optional<Cpu> cpu;
    std::optional<Pids> pids;
    std::optional<BlockIo> block_io;
    std::vector<HugepageLimit> hugepage_limits;
    std::optional<Network> network;
    std::map<std::string, Rdma> rdma;
    std::map<std::string, std::string> unified;
};

struct SeccompArg {
    uint32_t index = 0;
    uint64_t value = 0;
    uint64_t value_two = 0;
    std::string op;  // SCMP_CMP_NE, ...
};

struct SeccompSyscall {
    std::vector<std::string> names;
    std::string action;
    std::optional<uint32_t> errno_ret;
    std::vector<SeccompArg> args;
};

struct Seccomp {
    std::string default_action;
    std::optional<uint32_t> default_errno_ret;
    std::vector<std::string> architectures;
    std::vector<std::string> flags;
    std::string listener_path;
    std::string listener_metadata;
    std::vector<SeccompSyscall> syscalls;
};

struct IntelRdt {
    std::string clos_id, l3_cache_schema, mem_bw_schema;
    bool enable_cmt = false, enable_mbm = false;
};

struct Personality {
    std::string domain;  // LINUX or LINUX32
    std::vector<std::string> flags;
};

struct TimeOffset {
    int64_t secs = 0;
    uint32_t nanosecs = 0;
};

struct Linux {
    std::vector<Namespace> namespaces;
    std::vector<IdMapping> uid_mappings, gid_mappings;
    std::map<std::string, TimeOffset> time_offsets;  // "monotonic", "boottime"
    std::vector<Device> devices;
    std::string cgroups_path;
    std::optional<Resources> resources;
    std::string rootfs_propagation;
    std::optional<Seccomp> seccomp;
    std::map<std::string, std::string> sysctl;
    std::vector<std::string> masked_paths, readonly_paths;
    std::string mount_label;
    std::optional<IntelRdt> intel_rdt;
    std::optional<Personality> personality;

    const Namespace* find_namespace(NamespaceType t) const;
};

struct Config {
    std::string oci_version;
    std::optional<Process> process;
    std::optional<Root> root;
    std::string hostname;
    std::string domainname;
    std::vector<Mount> mounts;
    Hooks hooks;
    std::map<std::string, std::string> annotations;
    std::optional<Linux> linux;
};

// Parses config.json text. Unknown keys are ignored; a wrong type or unknown enum value is an error naming the
// field's JSON path.
[[nodiscard]] Result<Config> parse_config(std::string_view json_text);
// Reads and parses `<bundle>/config.json`; errors are prefixed with the file path.
[[nodiscard]] Result<Config> load_config(const std::string& bundle_dir);
// Checks what the spec requires of a config meant to create a Linux container (process and root present,
// absolute mount destinations, valid namespaces, mappings with a user namespace, ...). Errors name the field.
[[nodiscard]] Result<void> validate_config(const Config& config);
// Parses a process.json (as `berth exec --process` takes) into a Process, with the same path errors; paths are
// rooted at the process object ("rlimits[0].type").
[[nodiscard]] Result<Process> parse_process(std::string_view json_text);
// The process checks of validate_config (args, absolute cwd, capabilities, rlimits, scheduler, ...), for exec.
// `path` prefixes the field paths in errors: "process" for a config's process, "" for a process.json.
[[nodiscard]] Result<void> validate_process(const Process& process, std::string_view path = "process");

// The default config.json that `berth spec` writes (runc-compatible content). `rootless` adds a user namespace
// mapping the caller's uid/gid and drops what an unprivileged user cannot do.
std::string default_config_json(bool rootless, uint32_t uid = 0, uint32_t gid = 0);

}  // namespace berth::spec
