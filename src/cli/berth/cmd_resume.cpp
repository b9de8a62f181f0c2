#include "command.hpp"

namespace berth::cli {

const Command& resume_command() {
    static const Command c{"resume",
                           "<container-id>",
                           "thaw a paused container",
                           {},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               if (auto r = runtime::resume_container(g, f.positional[0]); !r)
                                   return report_error(r.error());
                               return 0;
                           },
                           1,
                           1};
    return c;
}

}  // namespace berth::cli
