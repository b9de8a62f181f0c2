// Resource usage of a container's cgroup, for `berth events`.
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"

namespace berth::cgroups {

namespace {

std::optional<std::string> read_ctl(const std::string& dir, std::string_view file) {
    auto r = read_file(path_join(dir, file));
    if (!r) return std::nullopt;
    return *r;
}

// 0 for "max" and unreadable files.
uint64_t read_u64(const std::string& dir, std::string_view file) {
    auto s = read_ctl(dir, file);
    if (!s) return 0;
    return std::strtoull(s->c_str(), nullptr, 10);
}

// "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
std::map<std::string, uint64_t> read_kv(const std::string& dir, std::string_view file) {
    std::map<std::string, uint64_t> out;
    auto s = read_ctl(dir, file);
    if (!s) return out;
    std::istringstream in(*s);
    std::string key;
    uint64_t v = 0;
    while (in >> key >> v) out[key] = v;
    return out;
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return names;
    while (struct dirent* de = ::readdir(d)) names.emplace_back(de->d_name);
    ::closedir(d);
    return names;
}

}  // namespace

Result<Stats> CgroupManager::stats() const {
    Stats s;
    if (auto t = target("memory")) {
        Stats::Memory m;
        const std::string& d = t->dir;
        if (!t->v2) {
            m.usage = read_u64(d, "memory.usage_in_bytes");
            m.limit = read_u64(d, "memory.limit_in_bytes");
            m.max_usage = read_u64(d, "memory.max_usage_in_bytes");
            m.failcnt = read_u64(d, "memory.failcnt");
            m.swap_usage = read_u64(d, "memory.memsw.usage_in_bytes");
            m.swap_limit = read_u64(d, "memory.memsw.limit_in_bytes");
            auto oc = read_kv(d, "memory.oom_control");
            m.oom_kill = oc["oom_kill"];
            m.oom = m.oom_kill;  // v1 counts OOM kills only
        } else {
            m.usage = read_u64(d, "memory.current");
            m.limit = read_u64(d, "memory.max");
            m.max_usage = read_u64(d, "memory.peak");
            m.swap_usage = read_u64(d, "memory.swap.current");
            m.swap_limit = read_u64(d, "memory.swap.max");
            auto ev = read_kv(d, "memory.events");
            m.failcnt = ev["max"];
            m.oom = ev["oom"];
            m.oom_kill = ev["oom_kill"];
        }
        m.raw = read_kv(d, "memory.stat");
        s.memory = std::move(m);
    }
    if (auto t = target("cpuacct"); t && !t->v2) {
        Stats::Cpu c;
        c.total_ns = read_u64(t->dir, "cpuacct.usage");
        if (auto per = read_ctl(t->dir, "cpuacct.usage_percpu")) {
            std::istringstream in(*per);
            uint64_t v = 0;
            while (in >> v) c.percpu_ns.push_back(v);
        }
        // cpuacct.stat counts USER_HZ ticks.
        auto st = read_kv(t->dir, "cpuacct.stat");
        uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
        c.user_ns = st["user"] * ns_per_tick;
        c.kernel_ns = st["system"] * ns_per_tick;
        if (auto cpu = target("cpu"); cpu && !cpu->v2) {
            auto cs = read_kv(cpu->dir, "cpu.stat");
            c.periods = cs["nr_periods"];
            c.throttled_periods = cs["nr_throttled"];
            c.throttled_ns = cs["throttled_time"];
        }
        s.cpu = std::move(c);
    } else if (auto u = paths_.find("unified"); u != paths_.end()) {
        // cpu.stat's usage fields are part of every v2 cgroup, with or without the cpu controller.
        auto cs = read_kv(u->second, "cpu.stat");
        Stats::Cpu c;
        c.total_ns = cs["usage_usec"] * 1000;
        c.user_ns = cs["user_usec"] * 1000;
        c.kernel_ns = cs["system_usec"] * 1000;
        c.periods = cs["nr_periods"];
        c.throttled_periods = cs["nr_throttled"];
        c.throttled_ns = cs["throttled_usec"] * 1000;
        s.cpu = std::move(c);
    }
    if (auto t = target("pids")) s.pids = Stats::Pids{read_u64(t->dir, "pids.current"), read_u64(t->dir, "pids.max")};
    if (auto t = target("blkio")) {
        if (!t->v2) {
            auto parse = [&](std::string_view file, std::vector<Stats::BlkioEntry>& out) {
                auto text = read_ctl(t->dir, file);
                if (!text) return;
                std::istringstream in(*text);
                std::string line;
                while (std::getline(in, line)) {
                    unsigned major = 0, minor = 0;
                    char op[32] = {};
                    unsigned long long v = 0;
                    if (std::sscanf(line.c_str(), "%u:%u %31s %llu", &major, &minor, op, &v) == 4)
                        out.push_back({major, minor, op, v});
                }
            };
            parse("blkio.throttle.io_service_bytes", s.io_service_bytes);
            parse("blkio.throttle.io_serviced", s.io_serviced);
        } else if (auto text = read_ctl(t->dir, "io.stat")) {
            std::istringstream in(*text);
            std::string line;
            while (std::getline(in, line)) {
                std::istringstream ls(line);
                std::string dev, kv;
                ls >> dev;
                unsigned major = 0, minor = 0;
                if (std::sscanf(dev.c_str(), "%u:%u", &major, &minor) != 2) continue;
                while (ls >> kv) {
                    auto eq = kv.find('=');
                    if (eq == std::string::npos) continue;
                    std::string k = kv.substr(0, eq);
                    uint64_t v = std::strtoull(kv.c_str() + eq + 1, nullptr, 10);
                    if (k == "rbytes") s.io_service_bytes.push_back({major, minor, "Read", v});
                    if (k == "wbytes") s.io_service_bytes.push_back({major, minor, "Write", v});
                    if (k == "rios") s.io_serviced.push_back({major, minor, "Read", v});
                    if (k == "wios") s.io_serviced.push_back({major, minor, "Write", v});
                }
            }
        }
    }
    if (auto t = target("hugetlb")) {
        std::string suffix = t->v2 ? ".current" : ".usage_in_bytes";
        for (const auto& name : list_dir(t->dir)) {
            if (!name.starts_with("hugetlb.") || !name.ends_with(suffix) || name.find(".rsvd.") != std::string::npos)
                continue;
            std::string size = name.substr(8, name.size() - 8 - suffix.size());
            Stats::Hugetlb h;
            h.usage = read_u64(t->dir, name);
            if (t->v2) {
                // runc's "max" is the peak usage, which v2 does not record.
                h.failcnt = read_kv(t->dir, "hugetlb." + size + ".events")["max"];
            } else {
                h.max = read_u64(t->dir, "hugetlb." + size + ".max_usage_in_bytes");
                h.failcnt = read_u64(t->dir, "hugetlb." + size + ".failcnt");
            }
            s.hugetlb[size] = h;
        }
    }
    return s;
}

std::string stats_json(const Stats& s) {
    using nlohmann::json;
    json data = json::object();
    if (s.cpu) {
        data["cpu"] = {{"usage",
                        {{"total", s.cpu->total_ns},
                         {"percpu", s.cpu->percpu_ns},
                         {"kernel", s.cpu->kernel_ns},
                         {"user", s.cpu->user_ns}}},
                       {"throttling",
                        {{"periods", s.cpu->periods},
                         {"throttledPeriods", s.cpu->throttled_periods},
                         {"throttledTime", s.cpu->throttled_ns}}}};
    }
    if (s.memory) {
        const auto& m = *s.memory;
        data["memory"] = {
            {"usage", {{"limit", m.limit}, {"usage", m.usage}, {"max", m.max_usage}, {"failcnt", m.failcnt}}},
            {"swap", {{"limit", m.swap_limit}, {"usage", m.swap_usage}}},
            {"oom", m.oom},
            {"oomKill", m.oom_kill},
            {"raw", m.raw}};
    }
    if (s.pids) data["pids"] = {{"current", s.pids->current}, {"limit", s.pids->limit}};
    auto entries = [](const std::vector<Stats::BlkioEntry>& list) {
        json arr = json::array();
        for (const auto& e : list)
            arr.push_back({{"major", e.major}, {"minor", e.minor}, {"op", e.op}, {"value", e.value}});
        return arr;
    };
    data["blkio"] = {{"ioServiceBytesRecursive", entries(s.io_service_bytes)},
                     {"ioServicedRecursive", entries(s.io_serviced)}};
    json huge = json::object();
    for (const auto& [size, h] : s.hugetlb) huge[size] = {{"usage", h.usage}, {"max", h.max}, {"failcnt", h.failcnt}};
    data["hugetlb"] = std::move(huge);
    return data.dump();
}

}  // namespace berth::cgroups
