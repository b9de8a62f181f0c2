// A byte connection under the streaming protocols: a plain socket, or TLS when the streaming server has a
// certificate. SPDY sessions and the HTTP upgrade code read and write through it.
//
// Thread-safety: one reader and one writer may use a Conn at the same time; shutdown() may be called from any
// thread and wakes a blocked read.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::stream {

class Conn {
public:
    virtual ~Conn() = default;
    // Reads at least one byte; 0 means the peer closed the connection.
    [[nodiscard]] virtual Result<size_t> read(std::span<char> buf) = 0;
    // Writes every byte (retrying short writes and EINTR).
    [[nodiscard]] virtual Result<void> write_all(std::span<const char> buf) = 0;
    // Writes `head` then `body` as one: a frame header and its payload without copying them together first.
    [[nodiscard]] virtual Result<void> write_all(std::span<const char> head, std::span<const char> body);
    // Ends the connection in both directions; reads and writes after it fail, a blocked read returns.
    virtual void shutdown() = 0;
    // The socket under the connection when bytes written to it reach the peer as they are (no TLS), so a writer
    // may splice into it in its turn; -1 otherwise.
    virtual int splice_fd() const { return -1; }
};

// A Conn over a connected stream socket (takes ownership).
std::unique_ptr<Conn> plain_conn(UniqueFd fd);

}  // namespace berth::stream
