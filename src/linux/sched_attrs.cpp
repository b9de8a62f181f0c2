#include "linux/sched_attrs.hpp"

#include <sched.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <string>

namespace berth::sys {

namespace {

// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1); glibc 2.36 has no sched_setattr wrapper.
struct SchedAttr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

constexpr int kIoprioClassShift = 13;
constexpr int kIoprioWhoProcess = 1;

std::string field(std::string_view path, std::string_view name) {
    return path.empty() ? std::string(name) : fmt::format("{}.{}", path, name);
}

}  // namespace

Result<int> scheduler_policy(std::string_view name) {
    if (name == "SCHED_OTHER") return SCHED_OTHER;
    if (name == "SCHED_FIFO") return SCHED_FIFO;
    if (name == "SCHED_RR") return SCHED_RR;
    if (name == "SCHED_BATCH") return SCHED_BATCH;
    if (name == "SCHED_IDLE") return SCHED_IDLE;
    if (name == "SCHED_DEADLINE") return 6;  // SCHED_DEADLINE
    if (name == "SCHED_ISO") return fail("scheduler policy SCHED_ISO is not implemented by Linux");
    return fail("unknown scheduler policy \"{}\"", name);
}

Result<uint64_t> scheduler_flag(std::string_view name) {
    // SCHED_FLAG_* of include/uapi/linux/sched.h.
    if (name == "SCHED_FLAG_RESET_ON_FORK") return 0x01;
    if (name == "SCHED_FLAG_RECLAIM") return 0x02;
    if (name == "SCHED_FLAG_DL_OVERRUN") return 0x04;
    if (name == "SCHED_FLAG_KEEP_POLICY") return 0x08;
    if (name == "SCHED_FLAG_KEEP_PARAMS") return 0x10;
    if (name == "SCHED_FLAG_UTIL_CLAMP_MIN") return 0x20;
    if (name == "SCHED_FLAG_UTIL_CLAMP_MAX") return 0x40;
    return fail("unknown scheduler flag \"{}\"", name);
}

Result<int> io_priority_value(const spec::IoPriority& io) {
    int klass = 0;
    if (io.klass == "IOPRIO_CLASS_RT")
        klass = 1;
    else if (io.klass == "IOPRIO_CLASS_BE")
        klass = 2;
    else if (io.klass == "IOPRIO_CLASS_IDLE")
        klass = 3;
    else
        return fail("unknown I/O priority class \"{}\"", io.klass);
    if (io.priority < 0 || io.priority > 7) return fail("I/O priority {} is outside [0, 7]", io.priority);
    return klass << kIoprioClassShift | io.priority;
}

Result<std::vector<int>> parse_cpu_list(std::string_view list) {
    std::string compact;
    for (char c : list)
        if (c != ' ') compact += c;
    std::vector<int> cpus;
    std::string_view rest = compact;
    auto number = [](std::string_view t, int& v) {
        auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        return !t.empty() && ec == std::errc() && ptr == t.data() + t.size() && v >= 0 && v < CPU_SETSIZE;
    };
    while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        auto dash = item.find('-');
        int lo = 0, hi = 0;
        bool ok = dash == std::string_view::npos
                      ? number(item, lo) && number(item, hi)
                      : number(item.substr(0, dash), lo) && number(item.substr(dash + 1), hi);
        if (!ok || lo > hi) return fail("\"{}\" is not a CPU list", list);
        for (int c = lo; c <= hi; ++c) cpus.push_back(c);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    if (cpus.empty()) return fail("\"{}\" is not a CPU list", list);
    return cpus;
}

Result<unsigned long> personality_value(const spec::Personality& p) {
    if (!p.flags.empty()) return fail("linux.personality.flags[0]: unsupported flag \"{}\"", p.flags[0]);
    if (p.domain == "LINUX") return static_cast<unsigned long>(PER_LINUX);
    if (p.domain == "LINUX32") return static_cast<unsigned long>(PER_LINUX32);
    return fail("linux.personality.domain: unknown domain \"{}\" (want LINUX or LINUX32)", p.domain);
}

Result<void> set_scheduler(const spec::Scheduler& s, std::string_view path) {
    std::string at = field(path, "scheduler");
    SchedAttr attr{};
    attr.size = sizeof attr;
    auto policy = scheduler_policy(s.policy);
    if (!policy) return std::unexpected(std::move(policy).error().wrap(at + ".policy"));
    attr.sched_policy = static_cast<uint32_t>(*policy);
    for (size_t i = 0; i < s.flags.size(); ++i) {
        auto flag = scheduler_flag(s.flags[i]);
        if (!flag) return std::unexpected(std::move(flag).error().wrap(fmt::format("{}.flags[{}]", at, i)));
        attr.sched_flags |= *flag;
    }
    attr.sched_nice = s.nice;
    attr.sched_priority = static_cast<uint32_t>(s.priority);
    attr.sched_runtime = s.runtime;
    attr.sched_deadline = s.deadline;
    attr.sched_period = s.period;
    if (::syscall(SYS_sched_setattr, 0, &attr, 0) < 0) {
        int err = errno;
        return fail_errno(err, "{}: sched_setattr policy {} nice {} priority {}{}", at, s.policy, s.nice, s.priority,
                          err == EPERM ? " (a real-time policy or a lower nice value needs CAP_SYS_NICE)" : "");
    }
    return {};
}

Result<void> set_io_priority(const spec::IoPriority& io, std::string_view path) {
    std::string at = field(path, "ioPriority");
    auto value = io_priority_value(io);
    if (!value) return std::unexpected(std::move(value).error().wrap(at));
    if (::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, *value) < 0)
        return fail_sys("{}: ioprio_set class {} priority {}", at, io.klass, io.priority);
    return {};
}

Result<void> set_cpu_affinity(std::string_view list, std::string_view field_name) {
    auto cpus = parse_cpu_list(list);
    if (!cpus) return std::unexpected(std::move(cpus).error().wrap(field_name));
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : *cpus) CPU_SET(c, &set);
    if (::sched_setaffinity(0, sizeof set, &set) < 0) return fail_sys("{}: sched_setaffinity \"{}\"", field_name, list);
    return {};
}

Result<void> set_personality(const spec::Personality& p) {
    BERTH_ASSIGN(unsigned long value, personality_value(p));
    if (::personality(value) < 0) return fail_sys("linux.personality: personality({:#x})", value);
    return {};
}

}  // namespace berth::sys
