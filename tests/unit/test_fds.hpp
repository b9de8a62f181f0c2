// Small fd helpers shared by unit tests: a close-on-exec pipe, reading an fd to its end.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/unique_fd.hpp"

namespace berth::testing {

struct Pipe {
    UniqueFd r, w;
    Pipe() {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
        r.reset(p[0]);
        w.reset(p[1]);
    }
};

// Everything `fd` gives until EOF (or an error).
inline std::string read_fd_all(int fd) {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
    return out;
}

}  // namespace berth::testing
