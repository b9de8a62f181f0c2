// validate_config: what runtime-spec 1.2 requires of a config.json for creating a Linux container, plus the
// checks without which a later step would fail obscurely or act on the host instead of the container.
//
// Every error starts with the JSON path of the offending field. Paths are formatted only on failure: this runs
// on every `berth create`.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <span>

#include "spec/config.hpp"
#include "spec/json_reader.hpp"
#include "spec/names.hpp"

namespace berth::spec {

namespace {

using detail::quote;

template <typename... Args>
[[nodiscard]] std::unexpected<Error> invalid(fmt::format_string<Args...> f, Args&&... args) {
    return std::unexpected(Error(0, fmt::format(f, std::forward<Args>(args)...)));
}

// `base.field`, or `field` alone when the base is the root (a process.json's fields).
std::string field(std::string_view base, std::string_view name) {
    if (base.empty()) return std::string(name);
    return fmt::format("{}.{}", base, name);
}

bool contains(std::span<const std::string_view> set, std::string_view s) {
    return std::find(set.begin(), set.end(), s) != set.end();
}

constexpr size_t kNone = SIZE_MAX;

bool is_absolute(std::string_view p) {
    return !p.empty() && p.front() == '/';
}

// Strings handed to the kernel as C strings: an embedded NUL would silently cut them short.
bool has_nul(std::string_view s) {
    return s.find('\0') != std::string_view::npos;
}

// A single path component, as used for file names built from config values (cgroup files, resctrl groups).
bool is_plain_name(std::string_view s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos && !has_nul(s);
}

// The kernel's cpu/node list format: "0-3,7"; spaces are allowed around items (the spec's schema allows them).
bool is_cpu_list(std::string_view s) {
    std::string compact;
    for (char c : s)
        if (c != ' ') compact += c;
    if (compact.empty()) return true;
    std::string_view rest = compact;
    while (true) {
        auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        auto dash = item.find('-');
        auto number = [](std::string_view t, uint32_t& v) {
            if (t.empty()) return false;
            auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            return ec == std::errc() && ptr == t.data() + t.size();
        };
        uint32_t lo = 0, hi = 0;
        if (dash == std::string_view::npos) {
            if (!number(item, lo)) return false;
        } else {
            if (!number(item.substr(0, dash), lo) || !number(item.substr(dash + 1), hi) || lo > hi) return false;
        }
        if (comma == std::string_view::npos) return true;
        rest.remove_prefix(comma + 1);
    }
}

// "1.x.y" with an optional pre-release or build suffix: the spec is SemVer and retains compatibility within a
// major version, so every 1.x config is one this runtime understands (fields it does not know are ignored).
bool is_supported_oci_version(std::string_view v) {
    if (!v.starts_with("1.")) return false;
    v.remove_prefix(2);
    auto digits = [&v]() {
        size_t n = 0;
        while (n < v.size() && v[n] >= '0' && v[n] <= '9') ++n;
        v.remove_prefix(n);
        return n > 0;
    };
    if (!digits()) return false;
    if (v.empty() || v.front() != '.') return false;
    v.remove_prefix(1);
    if (!digits()) return false;
    return v.empty() || v.front() == '-' || v.front() == '+';
}

constexpr std::array<std::string_view, 7> kSchedulerPolicies{
    "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"};
constexpr std::array<std::string_view, 7> kSchedulerFlags{
    "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",        "SCHED_FLAG_DL_OVERRUN",    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",   "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX"};
constexpr std::array<std::string_view, 3> kIoPriorityClasses{"IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"};
// config-linux.md lists shared, slave, private and unbindable; the recursive spellings are what mount(8) and
// other runtimes also accept, and mean the same for the rootfs (it is always applied recursively).
constexpr std::array<std::string_view, 8> kRootfsPropagations{"shared",  "slave",  "private",  "unbindable",
                                                              "rshared", "rslave", "rprivate", "runbindable"};
constexpr std::array<std::string_view, 9> kSeccompActions{
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",        "SCMP_ACT_LOG",         "SCMP_ACT_NOTIFY"};
// The spec's list (libseccomp 2.5) plus the later libseccomp architectures, which the spec defers to.
constexpr std::array<std::string_view, 23> kSeccompArchitectures{
    "SCMP_ARCH_X86",         "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",       "SCMP_ARCH_ARM",     "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",        "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",    "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",       "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",  "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",        "SCMP_ARCH_SH",     "SCMP_ARCH_SHEB"};
constexpr std::array<std::string_view, 4> kSeccompFlags{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                                        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
constexpr std::array<std::string_view, 7> kSeccompOperators{
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"};
// The IPC namespace's sysctls (ipc_namespace: msg, sem, shm and their *_next_id restore knobs).
constexpr std::array<std::string_view, 11> kIpcSysctls{
    "kernel.msgmax",      "kernel.msgmnb",      "kernel.msgmni",     "kernel.sem",
    "kernel.shmall",      "kernel.shmmax",      "kernel.shmmni",     "kernel.shm_rmid_forced",
    "kernel.msg_next_id", "kernel.sem_next_id", "kernel.shm_next_id"};

// ---- process ---------------------------------------------------------------------------------------------------

Result<void> validate_capability_set(const std::vector<std::string>& names, std::string_view base,
                                     std::string_view set) {
    for (size_t i = 0; i < names.size(); ++i) {
        if (!capability_from_name(names[i]))
            return invalid("{}.{}[{}]: unknown capability {}", field(base, "capabilities"), set, i, quote(names[i]));
    }
    return {};
}

Result<void> validate_rlimits(const std::vector<Rlimit>& rlimits, std::string_view base) {
    // First index of each resource: duplicates are found in one pass however long the list is.
    std::array<size_t, RLIMIT_NLIMITS> first_index;
    first_index.fill(kNone);
    for (size_t i = 0; i < rlimits.size(); ++i) {
        const Rlimit& r = rlimits[i];
        std::string_view at = "rlimits";
        auto resource = rlimit_from_name(r.type);
        if (!resource) return invalid("{}[{}].type: unknown rlimit {}", field(base, at), i, quote(r.type));
        if (r.resource >= 0 && r.resource != *resource)
            return invalid("{}[{}]: resource {} does not match type {}", field(base, at), i, r.resource, r.type);
        if (r.soft > r.hard)
            return invalid("{}[{}]: soft limit {} exceeds hard limit {}", field(base, at), i, r.soft, r.hard);
        // "If rlimits contains duplicated entries with same type, the runtime MUST generate an error."
        size_t& first = first_index[static_cast<size_t>(*resource)];
        if (first != kNone)
            return invalid("{}[{}].type: duplicate rlimit {} (also at index {})", field(base, at), i, quote(r.type),
                           first);
        first = i;
    }
    return {};
}

}  // namespace

Result<void> validate_process(const Process& p, std::string_view base) {
    // "at least one entry is REQUIRED (non-Windows)" for args; its first entry is execvp's file.
    if (p.args.empty()) return invalid("{}: at least one argument is required", field(base, "args"));
    if (p.args[0].empty()) return invalid("{}[0]: the executable must not be empty", field(base, "args"));
    for (size_t i = 0; i < p.args.size(); ++i)
        if (has_nul(p.args[i])) return invalid("{}[{}]: contains a NUL byte", field(base, "args"), i);
    for (size_t i = 0; i < p.env.size(); ++i) {
        const std::string& e = p.env[i];
        auto eq = e.find('=');
        if (eq == std::string::npos || eq == 0)
            return invalid("{}[{}]: expected KEY=value, got {}", field(base, "env"), i, quote(e));
        if (has_nul(e)) return invalid("{}[{}]: contains a NUL byte", field(base, "env"), i);
    }
    if (p.cwd.empty()) return invalid("{}: required", field(base, "cwd"));
    if (!is_absolute(p.cwd)) return invalid("{}: must be an absolute path, got {}", field(base, "cwd"), quote(p.cwd));
    if (has_nul(p.cwd)) return invalid("{}: contains a NUL byte", field(base, "cwd"));

    if (p.capabilities) {
        BERTH_TRY(validate_capability_set(p.capabilities->bounding, base, "bounding"));
        BERTH_TRY(validate_capability_set(p.capabilities->effective, base, "effective"));
        BERTH_TRY(validate_capability_set(p.capabilities->inheritable, base, "inheritable"));
        BERTH_TRY(validate_capability_set(p.capabilities->permitted, base, "permitted"));
        BERTH_TRY(validate_capability_set(p.capabilities->ambient, base, "ambient"));
    }
    BERTH_TRY(validate_rlimits(p.rlimits, base));

    if (p.user.umask && *p.user.umask > 0777)
        return invalid("{}: {:#o} is not a file mode creation mask (max 0777)", field(base, "user.umask"),
                       *p.user.umask);
    if (p.oom_score_adj && (*p.oom_score_adj < -1000 || *p.oom_score_adj > 1000))
        return invalid("{}: {} is outside [-1000, 1000]", field(base, "oomScoreAdj"), *p.oom_score_adj);

    if (p.scheduler) {
        const Scheduler& s = *p.scheduler;
        if (!contains(kSchedulerPolicies, s.policy))
            return invalid("{}: unknown scheduler policy {}", field(base, "scheduler.policy"), quote(s.policy));
        for (size_t i = 0; i < s.flags.size(); ++i) {
            if (!contains(kSchedulerFlags, s.flags[i]))
                return invalid("{}[{}]: unknown scheduler flag {}", field(base, "scheduler.flags"), i,
                               quote(s.flags[i]));
        }
        if (s.nice < -20 || s.nice > 19)
            return invalid("{}: {} is outside [-20, 19]", field(base, "scheduler.nice"), s.nice);
        // SCHED_ISO is in the spec's list but was never merged into Linux: sched_setattr would only say EINVAL.
        if (s.policy == "SCHED_ISO")
            return invalid("{}: SCHED_ISO is not implemented by Linux", field(base, "scheduler.policy"));
        // sched_setattr(2): the real-time policies need a static priority in [1, 99]; runtime/deadline/period
        // belong to SCHED_DEADLINE only.
        bool realtime = s.policy == "SCHED_FIFO" || s.policy == "SCHED_RR";
        if (realtime && (s.priority < 1 || s.priority > 99))
            return invalid("{}: {} is outside [1, 99] for {}", field(base, "scheduler.priority"), s.priority, s.policy);
        if (s.policy != "SCHED_DEADLINE") {
            if (s.runtime != 0) return invalid("{}: only valid with SCHED_DEADLINE", field(base, "scheduler.runtime"));
            if (s.deadline != 0)
                return invalid("{}: only valid with SCHED_DEADLINE", field(base, "scheduler.deadline"));
            if (s.period != 0) return invalid("{}: only valid with SCHED_DEADLINE", field(base, "scheduler.period"));
        }
    }
    if (p.io_priority) {
        if (!contains(kIoPriorityClasses, p.io_priority->klass))
            return invalid("{}: unknown I/O priority class {}", field(base, "ioPriority.class"),
                           quote(p.io_priority->klass));
        if (p.io_priority->priority < 0 || p.io_priority->priority > 7)
            return invalid("{}: {} is outside [0, 7]", field(base, "ioPriority.priority"), p.io_priority->priority);
    }
    if (p.exec_cpu_affinity) {
        if (!is_cpu_list(p.exec_cpu_affinity->initial))
            return invalid("{}: not a CPU list: {}", field(base, "execCPUAffinity.initial"),
                           quote(p.exec_cpu_affinity->initial));
        if (!is_cpu_list(p.exec_cpu_affinity->final_))
            return invalid("{}: not a CPU list: {}", field(base, "execCPUAffinity.final"),
                           quote(p.exec_cpu_affinity->final_));
    }
    return {};
}

namespace {

// ---- mounts and hooks ------------------------------------------------------------------------------------------

Result<void> validate_mappings(const std::vector<IdMapping>& maps, std::string_view at) {
    for (size_t i = 0; i < maps.size(); ++i) {
        const IdMapping& m = maps[i];
        if (m.size == 0) return invalid("{}[{}].size: must be > 0", at, i);
        constexpr uint64_t kIdSpace = uint64_t{1} << 32;
        if (uint64_t{m.container_id} + m.size > kIdSpace || uint64_t{m.host_id} + m.size > kIdSpace)
            return invalid("{}[{}]: range {}+{} / {}+{} overflows the 32-bit id space", at, i, m.container_id, m.size,
                           m.host_id, m.size);
    }
    return {};
}

Result<void> validate_mounts(const Config& c, bool has_userns) {
    for (size_t i = 0; i < c.mounts.size(); ++i) {
        const Mount& m = c.mounts[i];
        // config.md (1.2): on Linux the destination SHOULD be absolute, but a relative one is still allowed for
        // old configs and MUST be taken relative to "/". So only an empty destination is rejected here; the mount
        // code resolves "dest" as "/dest" inside the rootfs.
        if (m.destination.empty()) return invalid("mounts[{}].destination: required", i);
        if (has_nul(m.destination)) return invalid("mounts[{}].destination: contains a NUL byte", i);
        if (has_nul(m.source)) return invalid("mounts[{}].source: contains a NUL byte", i);
        if (has_nul(m.type)) return invalid("mounts[{}].type: contains a NUL byte", i);
        bool idmap_option = false;
        for (size_t k = 0; k < m.options.size(); ++k) {
            if (has_nul(m.options[k])) return invalid("mounts[{}].options[{}]: contains a NUL byte", i, k);
            if (m.options[k] == "idmap" || m.options[k] == "ridmap") idmap_option = true;
        }
        // "If specified, it MUST be specified along with gidMappings" (and the other way round).
        if (m.uid_mappings.empty() != m.gid_mappings.empty())
            return invalid("mounts[{}].{}: uidMappings and gidMappings must be given together", i,
                           m.uid_mappings.empty() ? "gidMappings" : "uidMappings");
        if (!m.uid_mappings.empty()) {
            BERTH_TRY(validate_mappings(m.uid_mappings, fmt::format("mounts[{}].uidMappings", i)));
            BERTH_TRY(validate_mappings(m.gid_mappings, fmt::format("mounts[{}].gidMappings", i)));
        }
        // idmap/ridmap without mappings of their own take the container's user namespace mapping; without a user
        // namespace "an error MUST be returned".
        if (idmap_option && m.uid_mappings.empty() && !has_userns)
            return invalid("mounts[{}].options: idmap needs uidMappings/gidMappings or a user namespace", i);
    }
    return {};
}

Result<void> validate_hook_list(const std::vector<Hook>& hooks, std::string_view name) {
    for (size_t i = 0; i < hooks.size(); ++i) {
        const Hook& h = hooks[i];
        // "This specification extends the IEEE standard in that path MUST be absolute."
        if (!is_absolute(h.path))
            return invalid("hooks.{}[{}].path: must be an absolute path, got {}", name, i, quote(h.path));
        if (has_nul(h.path)) return invalid("hooks.{}[{}].path: contains a NUL byte", name, i);
        // "If set, timeout MUST be greater than zero."
        if (h.timeout && *h.timeout <= 0)
            return invalid("hooks.{}[{}].timeout: must be greater than zero, got {}", name, i, *h.timeout);
        for (size_t k = 0; k < h.args.size(); ++k)
            if (has_nul(h.args[k])) return invalid("hooks.{}[{}].args[{}]: contains a NUL byte", name, i, k);
        for (size_t k = 0; k < h.env.size(); ++k)
            if (has_nul(h.env[k])) return invalid("hooks.{}[{}].env[{}]: contains a NUL byte", name, i, k);
    }
    return {};
}

Result<void> validate_hooks(const Hooks& h) {
    BERTH_TRY(validate_hook_list(h.prestart, "prestart"));
    BERTH_TRY(validate_hook_list(h.create_runtime, "createRuntime"));
    BERTH_TRY(validate_hook_list(h.create_container, "createContainer"));
    BERTH_TRY(validate_hook_list(h.start_container, "startContainer"));
    BERTH_TRY(validate_hook_list(h.poststart, "poststart"));
    BERTH_TRY(validate_hook_list(h.poststop, "poststop"));
    return {};
}

// ---- linux -----------------------------------------------------------------------------------------------------

Result<void> validate_namespaces(const Linux& l) {
    std::array<size_t, 8> first_index;  // by NamespaceType
    first_index.fill(kNone);
    for (size_t i = 0; i < l.namespaces.size(); ++i) {
        const Namespace& ns = l.namespaces[i];
        // "If a namespaces field contains duplicated namespaces with same type, the runtime MUST generate an error."
        auto type = static_cast<size_t>(ns.type);
        if (type >= first_index.size()) return invalid("linux.namespaces[{}].type: unknown namespace type", i);
        size_t& first = first_index[type];
        if (first != kNone)
            return invalid("linux.namespaces[{}].type: duplicate namespace type \"{}\" (also at index {})", i,
                           to_string(ns.type), first);
        first = i;
        // "This value MUST be an absolute path in the runtime mount namespace."
        if (!ns.path.empty() && !is_absolute(ns.path))
            return invalid("linux.namespaces[{}].path: must be an absolute path, got {}", i, quote(ns.path));
        if (has_nul(ns.path)) return invalid("linux.namespaces[{}].path: contains a NUL byte", i);
    }

    const Namespace* user = l.find_namespace(NamespaceType::user);
    if (!user && !l.uid_mappings.empty())
        return invalid("linux.uidMappings: mappings need a user namespace, but linux.namespaces has no \"user\"");
    if (!user && !l.gid_mappings.empty())
        return invalid("linux.gidMappings: mappings need a user namespace, but linux.namespaces has no \"user\"");
    // A new user namespace without mappings leaves every id unmapped (the process runs as the overflow id and can
    // write nothing it owns), which is never what a config means. A joined one already has its mappings; the
    // mappings may still be listed (as Kubernetes does for pod user namespaces) and describe it.
    if (user && user->path.empty()) {
        if (l.uid_mappings.empty()) return invalid("linux.uidMappings: a new user namespace needs uid mappings");
        if (l.gid_mappings.empty()) return invalid("linux.gidMappings: a new user namespace needs gid mappings");
    }
    BERTH_TRY(validate_mappings(l.uid_mappings, "linux.uidMappings"));
    BERTH_TRY(validate_mappings(l.gid_mappings, "linux.gidMappings"));

    if (!l.time_offsets.empty()) {
        // Offsets are written to /proc/<pid>/timens_offsets before the first process enters a new time namespace;
        // a joined or inherited one cannot take them.
        const Namespace* time = l.find_namespace(NamespaceType::time);
        if (!time) return invalid("linux.timeOffsets: offsets need a time namespace, but linux.namespaces has none");
        if (!time->path.empty())
            return invalid("linux.timeOffsets: offsets need a new time namespace, not one joined by path");
        for (const auto& [clock, offset] : l.time_offsets) {
            if (clock != "monotonic" && clock != "boottime")
                return invalid("linux.timeOffsets[{}]: unknown clock (want \"monotonic\" or \"boottime\")",
                               quote(clock));
            if (offset.nanosecs >= 1'000'000'000)
                return invalid("linux.timeOffsets[{}].nanosecs: {} is not below one second", quote(clock),
                               offset.nanosecs);
        }
    }
    return {};
}

Result<void> validate_devices(const Linux& l) {
    for (size_t i = 0; i < l.devices.size(); ++i) {
        const Device& d = l.devices[i];
        if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
            return invalid("linux.devices[{}].type: unknown device type {} (want c, b, u or p)", i, quote(d.type));
        if (!is_absolute(d.path))
            return invalid("linux.devices[{}].path: must be an absolute path, got {}", i, quote(d.path));
        if (has_nul(d.path)) return invalid("linux.devices[{}].path: contains a NUL byte", i);
        if (d.major < 0 || d.minor < 0) return invalid("linux.devices[{}]: negative major/minor number", i);
    }
    return {};
}

Result<void> validate_resources(const Resources& r) {
    for (size_t i = 0; i < r.devices.size(); ++i) {
        const DeviceCgroupRule& d = r.devices[i];
        if (!d.type.empty() && d.type != "a" && d.type != "c" && d.type != "b")
            return invalid("linux.resources.devices[{}].type: unknown device type {} (want a, c or b)", i,
                           quote(d.type));
        if (d.access.find_first_not_of("rwm") != std::string::npos)
            return invalid("linux.resources.devices[{}].access: {} is not a combination of r, w and m", i,
                           quote(d.access));
    }
    if (r.memory && r.memory->swappiness && *r.memory->swappiness > 100)
        return invalid("linux.resources.memory.swappiness: {} is outside [0, 100]", *r.memory->swappiness);
    if (r.cpu) {
        const Cpu& c = *r.cpu;
        // "If specified with any (valid) positive value, [quota] MUST be no smaller than burst."
        if (c.burst && c.quota && *c.quota > 0 && *c.burst > static_cast<uint64_t>(*c.quota))
            return invalid("linux.resources.cpu.burst: {} is larger than quota {}", *c.burst, *c.quota);
        if (!is_cpu_list(c.cpus)) return invalid("linux.resources.cpu.cpus: not a CPU list: {}", quote(c.cpus));
        if (!is_cpu_list(c.mems)) return invalid("linux.resources.cpu.mems: not a node list: {}", quote(c.mems));
    }
    if (r.block_io) {
        const auto& wd = r.block_io->weight_device;
        for (size_t i = 0; i < wd.size(); ++i) {
            // "You MUST specify at least one of weight or leafWeight in a given entry."
            if (!wd[i].weight && !wd[i].leaf_weight)
                return invalid("linux.resources.blockIO.weightDevice[{}]: needs weight or leafWeight", i);
        }
    }
    for (size_t i = 0; i < r.hugepage_limits.size(); ++i) {
        // "<size><unit-prefix>B" (64KB, 2MB, 1GB); it becomes part of a cgroup file name.
        std::string_view ps = r.hugepage_limits[i].page_size;
        size_t digits = 0;
        while (digits < ps.size() && ps[digits] >= '0' && ps[digits] <= '9') ++digits;
        std::string_view unit = ps.substr(digits);
        if (digits == 0 || (unit != "B" && unit != "KB" && unit != "MB" && unit != "GB" && unit != "TB"))
            return invalid("linux.resources.hugepageLimits[{}].pageSize: {} is not <size><unit>B such as 2MB", i,
                           quote(ps));
    }
    for (const auto& [device, limits] : r.rdma) {
        // "You MUST specify at least one of the hcaHandles or hcaObjects in a given entry."
        if (!limits.hca_handles && !limits.hca_objects)
            return invalid("linux.resources.rdma[{}]: needs hcaHandles or hcaObjects", quote(device));
    }
    for (const auto& [key, value] : r.unified) {
        // Each key names a file in the container's cgroup directory: it must not reach outside it.
        if (!is_plain_name(key)) return invalid("linux.resources.unified[{}]: not a cgroup file name", quote(key));
        if (has_nul(value)) return invalid("linux.resources.unified[{}]: contains a NUL byte", quote(key));
    }
    return {};
}

Result<void> validate_seccomp(const Seccomp& s) {
    auto takes_errno = [](std::string_view action) { return action == "SCMP_ACT_ERRNO" || action == "SCMP_ACT_TRACE"; };
    bool uses_notify = s.default_action == "SCMP_ACT_NOTIFY";
    if (!contains(kSeccompActions, s.default_action))
        return invalid("linux.seccomp.defaultAction: unknown seccomp action {}", quote(s.default_action));
    // "When the action doesn't support an errno, the runtime MUST print and error and fail."
    if (s.default_errno_ret && !takes_errno(s.default_action))
        return invalid("linux.seccomp.defaultErrnoRet: action {} takes no errno", s.default_action);
    for (size_t i = 0; i < s.architectures.size(); ++i) {
        if (!contains(kSeccompArchitectures, s.architectures[i]))
            return invalid("linux.seccomp.architectures[{}]: unknown architecture {}", i, quote(s.architectures[i]));
    }
    for (size_t i = 0; i < s.flags.size(); ++i) {
        if (!contains(kSeccompFlags, s.flags[i]))
            return invalid("linux.seccomp.flags[{}]: unknown seccomp flag {}", i, quote(s.flags[i]));
    }
    // "This field MUST NOT be set if listenerPath is not set."
    if (!s.listener_metadata.empty() && s.listener_path.empty())
        return invalid("linux.seccomp.listenerMetadata: set without listenerPath");
    if (has_nul(s.listener_path)) return invalid("linux.seccomp.listenerPath: contains a NUL byte");
    for (size_t i = 0; i < s.syscalls.size(); ++i) {
        const SeccompSyscall& sc = s.syscalls[i];
        // "names MUST contain at least one entry."
        if (sc.names.empty()) return invalid("linux.seccomp.syscalls[{}].names: at least one name is required", i);
        for (size_t k = 0; k < sc.names.size(); ++k) {
            if (sc.names[k].empty() || has_nul(sc.names[k]))
                return invalid("linux.seccomp.syscalls[{}].names[{}]: not a syscall name: {}", i, k,
                               quote(sc.names[k]));
        }
        if (!contains(kSeccompActions, sc.action))
            return invalid("linux.seccomp.syscalls[{}].action: unknown seccomp action {}", i, quote(sc.action));
        if (sc.errno_ret && !takes_errno(sc.action))
            return invalid("linux.seccomp.syscalls[{}].errnoRet: action {} takes no errno", i, sc.action);
        if (sc.action == "SCMP_ACT_NOTIFY") uses_notify = true;
        for (size_t k = 0; k < sc.args.size(); ++k) {
            const SeccompArg& a = sc.args[k];
            // A system call has at most six arguments.
            if (a.index > 5)
                return invalid("linux.seccomp.syscalls[{}].args[{}].index: {} is not an argument index (0-5)", i, k,
                               a.index);
            if (!contains(kSeccompOperators, a.op))
                return invalid("linux.seccomp.syscalls[{}].args[{}].op: unknown operator {}", i, k, quote(a.op));
        }
    }
    // SCMP_ACT_NOTIFY hands the notification fd to an agent over listenerPath; without one nobody would answer
    // and the notified system calls would block forever.
    if (uses_notify && s.listener_path.empty())
        return invalid("linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
    if (!s.listener_path.empty() && !is_absolute(s.listener_path))
        return invalid("linux.seccomp.listenerPath: must be an absolute path, got {}", quote(s.listener_path));
    return {};
}

// Which namespace a sysctl belongs to, or nullopt when it is not namespaced: writing it from the container would
// change the host. Keys may use '/' instead of '.' (as sysctl(8) accepts).
std::optional<NamespaceType> sysctl_namespace(std::string_view key) {
    std::string k(key);
    std::replace(k.begin(), k.end(), '/', '.');
    if (k.starts_with("net.")) return NamespaceType::network;
    if (k == "kernel.hostname" || k == "kernel.domainname") return NamespaceType::uts;
    if (k.starts_with("fs.mqueue.")) return NamespaceType::ipc;
    if (contains(kIpcSysctls, k)) return NamespaceType::ipc;
    return std::nullopt;
}

Result<void> validate_sysctl(const Linux& l) {
    for (const auto& [key, value] : l.sysctl) {
        if (key.empty() || has_nul(key) || key.find("..") != std::string::npos || key.front() == '.' ||
            key.front() == '/')
            return invalid("linux.sysctl[{}]: not a sysctl name", quote(key));
        if (has_nul(value)) return invalid("linux.sysctl[{}]: value contains a NUL byte", quote(key));
        auto ns = sysctl_namespace(key);
        if (!ns)
            return invalid("linux.sysctl[{}]: not a namespaced sysctl; setting it would change the host", quote(key));
        // The namespace may be new or joined by path (a pod's sandbox namespaces are joined that way); whether a
        // joined one is the host's own can only be told at create time.
        if (!l.find_namespace(*ns))
            return invalid("linux.sysctl[{}]: requires namespace type \"{}\" in linux.namespaces", quote(key),
                           to_string(*ns));
    }
    return {};
}

Result<void> validate_paths(const std::vector<std::string>& paths, std::string_view name) {
    // "The values MUST be absolute paths in the container namespace."
    for (size_t i = 0; i < paths.size(); ++i) {
        if (!is_absolute(paths[i]))
            return invalid("linux.{}[{}]: must be an absolute path, got {}", name, i, quote(paths[i]));
        if (has_nul(paths[i])) return invalid("linux.{}[{}]: contains a NUL byte", name, i);
    }
    return {};
}

Result<void> validate_linux(const Linux& l) {
    BERTH_TRY(validate_namespaces(l));
    BERTH_TRY(validate_devices(l));
    if (l.resources) BERTH_TRY(validate_resources(*l.resources));
    if (!l.rootfs_propagation.empty() && !contains(kRootfsPropagations, l.rootfs_propagation))
        return invalid("linux.rootfsPropagation: {} is not shared, slave, private or unbindable",
                       quote(l.rootfs_propagation));
    if (l.seccomp) BERTH_TRY(validate_seccomp(*l.seccomp));
    BERTH_TRY(validate_sysctl(l));
    BERTH_TRY(validate_paths(l.masked_paths, "maskedPaths"));
    BERTH_TRY(validate_paths(l.readonly_paths, "readonlyPaths"));
    if (l.intel_rdt) {
        const IntelRdt& rdt = *l.intel_rdt;
        // closID names a directory under the resctrl mount.
        if (!rdt.clos_id.empty() && !is_plain_name(rdt.clos_id))
            return invalid("linux.intelRdt.closID: {} is not a plain directory name", quote(rdt.clos_id));
        // "The value MUST start with MB: and MUST NOT contain newlines."
        if (!rdt.mem_bw_schema.empty() &&
            (!rdt.mem_bw_schema.starts_with("MB:") || rdt.mem_bw_schema.find('\n') != std::string::npos))
            return invalid("linux.intelRdt.memBwSchema: must start with \"MB:\" and be one line, got {}",
                           quote(rdt.mem_bw_schema));
    }
    if (l.personality) {
        if (l.personality->domain != "LINUX" && l.personality->domain != "LINUX32")
            return invalid("linux.personality.domain: unknown domain {} (want LINUX or LINUX32)",
                           quote(l.personality->domain));
        // "Currently no flag values are supported."
        if (!l.personality->flags.empty())
            return invalid("linux.personality.flags[0]: unsupported flag {}", quote(l.personality->flags[0]));
    }
    return {};
}

}  // namespace

Result<void> validate_config(const Config& c) {
    if (c.oci_version.empty()) return invalid("ociVersion: required");
    if (!is_supported_oci_version(c.oci_version))
        return invalid("ociVersion: {} is not a 1.x version of the runtime spec", quote(c.oci_version));

    // The process is OPTIONAL in a bundle but "REQUIRED when start is called", and a container is created to be
    // started: reject the config at create rather than leave a container that can never run.
    if (!c.process) return invalid("process: required to create a container");
    BERTH_TRY(validate_process(*c.process, "process"));

    if (!c.root) return invalid("root: required on Linux");
    if (c.root->path.empty()) return invalid("root.path: required");
    if (has_nul(c.root->path)) return invalid("root.path: contains a NUL byte");

    static const Linux kNoLinux;
    const Linux& linux_ = c.linux ? *c.linux : kNoLinux;

    // Without a UTS namespace of its own the container would rename the host. A joined one is fine (pod containers
    // share their sandbox's and carry its hostname).
    bool has_uts = linux_.find_namespace(NamespaceType::uts) != nullptr;
    if (!c.hostname.empty()) {
        if (!has_uts) return invalid("hostname: setting the hostname needs a uts namespace in linux.namespaces");
        if (c.hostname.size() > 64 || has_nul(c.hostname))
            return invalid("hostname: {} is not a valid hostname (at most 64 bytes)", quote(c.hostname));
    }
    if (!c.domainname.empty()) {
        if (!has_uts) return invalid("domainname: setting the domainname needs a uts namespace in linux.namespaces");
        if (c.domainname.size() > 64 || has_nul(c.domainname))
            return invalid("domainname: {} is not a valid domainname (at most 64 bytes)", quote(c.domainname));
    }

    BERTH_TRY(validate_mounts(c, linux_.find_namespace(NamespaceType::user) != nullptr));
    BERTH_TRY(validate_hooks(c.hooks));
    BERTH_TRY(validate_linux(linux_));
    return {};
}

}  // namespace berth::spec
