// libFuzzer target for the parsers of outside input in src/spec: config.json (parse_config + validate_config),
// a process.json for exec, and the state JSON. Not part of the default build (see the BERTH_FUZZ block in
// CMakeLists.txt). Build and run, with GCC + libclang-rt-14-dev or with clang >= 16:
//   cmake -S . -B build-fuzz -G Ninja -DBERTH_FUZZ=ON && cmake --build build-fuzz -j2 --target config_fuzz
//   mkdir -p /tmp/config-corpus && cp tests/fuzz/corpus/config_fuzz/* /tmp/config-corpus/
//   build-fuzz/bin/config_fuzz -max_total_time=60 -dict=tests/fuzz/config_fuzz.dict /tmp/config-corpus
//
// Beyond "no crash, no sanitizer report, no uncaught exception", it checks that every failure carries a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spec/config.hpp"
#include "spec/state.hpp"

namespace {

template <typename R>
void require_message(const R& r) {
    if (!r && r.error().message().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    auto config = berth::spec::parse_config(text);
    require_message(config);
    if (config) require_message(berth::spec::validate_config(*config));

    auto process = berth::spec::parse_process(text);
    require_message(process);
    if (process) require_message(berth::spec::validate_process(*process, ""));

    auto state = berth::spec::parse_state(text);
    require_message(state);
    if (state) {
        // What was parsed must serialize and parse back to the same values.
        auto again = berth::spec::parse_state(berth::spec::state_to_json(*state));
        if (!again || again->id != state->id || again->pid != state->pid || again->annotations != state->annotations)
            std::abort();
    }
    return 0;
}
