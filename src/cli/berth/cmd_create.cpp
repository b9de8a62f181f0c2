#include "create_flags.hpp"

namespace berth::cli {

const Command& create_command() {
    static const Command c{
        "create", "[command options] <container-id>", "create a container", create_flag_specs(),
        [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
            auto o = create_options(f);
            if (!o) return report_error(o.error());
            if (auto r = runtime::create_container(g, *o); !r) return report_error(r.error());
            return 0;
        },
        1, 1};
    return c;
}

}  // namespace berth::cli
