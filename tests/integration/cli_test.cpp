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
