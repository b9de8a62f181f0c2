// berthctl image ...: the real binary on a temp store root, with images built by scripts/make-oci-busybox.sh, and
// skopeo as the outside reader and writer of the archives.
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <fstream>
#include <thread>

#include "harness.hpp"
#include "local_registry.hpp"
#include "image/manifest.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

constexpr const char* kName = "localhost/berth/busybox:latest";

bool mounted(const std::string& target) {
    std::ifstream mi("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mi, line))
        if (line.find(" " + target + " ") != std::string::npos) return true;
    return false;
}

bool have(const char* tool) {
    return run_command({"/bin/sh", "-c", std::string("command -v ") + tool}).exit_code == 0;
}

class BerthctlImage : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> counter{0};
        dir_ = fmt::format("/tmp/berthctl-image-{}-{}", ::getpid(), counter++);
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        root_ = dir_ + "/root";
        layout_ = dir_ + "/layout";
        archive_ = dir_ + "/busybox.tar";
        auto made =
            run_command({"/bin/bash", BERTH_SOURCE_DIR "/scripts/make-oci-busybox.sh", "--archive", archive_, layout_});
        ASSERT_EQ(made.exit_code, 0) << made.err;
        manifest_digest_ = trim(made.out);
    }
    void TearDown() override {
        for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it)
            if (mounted(*it)) ::umount2(it->c_str(), MNT_DETACH);
        run_command({"/bin/rm", "-rf", "--one-file-system", dir_});
    }

    CommandResult ctl(std::vector<std::string> args) {
        std::vector<std::string> argv = {BERTHCTL_BIN, "image"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"--root", root_});
        return run_command(argv);
    }
    json ctl_json(std::vector<std::string> args) {
        args.insert(args.end(), {"-o", "json"});
        auto r = ctl(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        json j = json::parse(r.out, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << r.out;
        return j;
    }

    std::string dir_, root_, layout_, archive_, manifest_digest_;
    std::vector<std::string> mounts_;
};

TEST_F(BerthctlImage, ImportListInspectExportRemovePruneRoundTrip) {
    auto imp = ctl({"import", archive_});
    ASSERT_EQ(imp.exit_code, 0) << imp.err;
    EXPECT_NE(imp.out.find(kName), std::string::npos) << imp.out;
    EXPECT_NE(imp.out.find("oci-archive"), std::string::npos) << imp.out;

    json list = ctl_json({"list"});
    ASSERT_TRUE(list.is_array());
    ASSERT_EQ(list.size(), 1u) << list.dump();
    const std::string id = list[0]["id"];
    EXPECT_EQ(list[0]["names"], json::array({kName}));
    EXPECT_EQ(list[0]["manifestDigest"], manifest_digest_);
    EXPECT_GT(list[0]["size"].get<uint64_t>(), 500'000u);  // busybox

    auto table = ctl({"list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_TRUE(table.out.starts_with("NAME")) << table.out;
    EXPECT_NE(table.out.find(kName), std::string::npos) << table.out;
    EXPECT_NE(table.out.find(id.substr(7, 12)), std::string::npos) << table.out;

    // inspect: by a short id prefix too; the config comes parsed.
    json insp = ctl_json({"inspect", id.substr(7, 10)});
    EXPECT_EQ(insp["id"], id);
    EXPECT_EQ(insp["config"]["os"], "linux");
    EXPECT_EQ(insp["config"]["rootfs"]["diff_ids"].size(), 2u);
    EXPECT_EQ(insp["chainIds"].size(), 2u);
    EXPECT_EQ(insp["blobs"].size(), 4u);  // manifest, config, two layers

    const std::string exported = dir_ + "/exported.tar";
    json exp = ctl_json({"export", kName, exported});
    EXPECT_EQ(exp["id"], id);
    EXPECT_TRUE(std::filesystem::is_regular_file(exported));

    auto rm = ctl({"remove", "busybox-not-here", kName});
    EXPECT_EQ(rm.exit_code, 1) << "a missing image among several fails the command";
    EXPECT_NE(rm.err.find("busybox-not-here"), std::string::npos) << rm.err;
    EXPECT_NE(rm.out.find("Untagged: " + std::string(kName)), std::string::npos) << rm.out;
    EXPECT_NE(rm.out.find("Deleted: " + id), std::string::npos) << rm.out;
    EXPECT_EQ(ctl_json({"list"}), json::array());
    // The blobs and snapshots went with the image: nothing left for prune.
    json pruned = ctl_json({"prune"});
    EXPECT_EQ(pruned["blobsRemoved"], json::array());
    EXPECT_EQ(pruned["snapshotsRemoved"], json::array());

    // What was exported comes back as the same image under the same name.
    json again = ctl_json({"import", exported});
    EXPECT_EQ(again["format"], "oci-archive");
    ASSERT_EQ(again["images"].size(), 1u);
    EXPECT_EQ(again["images"][0]["id"], id);
    EXPECT_EQ(again["images"][0]["names"], json::array({kName}));

    json rmj = ctl_json({"rm", id});
    ASSERT_EQ(rmj.size(), 1u);
    EXPECT_EQ(rmj[0]["id"], id);
    EXPECT_EQ(rmj[0]["blobsRemoved"].size(), 4u);
    EXPECT_EQ(rmj[0]["snapshotsRemoved"].size(), 2u);
    EXPECT_TRUE(std::filesystem::is_empty(root_ + "/blobs/sha256"));
}

TEST_F(BerthctlImage, PruneCollectsUnreferencedContent) {
    ASSERT_EQ(ctl({"import", archive_}).exit_code, 0);
    // An oci-archive's blobs are all stored; one nobody references stays for the collector.
    const std::string stray = root_ + "/blobs/sha256/" + std::string(64, 'a');
    { std::ofstream(stray) << "stray"; }
    json pruned = ctl_json({"prune"});
    EXPECT_EQ(pruned["blobsRemoved"], json::array({"sha256:" + std::string(64, 'a')})) << pruned.dump();
    EXPECT_FALSE(std::filesystem::exists(stray));
    auto table = ctl({"prune"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("Removed 0 blobs, 0 snapshots"), std::string::npos) << table.out;
    EXPECT_EQ(ctl_json({"list"}).size(), 1u) << "prune keeps images";
}

TEST_F(BerthctlImage, ExportIsReadableBySkopeo) {
    if (!have("skopeo")) GTEST_SKIP() << "skopeo not installed (scripts/deps.sh)";
    ASSERT_EQ(ctl({"import", layout_}).exit_code, 0);
    const std::string exported = dir_ + "/exported.tar";
    ASSERT_EQ(ctl({"export", "localhost/berth/busybox", exported}).exit_code, 0);
    auto insp = run_command({"/usr/bin/skopeo", "inspect", "oci-archive:" + exported});
    ASSERT_EQ(insp.exit_code, 0) << insp.err;
    json j = json::parse(insp.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << insp.out;
    EXPECT_EQ(j["Digest"], manifest_digest_);
    EXPECT_EQ(j["Layers"].size(), 2u);
    // And skopeo can copy every blob out of it (digests verified on the way).
    auto copy = run_command({"/usr/bin/skopeo", "copy", "oci-archive:" + exported, "oci:" + dir_ + "/copied:x"});
    EXPECT_EQ(copy.exit_code, 0) << copy.err;
}

TEST_F(BerthctlImage, ImportDetectsEachFormat) {
    json layout = ctl_json({"import", layout_});
    EXPECT_EQ(layout["format"], "oci-layout");
    json archive = ctl_json({"import", archive_});
    EXPECT_EQ(archive["format"], "oci-archive");
    EXPECT_EQ(archive["images"][0]["id"], layout["images"][0]["id"]);

    if (!have("skopeo")) GTEST_SKIP() << "skopeo not installed (scripts/deps.sh)";
    const std::string docker = dir_ + "/docker.tar";
    auto copy = run_command(
        {"/usr/bin/skopeo", "copy", "oci:" + layout_, "docker-archive:" + docker + ":localhost/from/docker:v1"});
    ASSERT_EQ(copy.exit_code, 0) << copy.err;
    json d = ctl_json({"import", docker});
    EXPECT_EQ(d["format"], "docker-archive");
    ASSERT_EQ(d["images"].size(), 1u);
    // skopeo keeps the config as it is, so this is the same image (same id) with one more name.
    EXPECT_EQ(d["images"][0]["id"], layout["images"][0]["id"]);
    EXPECT_EQ(d["images"][0]["names"], json::array({kName, "localhost/from/docker:v1"}));
    EXPECT_EQ(ctl_json({"list"}).size(), 1u);
}

TEST_F(BerthctlImage, MountShowsTheImageFiles) {
    ASSERT_EQ(ctl({"import", archive_}).exit_code, 0);
    const std::string target = dir_ + "/mnt", upper = dir_ + "/upper";
    std::filesystem::create_directories(target);

    auto m = ctl({"mount", kName, target});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    mounts_.push_back(target);
    EXPECT_NE(m.out.find("read-only"), std::string::npos) << m.out;
    EXPECT_EQ(read_text(target + "/etc/hostname"), "berth\n");       // layer 2 replaced it
    EXPECT_FALSE(std::filesystem::exists(target + "/tmp/removed"));  // layer 2's whiteout
    EXPECT_TRUE(std::filesystem::is_regular_file(target + "/bin/busybox"));
    EXPECT_NE(run_command({"/bin/touch", target + "/new"}).exit_code, 0) << "a read-only mount took a write";
    auto um = ctl({"unmount", target});
    ASSERT_EQ(um.exit_code, 0) << um.err;
    EXPECT_FALSE(mounted(target));

    json mj = ctl_json({"mount", kName, target, "--upper", upper});
    mounts_.push_back(target);
    EXPECT_EQ(mj["readOnly"], false);
    EXPECT_EQ(mj["lowerdirs"].size(), 2u);
    write_text(target + "/new", "written\n");
    EXPECT_EQ(read_text(upper + "/upper/new"), "written\n");
    for (const auto& l : mj["lowerdirs"]) EXPECT_FALSE(std::filesystem::exists(l.get<std::string>() + "/new"));
    ASSERT_EQ(ctl({"umount", target}).exit_code, 0);
    EXPECT_FALSE(mounted(target));
    auto again = ctl({"unmount", target});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find(target), std::string::npos) << again.err;
}

TEST_F(BerthctlImage, TwoImportsOfOneArchiveAtOnceBothSucceed) {
    CommandResult a, b;
    std::thread ta([&] { a = ctl({"import", archive_}); });
    std::thread tb([&] { b = ctl({"import", archive_}); });
    ta.join();
    tb.join();
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(b.exit_code, 0) << b.err;
    json list = ctl_json({"list"});
    ASSERT_EQ(list.size(), 1u) << list.dump();
    EXPECT_EQ(list[0]["names"], json::array({kName}));
    json insp = ctl_json({"inspect", kName});
    EXPECT_EQ(insp["lowerdirs"].size(), 2u);
    for (const auto& l : insp["lowerdirs"]) EXPECT_TRUE(std::filesystem::is_directory(l.get<std::string>()));
}

TEST_F(BerthctlImage, ErrorsExitOneNamingWhatIsMissing) {
    const std::string missing = dir_ + "/no-such.tar";
    auto r = ctl({"import", missing});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;

    const std::string not_image = dir_ + "/not-an-image";
    write_text(not_image, "hello\n");
    r = ctl({"import", not_image});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(not_image), std::string::npos) << r.err;
    EXPECT_TRUE(ctl_json({"list"}).empty()) << "a failed import recorded something";

    for (const char* sub : {"inspect", "remove"}) {
        r = ctl({sub, "example.com/unknown:v9"});
        EXPECT_EQ(r.exit_code, 1) << sub;
        EXPECT_NE(r.err.find("example.com/unknown:v9"), std::string::npos) << sub << ": " << r.err;
    }
    r = ctl({"export", "example.com/unknown:v9", dir_ + "/out.tar"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("example.com/unknown:v9"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/out.tar"));
    r = ctl({"mount", "example.com/unknown:v9", dir_});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("example.com/unknown:v9"), std::string::npos) << r.err;
    // A mount that fails (the target is no directory) leaves no upper dir behind.
    ASSERT_EQ(ctl({"import", archive_}).exit_code, 0);
    r = ctl({"mount", kName, dir_ + "/no-such-dir", "--upper", dir_ + "/upper"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(dir_ + "/no-such-dir"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/upper"));

    r = ctl({"list", "--platform", "linux/amd64"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--platform"), std::string::npos) << r.err;
    r = ctl({"import", archive_, "--platform", "linux"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("OS/ARCH"), std::string::npos) << r.err;
}

// ---- pull, from Debian's docker-registry on loopback (plain HTTP) ----

class BerthctlImagePull : public BerthctlImage {
protected:
    void SetUp() override {
        BerthctlImage::SetUp();
        if (HasFatalFailure()) return;
        if (!have("docker-registry") || !have("skopeo")) GTEST_SKIP() << "docker-registry or skopeo missing";
        // Ports 15100-15199 belong to these tests.
        registry_ = std::make_unique<LocalRegistry>(15100);
        ASSERT_TRUE(registry_->start(dir_ + "/registry")) << read_text(registry_->log());
        port_ = registry_->port();
        host_ = fmt::format("127.0.0.1:{}", port_);
        auto push = run_command({"/usr/bin/skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                                 "oci:" + layout_, "docker://" + host_ + "/berth/busybox:v1"});
        ASSERT_EQ(push.exit_code, 0) << push.err;
    }
    void TearDown() override {
        registry_.reset();
        BerthctlImage::TearDown();
    }

    int port_ = -1;
    std::unique_ptr<LocalRegistry> registry_;
    std::string host_;
};

TEST_F(BerthctlImagePull, PullShowsPlainProgressLinesWhenNotOnATerminal) {
    const std::string ref = host_ + "/berth/busybox:v1";
    auto r = ctl({"pull", ref, "--insecure-registry", host_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "terminal escapes in plain output:\n" << r.out;
    EXPECT_NE(r.out.find(ref + ": resolved to sha256:"), std::string::npos) << r.out;
    // One "done" line per layer, and the image id at the end.
    size_t done_lines = 0;
    for (size_t pos = 0; (pos = r.out.find(": done (", pos)) != std::string::npos; ++pos) ++done_lines;
    EXPECT_EQ(done_lines, 2u) << r.out;
    json list = ctl_json({"list"});
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["names"], json::array({ref}));
    EXPECT_NE(r.out.find("pulled, image id " + list[0]["id"].get<std::string>()), std::string::npos) << r.out;

    // The pulled image mounts like an imported one.
    const std::string target = dir_ + "/mnt";
    std::filesystem::create_directories(target);
    ASSERT_EQ(ctl({"mount", ref, target}).exit_code, 0);
    mounts_.push_back(target);
    EXPECT_EQ(read_text(target + "/etc/hostname"), "berth\n");
    EXPECT_FALSE(std::filesystem::exists(target + "/tmp/removed"));
    ASSERT_EQ(ctl({"unmount", target}).exit_code, 0);

    // Again: every layer is already there.
    auto again = ctl({"pull", ref, "--insecure-registry", host_});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out.find(": done ("), std::string::npos) << again.out;
}

TEST_F(BerthctlImagePull, PullDrawsABarPerLayerOnATerminal) {
    if (!have("script")) GTEST_SKIP() << "script (util-linux) missing";
    const std::string ref = host_ + "/berth/busybox:v1";
    // script(1) gives berthctl a pty as its stdout.
    auto r =
        run_command({"/usr/bin/script", "-qec",
                     fmt::format("{} image pull --root {} --insecure-registry {} {}", BERTHCTL_BIN, root_, host_, ref),
                     "/dev/null"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("\x1b[2K"), std::string::npos) << "no line redraws:\n" << r.out;
    EXPECT_NE(r.out.find("[==============================]"), std::string::npos) << "no full bar:\n" << r.out;
    EXPECT_EQ(r.out.find("layer "), std::string::npos) << "plain lines on a terminal:\n" << r.out;
    EXPECT_NE(r.out.find("pulled, image id sha256:"), std::string::npos) << r.out;
}

TEST_F(BerthctlImagePull, PullJsonAndErrors) {
    const std::string ref = host_ + "/berth/busybox:v1";
    json j = ctl_json({"pull", "-o", "json", ref, "--insecure-registry", host_, "--platform",
                       "linux/" + image::host_platform().architecture});
    EXPECT_EQ(j["names"], json::array({ref}));
    EXPECT_TRUE(j["id"].get<std::string>().starts_with("sha256:"));

    // No --insecure-registry: https against a plain HTTP registry fails, naming the URL.
    auto tls = ctl({"pull", ref});
    EXPECT_EQ(tls.exit_code, 1);
    EXPECT_NE(tls.err.find("https://" + host_), std::string::npos) << tls.err;
    // A missing tag names the reference.
    auto missing = ctl({"pull", host_ + "/berth/busybox:nope", "--insecure-registry", host_});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("berth/busybox"), std::string::npos) << missing.err;
    EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
    auto bad_flag = ctl({"pull", ref, "--mirror", "nohost"});
    EXPECT_EQ(bad_flag.exit_code, 1);
    EXPECT_NE(bad_flag.err.find("HOST=URL"), std::string::npos) << bad_flag.err;
    EXPECT_EQ(ctl_json({"list"}).size(), 1u) << "failed pulls recorded something";
}

TEST_F(BerthctlImagePull, PullThroughAMirror) {
    // The reference names a registry that does not exist; the mirror serves it.
    json j = ctl_json({"pull", "registry.invalid/berth/busybox:v1", "--mirror", "registry.invalid=http://" + host_});
    EXPECT_EQ(j["names"], json::array({"registry.invalid/berth/busybox:v1"}));
}

}  // namespace
}  // namespace berth::test
