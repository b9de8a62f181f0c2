#include <cstdio>

#include "command.hpp"
#include "runtime/features.hpp"

namespace berth::cli {

const Command& features_command() {
    static const Command c{"features",
                           "",
                           "print the features berth implements (runtime-spec features.md JSON)",
                           {},
                           [](const runtime::GlobalOptions&, const ParsedFlags&) {
                               std::printf("%s\n", runtime::features().dump(4).c_str());
                               return 0;
                           },
                           0,
                           0};
    return c;
}

}  // namespace berth::cli
