// The CRI container log format that kubelet parses (one record per line):
//
//   <RFC 3339 timestamp with nanoseconds> <stdout|stderr> <P|F> <message>\n
//
// A line the container writes is one F (full) record without its newline. A line longer than kMaxRecord is cut
// into P (partial) records of kMaxRecord bytes followed by one F record with the rest; the concatenation of the
// messages is the line. A last line without a newline is written as F when the stream ends.
#pragma once

#include <time.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::monitor {

// The largest message of one record (the size the ecosystem's log writers use).
inline constexpr size_t kMaxRecord = 16 * 1024;

// Writes `ts` as "2026-01-02T03:04:05.123456789Z" (UTC, always 9 fraction digits so records sort as text) into
// `out`, which holds at least kTimestampSize bytes; returns the length (no NUL is written).
inline constexpr size_t kTimestampSize = 30;
size_t format_timestamp(char* out, const struct timespec& ts);
std::string timestamp_now();

// The log file: records appended with one write(2) each. Not thread-safe.
class CriLogFile {
public:
    [[nodiscard]] static Result<CriLogFile> open(std::string path);
    // Opens `path` again (after the file was renamed or removed by log rotation) and writes to the new file from
    // now on. On failure the old file stays in use.
    [[nodiscard]] Result<void> reopen();
    [[nodiscard]] Result<void> write_record(std::string_view stream, bool partial, std::string_view message);
    const std::string& path() const { return path_; }

private:
    CriLogFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
    std::string path_;
    UniqueFd fd_;
};

// Cuts one stream's bytes into records. Holds at most kMaxRecord bytes of an unfinished line.
class LineSplitter {
public:
    explicit LineSplitter(std::string_view stream) : stream_(stream) {}
    LineSplitter(const LineSplitter&) = delete;
    LineSplitter& operator=(const LineSplitter&) = delete;

    // Reads once from `fd` (non-blocking or ready) and writes every finished record. Returns the byte count read:
    // 0 at end of stream (or a read error, e.g. EIO from a pty master whose slave side is closed); -1 with errno
    // EAGAIN/EINTR when nothing was there.
    [[nodiscard]] Result<ssize_t> read_from(int fd, CriLogFile& log);
    // Same as bytes arriving from the stream (tests, and any other source).
    [[nodiscard]] Result<void> feed(std::string_view data, CriLogFile& log);
    // Writes an unfinished line as an F record (end of stream).
    [[nodiscard]] Result<void> flush(CriLogFile& log);

private:
    [[nodiscard]] Result<void> process(CriLogFile& log);
    [[nodiscard]] Result<void> write_records(CriLogFile& log);

    std::string_view stream_;
    size_t len_ = 0;
    char buf_[kMaxRecord];
};

}  // namespace berth::monitor
