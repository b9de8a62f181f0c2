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
    // Ends the connection in both directions; reads and writes after it fail, a blocked read returns.
    virtual void shutdown() = 0;
};

// A Conn over a connected stream socket (takes ownership).
std::unique_ptr<Conn> plain_conn(UniqueFd fd);

}  // namespace berth::stream
