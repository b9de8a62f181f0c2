#include "cri/events.hpp"

#include <chrono>

namespace berth::cri {

bool EventBus::Subscription::next(v1::ContainerEventResponse& out, int timeout_ms) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty(); })) return false;
    out = std::move(queue_.front());
    queue_.pop_front();
    return true;
}

std::shared_ptr<EventBus::Subscription> EventBus::subscribe() {
    auto s = std::make_shared<Subscription>();
    std::lock_guard lock(mu_);
    subs_.insert(s);
    return s;
}

void EventBus::unsubscribe(const std::shared_ptr<Subscription>& s) {
    std::lock_guard lock(mu_);
    subs_.erase(s);
}

void EventBus::publish(const v1::ContainerEventResponse& ev) {
    std::lock_guard lock(mu_);
    for (const auto& s : subs_) {
        {
            std::lock_guard sl(s->mu_);
            if (s->queue_.size() >= kMaxQueued) s->queue_.pop_front();
            s->queue_.push_back(ev);
        }
        s->cv_.notify_one();
    }
}

}  // namespace berth::cri
