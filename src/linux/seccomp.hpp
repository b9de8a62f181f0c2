// Seccomp filters from linux.seccomp, built with libseccomp and loaded with seccomp(2) directly.
//
// The filter is compiled in the parent before the clone, so a bad profile fails `create` early with the field's
// path; the compiled classic-BPF program is exported from libseccomp there and the cloned child only makes one
// seccomp(2) call. Loading it ourselves (rather than seccomp_load) gives berth every filter flag the kernel has,
// whatever libseccomp version it was built with (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs libseccomp 2.6), and
// never sets no_new_privs behind the config's back (libseccomp's loader does by default).
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "spec/config.hpp"

namespace berth::sys {

class SeccompFilter {
public:
    // True when some rule uses SCMP_ACT_NOTIFY: loading then yields a listener fd.
    bool uses_notify() const { return notify_; }
    // SECCOMP_FILTER_FLAG_* bits from linux.seccomp.flags (plus what notify needs), as passed to seccomp(2).
    unsigned flags() const { return flags_; }
    // The classic BPF program (for tests and debugging).
    const std::vector<struct sock_filter>& program() const { return program_; }
    // Loads the filter into the calling thread. With notify, returns the listener fd (else an invalid fd).
    // Without no_new_privs the caller needs CAP_SYS_ADMIN.
    [[nodiscard]] Result<UniqueFd> load() const;

private:
    friend Result<SeccompFilter> compile_seccomp(const spec::Seccomp&);
    friend Result<SeccompFilter> compile_seccomp_cached(const spec::Seccomp&, const std::string&);
    std::vector<struct sock_filter> program_;
    unsigned flags_ = 0;
    bool notify_ = false;
};

// Compiles linux.seccomp. Errors name the field: `linux.seccomp.architectures[1]: unknown architecture
// "SCMP_ARCH_FOO"`, `linux.seccomp.flags[0]: seccomp flag "SECCOMP_FILTER_FLAG_LOG" is not supported by this
// kernel`. Syscall names libseccomp does not know are skipped (logged at debug level), as runc does: profiles
// such as containerd's default list syscalls newer than the libseccomp a runtime was built with.
[[nodiscard]] Result<SeccompFilter> compile_seccomp(const spec::Seccomp& s);

// compile_seccomp, remembering the result in `cache_dir` (made 0700 when missing): compiling a default profile
// of ~400 syscalls for three ABIs is most of the CPU a container create costs, and a node runs the same few
// profiles over and over. An entry holds the profile's canonical text (every field that shapes the program, plus
// the libseccomp version and the kernel release), compared byte for byte on a hit, so a hash collision or a
// changed host can never load another profile's program. A cache that cannot be read or written only costs the
// compile. Profiles with errors are never cached: they are compiled, and fail, every time.
[[nodiscard]] Result<SeccompFilter> compile_seccomp_cached(const spec::Seccomp& s, const std::string& cache_dir);

// Sends the listener fd to the seccomp agent at `listener_path` with the container process state
// (the runtime-spec's containerProcessState JSON) as the message, as the spec's seccomp notify section says.
[[nodiscard]] Result<void> send_seccomp_listener(const std::string& listener_path, int listener_fd,
                                                 const std::string& process_state_json);

// What this build knows (for `features`): every action and operator of the spec; the architectures libseccomp
// resolves; the filter flags berth knows, and of those the ones the running kernel accepts.
std::vector<std::string> known_seccomp_actions();
std::vector<std::string> known_seccomp_architectures();
std::vector<std::string> known_seccomp_operators();
std::vector<std::string> known_seccomp_flags();
std::vector<std::string> supported_seccomp_flags();

}  // namespace berth::sys
