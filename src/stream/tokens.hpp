// Single-use tokens of the streaming server: an rpc (Exec, Attach, PortForward) registers what it validated and
// gets a token for its URL; the first request with that token takes it. A token not taken within its lifetime
// expires.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "cri/stream_targets.hpp"

namespace berth::stream {

struct PortForwardTarget {
    std::string pod_id;
    std::vector<uint16_t> ports;  // the ports the rpc named; empty: any port
};

// What a token stands for.
using StreamRequest = std::variant<cri::ExecOptions, cri::AttachOptions, PortForwardTarget>;

class TokenStore {
public:
    using Clock = std::chrono::steady_clock;
    explicit TokenStore(Clock::duration lifetime) : lifetime_(lifetime) {}

    // A new token: 32 random bytes (getrandom), base64url without padding (43 characters).
    [[nodiscard]] Result<std::string> add(StreamRequest request);
    // The request of a live token, which is gone afterwards; nullopt for unknown, used or expired tokens.
    std::optional<StreamRequest> take(const std::string& token);
    size_t size() const;

    // For tests: the clock the store reads (default Clock::now).
    void set_now_for_test(std::optional<Clock::time_point> now) {
        std::lock_guard lock(mu_);
        fixed_now_ = now;
    }

private:
    Clock::time_point now() const { return fixed_now_ ? *fixed_now_ : Clock::now(); }
    void sweep(Clock::time_point now);  // drops expired tokens; under mu_

    struct Entry {
        StreamRequest request;
        Clock::time_point expires;
    };
    Clock::duration lifetime_;
    mutable std::mutex mu_;
    std::map<std::string, Entry, std::less<>> tokens_;
    std::optional<Clock::time_point> fixed_now_;
};

}  // namespace berth::stream
