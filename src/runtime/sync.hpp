// The parent <-> init handshake: typed messages over a SOCK_SEQPACKET socketpair.
//
// One message per datagram: a fixed header, an optional text payload (error text, names), and at most one fd
// (SCM_RIGHTS). The init process reports every set-up failure as an Error message carrying the real cause, so the
// caller never sees a bare "broken pipe".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::runtime {

enum class SyncType : uint32_t {
    // parent -> init
    go = 1,          // namespaces are ready on the parent's side (maps written): continue
    hooks_done = 2,  // prestart/createRuntime hooks ran
    maps_done = 3,   // id maps written for a user namespace the init unshared itself
    // init -> parent
    ready = 10,         // set-up finished; init waits for `start`
    error = 11,         // payload: the error message; value: errno
    run_hooks = 12,     // please run prestart + createRuntime hooks now
    pty_master = 13,    // fd: the pty master; payload: the slave's name
    want_maps = 14,     // I unshared a user namespace: write my maps
    child_pid = 15,     // sent by a forked init with SCM_CREDENTIALS: my pid, in the parent's view
    seccomp_listener = 16,  // fd: the seccomp notify listener, for linux.seccomp.listenerPath
};

struct SyncMessage {
    SyncType type{};
    int32_t value = 0;
    std::string text;
    UniqueFd fd;
    pid_t sender_pid = 0;  // from SCM_CREDENTIALS, when the socket has SO_PASSCRED and the sender attached them
};

[[nodiscard]] Result<void> sync_send(int sock, SyncType type, int32_t value = 0, std::string_view text = {},
                                     int fd = -1);
// Sends the caller's credentials along (the receiver sees the sender's pid translated into its own pid namespace).
[[nodiscard]] Result<void> sync_send_with_creds(int sock, SyncType type);
// Blocks for one message. A closed peer is an error with code EPIPE and the text "init closed the sync socket".
[[nodiscard]] Result<SyncMessage> sync_recv(int sock);

// Report `err` to the parent and exit: the init side's single failure path.
[[noreturn]] void sync_fail(int sock, const Error& err);

}  // namespace berth::runtime
