// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to $NOTIFY_SOCKET per state change.
// berthd's unit is Type=notify: systemd holds back units ordered after berthd (kubelet) until READY=1, sent once
// the CRI socket accepts connections.
#pragma once

#include <string_view>

namespace berth::cri {

// Takes NOTIFY_SOCKET out of the environment and keeps it: the processes berthd starts must not inherit it (runc
// and crun would hand it to the container as its own notify socket). Call once, before any other thread exists.
void sd_notify_init();

// Sends `state` ("READY=1", "STOPPING=1", "RELOADING=1", "STATUS=...") when started by systemd; otherwise nothing.
// Failures are logged at debug level only: systemd not listening never stops the daemon.
void sd_notify(std::string_view state);

}  // namespace berth::cri
