// store::Images: imports record images, remove() and prune() collect exactly what no image uses.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "common/fs.hpp"
#include "image_tar_builder.hpp"
#include "image_test_util.hpp"
#include "store/images.hpp"

namespace berth::store {
namespace {

using image::Digest;
using image::Sha256;
using image::testing::build_layer;
using image::testing::dir;
using image::testing::file;
using image::testing::read_or;
using image::testing::TarMember;
using image::testing::TempDir;
using Json = nlohmann::json;

std::string layer_with(const std::string& name, const std::string& content,
                       image::LayerCompression c = image::LayerCompression::none) {
    return build_layer({dir("etc"), file("etc/" + name, content)}, c);
}

std::string config_for(const std::vector<std::string>& uncompressed_layers, const std::string& tag) {
    Json diff_ids = Json::array();
    for (const auto& l : uncompressed_layers) diff_ids.push_back(Sha256::of(l).string());
    return Json{{"architecture", image::host_platform().architecture},
                {"os", "linux"},
                {"config", {{"Labels", {{"tag", tag}}}}},
                {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
        .dump();
}

// Writes an OCI layout at `dir` with one image of `layers` (uncompressed tars), named `ref`.
void write_layout(const std::string& dirpath, const std::vector<std::string>& layers, const std::string& ref) {
    ASSERT_TRUE(mkdir_all(dirpath + "/blobs/sha256"));
    auto put = [&](const std::string& data) {
        Digest d = Sha256::of(data);
        EXPECT_TRUE(write_file(dirpath + "/blobs/sha256/" + d.hex(), data));
        return d;
    };
    std::string config = config_for(layers, ref);
    Json manifest = {
        {"schemaVersion", 2},
        {"mediaType", image::media_type::kOciManifest},
        {"config",
         {{"mediaType", image::media_type::kOciConfig}, {"digest", put(config).string()}, {"size", config.size()}}},
        {"layers", Json::array()}};
    for (const auto& l : layers)
        manifest["layers"].push_back(
            {{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", put(l).string()}, {"size", l.size()}});
    std::string mtext = manifest.dump();
    Json index = {{"schemaVersion", 2},
                  {"manifests",
                   {{{"mediaType", image::media_type::kOciManifest},
                     {"digest", put(mtext).string()},
                     {"size", mtext.size()},
                     {"annotations", {{"org.opencontainers.image.ref.name", ref}}}}}}};
    ASSERT_TRUE(write_file(dirpath + "/index.json", index.dump()));
    ASSERT_TRUE(write_file(dirpath + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
}


class ImagesTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (snapshots keep layer ownership)";
        ASSERT_TRUE(tmp_.ok());
        root_ = tmp_.path() + "/root";
        auto s = Images::open(root_);
        ASSERT_TRUE(s) << s.error().message();
        images_.emplace(std::move(*s));
        base_ = layer_with("base", "base layer");
        mid_ = layer_with("mid", "mid layer");
        top_a_ = layer_with("a", "image a");
        top_b_ = layer_with("b", "image b");
    }
    ImageRecord import(const std::vector<std::string>& layers, const std::string& ref) {
        static int n = 0;
        std::string layout = tmp_.path() + "/layout" + std::to_string(n++);
        write_layout(layout, layers, ref);
        auto r = images_->import_oci_layout(layout);
        EXPECT_TRUE(r) << r.error().message();
        if (!r || r->size() != 1) return {};
        return r->front();
    }
    bool snapshot_has(const Digest& chain, const std::string& rel, const std::string& content) {
        return read_or(images_->snapshots().fs_path(chain) + "/" + rel) == content;
    }

    TempDir tmp_{"images"};
    std::string root_;
    std::optional<Images> images_;
    std::string base_, mid_, top_a_, top_b_;
};

TEST_F(ImagesTest, OciImportRecordsTheImage) {
    ImageRecord a = import({base_, top_a_}, "example.com/app:a");
    ASSERT_TRUE(a.id.valid());
    auto got = images_->records().get("example.com/app:a");
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(got->id, a.id);
    ASSERT_EQ(got->chain_ids.size(), 2u);
    EXPECT_TRUE(snapshot_has(got->chain_ids[1], "etc/a", "image a"));
    EXPECT_EQ(got->blobs.size(), 4u);  // manifest, config, two layers
    for (const auto& b : got->blobs) EXPECT_TRUE(images_->content().exists(b)) << b.string();
    EXPECT_EQ(got->size, base_.size() + top_a_.size() + got->config_json.size());
}

TEST_F(ImagesTest, OciRefNameThatIsOnlyATagNamesNothing) {
    ImageRecord a = import({base_}, "latest");
    ASSERT_TRUE(a.id.valid());
    EXPECT_TRUE(a.names.empty());
    EXPECT_FALSE(images_->records().get("latest"));
    EXPECT_TRUE(images_->records().get(a.id.hex().substr(0, 12)));
}

TEST_F(ImagesTest, RemoveKeepsWhatAnotherImageShares) {
    ImageRecord a = import({base_, mid_, top_a_}, "example.com/app:a");
    ImageRecord b = import({base_, mid_, top_b_}, "example.com/app:b");
    ASSERT_EQ(a.chain_ids.size(), 3u);
    ASSERT_EQ(b.chain_ids.size(), 3u);
    ASSERT_EQ(a.chain_ids[1], b.chain_ids[1]);

    auto stats = images_->remove("example.com/app:a");
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(stats->snapshots_removed, std::vector<Digest>{a.chain_ids[2]});
    EXPECT_EQ(stats->blobs_removed.size(), 3u);  // a's manifest, config and top layer
    EXPECT_FALSE(images_->snapshots().exists(a.chain_ids[2]));
    EXPECT_FALSE(images_->content().exists(a.id));
    EXPECT_FALSE(images_->content().exists(a.manifest_digest));
    EXPECT_FALSE(images_->content().exists(Sha256::of(top_a_)));
    for (const auto& c : b.chain_ids) EXPECT_TRUE(images_->snapshots().exists(c)) << c.string();
    for (const auto& d : b.blobs) EXPECT_TRUE(images_->content().exists(d)) << d.string();
    EXPECT_TRUE(snapshot_has(b.chain_ids[0], "etc/base", "base layer"));
    EXPECT_FALSE(images_->records().get("example.com/app:a"));
    EXPECT_TRUE(images_->records().get("example.com/app:b"));

    stats = images_->remove(b.id.hex().substr(0, 12));
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(stats->snapshots_removed.size(), 3u);
    auto left_snaps = images_->snapshots().list();
    ASSERT_TRUE(left_snaps);
    EXPECT_TRUE(left_snaps->empty());
    auto left_blobs = images_->content().list();
    ASSERT_TRUE(left_blobs);
    EXPECT_TRUE(left_blobs->empty());
    EXPECT_EQ(images_->remove("example.com/app:b").error().code(), ENOENT);
}

TEST_F(ImagesTest, HolderKeepsTheContentOfARemovedImageUntilReleased) {
    ImageRecord a = import({base_, top_a_}, "example.com/app:a");
    auto held = images_->hold("container-1", "example.com/app:a");
    ASSERT_TRUE(held) << held.error().message();
    EXPECT_EQ(held->id, a.id);
    EXPECT_EQ(images_->hold("container-2", "example.com/none:x").error().code(), ENOENT);

    auto stats = images_->remove("example.com/app:a");
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_TRUE(stats->snapshots_removed.empty());
    EXPECT_TRUE(stats->blobs_removed.empty());
    EXPECT_FALSE(images_->records().get("example.com/app:a"));
    for (const auto& c : a.chain_ids) EXPECT_TRUE(images_->snapshots().exists(c)) << c.string();
    auto pruned = images_->prune();
    ASSERT_TRUE(pruned) << pruned.error().message();
    EXPECT_TRUE(pruned->snapshots_removed.empty());

    ASSERT_TRUE(images_->release("container-1"));
    ASSERT_TRUE(images_->release("container-1"));  // idempotent
    pruned = images_->prune();
    ASSERT_TRUE(pruned) << pruned.error().message();
    EXPECT_EQ(pruned->snapshots_removed.size(), 2u);
    for (const auto& c : a.chain_ids) EXPECT_FALSE(images_->snapshots().exists(c)) << c.string();
}

TEST_F(ImagesTest, PruneCollectsLeftoversOfACrash) {
    ImageRecord a = import({base_, top_a_}, "example.com/app:a");
    ASSERT_TRUE(a.id.valid());
    // What a crashed import leaves: blobs and a snapshot nothing records, ingest files and a temp directory.
    auto junk = images_->content().put("unreferenced blob");
    ASSERT_TRUE(junk);
    const std::string orphan_layer = layer_with("orphan", "orphan");
    auto orphan = images_->snapshots().create(a.chain_ids[1], Sha256::of(orphan_layer),
                                              [&, off = size_t{0}](std::span<std::byte> buf) mutable -> Result<size_t> {
                                                  size_t n = std::min(buf.size(), orphan_layer.size() - off);
                                                  std::memcpy(buf.data(), orphan_layer.data() + off, n);
                                                  off += n;
                                                  return n;
                                              });
    ASSERT_TRUE(orphan) << orphan.error().message();
    ASSERT_TRUE(write_file(root_ + "/ingest/deadbeef.partial", "x"));
    ASSERT_TRUE(mkdir_all(root_ + "/tmp/docker-archive.abc123/sub"));

    auto stats = images_->prune();
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_EQ(stats->blobs_removed, std::vector<Digest>{*junk});
    EXPECT_EQ(stats->snapshots_removed, std::vector<Digest>{*orphan});
    EXPECT_FALSE(images_->content().exists(*junk));
    EXPECT_FALSE(images_->snapshots().exists(*orphan));
    EXPECT_FALSE(path_exists(root_ + "/ingest/deadbeef.partial"));
    EXPECT_FALSE(path_exists(root_ + "/tmp/docker-archive.abc123"));
    for (const auto& c : a.chain_ids) EXPECT_TRUE(images_->snapshots().exists(c));
    for (const auto& d : a.blobs) EXPECT_TRUE(images_->content().exists(d));
    // Nothing left to collect: a second prune removes nothing.
    stats = images_->prune();
    ASSERT_TRUE(stats);
    EXPECT_TRUE(stats->blobs_removed.empty());
    EXPECT_TRUE(stats->snapshots_removed.empty());
}

TEST_F(ImagesTest, PruneInAnotherProcessNeverTakesWhatAnImportIsWriting) {
    // Layouts first, so the importing process only imports.
    constexpr int kImages = 6;
    std::vector<std::string> layouts;
    for (int i = 0; i < kImages; ++i) {
        layouts.push_back(tmp_.path() + "/race" + std::to_string(i));
        write_layout(layouts.back(), {base_, layer_with("n", std::to_string(i))}, "race:" + std::to_string(i));
    }
    // SQLite connections must not cross fork(): close ours, and open a fresh one on each side.
    images_.reset();
    pid_t pruner = ::fork();
    ASSERT_NE(pruner, -1);
    if (pruner == 0) {
        auto other = Images::open(root_);  // its own connection and locks, as another berthctl would have
        int rc = other ? 0 : 10;
        for (int i = 0; rc == 0 && i < 40; ++i)
            if (!other->prune()) rc = 11;
        ::_exit(rc);
    }
    auto mine = Images::open(root_);
    ASSERT_TRUE(mine) << mine.error().message();
    images_.emplace(std::move(*mine));
    int failed_imports = 0;
    for (const auto& l : layouts) failed_imports += !images_->import_oci_layout(l);
    int status = 0;
    ASSERT_EQ(::waitpid(pruner, &status, 0), pruner);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(failed_imports, 0);
    for (int i = 0; i < kImages; ++i) {
        auto rec = images_->records().get("race:" + std::to_string(i));
        ASSERT_TRUE(rec) << rec.error().message();
        for (const auto& c : rec->chain_ids) EXPECT_TRUE(images_->snapshots().exists(c)) << i << " " << c.string();
        for (const auto& d : rec->blobs) EXPECT_TRUE(images_->content().exists(d)) << i << " " << d.string();
    }
}

// A `docker save`-style archive: manifest.json, <hex>.json config, <dir>/layer.tar layers.
struct DockerArchive {
    std::vector<TarMember> members;
    Json manifest = Json::array();
    std::string build() {
        std::vector<TarMember> all = members;
        all.push_back(file("manifest.json", manifest.dump()));
        return build_layer(all);
    }
};

TEST_F(ImagesTest, DockerArchiveImport) {
    const std::string gz_top = layer_with("top", "gzip layer", image::LayerCompression::gzip);
    const std::string top_plain = layer_with("top", "gzip layer");
    // The diff_id of a gzip'd layer is that of its uncompressed tar: take it from an unpack.
    TempDir scratch{"gz"};
    auto unpacked = image::unpack_layer_buffer(gz_top, scratch.path());
    ASSERT_TRUE(unpacked) << unpacked.error().message();

    Json diff_ids = {Sha256::of(base_).string(), unpacked->diff_id.string()};
    std::string config = Json{{"architecture", image::host_platform().architecture},
                              {"os", "linux"},
                              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
                             .dump();
    const Digest config_digest = Sha256::of(config);
    DockerArchive ar;
    ar.members = {file(config_digest.hex() + ".json", config), dir("l1"), file("l1/layer.tar", base_), dir("l2"),
                  file("l2/layer.tar", gz_top)};
    ar.manifest = Json::array({{{"Config", config_digest.hex() + ".json"},
                                {"RepoTags", {"busybox:test", "quay.io/x/y:1"}},
                                {"Layers", {"l1/layer.tar", "l2/layer.tar"}}}});
    const std::string tar = tmp_.path() + "/image.tar";
    ASSERT_TRUE(write_file(tar, ar.build()));

    auto r = images_->import_docker_archive(tar);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 1u);
    auto got = images_->records().get("busybox:test");
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(got->id, config_digest);
    EXPECT_EQ(got->names, (std::vector<std::string>{"docker.io/library/busybox:test", "quay.io/x/y:1"}));
    EXPECT_TRUE(images_->content().exists(Sha256::of(base_)));
    EXPECT_TRUE(images_->content().exists(Sha256::of(gz_top)));
    EXPECT_TRUE(images_->content().exists(config_digest));
    auto manifest = images_->content().read(got->manifest_digest);
    ASSERT_TRUE(manifest) << manifest.error().message();
    auto parsed = image::parse_manifest(*manifest, "manifest");
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_EQ(parsed->layers.size(), 2u);
    EXPECT_EQ(parsed->layers[1].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    EXPECT_EQ(parsed->layers[1].digest, Sha256::of(gz_top));
    ASSERT_EQ(got->chain_ids.size(), 2u);
    EXPECT_TRUE(snapshot_has(got->chain_ids[1], "etc/top", "gzip layer"));
    EXPECT_TRUE(snapshot_has(got->chain_ids[0], "etc/base", "base layer"));
    EXPECT_EQ(got->blobs.size(), 4u);

    // Removing it collects everything it brought.
    ASSERT_TRUE(images_->remove("busybox:test"));
    EXPECT_TRUE(images_->content().list()->empty());
    EXPECT_TRUE(images_->snapshots().list()->empty());
}

TEST_F(ImagesTest, DockerArchiveTwoImagesSharingALayerThroughASymlink) {
    // docker save stores a layer two images share once and links the other path to it.
    std::string c1 = config_for({base_}, "one"), c2 = config_for({base_, top_a_}, "two");
    const Digest d1 = Sha256::of(c1), d2 = Sha256::of(c2);
    DockerArchive ar;
    ar.members = {file(d1.hex() + ".json", c1),
                  file(d2.hex() + ".json", c2),
                  dir("l1"),
                  file("l1/layer.tar", base_),
                  dir("l2"),
                  image::testing::symlink("l2/layer.tar", "../l1/layer.tar"),
                  dir("l3"),
                  file("l3/layer.tar", top_a_)};
    ar.manifest = Json::array(
        {{{"Config", d1.hex() + ".json"}, {"RepoTags", {"one:1"}}, {"Layers", {"l1/layer.tar"}}},
         {{"Config", d2.hex() + ".json"}, {"RepoTags", {"two:1"}}, {"Layers", {"l2/layer.tar", "l3/layer.tar"}}}});
    const std::string tar = tmp_.path() + "/two.tar";
    ASSERT_TRUE(write_file(tar, ar.build()));
    auto r = images_->import_docker_archive(tar);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 2u);
    auto one = images_->records().get("one:1");
    auto two = images_->records().get("two:1");
    ASSERT_TRUE(one && two);
    ASSERT_EQ(two->chain_ids.size(), 2u);
    EXPECT_EQ(one->chain_ids.front(), two->chain_ids.front());

    auto stats = images_->remove("one:1");
    ASSERT_TRUE(stats) << stats.error().message();
    EXPECT_TRUE(stats->snapshots_removed.empty()) << "the base snapshot is two's too";
    EXPECT_TRUE(images_->content().exists(Sha256::of(base_)));
    EXPECT_FALSE(images_->content().exists(d1));
    EXPECT_TRUE(snapshot_has(two->chain_ids[1], "etc/a", "image a"));
}

TEST_F(ImagesTest, DockerArchiveMissingFileAndDiffIdMismatchAreRefused) {
    std::string config = config_for({base_}, "x");
    const Digest cd = Sha256::of(config);
    {
        DockerArchive ar;
        ar.members = {file(cd.hex() + ".json", config)};
        ar.manifest =
            Json::array({{{"Config", cd.hex() + ".json"}, {"RepoTags", {"x:1"}}, {"Layers", {"gone/layer.tar"}}}});
        const std::string tar = tmp_.path() + "/missing.tar";
        ASSERT_TRUE(write_file(tar, ar.build()));
        auto r = images_->import_docker_archive(tar);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("gone/layer.tar"), std::string::npos) << r.error().message();
        EXPECT_EQ(r.error().code(), ENOENT);
    }
    {
        DockerArchive ar;  // the layer is not the one the config's diff_ids name
        ar.members = {file(cd.hex() + ".json", config), file("wrong/layer.tar", top_a_)};
        ar.manifest =
            Json::array({{{"Config", cd.hex() + ".json"}, {"RepoTags", {"x:1"}}, {"Layers", {"wrong/layer.tar"}}}});
        const std::string tar = tmp_.path() + "/mismatch.tar";
        ASSERT_TRUE(write_file(tar, ar.build()));
        auto r = images_->import_docker_archive(tar);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("wrong/layer.tar"), std::string::npos) << r.error().message();
        EXPECT_NE(r.error().message().find(Sha256::of(base_).string()), std::string::npos) << r.error().message();
    }
    {
        DockerArchive ar;  // no config file at all
        ar.manifest = Json::array({{{"Config", "nope.json"}, {"Layers", Json::array()}}});
        const std::string tar = tmp_.path() + "/noconfig.tar";
        ASSERT_TRUE(write_file(tar, ar.build()));
        auto r = images_->import_docker_archive(tar);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("nope.json"), std::string::npos) << r.error().message();
    }
    {
        DockerArchive ar;  // an archive of nothing is not a successful import
        const std::string tar = tmp_.path() + "/empty.tar";
        ASSERT_TRUE(write_file(tar, ar.build()));
        auto r = images_->import_docker_archive(tar);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("manifest.json: no images"), std::string::npos) << r.error().message();
    }
    {
        DockerArchive ar;  // a config too large to be one
        ar.members = {file("huge.json", std::string(5 << 20, ' '))};
        ar.manifest = Json::array({{{"Config", "huge.json"}, {"Layers", Json::array()}}});
        const std::string tar = tmp_.path() + "/huge.tar";
        ASSERT_TRUE(write_file(tar, ar.build()));
        auto r = images_->import_docker_archive(tar);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("huge.json: larger than"), std::string::npos) << r.error().message();
    }
    EXPECT_FALSE(images_->records().get("x:1"));
    auto all = images_->records().list();
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->empty());
    EXPECT_TRUE(images_->snapshots().list()->empty());
    // Its temp extraction directory is gone too.
    auto tmp_entries = images_->prune();
    ASSERT_TRUE(tmp_entries);
    EXPECT_TRUE(tmp_entries->snapshots_removed.empty());
}

}  // namespace
}  // namespace berth::store
