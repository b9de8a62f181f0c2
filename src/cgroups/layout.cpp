// Host cgroup layout detection and cgroupsPath resolution.
#include <set>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "linux/mountinfo.hpp"

namespace berth::cgroups {

std::string_view to_string(Mode m) {
    switch (m) {
        case Mode::v1:
            return "v1";
        case Mode::v2:
            return "v2";
        case Mode::hybrid:
            return "hybrid";
    }
    return "?";
}

namespace {

const std::set<std::string_view>& v1_controllers() {
    static const std::set<std::string_view> known = {"cpu",     "cpuacct", "cpuset",   "memory", "devices",
                                                     "freezer", "net_cls", "net_prio", "blkio",  "perf_event",
                                                     "hugetlb", "pids",    "rdma",     "misc"};
    return known;
}

}  // namespace

Result<CgroupLayout> detect_layout(std::string_view mountinfo_text) {
    BERTH_ASSIGN(auto mounts, sys::parse_mountinfo(mountinfo_text));
    CgroupLayout layout;
    for (const auto& m : mounts) {
        if (m.fstype == "cgroup2") {
            if (layout.unified.empty()) layout.unified = m.mount_point;
            continue;
        }
        if (m.fstype != "cgroup") continue;
        std::string_view opts = m.super_options;
        while (!opts.empty()) {
            size_t comma = opts.find(',');
            std::string_view opt = opts.substr(0, comma);
            opts = comma == std::string_view::npos ? std::string_view{} : opts.substr(comma + 1);
            // The first mount of a hierarchy wins: later ones are bind mounts of (parts of) it.
            if (v1_controllers().contains(opt)) layout.v1.emplace(std::string(opt), m.mount_point);
        }
    }
    if (layout.v1.empty() && layout.unified.empty())
        return fail("no cgroup file system is mounted (mountinfo lists neither cgroup nor cgroup2)");
    layout.mode = layout.v1.empty() ? Mode::v2 : layout.unified.empty() ? Mode::v1 : Mode::hybrid;
    return layout;
}

Result<CgroupLayout> detect_layout() {
    BERTH_ASSIGN(std::string text, read_file("/proc/self/mountinfo"));
    return detect_layout(text);
}

Result<std::string> resolve_cgroup_path(std::string_view cgroups_path, std::string_view id) {
    if (cgroups_path.empty()) return path_join(kDefaultParent, id);
    std::string_view rest = cgroups_path;
    while (!rest.empty()) {
        size_t slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        if (part == "..") return fail("linux.cgroupsPath: \"{}\" must not contain \"..\"", cgroups_path);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    }
    std::string path =
        cgroups_path.front() == '/' ? clean_path(cgroups_path) : clean_path(path_join(kDefaultParent, cgroups_path));
    if (path == "/" || path == kDefaultParent)
        return fail("linux.cgroupsPath: \"{}\" names a shared cgroup, not one for the container", cgroups_path);
    return path;
}

}  // namespace berth::cgroups
