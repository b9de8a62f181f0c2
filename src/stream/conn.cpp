#include "stream/conn.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

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

    Result<void> write_all(std::span<const char> head, std::span<const char> body) override {
        const size_t total = head.size() + body.size();
        size_t done = 0;
        while (done < total) {
            if (shut_.load()) return fail_errno(ECONNABORTED, "write to connection");
            struct iovec rest[2];
            size_t n_iov = 0;
            if (done < head.size()) rest[n_iov++] = {const_cast<char*>(head.data()) + done, head.size() - done};
            size_t body_done = done > head.size() ? done - head.size() : 0;
            if (body_done < body.size())
                rest[n_iov++] = {const_cast<char*>(body.data()) + body_done, body.size() - body_done};
            struct msghdr msg {};
            msg.msg_iov = rest;
            msg.msg_iovlen = n_iov;
            ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
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

    int splice_fd() const override { return shut_.load() ? -1 : fd_.get(); }

private:
    UniqueFd fd_;
    std::atomic<bool> shut_{false};
};

}  // namespace

Result<void> Conn::write_all(std::span<const char> head, std::span<const char> body) {
    std::string joined;
    joined.reserve(head.size() + body.size());
    joined.append(head.data(), head.size());
    joined.append(body.data(), body.size());
    return write_all(std::span<const char>(joined.data(), joined.size()));
}

std::unique_ptr<Conn> plain_conn(UniqueFd fd) { return std::make_unique<PlainConn>(std::move(fd)); }

}  // namespace berth::stream
