// Cgroups: one CgroupManager over a v1 (cgroupfs, one hierarchy per controller) and a v2 (unified) driver.
//
// Which driver serves a controller is decided by what the host mounts (/proc/self/mountinfo): a controller
// mounted as a v1 hierarchy is driven through v1 files; any other controller the unified tree offers is driven
// through v2 files. A container always also joins the unified tree when one is mounted, so on a hybrid host (v1
// controllers plus a cgroup2 tree holding e.g. hugetlb) the controllers only v2 offers still apply.
//
// Every path comes from a CgroupLayout, which is the seam for tests: a layout whose mount points are directories
// of plain files drives the same code against a fake tree. On a fake tree, files are never created: a control
// file the test did not make is "missing", as on a kernel that lacks it.
//
// A manager's directories are recorded as controller -> directory ("unified" for the v2 directory), which is what
// runtime::ContainerState::cgroup_paths stores between commands.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "spec/config.hpp"

namespace berth::cgroups {

enum class Mode { v1, v2, hybrid };
std::string_view to_string(Mode m);

struct CgroupLayout {
    Mode mode = Mode::v1;
    std::map<std::string, std::string>
        v1;               // controller -> mount point of its v1 hierarchy ("cpu" -> /sys/fs/cgroup/cpu)
    std::string unified;  // mount point of the cgroup2 tree, empty when none
};

// The layout described by mountinfo text (proc(5) format). Named v1 hierarchies (name=systemd) are not managed.
// An error when no cgroup file system is mounted.
[[nodiscard]] Result<CgroupLayout> detect_layout(std::string_view mountinfo_text);
// The layout of the caller's mount namespace.
[[nodiscard]] Result<CgroupLayout> detect_layout();

// The default parent of relative and default cgroup paths, in every hierarchy.
inline constexpr std::string_view kDefaultParent = "/berth";

// The cgroup of a container inside each hierarchy, from linux.cgroupsPath: absolute as given, relative under
// kDefaultParent, empty = kDefaultParent/<id>. ".." components and the root itself are refused, naming
// linux.cgroupsPath.
[[nodiscard]] Result<std::string> resolve_cgroup_path(std::string_view cgroups_path, std::string_view id);

// Checks linux.resources values that are wrong on any host (negative limits, bad device rules, unified keys that
// are not plain file names), naming the field: `linux.resources.memory.limit: -5 is negative`.
[[nodiscard]] Result<void> validate_resources(const spec::Resources& r);

// v1 -> v2 conversions the ecosystem uses (runc, crun, the kernel docs' ranges).
uint64_t cpu_shares_to_weight(uint64_t shares);  // [2, 262144] -> [1, 10000]
uint64_t blkio_weight_to_io_weight(uint64_t w);  // [10, 1000] -> [1, 10000]

struct Stats {
    struct Memory {
        uint64_t usage = 0, limit = 0, max_usage = 0, failcnt = 0;
        uint64_t swap_usage = 0, swap_limit = 0;
        uint64_t oom = 0, oom_kill = 0;
        std::map<std::string, uint64_t> raw;  // memory.stat
    };
    struct Cpu {
        uint64_t total_ns = 0, user_ns = 0, kernel_ns = 0;
        std::vector<uint64_t> percpu_ns;
        uint64_t periods = 0, throttled_periods = 0, throttled_ns = 0;
    };
    struct Pids {
        uint64_t current = 0, limit = 0;  // limit 0 = unlimited
    };
    struct BlkioEntry {
        uint64_t major = 0, minor = 0;
        std::string op;
        uint64_t value = 0;
    };
    struct Hugetlb {
        uint64_t usage = 0, max = 0, failcnt = 0;  // max: peak usage (v1 only)
    };
    std::optional<Memory> memory;
    std::optional<Cpu> cpu;
    std::optional<Pids> pids;
    std::vector<BlkioEntry> io_service_bytes, io_serviced;
    std::map<std::string, Hugetlb> hugetlb;  // by page size ("2MB")
};

// The "data" object of runc's `events` stats event (cpu, memory, pids, blkio, hugetlb keys as runc names them).
std::string stats_json(const Stats& s);

class CgroupManager {
public:
    // Creates the container's cgroup in every managed hierarchy (parents as needed; in the unified tree every
    // controller the parent offers is enabled on the way down), then applies `resources` when given. On failure
    // every directory this call made is removed again. Until commit(), the destructor removes them too.
    [[nodiscard]] static Result<CgroupManager> create(const CgroupLayout& layout, const std::string& path,
                                                      const spec::Resources* resources);
    // A manager over directories recorded earlier (cgroup_paths()); owns nothing.
    static CgroupManager load(std::map<std::string, std::string> paths);

    CgroupManager(CgroupManager&& o) noexcept;
    CgroupManager& operator=(CgroupManager&& o) noexcept;
    CgroupManager(const CgroupManager&) = delete;
    ~CgroupManager();

    // controller -> directory, "unified" for the v2 one.
    const std::map<std::string, std::string>& paths() const { return paths_; }
    // Keeps the directories past this object's life.
    void commit() { created_.clear(); }

    // Applies `r` (create, `berth update`). check_before_update refuses a memory limit below the current usage.
    [[nodiscard]] Result<void> apply(const spec::Resources& r, bool is_update = false) const;
    // How a new process enters these cgroups without a thread-group migration (which makes the kernel wait for an
    // RCU grace period, several ms): `unified` is an O_PATH fd of the v2 directory for clone3's CLONE_INTO_CGROUP
    // (invalid when there is none); `v1_tasks` are write fds of each v1 hierarchy's `tasks` file, to which the new
    // process writes "0" itself (a thread moving itself skips that lock). The fds are opened here, by the caller,
    // so the kernel checks the opener's credentials: the process may already sit in a user namespace.
    struct EntryFds {
        UniqueFd unified;
        std::vector<UniqueFd> v1_tasks;
    };
    [[nodiscard]] Result<EntryFds> entry_fds() const;
    // Pids in the cgroup (cgroup.procs).
    [[nodiscard]] Result<std::vector<pid_t>> pids() const;
    // Freezes every task and waits until the kernel reports the cgroup frozen (bounded; thaws again on timeout).
    [[nodiscard]] Result<void> freeze() const;
    [[nodiscard]] Result<void> thaw() const;
    bool frozen() const;
    [[nodiscard]] Result<Stats> stats() const;
    // SIGKILLs remaining tasks when `kill`, thaws, then removes every directory, retrying (bounded) while tasks
    // drain. Directories already gone are fine.
    [[nodiscard]] Result<void> destroy(bool kill) const;
    // An fd that becomes readable when the memory controller records an OOM kill: a v1 eventfd registered on
    // memory.oom_control (read it to reset), or a v2 inotify watch on memory.events (read it, then compare
    // oom_kill_count()).
    [[nodiscard]] Result<UniqueFd> oom_notifier() const;
    uint64_t oom_kill_count() const;

private:
    explicit CgroupManager(std::map<std::string, std::string> paths) : paths_(std::move(paths)) {}
    // The directory serving `controller` and whether it is a v2 one; nullopt when no hierarchy offers it.
    struct Target {
        std::string dir;
        bool v2 = false;
    };
    std::optional<Target> target(const std::string& controller) const;
    void remove_created();

    std::map<std::string, std::string> paths_;
    std::set<std::string> unified_controllers_;  // controllers enabled in the v2 directory
    std::vector<std::string> created_;           // directories made by create(), deepest last
    friend struct Apply;
};

// Cgroup v2 device control: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) built from the rules, plus the
// runtime's default devices when rules are given (as for v1), attached to the cgroup directory `dir` with
// BPF_F_ALLOW_MULTI. The attachment lives as long as the cgroup.
[[nodiscard]] Result<void> attach_device_filter(const std::string& dir,
                                                const std::vector<spec::DeviceCgroupRule>& rules);
// The rules a container gets: the configured ones, then the default devices every container may use (null, zero,
// full, random, urandom, tty, ptmx, pts). Empty when `rules` is empty (the cgroup's device access is left as is).
std::vector<spec::DeviceCgroupRule> effective_device_rules(const std::vector<spec::DeviceCgroupRule>& rules);

}  // namespace berth::cgroups
