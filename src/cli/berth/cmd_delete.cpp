#include "command.hpp"

namespace berth::cli {

const Command& delete_command() {
    static const Command c{"delete", "[command options] <container-id>", "delete a container and its state",
                           {{{"force", "f"}, false, "kill the container first if it is running"}},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               if (auto r = runtime::delete_container(g, f.positional[0], f.flag("force")); !r)
                                   return report_error(r.error());
                               return 0;
                           },
                           1, 1};
    return c;
}

}  // namespace berth::cli
