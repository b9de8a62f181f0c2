#include "cri/exit_watcher.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>

#include "common/log.hpp"
#include "monitor/exit_record.hpp"

namespace berth::cri {

ExitWatcher::~ExitWatcher() {
    if (thread_.joinable()) {
        uint64_t one = 1;
        (void)!::write(stop_.get(), &one, sizeof one);
        thread_.join();
    }
}

Result<void> ExitWatcher::start() {
    inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!inotify_) return fail_sys("inotify_init1");
    stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_) return fail_sys("eventfd");
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return fail_sys("epoll_create1");
    for (int fd : {inotify_.get(), stop_.get()}) {
        struct epoll_event ev {};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return fail_sys("epoll_ctl");
    }
    thread_ = std::thread([this] { loop(); });
    return {};
}

Result<void> ExitWatcher::watch(const std::string& id, const std::string& dir) {
    std::lock_guard lock(mu_);
    int wd = ::inotify_add_watch(inotify_.get(), dir.c_str(), IN_MOVED_TO | IN_ONLYDIR);
    if (wd < 0) return fail_sys("watch monitor dir {} of container {}", dir, id);
    by_wd_[wd] = id;
    by_id_[id] = wd;
    return {};
}

void ExitWatcher::unwatch(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    ::inotify_rm_watch(inotify_.get(), it->second);
    by_wd_.erase(it->second);
    by_id_.erase(it);
}

void ExitWatcher::loop() {
    alignas(struct inotify_event) char buf[16384];
    for (;;) {
        struct epoll_event evs[2];
        int n = ::epoll_wait(epoll_.get(), evs, 2, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log::error("exit watcher: epoll_wait: {}", std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.fd == stop_.get()) return;
            for (;;) {
                ssize_t len = ::read(inotify_.get(), buf, sizeof buf);
                if (len <= 0) break;
                for (char* p = buf; p < buf + len;) {
                    auto* ev = reinterpret_cast<struct inotify_event*>(p);
                    p += sizeof(struct inotify_event) + ev->len;
                    std::string id;
                    {
                        std::lock_guard lock(mu_);
                        auto it = by_wd_.find(ev->wd);
                        if (it == by_wd_.end()) continue;
                        id = it->second;
                        if (ev->mask & IN_IGNORED) {
                            by_id_.erase(id);
                            by_wd_.erase(it);
                            continue;
                        }
                    }
                    if ((ev->mask & IN_MOVED_TO) && ev->len > 0 && std::strcmp(ev->name, monitor::kExitFileName) == 0)
                        cb_(id);
                }
            }
        }
    }
}

}  // namespace berth::cri
