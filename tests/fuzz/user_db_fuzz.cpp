// libFuzzer target for the image user databases the CRI spec builder reads (src/cri/user_lookup): an image's
// /etc/passwd and /etc/group are outside input. Build and run as config_fuzz (see CMakeLists.txt):
//   cmake -S . -B build-fuzz -G Ninja -DBERTH_FUZZ=ON && cmake --build build-fuzz -j2 --target user_db_fuzz
//   mkdir -p /tmp/user-db-corpus && cp tests/fuzz/corpus/user_db_fuzz/* /tmp/user-db-corpus/
//   build-fuzz/bin/user_db_fuzz -max_total_time=60 /tmp/user-db-corpus
//
// Beyond "no crash, no sanitizer report", it checks what the lookups promise: entries have names and valid ids,
// lookups find what the parse produced, and a user's group list has no duplicates.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cri/user_lookup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto passwd = berth::cri::parse_passwd(text);
    auto groups = berth::cri::parse_group(text);
    for (const auto& p : passwd)
        if (p.name.empty() || p.uid == 0xffffffffu || p.gid == 0xffffffffu) std::abort();
    for (const auto& g : groups)
        if (g.name.empty() || g.gid == 0xffffffffu) std::abort();
    berth::cri::RootfsUsers users(passwd, groups);
    for (const auto& p : passwd) {
        const auto* by_name = users.user_by_name(p.name);
        if (!by_name || by_name->name != p.name) std::abort();
        if (!users.user_by_uid(p.uid)) std::abort();
        auto gids = users.groups_of(p.name);
        for (size_t i = 0; i < gids.size(); ++i)
            if (std::count(gids.begin(), gids.end(), gids[i]) != 1) std::abort();
    }
    if (auto id = berth::cri::parse_id(text); id && *id == 0xffffffffu) std::abort();
    return 0;
}
