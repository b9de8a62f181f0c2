#include "create_flags.hpp"

namespace berth::cli {

const Command& run_command() {
    static const Command c{
        "run", "[command options] <container-id>", "create and run a container",
        [] {
            auto flags = create_flag_specs();
            flags.push_back({{"detach", "d"}, false, "detach from the container's process"});
            flags.push_back({{"keep"}, false, "do not delete the container after it exits"});
            return flags;
        }(),
        [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
            auto o = create_options(f);
            if (!o) return report_error(o.error());
            runtime::RunOptions ro;
            static_cast<runtime::CreateOptions&>(ro) = *o;
            ro.detach = f.flag("detach");
            ro.keep = f.flag("keep");
            auto r = runtime::run_container(g, ro);
            if (!r) return report_error(r.error());
            return *r;
        },
        1, 1};
    return c;
}

}  // namespace berth::cli
