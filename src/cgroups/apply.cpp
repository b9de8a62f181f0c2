// linux.resources -> cgroup control files, through the v1 or the v2 driver per controller.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"

namespace berth::cgroups {

uint64_t cpu_shares_to_weight(uint64_t shares) {
    if (shares == 0) return 0;
    if (shares < 2) shares = 2;
    if (shares > 262144) shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t blkio_weight_to_io_weight(uint64_t w) {
    if (w == 0) return 0;
    if (w < 10) w = 10;
    if (w > 1000) w = 1000;
    return 1 + ((w - 10) * 9999) / 990;
}

Result<void> validate_resources(const spec::Resources& r) {
    auto not_negative = [](const std::optional<int64_t>& v, std::string_view field) -> Result<void> {
        if (v && *v < -1) return fail("linux.resources.{}: {} is negative (only -1, unlimited, is allowed)", field, *v);
        return {};
    };
    for (size_t i = 0; i < r.devices.size(); ++i) {
        const auto& d = r.devices[i];
        if (!d.type.empty() && d.type != "a" && d.type != "c" && d.type != "b")
            return fail("linux.resources.devices[{}].type: unknown device type \"{}\" (want a, c or b)", i, d.type);
        bool seen[3] = {};
        for (char c : d.access) {
            size_t k = c == 'r' ? 0 : c == 'w' ? 1 : c == 'm' ? 2 : 3;
            if (k == 3 || seen[k])
                return fail("linux.resources.devices[{}].access: \"{}\" is not a combination of r, w and m", i,
                            d.access);
            seen[k] = true;
        }
        if ((d.major && *d.major < -1) || (d.minor && *d.minor < -1))
            return fail("linux.resources.devices[{}]: negative major/minor number", i);
    }
    if (r.memory) {
        const auto& m = *r.memory;
        BERTH_TRY(not_negative(m.limit, "memory.limit"));
        BERTH_TRY(not_negative(m.reservation, "memory.reservation"));
        BERTH_TRY(not_negative(m.swap, "memory.swap"));
        BERTH_TRY(not_negative(m.kernel, "memory.kernel"));
        BERTH_TRY(not_negative(m.kernel_tcp, "memory.kernelTCP"));
        if (m.swappiness && *m.swappiness > 100)
            return fail("linux.resources.memory.swappiness: {} is outside [0, 100]", *m.swappiness);
        if (m.swap && m.limit && *m.swap > 0 && *m.limit > 0 && *m.swap < *m.limit)
            return fail("linux.resources.memory.swap: {} is below memory.limit {} (swap counts memory plus swap)",
                        *m.swap, *m.limit);
    }
    if (r.cpu) {
        const auto& c = *r.cpu;
        BERTH_TRY(not_negative(c.quota, "cpu.quota"));
        BERTH_TRY(not_negative(c.realtime_runtime, "cpu.realtimeRuntime"));
        if (c.idle && *c.idle != 0 && *c.idle != 1) return fail("linux.resources.cpu.idle: {} is not 0 or 1", *c.idle);
        if (c.shares && *c.shares > 262144)
            return fail("linux.resources.cpu.shares: {} is above the maximum 262144", *c.shares);
    }
    if (r.block_io) {
        const auto& b = *r.block_io;
        auto weight = [](const std::optional<uint16_t>& w, std::string_view field) -> Result<void> {
            if (w && *w != 0 && (*w < 10 || *w > 1000))
                return fail("linux.resources.blockIO.{}: {} is outside [10, 1000]", field, *w);
            return {};
        };
        BERTH_TRY(weight(b.weight, "weight"));
        BERTH_TRY(weight(b.leaf_weight, "leafWeight"));
        for (size_t i = 0; i < b.weight_device.size(); ++i) {
            const auto& d = b.weight_device[i];
            BERTH_TRY(weight(d.weight, fmt::format("weightDevice[{}].weight", i)));
            BERTH_TRY(weight(d.leaf_weight, fmt::format("weightDevice[{}].leafWeight", i)));
            if (d.major < 0 || d.minor < 0)
                return fail("linux.resources.blockIO.weightDevice[{}]: negative major/minor number", i);
        }
        for (const auto* list : {&b.throttle_read_bps_device, &b.throttle_write_bps_device,
                                 &b.throttle_read_iops_device, &b.throttle_write_iops_device})
            for (const auto& d : *list)
                if (d.major < 0 || d.minor < 0)
                    return fail("linux.resources.blockIO: negative major/minor number in a throttle device");
    }
    for (size_t i = 0; i < r.hugepage_limits.size(); ++i) {
        std::string_view ps = r.hugepage_limits[i].page_size;
        size_t digits = ps.find_first_not_of("0123456789");
        std::string_view unit = digits == std::string_view::npos ? "" : ps.substr(digits);
        if (digits == 0 || (unit != "KB" && unit != "MB" && unit != "GB"))
            return fail("linux.resources.hugepageLimits[{}].pageSize: \"{}\" is not <size><unit>B such as 2MB", i, ps);
    }
    for (const auto& [key, value] : r.unified) {
        if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos ||
            key.find('\0') != std::string::npos)
            return fail("linux.resources.unified[\"{}\"]: not a cgroup file name", key);
        if (value.find('\0') != std::string::npos)
            return fail("linux.resources.unified[\"{}\"]: contains a NUL byte", key);
    }
    return {};
}

// The drivers. Each write names the field it serves, so the caller reads
//   linux.resources.memory.limit: write "1" to /sys/fs/cgroup/memory/berth/x/memory.limit_in_bytes: Device busy
struct Apply {
    const CgroupManager& m;
    bool is_update;

    static Result<void> write(const std::string& dir, std::string_view file, std::string_view value,
                              std::string_view field) {
        std::string path = path_join(dir, file);
        int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                return fail_errno(ENOENT, "{}: {} is missing (this kernel or cgroup does not offer the setting)", field,
                                  path);
            return fail_sys("{}: open {}", field, path);
        }
        UniqueFd owned(fd);
        ssize_t n = ::write(fd, value.data(), value.size());
        if (n < 0) return fail_sys("{}: write \"{}\" to {}", field, value, path);
        return {};
    }
    static std::optional<std::string> read(const std::string& dir, std::string_view file) {
        auto r = read_file(path_join(dir, file));
        if (!r) return std::nullopt;
        while (!r->empty() && (r->back() == '\n' || r->back() == ' ')) r->pop_back();
        return *r;
    }
    static bool exists(const std::string& dir, std::string_view file) { return path_exists(path_join(dir, file)); }

    Result<CgroupManager::Target> need(const std::string& controller, std::string_view field) const {
        auto t = m.target(controller);
        if (!t)
            return fail(
                "linux.resources.{}: the {} controller is neither mounted as cgroup v1 nor enabled in the "
                "unified (v2) tree on this host",
                field, controller);
        return *t;
    }

    Result<void> memory(const spec::Memory& mem) const {
        bool any = (mem.limit && *mem.limit != 0) || (mem.reservation && *mem.reservation != 0) ||
                   (mem.swap && *mem.swap != 0) || mem.swappiness || mem.disable_oom_killer ||
                   (mem.kernel && *mem.kernel != 0) || (mem.kernel_tcp && *mem.kernel_tcp != 0) || mem.use_hierarchy;
        if (!any) return {};
        BERTH_ASSIGN(auto t, need("memory", "memory"));
        if (mem.kernel && *mem.kernel != 0)
            return fail(
                "linux.resources.memory.kernel: kernel memory limits are not supported (deprecated by the "
                "runtime-spec; current kernels ignore them)");
        auto str = [](int64_t v) { return std::to_string(v); };
        if (is_update && mem.check_before_update.value_or(false) && mem.limit && *mem.limit > 0) {
            auto usage = read(t.dir, t.v2 ? "memory.current" : "memory.usage_in_bytes");
            if (usage && std::strtoull(usage->c_str(), nullptr, 10) > static_cast<uint64_t>(*mem.limit))
                return fail("linux.resources.memory.limit: {} is below the current usage {} (checkBeforeUpdate)",
                            *mem.limit, *usage);
        }
        if (!t.v2) {
            const std::string& d = t.dir;
            bool limit = mem.limit && *mem.limit != 0, swap = mem.swap && *mem.swap != 0;
            std::string limit_v = limit ? str(*mem.limit) : "", swap_v = swap ? str(*mem.swap) : "";
            if (limit && swap) {
                // memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every moment: raise memsw first when the
                // new memsw is above the current limit, else lower the limit first.
                auto cur = read(d, "memory.limit_in_bytes");
                uint64_t cur_limit = cur ? std::strtoull(cur->c_str(), nullptr, 10) : 0;
                if (*mem.swap == -1 || static_cast<uint64_t>(*mem.swap) >= cur_limit) {
                    BERTH_TRY(write(d, "memory.memsw.limit_in_bytes", swap_v, "linux.resources.memory.swap"));
                    BERTH_TRY(write(d, "memory.limit_in_bytes", limit_v, "linux.resources.memory.limit"));
                } else {
                    BERTH_TRY(write(d, "memory.limit_in_bytes", limit_v, "linux.resources.memory.limit"));
                    BERTH_TRY(write(d, "memory.memsw.limit_in_bytes", swap_v, "linux.resources.memory.swap"));
                }
            } else if (limit) {
                auto r = write(d, "memory.limit_in_bytes", limit_v, "linux.resources.memory.limit");
                if (!r && r.error().code() == EINVAL) {
                    // The kernel keeps the memory limit at or below the memory+swap limit.
                    if (auto memsw = read(d, "memory.memsw.limit_in_bytes"))
                        return std::unexpected(Error(EINVAL, fmt::format("{} (the memory+swap limit is {}: set "
                                                                         "memory.swap too)",
                                                                         r.error().message(), *memsw)));
                }
                BERTH_TRY(r);
            } else if (swap) {
                BERTH_TRY(write(d, "memory.memsw.limit_in_bytes", swap_v, "linux.resources.memory.swap"));
            }
            if (mem.reservation && *mem.reservation != 0)
                BERTH_TRY(write(d, "memory.soft_limit_in_bytes", str(*mem.reservation),
                                "linux.resources.memory.reservation"));
            if (mem.kernel_tcp && *mem.kernel_tcp != 0)
                BERTH_TRY(write(d, "memory.kmem.tcp.limit_in_bytes", str(*mem.kernel_tcp),
                                "linux.resources.memory.kernelTCP"));
            if (mem.swappiness)
                BERTH_TRY(write(d, "memory.swappiness", std::to_string(*mem.swappiness),
                                "linux.resources.memory.swappiness"));
            if (mem.disable_oom_killer)
                BERTH_TRY(write(d, "memory.oom_control", *mem.disable_oom_killer ? "1" : "0",
                                "linux.resources.memory.disableOOMKiller"));
            if (mem.use_hierarchy) {
                // Current kernels always use the hierarchy and refuse any write; only a different value is an error.
                auto cur = read(d, "memory.use_hierarchy");
                if (cur != std::string(*mem.use_hierarchy ? "1" : "0"))
                    BERTH_TRY(write(d, "memory.use_hierarchy", *mem.use_hierarchy ? "1" : "0",
                                    "linux.resources.memory.useHierarchy"));
            }
            return {};
        }
        const std::string& d = t.dir;
        auto max_or = [](int64_t v) { return v == -1 ? std::string("max") : std::to_string(v); };
        if (mem.kernel_tcp && *mem.kernel_tcp != 0)
            return fail("linux.resources.memory.kernelTCP: not supported on cgroup v2");
        if (mem.swappiness) return fail("linux.resources.memory.swappiness: not supported on cgroup v2");
        if (mem.disable_oom_killer && *mem.disable_oom_killer)
            return fail("linux.resources.memory.disableOOMKiller: not supported on cgroup v2");
        // v1's swap is memory+swap; v2's memory.swap.max is swap alone.
        std::optional<std::string> swap_max;
        if (mem.swap && *mem.swap != 0) {
            if (*mem.swap == -1) {
                swap_max = "max";
            } else {
                if (!mem.limit || *mem.limit <= 0)
                    return fail(
                        "linux.resources.memory.swap: a swap limit needs memory.limit on cgroup v2 (swap is "
                        "given as memory plus swap)");
                swap_max = std::to_string(*mem.swap - *mem.limit);
            }
        }
        // Raising a limit while swap.max is lower is fine in v2: the files are independent.
        if (mem.limit && *mem.limit != 0)
            BERTH_TRY(write(d, "memory.max", max_or(*mem.limit), "linux.resources.memory.limit"));
        if (swap_max) BERTH_TRY(write(d, "memory.swap.max", *swap_max, "linux.resources.memory.swap"));
        if (mem.reservation && *mem.reservation != 0)
            BERTH_TRY(write(d, "memory.low", max_or(*mem.reservation), "linux.resources.memory.reservation"));
        return {};
    }

    Result<void> cpu(const spec::Cpu& c) const {
        bool cpu_any = (c.shares && *c.shares) || (c.quota && *c.quota) || (c.period && *c.period) || c.burst ||
                       (c.realtime_runtime && *c.realtime_runtime) || (c.realtime_period && *c.realtime_period) ||
                       c.idle;
        if (cpu_any) {
            BERTH_ASSIGN(auto t, need("cpu", "cpu"));
            const std::string& d = t.dir;
            if (!t.v2) {
                if (c.shares && *c.shares)
                    BERTH_TRY(write(d, "cpu.shares", std::to_string(*c.shares), "linux.resources.cpu.shares"));
                if (c.period && *c.period)
                    BERTH_TRY(write(d, "cpu.cfs_period_us", std::to_string(*c.period), "linux.resources.cpu.period"));
                if (c.quota && *c.quota)
                    BERTH_TRY(write(d, "cpu.cfs_quota_us", std::to_string(*c.quota), "linux.resources.cpu.quota"));
                if (c.burst)
                    BERTH_TRY(write(d, "cpu.cfs_burst_us", std::to_string(*c.burst), "linux.resources.cpu.burst"));
                if (c.realtime_period && *c.realtime_period)
                    BERTH_TRY(write(d, "cpu.rt_period_us", std::to_string(*c.realtime_period),
                                    "linux.resources.cpu.realtimePeriod"));
                if (c.realtime_runtime && *c.realtime_runtime)
                    BERTH_TRY(write(d, "cpu.rt_runtime_us", std::to_string(*c.realtime_runtime),
                                    "linux.resources.cpu.realtimeRuntime"));
                if (c.idle) BERTH_TRY(write(d, "cpu.idle", std::to_string(*c.idle), "linux.resources.cpu.idle"));
            } else {
                if ((c.realtime_runtime && *c.realtime_runtime) || (c.realtime_period && *c.realtime_period))
                    return fail(
                        "linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not supported "
                        "on cgroup v2");
                if (c.shares && *c.shares)
                    BERTH_TRY(write(d, "cpu.weight", std::to_string(cpu_shares_to_weight(*c.shares)),
                                    "linux.resources.cpu.shares"));
                if ((c.quota && *c.quota) || (c.period && *c.period)) {
                    // cpu.max is "$MAX $PERIOD"; a field not given keeps its current value.
                    std::string cur = read(d, "cpu.max").value_or("max 100000");
                    std::string cur_quota = cur.substr(0, cur.find(' '));
                    std::string cur_period =
                        cur.find(' ') == std::string::npos ? "100000" : cur.substr(cur.find(' ') + 1);
                    std::string quota =
                        c.quota && *c.quota ? (*c.quota < 0 ? "max" : std::to_string(*c.quota)) : cur_quota;
                    std::string period = c.period && *c.period ? std::to_string(*c.period) : cur_period;
                    BERTH_TRY(write(d, "cpu.max", quota + " " + period,
                                    c.quota && *c.quota ? "linux.resources.cpu.quota" : "linux.resources.cpu.period"));
                }
                if (c.burst)
                    BERTH_TRY(write(d, "cpu.max.burst", std::to_string(*c.burst), "linux.resources.cpu.burst"));
                if (c.idle) BERTH_TRY(write(d, "cpu.idle", std::to_string(*c.idle), "linux.resources.cpu.idle"));
            }
        }
        if (!c.cpus.empty() || !c.mems.empty()) {
            BERTH_ASSIGN(auto t, need("cpuset", "cpu.cpus"));
            if (!c.cpus.empty()) BERTH_TRY(write(t.dir, "cpuset.cpus", c.cpus, "linux.resources.cpu.cpus"));
            if (!c.mems.empty()) BERTH_TRY(write(t.dir, "cpuset.mems", c.mems, "linux.resources.cpu.mems"));
        }
        return {};
    }

    Result<void> pids(const spec::Pids& p) const {
        if (!p.limit || *p.limit == 0) return {};
        BERTH_ASSIGN(auto t, need("pids", "pids.limit"));
        return write(t.dir, "pids.max", *p.limit < 0 ? "max" : std::to_string(*p.limit), "linux.resources.pids.limit");
    }

    Result<void> block_io(const spec::BlockIo& b) const {
        bool any = (b.weight && *b.weight) || (b.leaf_weight && *b.leaf_weight) || !b.weight_device.empty() ||
                   !b.throttle_read_bps_device.empty() || !b.throttle_write_bps_device.empty() ||
                   !b.throttle_read_iops_device.empty() || !b.throttle_write_iops_device.empty();
        if (!any) return {};
        std::optional<CgroupManager::Target> t = m.target("blkio");
        if (!t) t = m.target("io");
        if (!t) {
            BERTH_ASSIGN(t, need("blkio", "blockIO"));
        }
        const std::string& d = t->dir;
        struct Throttle {
            const std::vector<spec::ThrottleDevice>* list;
            const char* v1_file;
            const char* v2_key;
            const char* field;
        };
        const Throttle throttles[] = {
            {&b.throttle_read_bps_device, "blkio.throttle.read_bps_device", "rbps", "throttleReadBpsDevice"},
            {&b.throttle_write_bps_device, "blkio.throttle.write_bps_device", "wbps", "throttleWriteBpsDevice"},
            {&b.throttle_read_iops_device, "blkio.throttle.read_iops_device", "riops", "throttleReadIOPSDevice"},
            {&b.throttle_write_iops_device, "blkio.throttle.write_iops_device", "wiops", "throttleWriteIOPSDevice"}};
        if (!t->v2) {
            // Kernels with BFQ and without CFQ offer only the blkio.bfq.* weight files.
            bool bfq = !exists(d, "blkio.weight") && exists(d, "blkio.bfq.weight");
            if (b.weight && *b.weight)
                BERTH_TRY(write(d, bfq ? "blkio.bfq.weight" : "blkio.weight", std::to_string(*b.weight),
                                "linux.resources.blockIO.weight"));
            if (b.leaf_weight && *b.leaf_weight)
                BERTH_TRY(write(d, "blkio.leaf_weight", std::to_string(*b.leaf_weight),
                                "linux.resources.blockIO.leafWeight"));
            for (size_t i = 0; i < b.weight_device.size(); ++i) {
                const auto& wd = b.weight_device[i];
                if (wd.weight)
                    BERTH_TRY(write(d, bfq ? "blkio.bfq.weight_device" : "blkio.weight_device",
                                    fmt::format("{}:{} {}", wd.major, wd.minor, *wd.weight),
                                    fmt::format("linux.resources.blockIO.weightDevice[{}].weight", i)));
                if (wd.leaf_weight)
                    BERTH_TRY(write(d, "blkio.leaf_weight_device",
                                    fmt::format("{}:{} {}", wd.major, wd.minor, *wd.leaf_weight),
                                    fmt::format("linux.resources.blockIO.weightDevice[{}].leafWeight", i)));
            }
            for (const auto& th : throttles)
                for (size_t i = 0; i < th.list->size(); ++i) {
                    const auto& td = (*th.list)[i];
                    BERTH_TRY(write(d, th.v1_file, fmt::format("{}:{} {}", td.major, td.minor, td.rate),
                                    fmt::format("linux.resources.blockIO.{}[{}]", th.field, i)));
                }
            return {};
        }
        if ((b.leaf_weight && *b.leaf_weight))
            return fail("linux.resources.blockIO.leafWeight: not supported on cgroup v2");
        // io.bfq.weight takes blkio's range as is; io.weight needs the conversion.
        bool bfq = exists(d, "io.bfq.weight");
        if (b.weight && *b.weight) {
            if (bfq)
                BERTH_TRY(write(d, "io.bfq.weight", std::to_string(*b.weight), "linux.resources.blockIO.weight"));
            else
                BERTH_TRY(write(d, "io.weight", "default " + std::to_string(blkio_weight_to_io_weight(*b.weight)),
                                "linux.resources.blockIO.weight"));
        }
        for (size_t i = 0; i < b.weight_device.size(); ++i) {
            const auto& wd = b.weight_device[i];
            if (wd.leaf_weight)
                return fail("linux.resources.blockIO.weightDevice[{}].leafWeight: not supported on cgroup v2", i);
            if (wd.weight)
                BERTH_TRY(write(d, bfq ? "io.bfq.weight" : "io.weight",
                                fmt::format("{}:{} {}", wd.major, wd.minor,
                                            bfq ? *wd.weight : blkio_weight_to_io_weight(*wd.weight)),
                                fmt::format("linux.resources.blockIO.weightDevice[{}].weight", i)));
        }
        for (const auto& th : throttles)
            for (size_t i = 0; i < th.list->size(); ++i) {
                const auto& td = (*th.list)[i];
                BERTH_TRY(write(d, "io.max", fmt::format("{}:{} {}={}", td.major, td.minor, th.v2_key, td.rate),
                                fmt::format("linux.resources.blockIO.{}[{}]", th.field, i)));
            }
        return {};
    }

    Result<void> hugetlb(const std::vector<spec::HugepageLimit>& limits) const {
        if (limits.empty()) return {};
        BERTH_ASSIGN(auto t, need("hugetlb", "hugepageLimits"));
        for (size_t i = 0; i < limits.size(); ++i) {
            const auto& h = limits[i];
            std::string file = t.v2 ? fmt::format("hugetlb.{}.max", h.page_size)
                                    : fmt::format("hugetlb.{}.limit_in_bytes", h.page_size);
            if (!exists(t.dir, file))
                return fail(
                    "linux.resources.hugepageLimits[{}].pageSize: this host has no {} huge pages ({} is "
                    "missing)",
                    i, h.page_size, path_join(t.dir, file));
            BERTH_TRY(
                write(t.dir, file, std::to_string(h.limit), fmt::format("linux.resources.hugepageLimits[{}]", i)));
            // Reservations count against a separate limit; keep them in step when the kernel offers it.
            std::string rsvd = t.v2 ? fmt::format("hugetlb.{}.rsvd.max", h.page_size)
                                    : fmt::format("hugetlb.{}.rsvd.limit_in_bytes", h.page_size);
            if (exists(t.dir, rsvd))
                BERTH_TRY(
                    write(t.dir, rsvd, std::to_string(h.limit), fmt::format("linux.resources.hugepageLimits[{}]", i)));
        }
        return {};
    }

    Result<void> network(const spec::Network& n) const {
        if (n.class_id) {
            auto t = m.target("net_cls");
            if (!t || t->v2)
                return fail("linux.resources.network.classID: the net_cls controller is not mounted (cgroup v1 only)");
            BERTH_TRY(write(t->dir, "net_cls.classid", std::to_string(*n.class_id), "linux.resources.network.classID"));
        }
        if (!n.priorities.empty()) {
            auto t = m.target("net_prio");
            if (!t || t->v2)
                return fail(
                    "linux.resources.network.priorities: the net_prio controller is not mounted (cgroup v1 "
                    "only)");
            for (size_t i = 0; i < n.priorities.size(); ++i)
                BERTH_TRY(write(t->dir, "net_prio.ifpriomap",
                                fmt::format("{} {}", n.priorities[i].name, n.priorities[i].priority),
                                fmt::format("linux.resources.network.priorities[{}]", i)));
        }
        return {};
    }

    Result<void> rdma(const std::map<std::string, spec::Rdma>& devices) const {
        if (devices.empty()) return {};
        BERTH_ASSIGN(auto t, need("rdma", "rdma"));
        for (const auto& [dev, lim] : devices) {
            std::string v = dev;
            if (lim.hca_handles) v += fmt::format(" hca_handle={}", *lim.hca_handles);
            if (lim.hca_objects) v += fmt::format(" hca_object={}", *lim.hca_objects);
            BERTH_TRY(write(t.dir, "rdma.max", v, fmt::format("linux.resources.rdma[\"{}\"]", dev)));
        }
        return {};
    }

    Result<void> devices(const std::vector<spec::DeviceCgroupRule>& rules) const {
        if (rules.empty()) return {};
        auto rules_all = effective_device_rules(rules);
        auto t = m.target("devices");
        if (t && !t->v2) {
            // A new v1 cgroup starts with its parent's list (usually "a *:* rwm"), where allow rules change
            // nothing: deny everything first, so the rules mean what they mean under the v2 filter, which starts
            // from nothing allowed.
            BERTH_TRY(write(t->dir, "devices.deny", "a", "linux.resources.devices (deny all first)"));
            for (size_t i = 0; i < rules_all.size(); ++i) {
                const auto& r = rules_all[i];
                auto num = [](const std::optional<int64_t>& v) {
                    return v && *v >= 0 ? std::to_string(*v) : std::string("*");
                };
                std::string type = r.type.empty() ? "a" : r.type;
                std::string access = r.access.empty() ? "rwm" : r.access;
                std::string v =
                    type == "a" ? "a" : fmt::format("{} {}:{} {}", type, num(r.major), num(r.minor), access);
                std::string field = i < rules.size() ? fmt::format("linux.resources.devices[{}]", i)
                                                     : std::string("linux.resources.devices (default devices)");
                BERTH_TRY(write(t->dir, r.allow ? "devices.allow" : "devices.deny", v, field));
            }
            return {};
        }
        auto it = m.paths_.find("unified");
        if (it == m.paths_.end())
            return fail("linux.resources.devices: the devices controller is not mounted and there is no unified tree");
        BERTH_TRY_CTX(attach_device_filter(it->second, rules), "linux.resources.devices");
        return {};
    }

    Result<void> unified(const std::map<std::string, std::string>& kv) const {
        if (kv.empty()) return {};
        auto it = m.paths_.find("unified");
        if (it == m.paths_.end())
            return fail("linux.resources.unified: needs cgroup v2, and this host mounts no unified tree");
        for (const auto& [key, value] : kv) {
            std::string field = fmt::format("linux.resources.unified[\"{}\"]", key);
            if (!exists(it->second, key))
                return fail(
                    "{}: no such file in the container's cgroup {} (unknown key, or its controller is not "
                    "enabled there)",
                    field, it->second);
            BERTH_TRY(write(it->second, key, value, field));
        }
        return {};
    }

    Result<void> all(const spec::Resources& r) const {
        BERTH_TRY(validate_resources(r));
        if (r.memory) BERTH_TRY(memory(*r.memory));
        if (r.cpu) BERTH_TRY(cpu(*r.cpu));
        if (r.pids) BERTH_TRY(pids(*r.pids));
        if (r.block_io) BERTH_TRY(block_io(*r.block_io));
        BERTH_TRY(hugetlb(r.hugepage_limits));
        if (r.network) BERTH_TRY(network(*r.network));
        BERTH_TRY(rdma(r.rdma));
        BERTH_TRY(devices(r.devices));
        BERTH_TRY(unified(r.unified));
        return {};
    }
};

Result<void> CgroupManager::apply(const spec::Resources& r, bool is_update) const {
    return Apply{*this, is_update}.all(r);
}

std::vector<spec::DeviceCgroupRule> effective_device_rules(const std::vector<spec::DeviceCgroupRule>& rules) {
    if (rules.empty()) return {};
    std::vector<spec::DeviceCgroupRule> out = rules;
    auto allow = [&](const char* type, int64_t major, std::optional<int64_t> minor) {
        out.push_back({true, type, major, minor, "rwm"});
    };
    allow("c", 1, 3);               // /dev/null
    allow("c", 1, 5);               // /dev/zero
    allow("c", 1, 7);               // /dev/full
    allow("c", 1, 8);               // /dev/random
    allow("c", 1, 9);               // /dev/urandom
    allow("c", 5, 0);               // /dev/tty
    allow("c", 5, 2);               // /dev/ptmx
    allow("c", 136, std::nullopt);  // /dev/pts/*
    return out;
}

}  // namespace berth::cgroups
