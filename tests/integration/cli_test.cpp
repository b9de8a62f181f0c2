#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

TEST(Cli, VersionNamesSpec) {
    FILE* p = popen(BERTH_BIN " --version", "r");
    ASSERT_NE(p, nullptr);
    char buf[256] = {};
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    EXPECT_EQ(pclose(p), 0);
    std::string out(buf, n);
    EXPECT_NE(out.find("spec: 1.2.0"), std::string::npos) << out;
}

}  // namespace

#include "harness.hpp"

namespace {

// containerd's shim runs `ps --format json <id>`: a command berth lacks must answer "not supported" whatever flags
// of runc's it comes with, never a flag error that hides why.
TEST(Cli, UnsupportedCommandsSaySoWithRuncsFlags) {
    for (std::vector<std::string> args : {std::vector<std::string>{"checkpoint", "--image-path", "/tmp/x", "id"},
                                          std::vector<std::string>{"restore", "--detach", "-b", "/tmp", "id"}}) {
        args.insert(args.begin(), BERTH_BIN);
        auto r = berth::test::run_command(args);
        EXPECT_EQ(r.exit_code, 1) << args[1];
        EXPECT_NE(r.err.find("not supported"), std::string::npos) << args[1] << ": " << r.err;
    }
}

}  // namespace
