// Stats: CRI ContainerStats / PodSandboxStats read from cgroups (v1, v2 or hybrid, through src/cgroups) and from a
// container's writable layer. No caching: each call reads the files once.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "cri/api.hpp"

namespace berth::cgroups {
struct CgroupLayout;
}

namespace berth::cri {

struct ContainerStatsSource {
    std::string id;
    v1::ContainerMetadata metadata;
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> annotations;
    // The container's cgroup as its OCI config's linux.cgroupsPath names it.
    std::string cgroups_path;
    std::string writable_layer_dir;  // the overlay upperdir: its used bytes and inodes
    std::string image_fs_mountpoint; // the file system the writable layer lives on
};

struct PodStatsSource {
    std::string id;
    v1::PodSandboxMetadata metadata;
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> annotations;
    std::string cgroup_path;  // the pod's cgroup (parent of its containers')
    std::string netns_path;   // for network interface counters, empty for host network
    std::vector<ContainerStatsSource> containers;
};

// Space a directory tree takes on disk: allocated bytes (st_blocks * 512) and inodes, each inode counted once
// (hard links), the directory itself included. The walk stays on `dir`'s file system (mounts below it are not
// counted) and does not follow symlinks. Entries vanishing during the walk are skipped.
struct DiskUsage {
    uint64_t bytes = 0;
    uint64_t inodes = 0;
};
[[nodiscard]] Result<DiskUsage> disk_usage(const std::string& dir);

// Cpu: usage_core_nano_seconds (cumulative) only. usage_nano_cores is left unset: it is a rate, which needs a
// previous sample, and kubelet computes it itself from the cumulative values of its own earlier calls when the
// runtime leaves it unset (keeping samples here would give a rate over whichever window the last caller chose).
// Memory: usage, working set (usage - inactive_file), rss (v1 total_rss, v2 anon), page faults, available bytes
// (limit - working set, only under a limit); swap (v2 memory.swap.current, v1 memsw - memory usage).
// A cgroup that no longer exists (the container exited and its cgroup is gone) gives attributes and the writable
// layer only. `layout` is the host's (cgroups::detect_layout) in the overloads without one.
[[nodiscard]] Result<void> fill_container_stats(const ContainerStatsSource& src, v1::ContainerStats* out);
[[nodiscard]] Result<void> fill_container_stats(const ContainerStatsSource& src, const cgroups::CgroupLayout& layout,
                                                v1::ContainerStats* out);
// The pod's cgroup for cpu, memory and process count; its network namespace's interfaces ("eth0" is the default
// interface, loopback is left out) read from /proc/net/dev inside it; each container's stats.
[[nodiscard]] Result<void> fill_pod_stats(const PodStatsSource& src, v1::PodSandboxStats* out);
[[nodiscard]] Result<void> fill_pod_stats(const PodStatsSource& src, const cgroups::CgroupLayout& layout,
                                          v1::PodSandboxStats* out);

// Interface counters from /proc/net/dev text into `out` (no timestamp): "eth0" as the default interface, every
// other one but "lo" in interfaces.
void parse_net_dev(std::string_view text, v1::NetworkUsage* out);
// The counters of the network namespace at `netns_path` (a pinned namespace file), read in a short-lived thread
// that joins it.
[[nodiscard]] Result<void> read_network_usage(const std::string& netns_path, v1::NetworkUsage* out);

}  // namespace berth::cri
