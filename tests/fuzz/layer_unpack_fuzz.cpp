// libFuzzer target for layer unpack (src/image/layer_unpack): tar headers, pax extensions, gzip and zstd streams
// are all attacker-controlled. Not part of the default build (see the BERTH_FUZZ block in CMakeLists.txt). Build
// and run, with GCC + libclang-rt-14-dev or with clang >= 16 (as root to reach the device/owner/xattr paths too):
//   cmake -S . -B build-fuzz -G Ninja -DBERTH_FUZZ=ON && cmake --build build-fuzz -j2 --target layer_unpack_fuzz
//   mkdir -p /tmp/layer-corpus && cp tests/fuzz/corpus/layer_unpack_fuzz/* /tmp/layer-corpus/
//   build-fuzz/bin/layer_unpack_fuzz -max_total_time=60 /tmp/layer-corpus
//
// Beyond "no crash, no sanitizer report", it checks the containment contract: whatever the input, nothing appears
// beside the layer root (a directory of its own inside a private base directory), and every failure has a message.
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/fs.hpp"
#include "image/layer_unpack.hpp"

namespace {

const std::string& base_dir() {
    static const std::string base = [] {
        std::string tmpl = "/tmp/berth-layer-fuzz-XXXXXX";
        if (!::mkdtemp(tmpl.data())) std::abort();
        return tmpl;
    }();
    // Empty between inputs: removed when the fuzzer exits normally.
    static const bool cleanup_registered = [] {
        std::atexit([] { ::rmdir(base.c_str()); });
        return true;
    }();
    (void)cleanup_registered;
    return base;
}

// True when `dir` holds nothing but an entry named `only`.
bool holds_only(const std::string& dir, const char* only) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    bool ok = true;
    while (auto* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != ".." && n != only) ok = false;
    }
    ::closedir(d);
    return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& base = base_dir();
    const std::string root = base + "/root";
    if (::mkdir(root.c_str(), 0755) < 0) std::abort();
    auto r = berth::image::unpack_layer_buffer(std::string_view(reinterpret_cast<const char*>(data), size), root);
    if (!r && r.error().message().empty()) std::abort();
    if (!holds_only(base, "root")) std::abort();  // something escaped the layer root
    if (!berth::remove_all(root)) std::abort();
    return 0;
}
