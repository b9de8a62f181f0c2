// berth-pull: berthd's pull helper (see store/pull_request.hpp). Reads one pull request as JSON on stdin, pulls
// into the image store at --root, and writes JSON lines on stdout: progress events, then {"image": ...} or
// {"error": ...}, each with "fetched_bytes" (compressed layer bytes fetched from the registry, for berthd's metrics).
// Exits 0 after a pull, 1 after a failed one, 2 on bad usage.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "store/pull_request.hpp"

namespace {

void emit(const nlohmann::json& j) {
    std::string line = j.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

// Per layer, the last count of bytes fetched (layer_bytes events are cumulative per layer); layers are fetched by
// several threads at once.
std::mutex g_fetched_mu;
std::map<std::string, uint64_t> g_fetched;

uint64_t fetched_bytes() {
    std::lock_guard lock(g_fetched_mu);
    uint64_t total = 0;
    for (const auto& [digest, n] : g_fetched) total += n;
    return total;
}

int fail_with(const std::string& message) {
    emit({{"error", message}, {"fetched_bytes", fetched_bytes()}});
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::string root;
    bool progress = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--root" && i + 1 < argc) {
            root = argv[++i];
        } else if (arg == "--progress") {
            progress = true;
        } else if (arg == "--version") {
            std::printf("berth-pull version %s\n", BERTH_VERSION);
            return 0;
        } else {
            std::fprintf(stderr,
                         "usage: berth-pull --root DIR [--progress] < request.json\n"
                         "berthd's pull helper: pulls the image a JSON request on stdin names into the store at "
                         "DIR.\n");
            return 2;
        }
    }
    if (root.empty() || root[0] != '/') {
        std::fprintf(stderr, "berth-pull: --root needs an absolute directory\n");
        return 2;
    }
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto j = nlohmann::json::parse(input, nullptr, false);
    if (j.is_discarded()) return fail_with("pull request: not valid JSON");
    auto req = berth::store::pull_request_from_json(j);
    if (!req) return fail_with(req.error().message());

    auto images = berth::store::Images::open(root);
    if (!images) return fail_with(images.error().message());
    berth::store::PullOptions options;
    options.platform = req->platform;
    options.credentials = req->credentials;
    options.registries = req->registries;
    options.max_parallel_layers = req->max_parallel_layers;
    options.progress = [progress](const berth::store::PullEvent& e) {
        if (e.kind == berth::store::PullEvent::Kind::layer_bytes) {
            std::lock_guard lock(g_fetched_mu);
            uint64_t& n = g_fetched[e.digest.string()];
            n = std::max(n, e.done);
        }
        if (progress) emit(berth::store::to_json(e));
    };
    auto rec = berth::store::pull_image(*images, req->reference, options);
    if (!rec) return fail_with(rec.error().message());
    emit({{"image", {{"id", rec->id.string()}, {"names", rec->names}}}, {"fetched_bytes", fetched_bytes()}});
    return 0;
}
