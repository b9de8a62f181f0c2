#include "stream/conn.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace berth::stream {

namespace {

class PlainConn final : public Conn {
public:
    explicit PlainConn(UniqueFd fd) : fd_(std::move(fd)) {}

    Result<size_t> read(std::span<char> buf) override {
        for (;;) {
            if (shut_.load()) return fail_errno(ECONNABORTED, "read from connection");
            ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return fail_sys("read from connection");
            // shutdown() makes a blocked recv return 0: that is our own end, not the peer's.
            if (n == 0 && shut_.load()) return fail_errno(ECONNABORTED, "read from connection");
            return size_t(n);
        }
    }

    Result<void> write_all(std::span<const char> buf) override {
        size_t done = 0;
        while (done < buf.size()) {
            if (shut_.load()) return fail_errno(ECONNABORTED, "write to connection");
            ssize_t n = ::send(fd_.get(), buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return fail_sys("write to connection");
            done += size_t(n);
        }
        return {};
    }

    void shutdown() override {
        shut_.store(true);
        ::shutdown(fd_.get(), SHUT_RDWR);
    }

private:
    UniqueFd fd_;
    std::atomic<bool> shut_{false};
};

}  // namespace

std::unique_ptr<Conn> plain_conn(UniqueFd fd) { return std::make_unique<PlainConn>(std::move(fd)); }

}  // namespace berth::stream
