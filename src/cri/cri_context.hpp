// What berthd's pod and container managers share: the configuration, the record store, the image store, per-object
// locks, the event bus, and where things live on disk.
//
// On-disk layout (ids are 64 hex digits):
//   <state_dir>/pods/<pod>/            ns/{net,ipc,uts} pins, shm/ (tmpfs), hostname, hosts, resolv.conf
//   <state_dir>/containers/<ctr>/      bundle/config.json, console.log (when kubelet names no log)
//   <state_dir>/m/<ctr>/               berth-monitor's dir (exit, ctl, console.sock): short, since unix socket
//                                      paths are limited to 107 bytes
//   <state_dir>/runtimes/<handler>/    the --root of the handler's runtime
//   <state_dir>/x/<16 hex>/            a streaming exec session's pid file and console socket (stream_targets)
//   <root_dir>/containers/<ctr>/       rootfs (overlay mount point), upper, work, l/ (lowerdir links)
//   <root_dir>/cri.db                  the records (store/cri_records.hpp)
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/fs.hpp"
#include "cri/config.hpp"
#include "cri/events.hpp"
#include "store/cri_records.hpp"
#include "store/images.hpp"

namespace berth::cri {

// One mutex per pod or container id, serializing the operations on it. Lock order: a pod's before any of its
// containers'.
class LockTable {
public:
    struct Guard {
        std::shared_ptr<std::mutex> m;
        std::unique_lock<std::mutex> lock;
    };
    Guard lock(const std::string& key) {
        std::shared_ptr<std::mutex> m;
        {
            std::lock_guard g(mu_);
            auto& slot = locks_[key];
            if (!slot) slot = std::make_shared<std::mutex>();
            m = slot;
        }
        Guard g{m, std::unique_lock<std::mutex>(*m)};
        return g;
    }
    void forget(const std::string& key) {
        std::lock_guard g(mu_);
        locks_.erase(key);
    }

private:
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<std::mutex>> locks_;
};

struct CriMetrics;

struct CriContext {
    DaemonConfig config;
    CriMetrics* metrics = nullptr;  // counters updated where things happen; null in tests without a registry
    std::unique_ptr<store::CriRecords> records;
    std::mutex images_mu;  // store::Images holds one SQLite connection
    std::unique_ptr<store::Images> images;
    LockTable locks;
    EventBus events;

    std::string pod_dir(const std::string& id) const { return path_join(config.state_dir, "pods/" + id); }
    std::string container_state_dir(const std::string& id) const {
        return path_join(config.state_dir, "containers/" + id);
    }
    std::string monitor_dir(const std::string& id) const { return path_join(config.state_dir, "m/" + id); }
    std::string bundle_dir(const std::string& id) const { return path_join(container_state_dir(id), "bundle"); }
    std::string container_root_dir(const std::string& id) const {
        return path_join(config.root_dir, "containers/" + id);
    }
    std::string rootfs_dir(const std::string& id) const { return path_join(container_root_dir(id), "rootfs"); }

    // berth-monitor: the configured path, else beside the berthd binary.
    std::string monitor_binary() const;

    // The handler named `name` ("" is the default handler), with its root filled in. EINVAL naming
    // runtime_handler when no such handler is configured.
    [[nodiscard]] Result<RuntimeHandler> handler(const std::string& name) const;
};

// An error whose errno is chosen to pick the gRPC status (see to_status), without strerror text appended.
template <typename... Args>
[[nodiscard]] std::unexpected<Error> cri_error(int code, fmt::format_string<Args...> f, Args&&... args) {
    return std::unexpected(Error(code, fmt::format(f, std::forward<Args>(args)...)));
}

// A new random id: 64 hex digits.
std::string new_id();
// Now, unix nanoseconds.
int64_t now_ns();

}  // namespace berth::cri
