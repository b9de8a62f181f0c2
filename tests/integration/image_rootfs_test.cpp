// Images end to end: the busybox OCI layout built by scripts/make-oci-busybox.sh is imported into a content store
// and snapshots (src/image), mounted as an overlay rootfs, and run by the built `berth`.
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include "harness.hpp"
#include "image/oci_layout.hpp"

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

    const std::string cdir = dir_ + "/ctr", rootfs = cdir + "/rootfs";
    ASSERT_EQ(run_command({"/bin/mkdir", "-p", rootfs}).exit_code, 0);
    auto m = image::mount_overlay(*lowers, cdir, rootfs);
    ASSERT_TRUE(m) << m.error().message();
    mounts_.push_back(rootfs);

    auto config = base_config({"/bin/sh", "-c", "cat /etc/hostname; ls -A /tmp; echo from-container > /written"});
    config["root"]["path"] = rootfs;
    auto r = run_config(config);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // Layer 2 replaced the hostname file and whited out /tmp/removed.
    EXPECT_EQ(r.out, "berth\n");
    // The container's writes land in its upper dir, not in the shared snapshots.
    EXPECT_EQ(read_text(cdir + "/upper/written"), "from-container\n");
    for (const auto& l : *lowers) EXPECT_EQ(read_text(l + "/written"), "") << l;
}

}  // namespace
}  // namespace berth::test
