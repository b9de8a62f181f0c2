// `make install` into a DESTDIR: the binaries, the systemd unit (checked by systemd-analyze verify when the host
// has it) and the default berth.toml, which a second install keeps.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "berthd_process.hpp"
#include "harness.hpp"

namespace berth::test {
namespace {

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in:\n" << (haystack)

// The build directory the tests were built in: BERTHD_BIN is <build>/bin/berthd.
std::string build_dir() {
    return std::filesystem::path(BERTHD_BIN).parent_path().parent_path().string();
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

TEST(MakeInstall, LaysOutBinariesUnitAndConfigAndKeepsAnEditedConfig) {
    TempDir dest("ops-install");
    const std::string d = dest.path();
    auto make = [&] {
        return run_command({"/usr/bin/make", "-s", "-C", BERTH_SOURCE_DIR, "install", "DESTDIR=" + d,
                            "BUILD_DIR=" + build_dir(), "PREFIX=/usr/local", "JOBS=1"});
    };
    auto r = make();
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

    for (const char* b : {"berth", "berthd", "berth-monitor", "berth-pull", "berthctl"}) {
        std::string path = d + "/usr/local/bin/" + b;
        EXPECT_EQ(mode_of(path), 0755u) << path;
    }
    // The installed daemon runs from there (no rpath into the build tree).
    auto v = run_command({d + "/usr/local/bin/berthd", "--version"});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_CONTAINS(v.out, "berthd version");

    const std::string unit = d + "/usr/local/lib/systemd/system/berthd.service";
    EXPECT_EQ(mode_of(unit), 0644u);
    std::string text = read_text(unit);
    EXPECT_CONTAINS(text, "ExecStart=/usr/local/bin/berthd --config /etc/berth/berth.toml\n");
    EXPECT_CONTAINS(text, "Type=notify\n");
    EXPECT_CONTAINS(text, "KillMode=process\n");
    EXPECT_CONTAINS(text, "Delegate=yes\n");
    EXPECT_CONTAINS(text, "LimitNOFILE=");
    EXPECT_EQ(text.find("@BINDIR@"), std::string::npos);

    const std::string conf = d + "/etc/berth/berth.toml";
    EXPECT_EQ(mode_of(conf), 0644u);
    EXPECT_EQ(read_text(conf), read_text(BERTH_SOURCE_DIR "/packaging/berth.toml"));
    // (cri_config_test loads packaging/berth.toml.) An edited file survives a second install.
    write_text(conf, "log_level = \"debug\"\n");
    r = make();
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(read_text(conf), "log_level = \"debug\"\n");
    EXPECT_CONTAINS(r.out, "keeping the existing");

    if (::access("/usr/bin/systemd-analyze", X_OK) != 0) {
        RecordProperty("systemd_analyze", "not installed: unit not verified");
        return;
    }
    // verify resolves ExecStart= and the units it names on this host, so it checks an install with the prefix
    // and the configuration directory in the temp dir (no DESTDIR) instead.
    r = run_command({"/usr/bin/make", "-s", "-C", BERTH_SOURCE_DIR, "install", "PREFIX=" + d + "/p",
                     "SYSCONFDIR=" + d + "/p/etc", "BUILD_DIR=" + build_dir(), "JOBS=1"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string local_unit = d + "/p/lib/systemd/system/berthd.service";
    EXPECT_CONTAINS(read_text(local_unit), "ExecStart=" + d + "/p/bin/berthd --config " + d + "/p/etc/berth/berth.toml\n");
    EXPECT_TRUE(std::filesystem::exists(d + "/p/etc/berth/berth.toml"));
    auto verify = run_command({"/usr/bin/systemd-analyze", "verify", local_unit});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
    // A unit that names a binary that is not there fails verification: the check can fail.
    std::filesystem::remove(d + "/p/bin/berthd");
    EXPECT_NE(run_command({"/usr/bin/systemd-analyze", "verify", local_unit}).exit_code, 0);
}

}  // namespace
}  // namespace berth::test
