// SocketClaim: one berthd per socket path.
//
// A daemon holds an exclusive flock on "<socket>.lock" for its whole life. With the lock held, whatever is at the
// socket path was left by a daemon that is gone (a stale socket after a crash or kill -9) and is removed; a socket
// that still accepts connections belongs to a process that serves without the lock and is never taken over.
#pragma once

#include <string>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::cri {

class SocketClaim {
public:
    SocketClaim(SocketClaim&& o) noexcept = default;
    SocketClaim& operator=(SocketClaim&&) = delete;
    SocketClaim(const SocketClaim&) = delete;
    SocketClaim& operator=(const SocketClaim&) = delete;
    // Removes the socket file (if still a socket) and releases the lock. The lock file stays: removing it would let
    // a daemon that opened it just before lock a file nobody else sees.
    ~SocketClaim();

    const std::string& path() const { return path_; }

    // Takes the lock and clears the path for bind(2): creates the parent directory (0755), fails with "another
    // berthd is serving <path>" when the lock is held or the socket answers, removes a stale socket, and refuses
    // to remove anything that is not a socket.
    [[nodiscard]] static Result<SocketClaim> claim(const std::string& path);

private:
    SocketClaim(std::string path, UniqueFd lock) : path_(std::move(path)), lock_(std::move(lock)) {}

    std::string path_;
    UniqueFd lock_;
};

}  // namespace berth::cri
