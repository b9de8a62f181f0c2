#include "cri/socket_claim.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/fs.hpp"

namespace berth::cri {
namespace {

// Does a process accept connections on the unix socket at `path`? ECONNREFUSED means nobody listens (stale).
Result<bool> socket_answers(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path))
        return fail("socket path {} is longer than {} bytes", path, sizeof(addr.sun_path) - 1);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_sys("socket(AF_UNIX)");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) return true;
    if (errno == ECONNREFUSED) return false;
    return fail_sys("connect to {}", path);
}

}  // namespace

Result<SocketClaim> SocketClaim::claim(const std::string& path) {
    if (path.empty() || path[0] != '/') return fail("socket path {:?} must be absolute", path);
    sockaddr_un probe{};
    if (path.size() >= sizeof(probe.sun_path))
        return fail("socket path {} is longer than {} bytes", path, sizeof(probe.sun_path) - 1);
    std::string dir = std::filesystem::path(path).parent_path().string();
    BERTH_TRY_CTX(mkdir_all(dir, 0755), "socket directory");

    std::string lock_path = path + ".lock";
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!lock) return fail_sys("open lock file {}", lock_path);
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) return fail("another berthd is serving {}", path);
        return fail_sys("lock {}", lock_path);
    }

    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return fail("{} exists and is not a socket; not removing it", path);
        BERTH_ASSIGN(bool answers, socket_answers(path));
        if (answers) return fail("another berthd is serving {}", path);
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_sys("remove stale socket {}", path);
    } else if (errno != ENOENT) {
        return fail_sys("stat {}", path);
    }
    return SocketClaim(path, std::move(lock));
}

SocketClaim::~SocketClaim() {
    if (!lock_) return;  // moved from
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path_.c_str());
}

}  // namespace berth::cri
