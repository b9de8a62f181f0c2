// One thread that learns of container exits without polling: an inotify watch (IN_MOVED_TO) on each container's
// monitor dir, where berth-monitor renames its exit record into place, all in one epoll loop with an eventfd to
// stop it. The callback runs on the watcher thread, once per "exit" file appearing.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::cri {

class ExitWatcher {
public:
    using Callback = std::function<void(const std::string& container_id)>;

    explicit ExitWatcher(Callback cb) : cb_(std::move(cb)) {}
    ~ExitWatcher();
    ExitWatcher(const ExitWatcher&) = delete;
    ExitWatcher& operator=(const ExitWatcher&) = delete;

    [[nodiscard]] Result<void> start();
    // Watches `dir` for `id`'s exit record. The caller checks for an exit record written before the watch existed.
    [[nodiscard]] Result<void> watch(const std::string& id, const std::string& dir);
    void unwatch(const std::string& id);

private:
    void loop();

    Callback cb_;
    UniqueFd inotify_, stop_, epoll_;
    std::mutex mu_;
    std::map<int, std::string> by_wd_;  // guarded by mu_
    std::map<std::string, int> by_id_;  // guarded by mu_
    std::thread thread_;
};

}  // namespace berth::cri
