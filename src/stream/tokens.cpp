#include "stream/tokens.hpp"

#include <sys/random.h>

#include <array>

namespace berth::stream {

Result<std::string> TokenStore::add(StreamRequest request) {
    std::array<unsigned char, 32> raw{};
    size_t got = 0;
    while (got < raw.size()) {
        ssize_t n = ::getrandom(raw.data() + got, raw.size() - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("streaming token: getrandom");
        }
        got += static_cast<size_t>(n);
    }
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string token;
    uint32_t bits = 0;
    int nbits = 0;
    for (unsigned char c : raw) {
        bits = (bits << 8) | c;
        nbits += 8;
        while (nbits >= 6) {
            token += kAlphabet[(bits >> (nbits - 6)) & 63];
            nbits -= 6;
        }
    }
    if (nbits > 0) token += kAlphabet[(bits << (6 - nbits)) & 63];

    std::lock_guard lock(mu_);
    Clock::time_point t = now();
    sweep(t);
    tokens_[token] = Entry{std::move(request), t + lifetime_};
    return token;
}

std::optional<StreamRequest> TokenStore::take(const std::string& token) {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return std::nullopt;
    Entry e = std::move(it->second);
    tokens_.erase(it);
    if (now() >= e.expires) return std::nullopt;
    return std::move(e.request);
}

size_t TokenStore::size() const {
    std::lock_guard lock(mu_);
    return tokens_.size();
}

void TokenStore::sweep(Clock::time_point t) {
    for (auto it = tokens_.begin(); it != tokens_.end();) {
        if (t >= it->second.expires)
            it = tokens_.erase(it);
        else
            ++it;
    }
}

}  // namespace berth::stream
