// `berth features`: the runtime-spec's Features structure (features.md), describing what this build of berth
// implements. Everything listed is really supported; what berth refuses is absent or false.
#pragma once

#include <nlohmann/json.hpp>

namespace berth::runtime {

// The Features structure. Seccomp's supportedFlags and the host.* annotations reflect the running kernel and
// host; everything else is fixed by the build.
nlohmann::json features();

}  // namespace berth::runtime
