// berthd's ImageService and configuration over its real socket: images imported into the daemon's root before it
// starts (scripts/make-oci-busybox.sh), listed, inspected, removed; the file-system usage of the root; berth.toml
// and flags deciding which root is served.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "berthd_process.hpp"
#include "harness.hpp"
#include "store/images.hpp"

namespace berth::test {
namespace {

namespace v1 = ::runtime::v1;

constexpr const char* kBusybox = "localhost/berth/busybox:latest";

class BerthdImages : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::make_unique<TempDir>(std::string("criimg-") +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
        socket_ = dir_->path() + "/run/berth.sock";
        root_ = dir_->path() + "/root";
        config_ = dir_->path() + "/berth.toml";
        write_config("");
    }
    void TearDown() override {
        daemon_.reset();
        dir_.reset();
    }

    void write_config(const std::string& text) { std::ofstream(config_) << text; }

    // Imports the busybox test image into `root`; returns the record.
    store::ImageRecord import_busybox(const std::string& root) {
        const std::string layout = dir_->path() + "/layout";
        if (!std::filesystem::exists(layout)) {
            auto made = run_command({"/bin/bash", BERTH_SOURCE_DIR "/scripts/make-oci-busybox.sh", layout});
            EXPECT_EQ(made.exit_code, 0) << made.err;
        }
        auto images = store::Images::open(root);
        EXPECT_TRUE(images) << images.error().message();
        if (!images) return {};
        auto recs = images->import_oci_layout(layout);
        EXPECT_TRUE(recs) << recs.error().message();
        if (!recs || recs->size() != 1) return {};
        return recs->front();
    }

    void start_daemon(std::vector<std::string> extra = {}) {
        if (extra.empty()) extra = {"--root", root_};
        extra.insert(extra.end(), {"--config", config_, "--state-dir", dir_->path() + "/state"});
        daemon_ = std::make_unique<BerthdProcess>();
        ASSERT_TRUE(daemon_->start(socket_, extra)) << "berthd did not start (exit " << daemon_->exit_code() << "):\n"
                                                    << daemon_->output();
    }

    std::unique_ptr<v1::ImageService::Stub> images() {
        return v1::ImageService::NewStub(
            grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
    }

    std::vector<v1::Image> list(const std::string& filter = "") {
        grpc::ClientContext ctx;
        v1::ListImagesRequest req;
        if (!filter.empty()) req.mutable_filter()->mutable_image()->set_image(filter);
        v1::ListImagesResponse resp;
        grpc::Status st = images()->ListImages(&ctx, req, &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        return {resp.images().begin(), resp.images().end()};
    }

    v1::ImageStatusResponse status(const std::string& image, bool verbose = false) {
        grpc::ClientContext ctx;
        v1::ImageStatusRequest req;
        req.mutable_image()->set_image(image);
        req.set_verbose(verbose);
        v1::ImageStatusResponse resp;
        grpc::Status st = images()->ImageStatus(&ctx, req, &resp);
        EXPECT_TRUE(st.ok()) << image << ": " << st.error_message();
        return resp;
    }

    grpc::Status remove(const std::string& image) {
        grpc::ClientContext ctx;
        v1::RemoveImageRequest req;
        req.mutable_image()->set_image(image);
        v1::RemoveImageResponse resp;
        return images()->RemoveImage(&ctx, req, &resp);
    }

    v1::ImageFsInfoResponse fs_info() {
        grpc::ClientContext ctx;
        v1::ImageFsInfoResponse resp;
        grpc::Status st = images()->ImageFsInfo(&ctx, v1::ImageFsInfoRequest(), &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        return resp;
    }

    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<BerthdProcess> daemon_;
    std::string socket_, root_, config_;
};

TEST_F(BerthdImages, ListImagesShowsTheImportedImage) {
    store::ImageRecord rec = import_busybox(root_);
    ASSERT_TRUE(rec.id.valid());
    start_daemon();

    auto all = list();
    ASSERT_EQ(all.size(), 1u);
    const v1::Image& img = all[0];
    EXPECT_EQ(img.id(), rec.id.string());
    ASSERT_EQ(img.repo_tags_size(), 1);
    EXPECT_EQ(img.repo_tags(0), kBusybox);
    ASSERT_EQ(img.repo_digests_size(), 1);
    EXPECT_EQ(img.repo_digests(0), "localhost/berth/busybox@" + rec.manifest_digest.string());
    EXPECT_EQ(img.size(), rec.size);
    EXPECT_GT(img.size(), 100u * 1024) << "busybox alone is larger";
    EXPECT_EQ(img.spec().image(), rec.id.string());
    EXPECT_FALSE(img.pinned());

    // The filter is an image spec: a name, an id or a digest reference finds it; another name finds nothing.
    EXPECT_EQ(list("localhost/berth/busybox").size(), 1u);
    EXPECT_EQ(list(rec.id.string()).size(), 1u);
    EXPECT_EQ(list("localhost/berth/busybox@" + rec.manifest_digest.string()).size(), 1u);
    EXPECT_EQ(list("localhost/berth/other:1").size(), 0u);

    // StreamImages gives the same images.
    grpc::ClientContext ctx;
    auto reader = images()->StreamImages(&ctx, v1::StreamImagesRequest());
    v1::StreamImagesResponse batch;
    std::vector<std::string> ids;
    while (reader->Read(&batch))
        for (const auto& i : batch.images()) ids.push_back(i.id());
    grpc::Status st = reader->Finish();
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(ids, std::vector<std::string>{rec.id.string()});
}

TEST_F(BerthdImages, ImageStatusByEveryKindOfNameAndVerboseInfo) {
    store::ImageRecord rec = import_busybox(root_);
    ASSERT_TRUE(rec.id.valid());
    start_daemon();

    for (const std::string& key : {std::string(kBusybox), std::string("localhost/berth/busybox"), rec.id.string(),
                                   rec.id.hex().substr(0, 12),
                                   "localhost/berth/busybox@" + rec.manifest_digest.string()}) {
        auto resp = status(key);
        ASSERT_TRUE(resp.has_image()) << key;
        EXPECT_EQ(resp.image().id(), rec.id.string()) << key;
        EXPECT_TRUE(resp.info().empty()) << "info only when verbose";
    }

    auto verbose = status(kBusybox, true);
    ASSERT_TRUE(verbose.info().contains("info"));
    auto info = nlohmann::json::parse(verbose.info().at("info"));
    EXPECT_EQ(info.at("manifestDigest"), rec.manifest_digest.string());
    EXPECT_EQ(info.at("id"), rec.id.string());
    EXPECT_EQ(info.at("imageSpec").at("rootfs").at("type"), "layers");
    EXPECT_EQ(info.at("imageSpec").at("rootfs").at("diff_ids").size(), 2u);
    EXPECT_EQ(info.at("chainIDs").size(), 2u);

    // CRI: an image that is not there is an empty answer, not an error.
    auto missing = status("localhost/berth/nothing:here");
    EXPECT_FALSE(missing.has_image());
    EXPECT_FALSE(status("sha256:" + std::string(64, 'f')).has_image());

    grpc::ClientContext ctx;
    v1::ImageStatusResponse resp;
    grpc::Status st = images()->ImageStatus(&ctx, v1::ImageStatusRequest(), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("image.image"), std::string::npos) << st.error_message();
}

TEST_F(BerthdImages, RemoveImageFreesItsContentAndIsIdempotent) {
    store::ImageRecord rec = import_busybox(root_);
    ASSERT_TRUE(rec.id.valid());
    start_daemon();
    const std::string config_blob = root_ + "/blobs/sha256/" + rec.id.hex();
    ASSERT_TRUE(std::filesystem::exists(config_blob));
    auto before = fs_info();

    grpc::Status st = remove(kBusybox);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(list().empty());
    EXPECT_FALSE(status(rec.id.string()).has_image());
    EXPECT_FALSE(std::filesystem::exists(config_blob)) << "the blobs of a removed image are collected";
    for (const auto& chain : rec.chain_ids)
        EXPECT_FALSE(std::filesystem::exists(root_ + "/snapshots/" + chain.hex())) << chain.string();

    // Removing what is not there succeeds, by name or by id.
    st = remove(kBusybox);
    EXPECT_TRUE(st.ok()) << st.error_message();
    st = remove(rec.id.string());
    EXPECT_TRUE(st.ok()) << st.error_message();

    // The root's usage went down by at least the busybox binary, which both its snapshot and its layer held.
    auto after = fs_info();
    ASSERT_EQ(before.image_filesystems_size(), 1);
    ASSERT_EQ(after.image_filesystems_size(), 1);
    uint64_t busybox = std::filesystem::file_size("/bin/busybox");
    EXPECT_GE(before.image_filesystems(0).used_bytes().value(), after.image_filesystems(0).used_bytes().value() + busybox);
    EXPECT_GT(before.image_filesystems(0).inodes_used().value(), after.image_filesystems(0).inodes_used().value());
}

TEST_F(BerthdImages, ImageFsInfoReportsTheRoot) {
    import_busybox(root_);
    start_daemon();
    auto resp = fs_info();
    ASSERT_EQ(resp.image_filesystems_size(), 1);
    const auto& fs = resp.image_filesystems(0);
    EXPECT_EQ(fs.fs_id().mountpoint(), root_);
    EXPECT_GT(fs.timestamp(), 0);
    // Independent measure: du's apparent-size-free count of allocated bytes and of inodes.
    auto du = run_command({"/usr/bin/du", "-s", "-B1", "-x", root_});
    ASSERT_EQ(du.exit_code, 0) << du.err;
    uint64_t du_bytes = std::stoull(du.out);
    auto inodes = run_command({"/usr/bin/du", "-s", "-x", "--inodes", root_});
    ASSERT_EQ(inodes.exit_code, 0) << inodes.err;
    uint64_t du_inodes = std::stoull(inodes.out);
    // The database may grow between the two reads (WAL checkpoints): allow a little slack.
    EXPECT_NEAR(static_cast<double>(fs.used_bytes().value()), static_cast<double>(du_bytes), 256 * 1024.0);
    EXPECT_NEAR(static_cast<double>(fs.inodes_used().value()), static_cast<double>(du_inodes), 4.0);
    // One file system for images and writable layers: the same mountpoint.
    ASSERT_EQ(resp.container_filesystems_size(), 1);
    EXPECT_EQ(resp.container_filesystems(0).fs_id().mountpoint(), root_);
}

TEST_F(BerthdImages, ConfigFileChoosesTheRootAndFlagsOverrideIt) {
    const std::string file_root = dir_->path() + "/file-root";
    store::ImageRecord rec = import_busybox(file_root);
    ASSERT_TRUE(rec.id.valid());
    write_config("root = \"" + file_root + "\"\nlog_level = \"info\"\n");
    // No --root: the file's.
    daemon_ = std::make_unique<BerthdProcess>();
    ASSERT_TRUE(daemon_->start(socket_, {"--config", config_, "--state-dir", dir_->path() + "/state"}))
        << daemon_->output();
    ASSERT_EQ(list().size(), 1u) << "the root named by the file is served";
    daemon_->terminate();

    // --root wins over the file: the empty root_ has no image.
    start_daemon({"--root", root_});
    EXPECT_TRUE(list().empty());
}

TEST_F(BerthdImages, BadConfigurationStopsTheStartNamingTheKey) {
    write_config("root = \"" + root_ + "\"\n[registries.\"r.local:5000\"]\ninsecur = true\n");
    BerthdProcess d;
    ASSERT_FALSE(d.start(socket_, {"--config", config_}));
    EXPECT_EQ(d.exit_code(), 1);
    EXPECT_NE(d.output().find(config_ + ": registries.\"r.local:5000\".insecur: unknown key"), std::string::npos)
        << d.output();
    EXPECT_FALSE(std::filesystem::exists(socket_));

    // A configuration file named on the command line must exist.
    BerthdProcess missing;
    ASSERT_FALSE(missing.start(socket_, {"--config", dir_->path() + "/absent.toml"}));
    EXPECT_EQ(missing.exit_code(), 1);
    EXPECT_NE(missing.output().find(dir_->path() + "/absent.toml"), std::string::npos) << missing.output();

    // systemd is refused in words.
    write_config("cgroup_driver = \"systemd\"\n");
    BerthdProcess systemd;
    ASSERT_FALSE(systemd.start(socket_, {"--config", config_, "--root", root_}));
    EXPECT_NE(systemd.output().find("cgroup_driver: \"systemd\" is not supported"), std::string::npos)
        << systemd.output();
}

}  // namespace
}  // namespace berth::test
