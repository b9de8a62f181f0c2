#include "runtime/sync.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace berth::runtime {
namespace {

struct Header {
    uint32_t type;
    int32_t value;
};

constexpr size_t kMaxMessage = 64 * 1024;

}  // namespace

Result<void> sync_send(int sock, SyncType type, int32_t value, std::string_view text, int fd) {
    Header h{static_cast<uint32_t>(type), value};
    if (text.size() > kMaxMessage - sizeof h) text = text.substr(0, kMaxMessage - sizeof h);
    struct iovec iov[2] = {{&h, sizeof h}, {const_cast<char*>(text.data()), text.size()}};
    struct msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = text.empty() ? 1 : 2;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    while (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) return fail_sys("send sync message {}", static_cast<uint32_t>(type));
    }
    return {};
}

Result<void> sync_send_with_creds(int sock, SyncType type) {
    Header h{static_cast<uint32_t>(type), 0};
    struct iovec iov = {&h, sizeof h};
    struct msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred cred{getpid(), getuid(), getgid()};
    std::memcpy(CMSG_DATA(c), &cred, sizeof cred);
    while (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) return fail_sys("send sync credentials");
    }
    return {};
}

Result<SyncMessage> sync_recv(int sock) {
    std::string buf(kMaxMessage, '\0');
    struct iovec iov = {buf.data(), buf.size()};
    struct msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    while ((n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0) {
        if (errno != EINTR) return fail_sys("receive sync message");
    }
    if (n == 0) return std::unexpected(Error(EPIPE, "init closed the sync socket"));
    if (static_cast<size_t>(n) < sizeof(Header)) return fail("short sync message ({} bytes)", n);
    SyncMessage out;
    Header h;
    std::memcpy(&h, buf.data(), sizeof h);
    out.type = static_cast<SyncType>(h.type);
    out.value = h.value;
    out.text.assign(buf.data() + sizeof h, static_cast<size_t>(n) - sizeof h);
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_RIGHTS) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
            out.fd.reset(fd);
        } else if (c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
            out.sender_pid = cred.pid;
        }
    }
    return out;
}

void sync_fail(int sock, const Error& err) {
    (void)sync_send(sock, SyncType::error, err.code(), err.message());
    _exit(1);
}

}  // namespace berth::runtime
