// The exit file: what the monitor records when the container's init process ends, for berthd to read (also after
// a berthd restart). Written atomically (temp file + rename) as <monitor dir>/exit, so a reader, or an inotify
// watch for IN_MOVED_TO "exit" on the monitor dir, never sees half a record.
//
//   {"exit_code":137,"signal":9,"oom_killed":true,"started_at":"...","finished_at":"..."}
//
// exit_code is the process's exit status, or 128+signal when a signal killed it (as CRI reports it); "signal" is
// present only then. Times are RFC 3339 with nanoseconds, UTC; started_at is empty when the monitor did not start
// the container itself and was not told when it started.
#pragma once

#include <string>

#include "common/error.hpp"

namespace berth::monitor {

inline constexpr const char* kExitFileName = "exit";

struct ExitRecord {
    int exit_code = 0;
    int signal = 0;  // 0: not killed by a signal
    bool oom_killed = false;
    std::string started_at, finished_at;
};

// From a wait status (waitpid's).
ExitRecord exit_record_from_status(int wait_status);
std::string to_json(const ExitRecord& r);
[[nodiscard]] Result<ExitRecord> parse_exit_record(const std::string& json);
// <dir>/exit, atomically.
[[nodiscard]] Result<void> write_exit_record(const std::string& dir, const ExitRecord& r);
[[nodiscard]] Result<ExitRecord> read_exit_record(const std::string& dir);

}  // namespace berth::monitor
