#include <signal.h>

#include "command.hpp"

namespace berth::cli {

const Command& kill_command() {
    static const Command c{"kill", "[command options] <container-id> [signal]",
                           "send a signal (default SIGTERM) to the container's init process",
                           {{{"all", "a"}, false, "send the signal to all processes in the container"}},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               int sig = SIGTERM;
                               if (f.positional.size() > 1) {
                                   auto s = runtime::parse_signal(f.positional[1]);
                                   if (!s) return report_error(s.error());
                                   sig = *s;
                               }
                               if (auto r = runtime::kill_container(g, f.positional[0], sig, f.flag("all")); !r)
                                   return report_error(r.error());
                               return 0;
                           },
                           1, 2};
    return c;
}

}  // namespace berth::cli
