// Reading the CRI container log format (see src/monitor/cri_log.hpp for the writer):
//
//   <RFC 3339 timestamp> <stdout|stderr> <P|F> <message>\n
//
// P (partial) records are joined with the records that follow on the same stream up to the next F record: the
// joined message is one line the container wrote. Used by `berthctl logs`.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace berth::ctl {

struct LogRecord {
    std::string timestamp;  // as written
    int64_t time_ns = 0;    // the timestamp in nanoseconds since the epoch
    std::string stream;     // "stdout" or "stderr"
    bool partial = false;
    std::string message;
};

// One record, the line without its '\n'. Errors say which part is malformed.
[[nodiscard]] Result<LogRecord> parse_log_record(std::string_view line);

// "2026-01-02T03:04:05.123456789Z" or with an offset ("+02:00"), 0-9 fraction digits, to nanoseconds since the
// epoch.
[[nodiscard]] Result<int64_t> parse_rfc3339(std::string_view s);

// --since: an RFC 3339 time, or a duration back from `now_ns` ("90s", "5m", "1h30m", "250ms").
[[nodiscard]] Result<int64_t> parse_since(std::string_view s, int64_t now_ns);

// A whole line the container wrote: the P records joined with their F record. Its time is the first record's.
struct LogLine {
    std::string timestamp;
    int64_t time_ns = 0;
    std::string stream;
    std::string content;
};

// Joins records into lines, a partial line per stream kept until its F record comes.
class LogAssembler {
public:
    // Returns the finished line, if `r` finished one.
    std::optional<LogLine> add(LogRecord r);

private:
    std::optional<LogLine> pending_out_, pending_err_;
};

// Splits bytes read from a log file into lines and records. Bytes after the last '\n' are kept for the next feed:
// a record being written is never parsed half. Malformed lines are skipped and counted (a log file is outside
// input: a bad line must not stop the reader).
class LogFileParser {
public:
    // Appends finished lines to `out`.
    void feed(std::string_view data, std::deque<LogLine>& out);
    size_t malformed() const { return malformed_; }

private:
    std::string rest_;
    LogAssembler assembler_;
    size_t malformed_ = 0;
};

}  // namespace berth::ctl
