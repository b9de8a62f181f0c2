#include <cstdio>

#include "command.hpp"

namespace berth::cli {

const Command& state_command() {
    static const Command c{"state", "<container-id>", "output the state of a container", {},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               auto r = runtime::container_state(g, f.positional[0]);
                               if (!r) return report_error(r.error());
                               std::printf("%s\n", r->c_str());
                               return 0;
                           },
                           1, 1};
    return c;
}

}  // namespace berth::cli
