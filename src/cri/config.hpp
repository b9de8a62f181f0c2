// berthd's configuration: /etc/berth/berth.toml (every key optional, with the defaults below), then flags on top.
// docs/configuration.md documents every key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "image/registry_config.hpp"

namespace berth::cri {

// One RuntimeClass handler: how containers of pods with this runtime_handler are run.
struct RuntimeHandler {
    std::string name;
    // An external OCI runtime binary (runc, crun, runsc), run by the monitor as conmon runs one. Empty: libberth
    // inside the monitor.
    std::string path;
    // The runtime's --root (state dir); empty: <state_dir>/runtimes/<name>.
    std::string root;
    // Global options put before every subcommand of the runtime (runsc's --platform=ptrace, --network=none);
    // external runtimes only.
    std::vector<std::string> runtime_args;
    // A sandbox runtime (gVisor's runsc) that groups a pod's containers by the CRI annotations: berth has no infra
    // container, so each container is marked as a sandbox of its own (docs/runtimes.md).
    bool sandboxed = false;
};

// How to treat knobs the host cannot honour (no CAP_SYS_RESOURCE for a negative oom_score_adj, no hugetlb).
enum class OomClamp { automatic, always, never };

struct DaemonConfig {
    std::string socket_path = "/run/berth/berth.sock";
    std::string root_dir = "/var/lib/berth";         // images (blobs, snapshots, metadata.db), container records
    std::string state_dir = "/run/berth";            // runtime state: monitors, container bundles, pinned namespaces
    std::string log_level = "info";                  // error, warn, info, debug
    std::string log_format = "text";                 // text or json (one JSON object per line)
    std::string metrics_address;                     // host:port of the Prometheus endpoint (IP literal); empty: off
    std::string monitor_path;                        // berth-monitor; empty: beside the berthd binary
    std::string default_handler = "berth";           // the handler of pods that name none ("" runtime_handler)
    std::map<std::string, RuntimeHandler> handlers;  // always holds "berth" (libberth)
    std::string cgroup_driver = "cgroupfs";          // what RuntimeConfig reports; "systemd" is not supported yet
    std::string cgroup_parent = "/berth";            // parent of pod cgroups when kubelet names none
    OomClamp oom_clamp = OomClamp::automatic;        // automatic: clamp when the daemon itself cannot lower its score
    image::RegistryConfig registries;
    std::vector<std::string> cni_bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
    std::string cni_conf_dir = "/etc/cni/net.d";
    bool cni_enabled = true;                        // false: pods get a network namespace with loopback only, no CNI
    int cni_plugin_timeout_s = 60;                  // one plugin execution; killed after this
    std::string streaming_address = "127.0.0.1:0";  // host:port of the exec/attach/port-forward server
    // PEM certificate and key of the streaming server: both set = https URLs, both empty = http.
    std::string streaming_tls_cert;
    std::string streaming_tls_key;
    // Seconds an Exec/Attach/PortForward URL stays valid unused.
    int64_t streaming_token_lifetime = 60;
    // Seconds a streaming connection may go without a byte either way before it is closed (kubelet's and
    // containerd's default: 4 hours); 0: never.
    int64_t streaming_idle_timeout = 14400;
    std::string pod_infra_command;  // reserved for pods sharing their PID namespace
};

// Reads the TOML file at `path` over the defaults. A missing file is the defaults when `must_exist` is false.
// Errors name the file, the key and what is wrong (`berth.toml: runtimes.crun.path: not an absolute path`).
// The returned configuration always has the "berth" handler, and has passed validate_config().
[[nodiscard]] Result<DaemonConfig> load_config(const std::string& path, bool must_exist);

// Checks what flags may have changed after load_config (paths absolute, known log level, cgroup driver, a default
// handler that exists, a host:port streaming address); `source` names where the values came from in errors.
[[nodiscard]] Result<void> validate_config(const DaemonConfig& config, const std::string& source);

// The configuration as JSON for Status(verbose) and people: every key as berth.toml names it. Registry secrets
// (password, auth, tokens) are never shown, only whether a host has credentials.
[[nodiscard]] std::string config_json(const DaemonConfig& config);

}  // namespace berth::cri
