#include "cri/cri_context.hpp"

#include <sys/random.h>
#include <time.h>

namespace berth::cri {

std::string new_id() {
    unsigned char b[32];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
        if (n > 0) got += static_cast<size_t>(n);
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string id;
    for (unsigned char c : b) {
        id.push_back(hex[c >> 4]);
        id.push_back(hex[c & 15]);
    }
    return id;
}

int64_t now_ns() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Result<RuntimeHandler> CriContext::handler(const std::string& name) const {
    std::string n = name.empty() ? config.default_handler : name;
    RuntimeHandler h;
    if (auto it = config.handlers.find(n); it != config.handlers.end()) {
        h = it->second;
    } else if (n != "berth") {
        return cri_error(EINVAL, "runtime_handler: no runtime handler \"{}\" is configured", n);
    }
    h.name = n;
    if (h.root.empty()) h.root = path_join(config.state_dir, "runtimes/" + n);
    return h;
}

}  // namespace berth::cri
