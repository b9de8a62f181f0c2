// What berth remembers of a container between commands: <root>/<id>/state.json, plus <root>/<id>/exec.fifo while
// the container is created and not yet started.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::runtime {

enum class Status { creating, created, running, paused, stopped };
std::string_view to_string(Status s);

struct ContainerState {
    std::string id;
    std::string bundle;          // absolute
    std::string rootfs;          // absolute
    pid_t pid = 0;               // the init process, in the host's pid namespace
    uint64_t pid_start_time = 0; // guards against pid reuse
    std::string created;         // RFC 3339, UTC
    uint32_t owner_uid = 0;
    std::map<std::string, std::string> annotations;
    spec::Hooks hooks;           // kept for start (poststart) and delete (poststop)
    std::map<std::string, std::string> cgroup_paths;  // controller -> directory, when cgroups are managed
    std::map<std::string, std::string> namespace_paths; // type -> /proc/<pid>/ns/<name>, for exec
    bool new_pid_namespace = false;
};

// Directory of one container's state under the runtime's --root.
std::string container_dir(const std::string& root, const std::string& id);
// berth's own state beside the containers: compiled seccomp programs (see sys::compile_seccomp_cached). The name
// holds '@', which no container id may, so it never collides with a container's directory.
std::string seccomp_cache_dir(const std::string& root);
std::string exec_fifo_path(const std::string& root, const std::string& id);

// Container ids are file names: [A-Za-z0-9_.+-]+, not "." or "..", at most 1024 bytes.
[[nodiscard]] Result<void> validate_container_id(const std::string& id);

[[nodiscard]] Result<void> save_state(const std::string& root, const ContainerState& st);
// A missing container is an error with code ENOENT: `container "x" does not exist`.
[[nodiscard]] Result<ContainerState> load_state(const std::string& root, const std::string& id);
// Ids of every container under `root`, sorted.
[[nodiscard]] Result<std::vector<std::string>> list_container_ids(const std::string& root);

// Status from what is really there: a dead (or reused) pid is stopped, a frozen cgroup means paused, a remaining
// exec fifo means created, else running.
Status current_status(const std::string& root, const ContainerState& st);

// The runtime-spec state JSON (ociVersion, id, status, pid, bundle, annotations) plus runc's extra keys
// (rootfs, created, owner) that containerd's and podman's runc clients read.
std::string state_json(const ContainerState& st, std::string_view status);

}  // namespace berth::runtime
