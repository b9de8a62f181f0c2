#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "common/fs.hpp"
#include "image/snapshots.hpp"
#include "image_tar_builder.hpp"
#include "image_test_util.hpp"

namespace berth::image {
namespace {

using namespace testing;

LayerSource source_of(const std::string& blob, size_t* pos) {
    return [&blob, pos](std::span<std::byte> buf) -> Result<size_t> {
        size_t n = std::min(buf.size(), blob.size() - *pos);
        std::memcpy(buf.data(), blob.data() + *pos, n);
        *pos += n;
        return n;
    };
}




TEST(ChainId, FollowsTheImageSpec) {
    const Digest a = Sha256::of("layer a"), b = Sha256::of("layer b"), c = Sha256::of("layer c");
    auto ids = chain_ids(std::vector<Digest>{a, b, c});
    ASSERT_EQ(ids.size(), 3u);
    EXPECT_EQ(ids[0], a);
    EXPECT_EQ(ids[1], Sha256::of("sha256:" + a.hex() + " sha256:" + b.hex()));
    EXPECT_EQ(ids[2], Sha256::of(ids[1].string() + " " + c.string()));
    EXPECT_EQ(chain_id(Digest(), a), a);
    EXPECT_EQ(chain_id(ids[1], c), ids[2]);
    EXPECT_TRUE(chain_ids({}).empty());
}

class Snapshots : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (overlay mounts, whiteouts)";
        ASSERT_TRUE(tmp_.ok());
        auto s = SnapshotStore::open(tmp_.path());
        ASSERT_TRUE(s) << s.error().message();
        store_.emplace(std::move(*s));
    }
    // Creates the snapshot of `members` on `parent`; returns its chain id (invalid on failure, with the error).
    Digest add(const Digest& parent, const std::vector<TarMember>& members, std::string* error = nullptr,
               const Digest* claimed_diff_id = nullptr) {
        const std::string tar = build_layer(members);
        const std::string blob = build_layer(members, LayerCompression::gzip);
        size_t pos = 0;
        auto r = store_->create(parent, claimed_diff_id ? *claimed_diff_id : Sha256::of(tar), source_of(blob, &pos));
        if (!r) {
            if (error)
                *error = r.error().message();
            else
                ADD_FAILURE() << r.error().message();
            return Digest();
        }
        return *r;
    }
    TempDir tmp_{"snap"};
    std::optional<SnapshotStore> store_;
};

TEST_F(Snapshots, ChainOfLayersMountedAsContainerRootfs) {
    Digest c1 =
        add(Digest(), {dir("etc"), file("etc/os", "base"), file("etc/gone", "g"), dir("data"), file("data/old", "o")});
    Digest c2 = add(c1, {file("etc/os", "updated"), file("etc/.wh.gone", ""), file("data/.wh..wh..opq", ""),
                         file("data/new", "n")});
    Digest c3 = add(c2, {file("app", "binary", 0755)});
    ASSERT_TRUE(c3.valid());
    EXPECT_EQ(c1, Sha256::of(build_layer({dir("etc"), file("etc/os", "base"), file("etc/gone", "g"), dir("data"),
                                          file("data/old", "o")})));
    EXPECT_EQ(c3, chain_ids(std::vector<Digest>{
                      c1,
                      Sha256::of(build_layer({file("etc/os", "updated"), file("etc/.wh.gone", ""),
                                              file("data/.wh..wh..opq", ""), file("data/new", "n")})),
                      Sha256::of(build_layer({file("app", "binary", 0755)}))})[2]);
    EXPECT_EQ(read_or(store_->fs_path(c1) + "/etc/os"), "base");
    EXPECT_EQ(read_or(tmp_.path() + "/snapshots/sha256/" + c2.hex() + "/parent"), c1.string());

    auto lowers = store_->lowerdirs(c3);
    ASSERT_TRUE(lowers) << lowers.error().message();
    EXPECT_EQ(*lowers, (std::vector<std::string>{store_->fs_path(c3), store_->fs_path(c2), store_->fs_path(c1)}));

    const std::string cdir = tmp_.path() + "/containers/c1", rootfs = cdir + "/rootfs";
    ASSERT_TRUE(mkdir_all(rootfs));
    auto m = mount_overlay(*lowers, cdir, rootfs);
    ASSERT_TRUE(m) << m.error().message();
    MountGuard guard{rootfs};
    EXPECT_TRUE(is_mounted(rootfs));
    EXPECT_EQ(read_or(rootfs + "/etc/os"), "updated");
    EXPECT_FALSE(path_exists(rootfs + "/etc/gone"));
    EXPECT_FALSE(path_exists(rootfs + "/data/old"));
    EXPECT_EQ(read_or(rootfs + "/data/new"), "n");
    EXPECT_EQ(read_or(rootfs + "/app"), "binary");
    // Writes land in the container's upper dir; the snapshots stay as they were.
    ASSERT_TRUE(write_file(rootfs + "/etc/os", "container"));
    EXPECT_EQ(read_or(cdir + "/upper/etc/os"), "container");
    EXPECT_EQ(read_or(store_->fs_path(c2) + "/etc/os"), "updated");

    auto u = unmount_overlay(rootfs);
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_FALSE(is_mounted(rootfs));
    EXPECT_FALSE(path_exists(rootfs + "/etc"));
    auto again = unmount_overlay(rootfs);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message().find(rootfs), std::string::npos);
}

TEST_F(Snapshots, ExistingSnapshotIsNotUnpackedAgain) {
    Digest c1 = add(Digest(), {file("f", "1")});
    ASSERT_TRUE(c1.valid());
    // A source that fails if read: the existing snapshot must be found first.
    LayerSource failing = [](std::span<std::byte>) -> Result<size_t> { return fail("source read"); };
    auto again = store_->create(Digest(), c1, failing);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*again, c1);
}

TEST_F(Snapshots, ConcurrentCreatorsUnpackOnce) {
    const std::string tar = build_layer({file("f", "once")});
    const Digest diff_id = Sha256::of(tar);
    // Each creator counts the bytes it was asked for: only one may read the layer.
    std::atomic<size_t> bytes_read = 0;
    auto make_source = [&](size_t* pos) -> LayerSource {
        return [&, pos](std::span<std::byte> buf) -> Result<size_t> {
            size_t n = std::min(buf.size(), tar.size() - *pos);
            std::memcpy(buf.data(), tar.data() + *pos, n);
            *pos += n;
            bytes_read += n;
            return n;
        };
    };
    std::vector<std::string> results(4);
    std::vector<size_t> positions(4, 0);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < results.size(); ++i)
        threads.emplace_back([&, i] {
            auto r = store_->create(Digest(), diff_id, make_source(&positions[i]));
            results[i] = r ? r->string() : r.error().message();
        });
    for (auto& t : threads) t.join();
    for (const auto& r : results) EXPECT_EQ(r, diff_id.string());
    EXPECT_EQ(bytes_read.load(), tar.size());
    EXPECT_EQ(read_or(store_->fs_path(diff_id) + "/f"), "once");
}

TEST_F(Snapshots, DiffIdMismatchLeavesNothing) {
    const Digest wrong = Sha256::of("not this layer");
    std::string err;
    Digest c = add(Digest(), {file("f", "1")}, &err, &wrong);
    EXPECT_FALSE(c.valid());
    EXPECT_NE(err.find("not the diff_id " + wrong.string()), std::string::npos) << err;
    EXPECT_NE(err.find(Sha256::of(build_layer({file("f", "1")})).string()), std::string::npos) << err;
    EXPECT_FALSE(store_->exists(wrong));
    EXPECT_EQ(::rmdir((tmp_.path() + "/snapshots/tmp").c_str()), 0) << "temp dir not empty";
    EXPECT_EQ(::rmdir((tmp_.path() + "/snapshots/sha256").c_str()), 0) << "a snapshot was left";
}

TEST_F(Snapshots, HostileLayerLeavesNothing) {
    const std::string tar = build_layer({file("ok", "x"), file("../escape", "x")});
    size_t pos = 0;
    auto r = store_->create(Digest(), Sha256::of(tar), source_of(tar, &pos));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("\"..\" component"), std::string::npos) << r.error().message();
    EXPECT_EQ(::rmdir((tmp_.path() + "/snapshots/tmp").c_str()), 0) << "temp dir not empty";
    EXPECT_FALSE(path_exists(tmp_.path() + "/snapshots/escape"));
    EXPECT_FALSE(path_exists(tmp_.path() + "/escape"));
}

TEST_F(Snapshots, MissingParentRefused) {
    std::string err;
    const Digest parent = Sha256::of("no such snapshot");
    Digest c = add(parent, {file("f", "1")}, &err);
    EXPECT_FALSE(c.valid());
    EXPECT_NE(err.find("parent snapshot " + parent.string() + " does not exist"), std::string::npos) << err;
}

TEST_F(Snapshots, AbandonedTempRemovedOnOpenAndRemoveSnapshot) {
    Digest c1 = add(Digest(), {file("f", "1")});
    ASSERT_TRUE(c1.valid());
    // What a crash mid-create leaves: a temp dir whose lock nobody holds.
    const std::string stale = tmp_.path() + "/snapshots/tmp/" + Sha256::of("x").hex() + ".abc123";
    ASSERT_TRUE(mkdir_all(stale + "/fs/half"));
    auto reopened = SnapshotStore::open(tmp_.path());
    ASSERT_TRUE(reopened) << reopened.error().message();
    EXPECT_FALSE(path_exists(stale));
    EXPECT_TRUE(reopened->exists(c1));
    ASSERT_TRUE(reopened->remove(c1));
    EXPECT_FALSE(reopened->exists(c1));
    EXPECT_FALSE(path_exists(tmp_.path() + "/snapshots/sha256/" + c1.hex()));
    auto gone = reopened->remove(c1);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code(), ENOENT);
}

// More layers than full lowerdir paths would fit in one page of mount options.
TEST_F(Snapshots, ManyLayersMount) {
    constexpr int kLayers = 120;
    Digest chain;
    for (int i = 0; i < kLayers; ++i) {
        chain = add(chain, {file(fmt::format("f{}", i), std::to_string(i)), file("top", std::to_string(i))});
        ASSERT_TRUE(chain.valid()) << "layer " << i;
    }
    auto lowers = store_->lowerdirs(chain);
    ASSERT_TRUE(lowers) << lowers.error().message();
    ASSERT_EQ(lowers->size(), static_cast<size_t>(kLayers));
    size_t joined = 0;
    for (const auto& l : *lowers) joined += l.size() + 1;
    EXPECT_GT(joined, 4096u);  // the plain "lowerdir=/a:/b:..." form would not fit

    const std::string cdir = tmp_.path() + "/containers/many", rootfs = cdir + "/rootfs";
    ASSERT_TRUE(mkdir_all(rootfs));
    auto m = mount_overlay(*lowers, cdir, rootfs);
    ASSERT_TRUE(m) << m.error().message();
    MountGuard guard{rootfs};
    for (int i = 0; i < kLayers; ++i) EXPECT_EQ(read_or(rootfs + fmt::format("/f{}", i)), std::to_string(i));
    EXPECT_EQ(read_or(rootfs + "/top"), std::to_string(kLayers - 1));
    ASSERT_TRUE(unmount_overlay(rootfs));
    EXPECT_FALSE(is_mounted(rootfs));
}

TEST(MountOverlay, NoLowerLayersRefused) {
    TempDir tmp("ovl");
    auto m = mount_overlay({}, tmp.path(), tmp.path() + "/rootfs");
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().message().find("at least one lower layer"), std::string::npos);
}

}  // namespace
}  // namespace berth::image
