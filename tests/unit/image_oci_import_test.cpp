#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/fs.hpp"
#include "image/oci_layout.hpp"
#include "image_test_util.hpp"

namespace berth::image {
namespace {

using testing::MountGuard;
using testing::read_or;
using testing::TempDir;
using Json = nlohmann::json;




// Builds the busybox test image with scripts/make-oci-busybox.sh; "" on success.
std::string make_layout(const std::string& dir, const std::string& archive = "") {
    std::string cmd = std::string("bash " BERTH_SOURCE_DIR "/scripts/make-oci-busybox.sh ") +
                      (archive.empty() ? "" : "--archive " + archive + " ") + dir + " >/dev/null";
    int rc = std::system(cmd.c_str());
    return rc == 0 ? "" : "make-oci-busybox.sh failed: " + std::to_string(rc);
}

// Names in `dir` that look like an export's temp file ("<name>.tmp-XXXXXX").
int temp_files_in(const std::string& dir) {
    int n = 0;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return -1;
    while (auto* e = ::readdir(d)) n += std::string_view(e->d_name).find(".tmp-") != std::string_view::npos;
    ::closedir(d);
    return n;
}

// Stores `data` as a blob of the layout; returns its digest.
Digest put_layout_blob(const std::string& layout, const std::string& data) {
    Digest d = Sha256::of(data);
    EXPECT_TRUE(write_file(layout + "/blobs/sha256/" + d.hex(), data));
    return d;
}

class OciImport : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (whiteouts, overlay mounts)";
        if (!path_exists("/bin/busybox")) GTEST_SKIP() << "needs busybox-static";
        ASSERT_TRUE(tmp_.ok());
        layout_ = tmp_.path() + "/layout";
        auto c = ContentStore::open(tmp_.path() + "/store");
        ASSERT_TRUE(c) << c.error().message();
        content_.emplace(std::move(*c));
        auto s = SnapshotStore::open(tmp_.path() + "/store");
        ASSERT_TRUE(s) << s.error().message();
        snapshots_.emplace(std::move(*s));
    }
    Json layout_json(const std::string& name) { return Json::parse(read_or(layout_ + "/" + name)); }
    Json blob_json(const std::string& digest) {
        return Json::parse(read_or(layout_ + "/blobs/sha256/" + digest.substr(7)));
    }
    // Checks the rootfs the imported image mounts as, file by file.
    void check_rootfs(const ImportedImage& img) {
        auto lowers = snapshots_->lowerdirs(img.chain_id);
        ASSERT_TRUE(lowers) << lowers.error().message();
        ASSERT_EQ(lowers->size(), 2u);
        const std::string cdir = tmp_.path() + "/container", rootfs = cdir + "/rootfs";
        ASSERT_TRUE(mkdir_all(rootfs));
        auto m = mount_overlay(*lowers, cdir, rootfs);
        ASSERT_TRUE(m) << m.error().message();
        MountGuard guard{rootfs};
        EXPECT_EQ(Sha256::of(read_or(rootfs + "/bin/busybox")), Sha256::of(read_or("/bin/busybox")));
        struct stat st {};
        ASSERT_EQ(::lstat((rootfs + "/bin/busybox").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0755u);
        char target[64] = {};
        ASSERT_GT(::readlink((rootfs + "/bin/sh").c_str(), target, sizeof target - 1), 0);
        EXPECT_STREQ(target, "busybox");
        EXPECT_EQ(read_or(rootfs + "/etc/hostname"), "berth\n");
        EXPECT_FALSE(path_exists(rootfs + "/tmp/removed"));  // whited out by layer 2
        ASSERT_EQ(::lstat((rootfs + "/tmp").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 01777u);
        EXPECT_EQ(read_or(rootfs + "/etc/passwd").substr(0, 5), "root:");
        ASSERT_TRUE(unmount_overlay(rootfs));
    }
    TempDir tmp_{"oci"};
    std::string layout_;
    std::optional<ContentStore> content_;
    std::optional<SnapshotStore> snapshots_;
};

TEST_F(OciImport, DirectoryLayoutIntoStoreAndSnapshots) {
    ASSERT_EQ(make_layout(layout_), "");
    auto imported = import_oci_layout(layout_, *content_, *snapshots_);
    ASSERT_TRUE(imported) << imported.error().message();
    ASSERT_EQ(imported->size(), 1u);
    const ImportedImage& img = imported->front();
    EXPECT_EQ(img.ref_name, "localhost/berth/busybox:latest");
    EXPECT_EQ(img.manifest.digest.string(), layout_json("index.json")["manifests"][0]["digest"]);
    ASSERT_EQ(img.config.diff_ids.size(), 2u);
    EXPECT_EQ(img.chain_id, chain_ids(img.config.diff_ids).back());
    EXPECT_EQ(img.config.platform.os, "linux");
    // Manifest, config and both layers are in the content store, verified.
    auto blobs = content_->list();
    ASSERT_TRUE(blobs);
    EXPECT_EQ(blobs->size(), 4u);
    for (const auto& d : *blobs) EXPECT_TRUE(content_->verify(d)) << d.string();
    check_rootfs(img);

    // Importing again finds everything present and gives the same image.
    auto again = import_oci_layout(layout_, *content_, *snapshots_);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->front().chain_id, img.chain_id);
}

TEST_F(OciImport, OciArchive) {
    const std::string archive = tmp_.path() + "/busybox.tar";
    ASSERT_EQ(make_layout(layout_, archive), "");
    auto imported = import_oci_archive(archive, *content_, *snapshots_);
    ASSERT_TRUE(imported) << imported.error().message();
    ASSERT_EQ(imported->size(), 1u);
    EXPECT_EQ(imported->front().ref_name, "localhost/berth/busybox:latest");
    check_rootfs(imported->front());
}

TEST_F(OciImport, DiffIdMismatchRefusedNamingTheLayer) {
    ASSERT_EQ(make_layout(layout_), "");
    // Rewrite the config with the two diff_ids swapped, and the manifest and index.json to point at it.
    Json index = layout_json("index.json");
    const std::string manifest_digest = index["manifests"][0]["digest"];
    Json manifest = blob_json(manifest_digest);
    Json config = blob_json(manifest["config"]["digest"]);
    std::swap(config["rootfs"]["diff_ids"][0], config["rootfs"]["diff_ids"][1]);
    const std::string config_text = config.dump();
    manifest["config"]["digest"] = put_layout_blob(layout_, config_text).string();
    manifest["config"]["size"] = config_text.size();
    const std::string manifest_text = manifest.dump();
    index["manifests"][0]["digest"] = put_layout_blob(layout_, manifest_text).string();
    index["manifests"][0]["size"] = manifest_text.size();
    ASSERT_TRUE(write_file(layout_ + "/index.json", index.dump()));

    auto imported = import_oci_layout(layout_, *content_, *snapshots_);
    ASSERT_FALSE(imported);
    const std::string& msg = imported.error().message();
    const std::string layer1 = manifest["layers"][0]["digest"];
    EXPECT_NE(msg.find("layer " + layer1 + " (1 of 2)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not the diff_id " + std::string(config["rootfs"]["diff_ids"][0])), std::string::npos) << msg;
    // No snapshot exists: not under the wrong chain id, not half-made in tmp/.
    EXPECT_EQ(::rmdir((tmp_.path() + "/store/snapshots/sha256").c_str()), 0) << "a snapshot was left";
    EXPECT_EQ(::rmdir((tmp_.path() + "/store/snapshots/tmp").c_str()), 0) << "a temp snapshot was left";
}

TEST_F(OciImport, CorruptedLayerBlobRefused) {
    ASSERT_EQ(make_layout(layout_), "");
    Json manifest = blob_json(layout_json("index.json")["manifests"][0]["digest"]);
    const std::string layer2 = manifest["layers"][1]["digest"];
    const std::string path = layout_ + "/blobs/sha256/" + layer2.substr(7);
    std::string data = read_or(path);
    data[600] ^= 1;  // inside the first member's data
    ASSERT_TRUE(write_file(path, data));

    auto imported = import_oci_layout(layout_, *content_, *snapshots_);
    ASSERT_FALSE(imported);
    EXPECT_NE(imported.error().message().find("layer " + layer2 + " (2 of 2)"), std::string::npos)
        << imported.error().message();
    EXPECT_NE(imported.error().message().find("content has digest"), std::string::npos) << imported.error().message();
    auto d = Digest::parse(layer2);
    ASSERT_TRUE(d);
    EXPECT_FALSE(content_->exists(*d));
}

TEST_F(OciImport, OtherPlatformOnlyRefused) {
    ASSERT_EQ(make_layout(layout_), "");
    auto imported = import_oci_layout(layout_, *content_, *snapshots_, Platform{"linux", "s390x", ""});
    ASSERT_FALSE(imported);
    EXPECT_NE(imported.error().message().find("no image for linux/s390x (found: linux/" + host_platform().architecture),
              std::string::npos)
        << imported.error().message();
}

// Export, then import the export into a fresh store: the same image, the same bytes.
TEST_F(OciImport, ExportRoundTrip) {
    ASSERT_EQ(make_layout(layout_), "");
    auto imported = import_oci_layout(layout_, *content_, *snapshots_);
    ASSERT_TRUE(imported) << imported.error().message();
    const ImportedImage& img = imported->front();

    const std::string out_dir = tmp_.path() + "/exported", out_tar = tmp_.path() + "/exported.tar";
    auto d = export_oci_layout(*content_, img.manifest, "example.com/re/exported:1", out_dir);
    ASSERT_TRUE(d) << d.error().message();
    auto t = export_oci_archive(*content_, img.manifest, "example.com/re/exported:1", out_tar);
    ASSERT_TRUE(t) << t.error().message();
    std::vector<Digest> blobs{img.manifest.digest, img.parsed.config.digest, img.parsed.layers[0].digest,
                              img.parsed.layers[1].digest};
    for (const auto& b : blobs)
        EXPECT_EQ(read_or(out_dir + "/blobs/sha256/" + b.hex()), read_or(layout_ + "/blobs/sha256/" + b.hex()))
            << b.string();
    EXPECT_EQ(temp_files_in(tmp_.path()), 0);

    for (int form = 0; form < 2; ++form) {
        TempDir fresh("oci-fresh");
        auto c = ContentStore::open(fresh.path());
        auto s = SnapshotStore::open(fresh.path());
        ASSERT_TRUE(c && s);
        auto again = form == 0 ? import_oci_layout(out_dir, *c, *s) : import_oci_archive(out_tar, *c, *s);
        ASSERT_TRUE(again) << form << ": " << again.error().message();
        ASSERT_EQ(again->size(), 1u);
        EXPECT_EQ(again->front().ref_name, "example.com/re/exported:1");
        EXPECT_EQ(again->front().manifest.digest, img.manifest.digest);
        EXPECT_EQ(again->front().chain_id, img.chain_id);
        auto listed = c->list();
        ASSERT_TRUE(listed);
        std::sort(blobs.begin(), blobs.end());
        EXPECT_EQ(*listed, blobs);
    }
}

TEST_F(OciImport, ExportRefusesCorruptedOrMissingBlobs) {
    ASSERT_EQ(make_layout(layout_), "");
    auto imported = import_oci_layout(layout_, *content_, *snapshots_);
    ASSERT_TRUE(imported) << imported.error().message();
    const ImportedImage& img = imported->front();
    // A layer rotting on disk is not exported, and the archive is not left half-written.
    const std::string layer = content_->blob_path(img.parsed.layers[1].digest);
    ASSERT_EQ(::chmod(layer.c_str(), 0644), 0);
    std::string data = read_or(layer);
    data[700] ^= 1;
    ASSERT_TRUE(write_file(layer, data));
    const std::string out_tar = tmp_.path() + "/bad.tar";
    auto t = export_oci_archive(*content_, img.manifest, "", out_tar);
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message().find(img.parsed.layers[1].digest.string() + ": stored content no longer matches"),
              std::string::npos)
        << t.error().message();
    EXPECT_FALSE(path_exists(out_tar));
    EXPECT_EQ(temp_files_in(tmp_.path()), 0);
    ASSERT_TRUE(content_->remove(img.parsed.layers[1].digest));
    auto d = export_oci_layout(*content_, img.manifest, "", tmp_.path() + "/bad");
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("blob " + img.parsed.layers[1].digest.string()), std::string::npos)
        << d.error().message();
}

TEST(OciImportErrors, NotALayout) {
    TempDir tmp("oci");
    auto c = ContentStore::open(tmp.path() + "/store");
    auto s = SnapshotStore::open(tmp.path() + "/store");
    ASSERT_TRUE(c && s);
    ASSERT_TRUE(mkdir_all(tmp.path() + "/empty"));
    auto r = import_oci_layout(tmp.path() + "/empty", *c, *s);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("import OCI layout " + tmp.path() + "/empty"), std::string::npos);
    EXPECT_NE(r.error().message().find("oci-layout"), std::string::npos) << r.error().message();
    ASSERT_TRUE(write_file(tmp.path() + "/empty/oci-layout", R"({"imageLayoutVersion":"2.0.0"})"));
    r = import_oci_layout(tmp.path() + "/empty", *c, *s);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("\"2.0.0\" is not supported"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace berth::image
