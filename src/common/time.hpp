// Wall-clock time as the container ecosystem writes it.
#pragma once

#include <string>

namespace berth {

// Now, UTC, RFC 3339 with nanoseconds: "2026-01-02T03:04:05.123456789Z" (the form of runc's state "created",
// of logrus JSON log lines, and of CRI log timestamps).
std::string now_rfc3339_nano();

}  // namespace berth
