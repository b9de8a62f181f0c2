#include "image_print.hpp"

#include <cstdio>
#include <ctime>

namespace berth::ctl {

namespace {
nlohmann::json digests(const std::vector<image::Digest>& ds) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& d : ds) a.push_back(d.string());
    return a;
}
}  // namespace

nlohmann::json image_json(const store::ImageRecord& rec, bool full) {
    nlohmann::json j = {{"id", rec.id.string()},
                        {"names", rec.names},
                        {"manifestDigest", rec.manifest_digest.string()},
                        {"manifestMediaType", rec.manifest_media_type},
                        {"size", rec.size},
                        {"created", format_time(rec.created, true)}};
    if (full) {
        j["chainIds"] = digests(rec.chain_ids);
        j["blobs"] = digests(rec.blobs);
        nlohmann::json config = nlohmann::json::parse(rec.config_json, nullptr, /*allow_exceptions=*/false);
        j["config"] = config.is_discarded() ? nlohmann::json(rec.config_json) : config;
    }
    return j;
}

nlohmann::json gc_json(const store::GcStats& stats) {
    return {{"blobsRemoved", digests(stats.blobs_removed)},
            {"snapshotsRemoved", digests(stats.snapshots_removed)},
            {"tempsRemoved", stats.temps_removed}};
}

std::string human_size(uint64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(kUnits)) {
        v /= 1024;
        ++u;
    }
    if (u == 0) return fmt::format("{} B", bytes);
    return fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string format_time(int64_t unix_seconds, bool rfc3339) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, rfc3339 ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string short_id(const image::Digest& d) {
    return d.hex().substr(0, 12);
}

void print_json(const nlohmann::json& j) {
    std::printf("%s\n", j.dump(2).c_str());
}

}  // namespace berth::ctl
