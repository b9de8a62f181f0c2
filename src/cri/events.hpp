// The container event stream of GetContainerEvents: every subscriber gets every event published after it
// subscribed, in order. A subscriber that falls more than kMaxQueued events behind loses the oldest ones.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>

#include "cri/api.hpp"

namespace berth::cri {

class EventBus {
public:
    static constexpr size_t kMaxQueued = 4096;

    class Subscription {
    public:
        // The next event, or false after `timeout_ms` without one (the caller checks for cancellation).
        bool next(v1::ContainerEventResponse& out, int timeout_ms);

    private:
        friend class EventBus;
        std::mutex mu_;
        std::condition_variable cv_;
        std::deque<v1::ContainerEventResponse> queue_;
    };

    std::shared_ptr<Subscription> subscribe();
    void unsubscribe(const std::shared_ptr<Subscription>& s);
    void publish(const v1::ContainerEventResponse& ev);

private:
    std::mutex mu_;
    std::set<std::shared_ptr<Subscription>> subs_;
};

}  // namespace berth::cri
