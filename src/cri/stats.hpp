// Stats: CRI ContainerStats / PodSandboxStats read from cgroups (v1, v2 or hybrid, through src/cgroups) and from a
// container's writable layer. No caching: each call reads the files once.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "cri/api.hpp"

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

[[nodiscard]] Result<void> fill_container_stats(const ContainerStatsSource& src, v1::ContainerStats* out);
[[nodiscard]] Result<void> fill_pod_stats(const PodStatsSource& src, v1::PodSandboxStats* out);

}  // namespace berth::cri
