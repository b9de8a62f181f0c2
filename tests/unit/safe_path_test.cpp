#include "linux/safe_path.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/fs.hpp"

namespace berth::sys {
namespace {

class SafePathTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-safepath-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        root_ = dir_ + "/root";
        outside_ = dir_ + "/outside";
        ASSERT_TRUE(mkdir_all(root_ + "/etc"));
        ASSERT_TRUE(mkdir_all(outside_));
        ASSERT_TRUE(write_file(outside_ + "/marker", "host"));
        ASSERT_TRUE(write_file(root_ + "/etc/file", "inside"));
        ASSERT_EQ(::symlink("/", (root_ + "/abs").c_str()), 0);
        ASSERT_EQ(::symlink("../../../../..", (root_ + "/etc/up").c_str()), 0);
        ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/out").c_str()), 0);
        ASSERT_EQ(::symlink("/newdir/sub", (root_ + "/dangling").c_str()), 0);
        ASSERT_EQ(::symlink("a/b", (root_ + "/rel").c_str()), 0);
        ASSERT_EQ(::symlink("loop2", (root_ + "/loop1").c_str()), 0);
        ASSERT_EQ(::symlink("loop1", (root_ + "/loop2").c_str()), 0);
        ASSERT_EQ(::symlink("/etc/file", (root_ + "/filelink").c_str()), 0);
        root_fd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        ASSERT_TRUE(root_fd_.valid());
    }
    void TearDown() override {
        root_fd_.reset();
        if (!dir_.empty()) {
            EXPECT_TRUE(remove_all(dir_));
        }
    }

    static ino_t ino_of_fd(int fd) {
        struct stat st {};
        EXPECT_EQ(::fstat(fd, &st), 0);
        return st.st_ino;
    }
    static ino_t ino_of(const std::string& path) {
        struct stat st {};
        EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
        return st.st_ino;
    }

    std::string dir_, root_, outside_;
    UniqueFd root_fd_;
};

TEST_F(SafePathTest, OpenInRootKeepsAbsoluteSymlinksAndDotDotInside) {
    auto etc = open_in_root(root_fd_.get(), "/abs/abs/etc", O_PATH);
    ASSERT_TRUE(etc) << etc.error().message();
    EXPECT_EQ(ino_of_fd(etc->get()), ino_of(root_ + "/etc"));

    auto up = open_in_root(root_fd_.get(), "/etc/up", O_PATH);
    ASSERT_TRUE(up) << up.error().message();
    EXPECT_EQ(ino_of_fd(up->get()), ino_of(root_));

    auto dots = open_in_root(root_fd_.get(), "../../../../etc/file", O_RDONLY);
    ASSERT_TRUE(dots) << dots.error().message();
    auto text = read_fd(dots->get());
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "inside");
}

TEST_F(SafePathTest, OpenInRootDoesNotReachTheHostThroughAnAbsoluteSymlink) {
    // out -> <tmp>/outside names <root>/<tmp>/outside, which does not exist.
    auto r = open_in_root(root_fd_.get(), "/out/marker", O_RDONLY);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ENOENT);
    EXPECT_NE(r.error().message().find("/out/marker"), std::string::npos) << r.error().message();
}

TEST_F(SafePathTest, OpenInRootRefusesMagicLinks) {
    UniqueFd host_root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(host_root.valid());
    auto r = open_in_root(host_root.get(), "/proc/self/root/etc", O_PATH);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ELOOP);
}

TEST_F(SafePathTest, OpenInRootReportsLoops) {
    auto r = open_in_root(root_fd_.get(), "/loop1", O_PATH);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ELOOP);
}

TEST_F(SafePathTest, MkdirAllCreatesInsideThroughHostileSymlinks) {
    auto a = mkdir_all_in_root(root_fd_.get(), "/out/created/deeper", 0755);
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_FALSE(path_exists(outside_ + "/created"));
    EXPECT_EQ(ino_of_fd(a->get()), ino_of(root_ + outside_ + "/created/deeper"));

    auto b = mkdir_all_in_root(root_fd_.get(), "/etc/up/x", 0755);
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(ino_of_fd(b->get()), ino_of(root_ + "/x"));

    auto c = mkdir_all_in_root(root_fd_.get(), "/abs/../../y/./z/", 0700);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(ino_of_fd(c->get()), ino_of(root_ + "/y/z"));
    EXPECT_FALSE(path_exists(dir_ + "/y"));
}

TEST_F(SafePathTest, MkdirAllFollowsDanglingAndRelativeSymlinksInsideTheRoot) {
    auto d = mkdir_all_in_root(root_fd_.get(), "/dangling/leaf", 0755);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(ino_of_fd(d->get()), ino_of(root_ + "/newdir/sub/leaf"));

    auto r = mkdir_all_in_root(root_fd_.get(), "/rel/c", 0755);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(ino_of_fd(r->get()), ino_of(root_ + "/a/b/c"));

    // Existing directories are fine and give the same directory.
    auto again = mkdir_all_in_root(root_fd_.get(), "/a/b/c", 0755);
    ASSERT_TRUE(again);
    EXPECT_EQ(ino_of_fd(again->get()), ino_of(root_ + "/a/b/c"));
}

TEST_F(SafePathTest, MkdirAllErrors) {
    auto through_file = mkdir_all_in_root(root_fd_.get(), "/etc/file/sub", 0755);
    ASSERT_FALSE(through_file);
    EXPECT_EQ(through_file.error().code(), ENOTDIR);
    EXPECT_NE(through_file.error().message().find("/etc/file"), std::string::npos) << through_file.error().message();

    auto loop = mkdir_all_in_root(root_fd_.get(), "/loop1/x", 0755);
    ASSERT_FALSE(loop);
    EXPECT_EQ(loop.error().code(), ELOOP);
}

TEST_F(SafePathTest, CreateFileInRoot) {
    auto f = create_file_in_root(root_fd_.get(), "/out/newfile", 0600);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_FALSE(path_exists(outside_ + "/newfile"));
    struct stat st {};
    ASSERT_EQ(::fstat(f->get(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_ino, ino_of(root_ + outside_ + "/newfile"));
    EXPECT_EQ(st.st_mode & 0077, 0U);

    // An existing file is kept; a final symlink is followed inside the root.
    auto existing = create_file_in_root(root_fd_.get(), "/filelink", 0644);
    ASSERT_TRUE(existing) << existing.error().message();
    EXPECT_EQ(ino_of_fd(existing->get()), ino_of(root_ + "/etc/file"));
    auto text = read_file(root_ + "/etc/file");
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "inside");

    // Missing parents are created.
    auto deep = create_file_in_root(root_fd_.get(), "/p/q/r.conf", 0644);
    ASSERT_TRUE(deep) << deep.error().message();
    EXPECT_EQ(ino_of_fd(deep->get()), ino_of(root_ + "/p/q/r.conf"));
}

TEST_F(SafePathTest, FdPath) {
    EXPECT_EQ(fd_path(7), "/proc/self/fd/7");
}

// A component flipped between a directory and a symlink to the outside, as fast as possible while the walk
// runs: whatever the interleaving, nothing may be created outside the root.
TEST_F(SafePathTest, ConcurrentSymlinkExchangeNeverEscapes) {
    ASSERT_TRUE(mkdir_all(root_ + "/race"));
    ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/race-link").c_str()), 0);
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop.load()) {
            ::renameat2(AT_FDCWD, (root_ + "/race").c_str(), AT_FDCWD, (root_ + "/race-link").c_str(), RENAME_EXCHANGE);
        }
    });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    int ok = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (mkdir_all_in_root(root_fd_.get(), "/race/x/y", 0755)) ++ok;
        if (create_file_in_root(root_fd_.get(), "/race/f", 0644)) ++ok;
    }
    stop = true;
    flipper.join();
    EXPECT_GT(ok, 0);
    EXPECT_FALSE(path_exists(outside_ + "/x"));
    EXPECT_FALSE(path_exists(outside_ + "/f"));
}

}  // namespace
}  // namespace berth::sys
