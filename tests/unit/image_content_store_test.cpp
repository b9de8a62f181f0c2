#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fs.hpp"
#include "image/content_store.hpp"
#include "image_test_util.hpp"

namespace berth::image {
namespace {

using testing::TempDir;

// Names in a directory, "." and ".." left out.
std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (auto* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
    return s;
}

TEST(ContentStore, WriteReadListRemove) {
    TempDir dir("cs");
    ASSERT_TRUE(dir.ok());
    auto store = ContentStore::open(dir.path() + "/store");
    ASSERT_TRUE(store) << store.error().message();

    const std::string data = pattern(300000);
    const Digest d = Sha256::of(data);
    EXPECT_FALSE(store->exists(d));
    auto w = store->begin_write(d, data.size());
    ASSERT_TRUE(w) << w.error().message();
    ASSERT_TRUE(w->has_value());
    for (size_t off = 0; off < data.size(); off += 7777) {
        auto r = (*w)->write(std::string_view(data).substr(off, 7777));
        ASSERT_TRUE(r) << r.error().message();
    }
    // Nothing is visible before the commit.
    EXPECT_FALSE(store->exists(d));
    auto c = (*w)->commit();
    ASSERT_TRUE(c) << c.error().message();

    EXPECT_TRUE(store->exists(d));
    EXPECT_EQ(store->blob_path(d), dir.path() + "/store/blobs/sha256/" + d.hex());
    auto sz = store->size(d);
    ASSERT_TRUE(sz);
    EXPECT_EQ(*sz, data.size());
    auto back = store->read(d);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, data);
    EXPECT_TRUE(store->verify(d));
    struct stat st {};
    ASSERT_EQ(::stat(store->blob_path(d).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0444u);

    auto d2 = store->put("small");
    ASSERT_TRUE(d2) << d2.error().message();
    EXPECT_EQ(*d2, Sha256::of("small"));
    // A second put of present content finds it and writes nothing.
    auto again = store->begin_write(*d2);
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->has_value());

    // A stray non-digest name is not listed.
    ASSERT_TRUE(write_file(dir.path() + "/store/blobs/sha256/not-a-digest", "x"));
    auto all = store->list();
    ASSERT_TRUE(all) << all.error().message();
    std::vector<Digest> want{d, *d2};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(*all, want);

    ASSERT_TRUE(store->remove(d));
    EXPECT_FALSE(store->exists(d));
    auto gone = store->remove(d);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code(), ENOENT);
    EXPECT_NE(gone.error().message().find(d.string()), std::string::npos);
    auto missing = store->read(d);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find(d.string()), std::string::npos);
    // Only lock files remain in ingest: temp files have no names.
    for (const auto& n : entries(dir.path() + "/store/ingest")) EXPECT_TRUE(n.ends_with(".lock")) << n;
}

TEST(ContentStore, WrongDigestLeavesNothingVisible) {
    TempDir dir("cs");
    auto store = ContentStore::open(dir.path());
    ASSERT_TRUE(store);
    const Digest claimed = Sha256::of("the real content");
    auto w = store->begin_write(claimed);
    ASSERT_TRUE(w && w->has_value());
    ASSERT_TRUE((*w)->write("tampered content"));
    auto c = (*w)->commit();
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find(claimed.string()), std::string::npos) << c.error().message();
    EXPECT_NE(c.error().message().find(Sha256::of("tampered content").string()), std::string::npos);
    EXPECT_FALSE(store->exists(claimed));
    EXPECT_TRUE(entries(dir.path() + "/blobs/sha256").empty());
    // The writer is finished: no second commit.
    EXPECT_FALSE((*w)->commit());
    // The lock was released: a new writer can start and write the right content.
    w->reset();
    auto w2 = store->begin_write(claimed);
    ASSERT_TRUE(w2 && w2->has_value());
    ASSERT_TRUE((*w2)->write("the real content"));
    ASSERT_TRUE((*w2)->commit());
    EXPECT_TRUE(store->verify(claimed));
}

TEST(ContentStore, WrongSizeRefused) {
    TempDir dir("cs");
    auto store = ContentStore::open(dir.path());
    ASSERT_TRUE(store);
    const Digest d = Sha256::of("12345");
    {
        auto w = store->begin_write(d, 4);
        ASSERT_TRUE(w && w->has_value());
        auto r = (*w)->write("12345");
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("more than the expected 4 bytes"), std::string::npos);
        EXPECT_FALSE((*w)->commit());
    }
    {
        auto w = store->begin_write(d, 6);
        ASSERT_TRUE(w && w->has_value());
        ASSERT_TRUE((*w)->write("12345"));
        auto c = (*w)->commit();
        ASSERT_FALSE(c);
        EXPECT_NE(c.error().message().find("got 5 bytes, expected 6"), std::string::npos) << c.error().message();
    }
    EXPECT_FALSE(store->exists(d));
    EXPECT_TRUE(entries(dir.path() + "/blobs/sha256").empty());
}

TEST(ContentStore, AbandonedWriterLeavesNothing) {
    TempDir dir("cs");
    auto store = ContentStore::open(dir.path());
    ASSERT_TRUE(store);
    const Digest d = Sha256::of("abandoned");
    {
        auto w = store->begin_write(d);
        ASSERT_TRUE(w && w->has_value());
        ASSERT_TRUE((*w)->write("abandon"));
    }
    EXPECT_FALSE(store->exists(d));
    EXPECT_TRUE(entries(dir.path() + "/blobs/sha256").empty());
    EXPECT_EQ(entries(dir.path() + "/ingest"), std::vector<std::string>{d.hex() + ".lock"});
}

TEST(ContentStore, CorruptedBlobDetectedOnRead) {
    TempDir dir("cs");
    auto store = ContentStore::open(dir.path());
    ASSERT_TRUE(store);
    auto d = store->put("original");
    ASSERT_TRUE(d);
    const std::string path = store->blob_path(*d);
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    ASSERT_TRUE(write_file(path, "0riginal"));
    auto r = store->read(*d);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find(d->string()), std::string::npos) << r.error().message();
    auto v = store->verify(*d);
    ASSERT_FALSE(v);
    EXPECT_NE(v.error().message().find(Sha256::of("0riginal").string()), std::string::npos);
}

// True once /proc/locks lists a blocked flock waiter on the inode of `path`.
bool has_blocked_waiter(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return false;
    std::ifstream locks("/proc/locks");
    std::string line;
    const std::string ino = ":" + std::to_string(st.st_ino) + " ";
    while (std::getline(locks, line))
        if (line.find("->") != std::string::npos && line.find("FLOCK") != std::string::npos &&
            line.find(ino) != std::string::npos)
            return true;
    return false;
}

// Polls until a waiter blocks on the lock; false when `gone()` says the waiter ended without ever blocking.
template <typename Gone>
bool wait_for_blocked_waiter(const std::string& lock_path, Gone gone) {
    while (!has_blocked_waiter(lock_path)) {
        if (gone()) return false;
        ::usleep(1000);
    }
    return true;
}

TEST(ContentStore, TwoThreadsWritingOneBlob) {
    TempDir dir("cs");
    auto store = ContentStore::open(dir.path());
    ASSERT_TRUE(store);
    const std::string data = pattern(1 << 20);
    const Digest d = Sha256::of(data);
    const std::string lock_path = dir.path() + "/ingest/" + d.hex() + ".lock";

    auto first = store->begin_write(d, data.size());
    ASSERT_TRUE(first && first->has_value());
    ASSERT_TRUE((*first)->write(std::string_view(data).substr(0, data.size() / 2)));

    // The second writer starts while the first is mid-blob: it must wait, then find the blob present.
    std::string second_outcome;
    std::atomic<bool> second_done = false;
    std::thread second([&] {
        auto w = store->begin_write(d, data.size());
        if (!w)
            second_outcome = "error: " + w.error().message();
        else if (w->has_value())
            second_outcome = "got a writer";
        else
            second_outcome = store->exists(d) ? "present" : "absent";
        second_done = true;
    });
    EXPECT_TRUE(wait_for_blocked_waiter(lock_path, [&] { return second_done.load(); })) << second_outcome;
    ASSERT_TRUE((*first)->write(std::string_view(data).substr(data.size() / 2)));
    auto c = (*first)->commit();
    EXPECT_TRUE(c) << c.error().message();
    first->reset();
    second.join();
    EXPECT_EQ(second_outcome, "present");
    auto back = store->read(d);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, data);
}

TEST(ContentStore, TwoProcessesWritingOneBlob) {
    TempDir dir("cs");
    ASSERT_TRUE(ContentStore::open(dir.path()));
    const std::string data = pattern(1 << 20);
    const Digest d = Sha256::of(data);
    const std::string lock_path = dir.path() + "/ingest/" + d.hex() + ".lock";
    const std::string root = dir.path();

    // Child A holds the writer mid-blob until the parent writes to `go`; child B starts meanwhile and must block.
    int ready[2], go[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go), 0);
    pid_t a = ::fork();
    ASSERT_GE(a, 0);
    if (a == 0) {
        auto store = ContentStore::open(root);
        auto w = store->begin_write(d, data.size());
        if (!w || !w->has_value()) ::_exit(10);
        if (!(*w)->write(std::string_view(data).substr(0, 1000))) ::_exit(11);
        char c = 'r';
        if (::write(ready[1], &c, 1) != 1) ::_exit(12);
        if (::read(go[0], &c, 1) != 1) ::_exit(13);
        if (!(*w)->write(std::string_view(data).substr(1000))) ::_exit(14);
        if (!(*w)->commit()) ::_exit(15);
        ::_exit(0);
    }
    ::close(ready[1]);  // a child A that dies early then reads as EOF, not a hang
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    pid_t b = ::fork();
    ASSERT_GE(b, 0);
    if (b == 0) {
        auto store = ContentStore::open(root);
        auto w = store->begin_write(d, data.size());
        if (!w) ::_exit(20);
        if (w->has_value()) ::_exit(21);  // must find the blob present, not write it again
        auto back = store->read(d);
        ::_exit(back && *back == data ? 0 : 22);
    }
    int sa = 0, sb = 0;
    bool b_reaped = false;
    bool blocked = wait_for_blocked_waiter(lock_path, [&] { return b_reaped = ::waitpid(b, &sb, WNOHANG) == b; });
    EXPECT_TRUE(blocked) << "second writer ended without waiting, status " << sb;
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    ASSERT_EQ(::waitpid(a, &sa, 0), a);
    if (!b_reaped) {
        ASSERT_EQ(::waitpid(b, &sb, 0), b);
    }
    for (int fd : {ready[0], go[0], go[1]}) ::close(fd);
    EXPECT_TRUE(WIFEXITED(sa) && WEXITSTATUS(sa) == 0) << "writer status " << sa;
    EXPECT_TRUE(WIFEXITED(sb) && WEXITSTATUS(sb) == 0) << "second writer status " << sb;
    auto store = ContentStore::open(root);
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->verify(d));
    EXPECT_EQ(entries(root + "/blobs/sha256"), std::vector<std::string>{d.hex()});
}

}  // namespace
}  // namespace berth::image
