#include "cri/stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/unique_fd.hpp"

namespace berth::cri {
namespace {

// v1 reports "no limit" as a page-rounded LONG_MAX; anything this large is no limit.
constexpr uint64_t kUnlimited = uint64_t{1} << 62;

int64_t now_ns() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

uint64_t stat_of(const std::map<std::string, uint64_t>& raw, const char* key) {
    auto it = raw.find(key);
    return it == raw.end() ? 0 : it->second;
}

struct CgroupDirs {
    std::map<std::string, std::string> paths;  // controller -> directory, "unified" for v2, existing ones only
    bool memory_v1 = false;
};

// The directories of the cgroup `path` in every hierarchy of `layout` that has it.
CgroupDirs cgroup_dirs(const cgroups::CgroupLayout& layout, const std::string& path) {
    CgroupDirs d;
    for (const auto& [controller, mount] : layout.v1) {
        std::string dir = clean_path(path_join(mount, path));
        if (path_exists(dir)) d.paths[controller] = dir;
    }
    if (!layout.unified.empty()) {
        std::string dir = clean_path(path_join(layout.unified, path));
        if (path_exists(dir)) d.paths["unified"] = dir;
    }
    d.memory_v1 = d.paths.contains("memory");
    return d;
}

// Cpu and memory (and swap when `swap` is given) of the cgroup `path`; false when the cgroup does not exist.
Result<bool> fill_cgroup_usage(const cgroups::CgroupLayout& layout, const std::string& path, int64_t ts,
                               v1::CpuUsage* cpu, v1::MemoryUsage* memory, v1::SwapUsage* swap,
                               v1::ProcessUsage* process) {
    CgroupDirs dirs = cgroup_dirs(layout, path);
    if (dirs.paths.empty()) return false;
    cgroups::CgroupManager mgr = cgroups::CgroupManager::load(dirs.paths);
    Result<cgroups::Stats> stats = mgr.stats();
    if (!stats) return std::unexpected(stats.error().wrap(fmt::format("stats of cgroup {}", path)));
    const cgroups::Stats& s = *stats;
    if (s.cpu) {
        cpu->set_timestamp(ts);
        cpu->mutable_usage_core_nano_seconds()->set_value(s.cpu->total_ns);
    }
    if (s.memory) {
        const auto& m = *s.memory;
        const bool v1 = dirs.memory_v1;
        uint64_t inactive_file = stat_of(m.raw, v1 ? "total_inactive_file" : "inactive_file");
        uint64_t working_set = m.usage > inactive_file ? m.usage - inactive_file : 0;
        memory->set_timestamp(ts);
        memory->mutable_usage_bytes()->set_value(m.usage);
        memory->mutable_working_set_bytes()->set_value(working_set);
        memory->mutable_rss_bytes()->set_value(stat_of(m.raw, v1 ? "total_rss" : "anon"));
        memory->mutable_page_faults()->set_value(stat_of(m.raw, v1 ? "total_pgfault" : "pgfault"));
        memory->mutable_major_page_faults()->set_value(stat_of(m.raw, v1 ? "total_pgmajfault" : "pgmajfault"));
        // v2 reads "max" as 0; v1 writes its huge "unlimited" number.
        bool limited = m.limit > 0 && m.limit < kUnlimited;
        if (limited) memory->mutable_available_bytes()->set_value(m.limit > working_set ? m.limit - working_set : 0);
        if (swap) {
            // v1's memsw counters are memory + swap together; v2 counts swap alone.
            uint64_t swap_used = v1 ? (m.swap_usage > m.usage ? m.swap_usage - m.usage : 0) : m.swap_usage;
            uint64_t swap_limit = 0;
            if (v1) {
                if (limited && m.swap_limit > m.limit && m.swap_limit < kUnlimited) swap_limit = m.swap_limit - m.limit;
            } else if (m.swap_limit > 0 && m.swap_limit < kUnlimited) {
                swap_limit = m.swap_limit;
            }
            bool have_swap_files = v1 ? path_exists(path_join(dirs.paths.at("memory"), "memory.memsw.usage_in_bytes"))
                                      : path_exists(path_join(dirs.paths.at("unified"), "memory.swap.current"));
            if (have_swap_files) {
                swap->set_timestamp(ts);
                swap->mutable_swap_usage_bytes()->set_value(swap_used);
                if (swap_limit > 0)
                    swap->mutable_swap_available_bytes()->set_value(swap_limit > swap_used ? swap_limit - swap_used : 0);
            }
        }
    }
    if (process && s.pids) {
        process->set_timestamp(ts);
        process->mutable_process_count()->set_value(s.pids->current);
    }
    return true;
}

Result<void> walk(int dfd, const std::string& path, dev_t dev, std::set<std::pair<dev_t, ino_t>>& links,
                  DiskUsage& u) {
    DIR* d = ::fdopendir(dfd);
    if (!d) {
        ::close(dfd);
        return fail_sys("read directory {}", path);
    }
    struct Closer {
        DIR* d;
        ~Closer() { ::closedir(d); }
    } closer{d};
    while (true) {
        errno = 0;
        struct dirent* de = ::readdir(d);
        if (!de) {
            if (errno != 0) return fail_sys("read directory {}", path);
            return {};
        }
        std::string_view name = de->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;  // removed while we walk
            return fail_sys("stat {}/{}", path, name);
        }
        if (st.st_dev != dev) continue;  // a mount below the tree: another file system
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !links.insert({st.st_dev, st.st_ino}).second) continue;
        u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
        u.inodes += 1;
        if (S_ISDIR(st.st_mode)) {
            int child = ::openat(::dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child < 0) {
                if (errno == ENOENT) continue;
                return fail_sys("open directory {}/{}", path, name);
            }
            BERTH_TRY(walk(child, path_join(path, name), dev, links, u));
        }
    }
}

void fill_attributes(const ContainerStatsSource& src, v1::ContainerAttributes* a) {
    a->set_id(src.id);
    *a->mutable_metadata() = src.metadata;
    a->mutable_labels()->insert(src.labels.begin(), src.labels.end());
    a->mutable_annotations()->insert(src.annotations.begin(), src.annotations.end());
}

uint64_t to_u64(std::string_view s) {
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return 0;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
}

}  // namespace

Result<DiskUsage> disk_usage(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_sys("open directory {}", dir);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        auto e = fail_sys("stat {}", dir);
        ::close(fd);
        return e;
    }
    DiskUsage u{static_cast<uint64_t>(st.st_blocks) * 512, 1};
    std::set<std::pair<dev_t, ino_t>> links;
    BERTH_TRY(walk(fd, dir, st.st_dev, links, u));  // walk owns fd
    return u;
}

void parse_net_dev(std::string_view text, v1::NetworkUsage* out) {
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;  // the two header lines have '|' but no ':'
        std::string name = line.substr(0, colon);
        name.erase(0, name.find_first_not_of(' '));
        if (name.empty() || name == "lo") continue;
        std::istringstream fields(line.substr(colon + 1));
        std::vector<std::string> f;
        for (std::string w; fields >> w;) f.push_back(w);
        if (f.size() < 16) continue;
        // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs ...
        v1::NetworkInterfaceUsage iface;
        iface.set_name(name);
        iface.mutable_rx_bytes()->set_value(to_u64(f[0]));
        iface.mutable_rx_errors()->set_value(to_u64(f[2]));
        iface.mutable_tx_bytes()->set_value(to_u64(f[8]));
        iface.mutable_tx_errors()->set_value(to_u64(f[10]));
        if (name == "eth0")
            *out->mutable_default_interface() = std::move(iface);
        else
            *out->add_interfaces() = std::move(iface);
    }
}

Result<void> read_network_usage(const std::string& netns_path, v1::NetworkUsage* out) {
    BERTH_ASSIGN(UniqueFd ns, open_fd(netns_path, O_RDONLY | O_CLOEXEC));
    // setns() changes only the calling thread's network namespace; that thread ends right after, so no other work
    // of the daemon ever runs in the pod's namespace. /proc/thread-self/net is the thread's namespace view
    // (/proc/self/net would be the thread group leader's).
    Result<std::string> text = fail("not read");
    std::thread t([&] {
        if (::setns(ns.get(), CLONE_NEWNET) != 0) {
            text = fail_sys("join network namespace {}", netns_path);
            return;
        }
        text = read_file("/proc/thread-self/net/dev");
    });
    t.join();
    if (!text) return std::unexpected(std::move(text).error().wrap(fmt::format("network stats of {}", netns_path)));
    out->set_timestamp(now_ns());
    parse_net_dev(*text, out);
    return {};
}

Result<void> fill_container_stats(const ContainerStatsSource& src, v1::ContainerStats* out) {
    BERTH_ASSIGN(cgroups::CgroupLayout layout, cgroups::detect_layout());
    return fill_container_stats(src, layout, out);
}

Result<void> fill_container_stats(const ContainerStatsSource& src, const cgroups::CgroupLayout& layout,
                                  v1::ContainerStats* out) {
    fill_attributes(src, out->mutable_attributes());
    const int64_t ts = now_ns();
    BERTH_ASSIGN(std::string path, cgroups::resolve_cgroup_path(src.cgroups_path, src.id));
    v1::CpuUsage cpu;
    v1::MemoryUsage memory;
    v1::SwapUsage swap;
    BERTH_ASSIGN(bool present, fill_cgroup_usage(layout, path, ts, &cpu, &memory, &swap, nullptr));
    if (present) {
        if (cpu.has_usage_core_nano_seconds()) *out->mutable_cpu() = std::move(cpu);
        if (memory.has_usage_bytes()) *out->mutable_memory() = std::move(memory);
        if (swap.has_swap_usage_bytes()) *out->mutable_swap() = std::move(swap);
    }
    if (!src.writable_layer_dir.empty()) {
        auto usage = disk_usage(src.writable_layer_dir);
        // A layer already gone (the container is being removed) has no usage to report.
        if (!usage && usage.error().code() == ENOENT) return {};
        if (!usage) return std::unexpected(std::move(usage).error().wrap(fmt::format("container {}", src.id)));
        auto* fs = out->mutable_writable_layer();
        fs->set_timestamp(ts);
        fs->mutable_fs_id()->set_mountpoint(src.image_fs_mountpoint);
        fs->mutable_used_bytes()->set_value(usage->bytes);
        fs->mutable_inodes_used()->set_value(usage->inodes);
    }
    return {};
}

Result<void> fill_pod_stats(const PodStatsSource& src, v1::PodSandboxStats* out) {
    BERTH_ASSIGN(cgroups::CgroupLayout layout, cgroups::detect_layout());
    return fill_pod_stats(src, layout, out);
}

Result<void> fill_pod_stats(const PodStatsSource& src, const cgroups::CgroupLayout& layout, v1::PodSandboxStats* out) {
    auto* a = out->mutable_attributes();
    a->set_id(src.id);
    *a->mutable_metadata() = src.metadata;
    a->mutable_labels()->insert(src.labels.begin(), src.labels.end());
    a->mutable_annotations()->insert(src.annotations.begin(), src.annotations.end());
    auto* lx = out->mutable_linux();
    const int64_t ts = now_ns();
    if (!src.cgroup_path.empty()) {
        BERTH_ASSIGN(std::string path, cgroups::resolve_cgroup_path(src.cgroup_path, src.id));
        v1::CpuUsage cpu;
        v1::MemoryUsage memory;
        v1::ProcessUsage process;
        BERTH_ASSIGN(bool present, fill_cgroup_usage(layout, path, ts, &cpu, &memory, nullptr, &process));
        if (present) {
            if (cpu.has_usage_core_nano_seconds()) *lx->mutable_cpu() = std::move(cpu);
            if (memory.has_usage_bytes()) *lx->mutable_memory() = std::move(memory);
            if (process.has_process_count()) *lx->mutable_process() = std::move(process);
        }
    }
    if (!src.netns_path.empty()) BERTH_TRY(read_network_usage(src.netns_path, lx->mutable_network()));
    for (const auto& c : src.containers) BERTH_TRY(fill_container_stats(c, layout, lx->add_containers()));
    return {};
}

}  // namespace berth::cri
