#include "create_flags.hpp"

namespace berth::cli {

std::vector<FlagSpec> create_flag_specs() {
    return {
        {{"bundle", "b"}, true, "path to the root of the bundle directory (default: current directory)"},
        {{"console-socket"}, true, "AF_UNIX socket that receives the pty master of the container's terminal"},
        {{"pid-file"}, true, "file to write the container's init pid to"},
        {{"no-pivot"}, false, "do not use pivot_root to jail the process inside the rootfs"},
        {{"no-new-keyring"}, false, "do not create a new session keyring for the container"},
        {{"preserve-fds"}, true, "pass N additional file descriptors (from 3) to the container"},
    };
}

Result<runtime::CreateOptions> create_options(const ParsedFlags& f) {
    runtime::CreateOptions o;
    o.id = f.positional.at(0);
    o.bundle = f.value("bundle", ".");
    o.console_socket = f.value("console-socket");
    o.pid_file = f.value("pid-file");
    o.no_pivot = f.flag("no-pivot");
    o.no_new_keyring = f.flag("no-new-keyring");
    BERTH_ASSIGN(long n, int_flag(f, "preserve-fds", 0, 100000, 0));
    o.preserve_fds = static_cast<int>(n);
    return o;
}

}  // namespace berth::cli
