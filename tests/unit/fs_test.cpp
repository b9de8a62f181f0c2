#include "common/fs.hpp"

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(CleanPath, CollapsesDotsAndSlashes) {
    EXPECT_EQ(clean_path("/a//b/./c/"), "/a/b/c");
    EXPECT_EQ(clean_path("/a/../../b"), "/b");
    EXPECT_EQ(clean_path("a/../../b"), "../b");
    EXPECT_EQ(clean_path(""), ".");
    EXPECT_EQ(clean_path("/"), "/");
}

TEST(PathJoin, ExactlyOneSlash) {
    EXPECT_EQ(path_join("/root/", "/etc/passwd"), "/root/etc/passwd");
    EXPECT_EQ(path_join("/root", "etc"), "/root/etc");
}

TEST(Fs, WriteReadAtomicAndRemoveAll) {
    char tmpl[] = "/tmp/berth-fs-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string dir = tmpl;
    ASSERT_TRUE(mkdir_all(dir + "/a/b/c"));
    ASSERT_TRUE(write_file_atomic(dir + "/a/b/c/f", "hello"));
    auto r = read_file(dir + "/a/b/c/f");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, "hello");
    EXPECT_FALSE(path_exists(dir + "/a/b/c/f.tmp"));
    auto missing = read_file(dir + "/nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_NE(missing.error().message().find(dir + "/nope"), std::string::npos);
    ASSERT_TRUE(remove_all(dir));
    EXPECT_FALSE(path_exists(dir));
}

}  // namespace
}  // namespace berth
