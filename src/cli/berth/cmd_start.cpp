#include "command.hpp"

namespace berth::cli {

const Command& start_command() {
    static const Command c{"start", "<container-id>", "start a created container's user process", {},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               if (auto r = runtime::start_container(g, f.positional[0]); !r)
                                   return report_error(r.error());
                               return 0;
                           },
                           1, 1};
    return c;
}

}  // namespace berth::cli
