// Spec builder: the OCI runtime config (config.json) of a CRI container, from what kubelet asks for
// (ContainerConfig + the pod's PodSandboxConfig), what the image says (its config: entrypoint, cmd, env, working
// dir, user, stop signal, volumes) and what the pod has (pinned namespaces, cgroup parent, resolv.conf, hosts,
// hostname, /dev/shm). A pure translation: it reads only the image rootfs' /etc/passwd and /etc/group (to resolve
// user and group names) and the seccomp profile files Localhost names; it makes nothing.
//
// The ecosystem's merge rules: command = CRI command if given, else the image's entrypoint; args = CRI args if
// given, else the image's cmd when the CRI command is not given; env = image env, then CRI envs (a CRI env wins
// over the image's of the same name); working dir = CRI, else image, else "/"; user = security context
// run_as_user / run_as_username, else the image's "user" ("name", "uid", "uid:gid", "name:group"), names
// resolved in the rootfs; supplemental groups = the user's groups from /etc/group plus the requested ones.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "cri/api.hpp"

namespace berth::cri {

// What the pod provides to each of its containers.
struct PodContext {
    std::string pod_id;
    // Namespace files the container joins; empty: the container gets a new one of that type (or the host's, when
    // the pod's namespace option is NODE: then the namespace is left out of the spec).
    std::string netns_path;
    std::string ipcns_path;
    std::string utsns_path;
    std::string pidns_path;   // the pod's shared PID namespace (the infra process's), empty unless POD mode
    std::string cgroup_parent;  // the pod's cgroup (kubelet's cgroup_parent, or the daemon's default + pod id)
    std::string hostname;
    std::string resolv_conf_path;  // bind-mounted at /etc/resolv.conf, empty: none
    std::string hosts_path;        // bind-mounted at /etc/hosts
    std::string hostname_path;     // bind-mounted at /etc/hostname
    std::string shm_path;          // bind-mounted at /dev/shm (the pod's), empty: a private tmpfs
};

// What the image provides.
struct ImageContext {
    std::string image_ref;      // the image as the container was created from (name or id)
    nlohmann::json config;      // the image config blob (its "config" object holds Entrypoint, Cmd, ...)
    std::string rootfs_path;    // the container's mounted rootfs (names are resolved in its /etc/passwd, /etc/group)
};

// Host facts and daemon policy that change what is written.
struct HostContext {
    bool clamp_oom_score_adj = false;  // no CAP_SYS_RESOURCE: a negative oom_score_adj becomes daemon_oom_score
    int daemon_oom_score = 0;
    bool hugetlb_available = true;     // false: hugepage limits are dropped (logged), never a failed container
    std::string seccomp_profile_root;  // Localhost profiles are resolved under it when relative
    bool apparmor_enabled = false;
    // The loaded AppArmor profile RuntimeDefault means; empty: RuntimeDefault fails (berth ships no profile).
    std::string apparmor_default_profile;
    std::vector<std::string> hugepage_sizes;  // "2MB", "1GB" as the kernel offers them
};

// The OCI config of container `container_id` whose rootfs is `rootfs_path` (the spec's root.path). Errors name
// the CRI field (`config.linux.security_context.run_as_username: user "www" not found in /etc/passwd`).
[[nodiscard]] Result<nlohmann::json> build_container_spec(const std::string& container_id,
                                                          const v1::ContainerConfig& config,
                                                          const v1::PodSandboxConfig& pod_config,
                                                          const PodContext& pod, const ImageContext& image,
                                                          const HostContext& host);

// The stop signal of a container: the image config's StopSignal ("SIGQUIT", "3", "QUIT"), else SIGTERM.
[[nodiscard]] Result<int> image_stop_signal(const nlohmann::json& image_config);

// berth's RuntimeDefault seccomp profile, as an OCI linux.seccomp object (an allow list; ENOSYS-free: unknown
// syscalls fail with EPERM).
const nlohmann::json& default_seccomp_profile();

}  // namespace berth::cri
