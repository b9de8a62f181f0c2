#include "cri/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/log.hpp"
#include "common/unique_fd.hpp"

namespace berth::cri {
namespace {

std::string g_socket;  // written once by sd_notify_init, before other threads

}  // namespace

void sd_notify_init() {
    if (const char* s = std::getenv("NOTIFY_SOCKET"); s != nullptr) g_socket = s;
    ::unsetenv("NOTIFY_SOCKET");
}

void sd_notify(std::string_view state) {
    // "/path" or "@abstract"; systemd may also give vsock addresses, which berthd does not speak.
    if (g_socket.empty() || (g_socket[0] != '/' && g_socket[0] != '@')) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (g_socket.size() >= sizeof addr.sun_path) {
        log::debug("sd_notify: NOTIFY_SOCKET {} is too long for a unix socket address", g_socket);
        return;
    }
    std::memcpy(addr.sun_path, g_socket.data(), g_socket.size());
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + g_socket.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        log::debug("sd_notify: socket: {}", std::strerror(errno));
        return;
    }
    if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len) < 0)
        log::debug("sd_notify {}: {}", g_socket, std::strerror(errno));
}

}  // namespace berth::cri
