// Images end to end: the busybox OCI layout built by scripts/make-oci-busybox.sh, and a `docker save`-style archive
// of the fixture's busybox rootfs, are imported into a content store and snapshots (src/image, src/store), mounted
// as an overlay rootfs, and run by the built `berth`.
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include "harness.hpp"
#include "image/oci_layout.hpp"
#include "store/images.hpp"

namespace berth::test {
namespace {

bool is_mounted(const std::string& target) {
    std::ifstream mi("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mi, line))
        if (line.find(" " + target + " ") != std::string::npos) return true;
    return false;
}

class ImageRootfs : public BerthTest {
protected:
    void TearDown() override {
        // The overlay goes before the harness removes the temp dir (its rm does not cross mount points).
        for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it)
            if (is_mounted(*it)) ::umount2(it->c_str(), MNT_DETACH);
        BerthTest::TearDown();
    }

    // Mounts `lowers` as an overlay at <dir>/ctr/rootfs (upper and work dirs beside it) and returns the rootfs.
    std::string mount_container_rootfs(const std::vector<std::string>& lowers) {
        const std::string cdir = dir_ + "/ctr", rootfs = cdir + "/rootfs";
        EXPECT_EQ(run_command({"/bin/mkdir", "-p", rootfs}).exit_code, 0);
        auto m = image::mount_overlay(lowers, cdir, rootfs);
        EXPECT_TRUE(m) << m.error().message();
        if (m) mounts_.push_back(rootfs);
        return rootfs;
    }

    std::vector<std::string> mounts_;
};

TEST_F(ImageRootfs, ImportedImageRunsAsContainerRootfs) {
    const std::string layout = dir_ + "/layout";
    auto made = run_command({"/bin/bash", BERTH_SOURCE_DIR "/scripts/make-oci-busybox.sh", layout});
    ASSERT_EQ(made.exit_code, 0) << made.err;

    auto content = image::ContentStore::open(dir_ + "/store");
    ASSERT_TRUE(content) << content.error().message();
    auto snapshots = image::SnapshotStore::open(dir_ + "/store");
    ASSERT_TRUE(snapshots) << snapshots.error().message();
    auto imported = image::import_oci_layout(layout, *content, *snapshots);
    ASSERT_TRUE(imported) << imported.error().message();
    ASSERT_EQ(imported->size(), 1u);
    auto lowers = snapshots->lowerdirs(imported->front().chain_id);
    ASSERT_TRUE(lowers) << lowers.error().message();

    const std::string rootfs = mount_container_rootfs(*lowers);
    ASSERT_FALSE(mounts_.empty());

    auto config = base_config({"/bin/sh", "-c", "cat /etc/hostname; ls -A /tmp; echo from-container > /written"});
    config["root"]["path"] = rootfs;
    auto r = run_config(config);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // Layer 2 replaced the hostname file and whited out /tmp/removed.
    EXPECT_EQ(r.out, "berth\n");
    // The container's writes land in its upper dir, not in the shared snapshots.
    EXPECT_EQ(read_text(dir_ + "/ctr/upper/written"), "from-container\n");
    for (const auto& l : *lowers) EXPECT_EQ(read_text(l + "/written"), "") << l;
}

TEST_F(ImageRootfs, DockerArchiveImportRunsAsContainerRootfs) {
    // A docker-archive as `docker save` writes it: the busybox rootfs as one layer, a file added by a second.
    const std::string ar = dir_ + "/archive";
    for (const char* sub : {"/base", "/extra", "/stage/etc"})
        ASSERT_EQ(run_command({"/bin/mkdir", "-p", ar + sub}).exit_code, 0);
    ASSERT_EQ(run_command({"/bin/tar", "--numeric-owner", "-C", rootfs_, "-cf", ar + "/base/layer.tar", "."}).exit_code,
              0);
    { std::ofstream(ar + "/stage/etc/berth-image") << "from-docker-archive\n"; }
    ASSERT_EQ(run_command({"/bin/tar", "--numeric-owner", "-C", ar + "/stage", "-cf", ar + "/extra/layer.tar", "etc"})
                  .exit_code,
              0);
    nlohmann::json config = {{"architecture", image::host_platform().architecture},
                             {"os", "linux"},
                             {"rootfs",
                              {{"type", "layers"},
                               {"diff_ids",
                                {image::Sha256::of(read_text(ar + "/base/layer.tar")).string(),
                                 image::Sha256::of(read_text(ar + "/extra/layer.tar")).string()}}}}};
    const std::string config_text = config.dump();
    const std::string config_name = image::Sha256::of(config_text).hex() + ".json";
    std::ofstream(ar + "/" + config_name) << config_text;
    std::ofstream(ar + "/manifest.json") << nlohmann::json::array(
        {{{"Config", config_name},
          {"RepoTags", {"busybox:archive"}},
          {"Layers", {"base/layer.tar", "extra/layer.tar"}}}});
    const std::string tar = dir_ + "/busybox-docker.tar";
    ASSERT_EQ(run_command({"/bin/tar", "-C", ar, "-cf", tar, "manifest.json", config_name, "base", "extra"}).exit_code,
              0);

    auto images = store::Images::open(dir_ + "/store");
    ASSERT_TRUE(images) << images.error().message();
    auto imported = images->import_docker_archive(tar);
    ASSERT_TRUE(imported) << imported.error().message();
    auto rec = images->records().get("docker.io/library/busybox:archive");
    ASSERT_TRUE(rec) << rec.error().message();
    ASSERT_EQ(rec->chain_ids.size(), 2u);
    auto lowers = images->snapshots().lowerdirs(rec->chain_ids.back());
    ASSERT_TRUE(lowers) << lowers.error().message();

    const std::string rootfs = mount_container_rootfs(*lowers);
    ASSERT_FALSE(mounts_.empty());
    auto cfg = base_config({"/bin/sh", "-c", "cat /etc/berth-image"});
    cfg["root"]["path"] = rootfs;
    auto r = run_config(cfg);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "from-docker-archive\n");

    // Removing the image collects its snapshots and blobs once nothing mounts them.
    ASSERT_TRUE(image::unmount_overlay(rootfs));
    auto gone = images->remove("busybox:archive");
    ASSERT_TRUE(gone) << gone.error().message();
    EXPECT_EQ(gone->snapshots_removed.size(), 2u);
    EXPECT_TRUE(images->snapshots().list()->empty());
    EXPECT_TRUE(images->content().list()->empty());
}

}  // namespace
}  // namespace berth::test
