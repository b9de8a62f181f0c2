#include <fcntl.h>
#include <unistd.h>

#include "command.hpp"
#include "common/fs.hpp"
#include "spec/config.hpp"

namespace berth::cli {

const Command& spec_command() {
    static const Command c{
        "spec", "[command options]", "write a default config.json into the bundle",
        {{{"bundle", "b"}, true, "directory to write config.json into (default: current directory)"},
         {{"rootless"}, false, "a config for a container run by an unprivileged user"}},
        [](const runtime::GlobalOptions&, const ParsedFlags& f) {
            std::string path = path_join(f.value("bundle", "."), "config.json");
            if (path_exists(path))
                return report_error(Error(EEXIST, fmt::format("{} exists: remove it first", path)));
            std::string text = spec::default_config_json(f.flag("rootless"), ::getuid(), ::getgid());
            if (auto r = write_file(path, text + "\n", 0644); !r) return report_error(r.error());
            return 0;
        },
        0, 0};
    return c;
}

}  // namespace berth::cli
