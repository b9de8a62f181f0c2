// Seccomp filters from linux.seccomp, built with libseccomp.
//
// The filter is compiled in the parent before the clone, so a bad profile fails `create` early with the field's
// path; the cloned child inherits the compiled context and only loads it.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "spec/config.hpp"

namespace berth::sys {

class SeccompFilter {
public:
    SeccompFilter();
    ~SeccompFilter();
    SeccompFilter(SeccompFilter&&) noexcept;
    SeccompFilter& operator=(SeccompFilter&&) noexcept;

    // True when some rule (or the default) uses SCMP_ACT_NOTIFY: loading then yields a listener fd.
    bool uses_notify() const { return notify_; }
    // Loads the filter into the calling thread. With notify, returns the listener fd (else an invalid fd).
    [[nodiscard]] Result<UniqueFd> load();

private:
    friend Result<SeccompFilter> compile_seccomp(const spec::Seccomp&);
    void* ctx_ = nullptr;  // scmp_filter_ctx
    bool notify_ = false;
};

// Compiles linux.seccomp. Errors name the field: `linux.seccomp.syscalls[3].names[0]: unknown syscall "foo"`,
// `linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_FOO"`.
[[nodiscard]] Result<SeccompFilter> compile_seccomp(const spec::Seccomp& s);

// Sends the listener fd to the seccomp agent at `listener_path` with the container process state
// (the runtime-spec's containerProcessState JSON) as the message, as the spec's seccomp notify section says.
[[nodiscard]] Result<void> send_seccomp_listener(const std::string& listener_path, int listener_fd,
                                                 const std::string& process_state_json);

// The architectures and actions this build knows (for `features`).
std::vector<std::string> known_seccomp_actions();
std::vector<std::string> known_seccomp_architectures();
std::vector<std::string> known_seccomp_operators();
std::vector<std::string> known_seccomp_flags();

}  // namespace berth::sys
