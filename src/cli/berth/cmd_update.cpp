// `berth update`: new resource limits for a container, from a LinuxResources JSON and/or runc's flags.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "command.hpp"
#include "common/fs.hpp"

namespace berth::cli {
namespace {

// Byte sizes as runc's flags take them: 1024, 100k, 64m, 1g (optionally with a trailing b), -1 for unlimited.
Result<int64_t> parse_bytes(const ParsedFlags& f, const std::string& name) {
    std::string v = f.value(name);
    if (v == "-1") return -1;
    char* end = nullptr;
    errno = 0;
    double n = std::strtod(v.c_str(), &end);
    std::string unit(end ? end : "");
    for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!unit.empty() && unit.back() == 'b') unit.pop_back();
    double mult = unit.empty()  ? 1
                  : unit == "k" ? 1024.0
                  : unit == "m" ? 1048576.0
                  : unit == "g" ? 1073741824.0
                  : unit == "t" ? 1099511627776.0
                                : -1;
    if (v.empty() || end == v.c_str() || errno != 0 || mult < 0 || n < 0)
        return fail("--{}: invalid size \"{}\" (bytes, with an optional k, m, g or t suffix, or -1)", name, v);
    return static_cast<int64_t>(n * mult);
}

Result<int64_t> parse_int(const ParsedFlags& f, const std::string& name) {
    std::string v = f.value(name);
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0) return fail("--{}: invalid number \"{}\"", name, v);
    return n;
}

Result<uint64_t> parse_uint(const ParsedFlags& f, const std::string& name) {
    BERTH_ASSIGN(int64_t n, parse_int(f, name));
    if (n < 0) return fail("--{}: {} is negative", name, n);
    return static_cast<uint64_t>(n);
}

Result<spec::Resources> resources_from_flags(const ParsedFlags& f) {
    spec::Resources r;
    if (f.has("resources")) {
        std::string src = f.value("resources");
        BERTH_ASSIGN(std::string text, src == "-" ? read_fd(STDIN_FILENO) : read_file(src));
        // Parsed as the linux.resources of a config, so errors carry the same field paths.
        auto cfg = spec::parse_config(fmt::format("{{\"linux\":{{\"resources\":{}}}}}", text));
        if (!cfg) return std::unexpected(std::move(cfg).error().wrap(src == "-" ? "--resources (stdin)" : src));
        if (cfg->linux && cfg->linux->resources) r = *cfg->linux->resources;
    }
    if (f.has("kernel-memory") || f.has("kernel-memory-tcp"))
        return fail(
            "--kernel-memory: kernel memory limits are not supported (deprecated; current kernels ignore "
            "them)");
    if (f.has("l3-cache-schema") || f.has("mem-bw-schema"))
        return fail("--l3-cache-schema/--mem-bw-schema: Intel RDT (resctrl) is not supported by berth");
    auto mem = [&]() -> spec::Memory& {
        if (!r.memory) r.memory.emplace();
        return *r.memory;
    };
    auto cpu = [&]() -> spec::Cpu& {
        if (!r.cpu) r.cpu.emplace();
        return *r.cpu;
    };
    if (f.has("memory")) {
        BERTH_ASSIGN(mem().limit, parse_bytes(f, "memory"));
    }
    if (f.has("memory-reservation")) {
        BERTH_ASSIGN(mem().reservation, parse_bytes(f, "memory-reservation"));
    }
    if (f.has("memory-swap")) {
        BERTH_ASSIGN(mem().swap, parse_bytes(f, "memory-swap"));
    }
    if (f.has("cpu-shares")) {
        BERTH_ASSIGN(cpu().shares, parse_uint(f, "cpu-shares"));
    }
    if (f.has("cpu-quota")) {
        BERTH_ASSIGN(cpu().quota, parse_int(f, "cpu-quota"));
    }
    if (f.has("cpu-period")) {
        BERTH_ASSIGN(cpu().period, parse_uint(f, "cpu-period"));
    }
    if (f.has("cpu-rt-period")) {
        BERTH_ASSIGN(cpu().realtime_period, parse_uint(f, "cpu-rt-period"));
    }
    if (f.has("cpu-rt-runtime")) {
        BERTH_ASSIGN(cpu().realtime_runtime, parse_int(f, "cpu-rt-runtime"));
    }
    if (f.has("cpuset-cpus")) cpu().cpus = f.value("cpuset-cpus");
    if (f.has("cpuset-mems")) cpu().mems = f.value("cpuset-mems");
    if (f.has("pids-limit")) {
        if (!r.pids) r.pids.emplace();
        BERTH_ASSIGN(r.pids->limit, parse_int(f, "pids-limit"));
    }
    if (f.has("blkio-weight")) {
        BERTH_ASSIGN(uint64_t w, parse_uint(f, "blkio-weight"));
        if (w > 1000) return fail("--blkio-weight: {} is outside [10, 1000]", w);
        if (!r.block_io) r.block_io.emplace();
        r.block_io->weight = static_cast<uint16_t>(w);
    }
    return r;
}

}  // namespace

const Command& update_command() {
    static const Command c{"update",
                           "[command options] <container-id>",
                           "change a container's resource limits",
                           {{{"resources", "r"}, true, "path to a LinuxResources JSON file, or - for stdin"},
                            {{"memory"}, true, "memory limit in bytes (k, m, g suffixes; -1 unlimited)"},
                            {{"memory-reservation"}, true, "memory soft limit in bytes"},
                            {{"memory-swap"}, true, "memory plus swap limit in bytes (-1 unlimited)"},
                            {{"cpu-shares"}, true, "relative CPU weight (cgroup v1 shares)"},
                            {{"cpu-quota"}, true, "CPU time in microseconds per period (-1 unlimited)"},
                            {{"cpu-period"}, true, "CFS period in microseconds"},
                            {{"cpu-rt-period"}, true, "realtime period in microseconds"},
                            {{"cpu-rt-runtime"}, true, "realtime runtime in microseconds"},
                            {{"cpuset-cpus"}, true, "CPUs to run on (0-3, 0,1)"},
                            {{"cpuset-mems"}, true, "memory nodes to use (0-3, 0,1)"},
                            {{"pids-limit"}, true, "maximum number of tasks (-1 unlimited)"},
                            {{"blkio-weight"}, true, "block IO weight (10-1000)"},
                            {{"kernel-memory"}, true, "not supported: kernel memory limits"},
                            {{"kernel-memory-tcp"}, true, "not supported: kernel TCP memory limits"},
                            {{"l3-cache-schema"}, true, "not supported: Intel RDT L3 cache schema"},
                            {{"mem-bw-schema"}, true, "not supported: Intel RDT memory bandwidth schema"}},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               auto r = resources_from_flags(f);
                               if (!r) return report_error(r.error());
                               if (auto u = runtime::update_container(g, f.positional[0], *r); !u)
                                   return report_error(u.error());
                               return 0;
                           },
                           1,
                           1};
    return c;
}

}  // namespace berth::cli
