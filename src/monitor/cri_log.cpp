#include "monitor/cri_log.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fs.hpp"

namespace berth::monitor {

size_t format_timestamp(char* out, const struct timespec& ts) {
    struct tm tm {};
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, kTimestampSize, "%Y-%m-%dT%H:%M:%S", &tm);
    long ns = ts.tv_nsec;
    out[n + 10] = 'Z';
    for (size_t i = 9; i >= 1; --i) {
        out[n + i] = static_cast<char>('0' + ns % 10);
        ns /= 10;
    }
    out[n] = '.';
    return n + 11;
}

std::string timestamp_now() {
    struct timespec ts {};
    clock_gettime(CLOCK_REALTIME, &ts);
    char buf[kTimestampSize];
    return std::string(buf, format_timestamp(buf, ts));
}

namespace {

Result<UniqueFd> open_log(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fd) return fail_sys("open container log {}", path);
    return fd;
}

}  // namespace

Result<CriLogFile> CriLogFile::open(std::string path) {
    BERTH_ASSIGN(UniqueFd fd, open_log(path));
    return CriLogFile(std::move(path), std::move(fd));
}

Result<void> CriLogFile::reopen() {
    BERTH_ASSIGN(UniqueFd fd, open_log(path_));
    fd_ = std::move(fd);
    return {};
}

Result<void> CriLogFile::write_record(std::string_view stream, bool partial, std::string_view message) {
    char ts[kTimestampSize + 1];
    struct timespec now {};
    clock_gettime(CLOCK_REALTIME, &now);
    size_t n = format_timestamp(ts, now);
    ts[n++] = ' ';
    char tag[4] = {' ', partial ? 'P' : 'F', ' ', '\n'};
    struct iovec iov[5] = {{ts, n},
                           {const_cast<char*>(stream.data()), stream.size()},
                           {tag, 3},
                           {const_cast<char*>(message.data()), message.size()},
                           {tag + 3, 1}};
    size_t total = n + stream.size() + 3 + message.size() + 1;
    // O_APPEND: a record is appended whole by one writev unless the disk is full; a short write is reported.
    for (;;) {
        ssize_t w = ::writev(fd_.get(), iov, 5);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return fail_sys("write container log {}", path_);
        if (static_cast<size_t>(w) != total) return fail("write container log {}: short write", path_);
        return {};
    }
}

Result<ssize_t> LineSplitter::read_from(int fd, CriLogFile& log) {
    ssize_t n = ::read(fd, buf_ + len_, kMaxRecord - len_);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return -1;
        // EIO is how a pty master says every slave fd is closed: the end of the stream, as is any read error.
        return 0;
    }
    if (n == 0) return 0;
    len_ += static_cast<size_t>(n);
    BERTH_TRY(process(log));
    return n;
}

Result<void> LineSplitter::feed(std::string_view data, CriLogFile& log) {
    while (!data.empty()) {
        size_t take = std::min(data.size(), kMaxRecord - len_);
        std::memcpy(buf_ + len_, data.data(), take);
        len_ += take;
        data.remove_prefix(take);
        BERTH_TRY(process(log));
    }
    return {};
}

Result<void> LineSplitter::process(CriLogFile& log) {
    auto r = write_records(log);
    // A record the log file did not take is dropped with what is buffered: written again it would repeat the
    // lines before it, and kept it would stall the stream.
    if (!r) len_ = 0;
    return r;
}

Result<void> LineSplitter::write_records(CriLogFile& log) {
    size_t start = 0;
    while (start < len_) {
        const void* nl = std::memchr(buf_ + start, '\n', len_ - start);
        if (!nl) break;
        size_t end = static_cast<size_t>(static_cast<const char*>(nl) - buf_);
        BERTH_TRY(log.write_record(stream_, false, std::string_view(buf_ + start, end - start)));
        start = end + 1;
    }
    if (start == 0 && len_ == kMaxRecord) {
        // A full buffer without a newline: the line goes on beyond one record.
        BERTH_TRY(log.write_record(stream_, true, std::string_view(buf_, len_)));
        len_ = 0;
        return {};
    }
    if (start > 0) {
        std::memmove(buf_, buf_ + start, len_ - start);
        len_ -= start;
    }
    return {};
}

Result<void> LineSplitter::flush(CriLogFile& log) {
    if (len_ == 0) return {};
    size_t n = std::exchange(len_, 0);
    return log.write_record(stream_, false, std::string_view(buf_, n));
}

}  // namespace berth::monitor
