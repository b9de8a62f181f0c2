#include "cri/handler_features.hpp"

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cri/subprocess.hpp"

namespace berth::cri {

HandlerFeatures features_of(const RuntimeHandler& h) {
    if (h.path.empty()) return {.recursive_read_only_mounts = true, .user_namespaces = false};
    static std::mutex mu;
    static std::map<std::string, HandlerFeatures> known;
    std::lock_guard lock(mu);
    if (auto it = known.find(h.path); it != known.end()) return it->second;
    HandlerFeatures f;
    // runtime-spec features.md: {"mountOptions": ["rro", ...], ...}
    if (auto r = run_captured({h.path, "features"}, "", 5000, 1 << 20); r && r->exit_code == 0) {
        auto j = nlohmann::json::parse(r->out, nullptr, false);
        if (j.is_object() && j.contains("mountOptions") && j["mountOptions"].is_array())
            for (const auto& o : j["mountOptions"])
                if (o.is_string() && o.get<std::string>() == "rro") f.recursive_read_only_mounts = true;
    }
    known[h.path] = f;
    return f;
}

}  // namespace berth::cri
