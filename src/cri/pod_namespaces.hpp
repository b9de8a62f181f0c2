// The pinned namespaces of a pod sandbox: network, IPC and UTS namespaces made by a short-lived child that
// unshares them, brings loopback up in the new network namespace, sets the hostname in the new UTS namespace, and
// bind-mounts its /proc/self/ns/<type> files onto <dir>/<type>. The mounts keep the namespaces alive with no
// process in them; containers join them by path. Also the pod's /dev/shm (a tmpfs) and its files.
#pragma once

#include <string>

#include "common/error.hpp"

namespace berth::cri {

struct PinRequest {
    std::string dir;  // <pod dir>/ns, made here
    bool net = false, ipc = false, uts = false;
    std::string hostname;  // set in the new UTS namespace
};

// Pins the requested namespaces as <dir>/net, <dir>/ipc, <dir>/uts. On failure nothing stays pinned.
[[nodiscard]] Result<void> pin_namespaces(const PinRequest& r);
// Unmounts and removes every pin under `dir`, and `dir`. Missing pins or dir: success.
[[nodiscard]] Result<void> unpin_namespaces(const std::string& dir);

// A tmpfs of `size_bytes` (mode 1777, nosuid, nodev, noexec) at `path`, made when missing.
[[nodiscard]] Result<void> mount_shm(const std::string& path, unsigned long long size_bytes);
// Unmounts whatever is mounted at `path` (lazily) and removes the directory. Missing: success.
[[nodiscard]] Result<void> unmount_and_remove(const std::string& path);

}  // namespace berth::cri
