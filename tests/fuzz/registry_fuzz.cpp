// libFuzzer target for what the registry client parses from the network or from users: WWW-Authenticate
// headers, manifest responses (media-type classification), URL authorities and the CRI `auth` form. Not part of
// the default build (see the BERTH_FUZZ block in CMakeLists.txt):
//   cmake -S . -B build-fuzz -G Ninja -DBERTH_FUZZ=ON && cmake --build build-fuzz -j2 --target registry_fuzz
//   build-fuzz/bin/registry_fuzz -max_total_time=60
//
// Beyond "no crash, no sanitizer report", it checks that parsed challenges are well-formed (a non-empty,
// lowercase scheme; lowercase parameter names) and that every failure carries a message.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "image/registry.hpp"

namespace {

bool is_lower(std::string_view s) {
    for (unsigned char c : s)
        if (std::isupper(c)) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    for (const auto& ch : berth::image::parse_www_authenticate(text)) {
        if (ch.scheme.empty() || !is_lower(ch.scheme)) std::abort();
        for (const auto& [name, value] : ch.params)
            if (name.empty() || !is_lower(name)) std::abort();
    }

    // The first line as a Content-Type, the rest as the body.
    auto nl = text.find('\n');
    std::string_view type = nl == std::string_view::npos ? text : text.substr(0, nl);
    std::string_view body = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    (void)berth::image::classify_manifest(type, body);
    (void)berth::image::url_authority(text);

    berth::image::Credentials c;
    c.auth = std::string(text);
    auto d = berth::image::decode_auth(c);
    if (!d && d.error().message().empty()) std::abort();
    return 0;
}
