#include "command.hpp"

namespace berth::cli {

const Command& pause_command() {
    static const Command c{"pause",
                           "<container-id>",
                           "freeze every process of a container (cgroup freezer)",
                           {},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               if (auto r = runtime::pause_container(g, f.positional[0]); !r)
                                   return report_error(r.error());
                               return 0;
                           },
                           1,
                           1};
    return c;
}

}  // namespace berth::cli
