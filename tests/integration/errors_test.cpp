// Bad configs and failed creates: the error names the field or what really failed, and nothing is left behind.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

class Errors : public BerthTest {
protected:
    // Creates with `cfg` and expects failure with `needle` in stderr and a clean state root.
    void expect_create_fails(const json& cfg, const std::string& needle) {
        write_config(cfg);
        auto r = berth({"create", "--bundle", bundle_, next_id()});
        EXPECT_NE(r.exit_code, 0) << "create succeeded; wanted an error with: " << needle;
        EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
        EXPECT_TRUE(root_entries().empty()) << "state left behind after a failed create";
    }
};

TEST_F(Errors, UnknownRlimitNamesTheField) {
    json cfg = base_config({"true"});
    cfg["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 1}, {"hard", 1}},
                                 {{"type", "RLIMIT_FOO"}, {"soft", 1}, {"hard", 1}}};
    expect_create_fails(cfg, "process.rlimits[1].type");
}

TEST_F(Errors, WrongTypeNamesTheField) {
    json cfg = base_config({"true"});
    cfg["mounts"][0]["destination"] = 42;
    expect_create_fails(cfg, "mounts[0].destination");
}

TEST_F(Errors, UnknownNamespaceType) {
    json cfg = base_config({"true"});
    cfg["linux"]["namespaces"].push_back({{"type", "bogus"}});
    expect_create_fails(cfg, "linux.namespaces[5].type");
}

TEST_F(Errors, MissingArgs) {
    json cfg = base_config({"true"});
    cfg["process"]["args"] = json::array();
    expect_create_fails(cfg, "process.args");
}

TEST_F(Errors, InvalidJson) {
    write_text(bundle_ + "/config.json", "{\"ociVersion\": \"1.2.0\", ");
    auto r = berth({"create", "--bundle", bundle_, next_id()});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
    EXPECT_TRUE(root_entries().empty());
}

TEST_F(Errors, MissingRootfs) {
    json cfg = base_config({"true"});
    cfg["root"]["path"] = "no-such-rootfs";
    expect_create_fails(cfg, "no-such-rootfs");
}

TEST_F(Errors, ExecutableNotFoundFailsCreate) {
    expect_create_fails(base_config({"no-such-binary"}), "no-such-binary");
}

TEST_F(Errors, NegativeOomScoreAdjSaysWhatFailed) {
    // This host lacks CAP_SYS_RESOURCE: lowering oom_score_adj below the current value is refused by the kernel.
    json cfg = base_config({"true"});
    cfg["process"]["oomScoreAdj"] = -998;
    write_config(cfg);
    auto r = berth({"create", "--bundle", bundle_, next_id()});
    if (r.exit_code == 0) GTEST_SKIP() << "this host grants CAP_SYS_RESOURCE";
    EXPECT_NE(r.err.find("oom_score_adj -998"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("CAP_SYS_RESOURCE"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("pipe"), std::string::npos) << r.err;
    EXPECT_TRUE(root_entries().empty());
}

TEST_F(Errors, RaisingTheHardRlimitSaysWhy) {
    // One above our own hard limit (and below the kernel's nr_open cap, so only the capability is missing).
    struct rlimit rl {};
    getrlimit(RLIMIT_NOFILE, &rl);
    long nr_open = std::stol(read_text("/proc/sys/fs/nr_open"));
    if (static_cast<long>(rl.rlim_max) >= nr_open) GTEST_SKIP() << "hard limit already at nr_open";
    json cfg = base_config({"true"});
    cfg["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 1024}, {"hard", rl.rlim_max + 1}}};
    write_config(cfg);
    auto r = berth({"create", "--bundle", bundle_, next_id()});
    if (r.exit_code == 0) GTEST_SKIP() << "this host lets berth raise the hard limit";
    EXPECT_NE(r.err.find("RLIMIT_NOFILE"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("CAP_SYS_RESOURCE"), std::string::npos) << r.err;
    EXPECT_TRUE(root_entries().empty());
}

TEST_F(Errors, FailedCreateLeavesNoProcess) {
    // A mount that cannot succeed fails late in init: the init process must be gone afterwards.
    json cfg = base_config({"sleep", "1000"});
    cfg["mounts"].push_back(
        {{"destination", "/mnt"}, {"type", "bind"}, {"source", "/no/such/source"}, {"options", {"bind"}}});
    expect_create_fails(cfg, "/no/such/source");
    auto ps = run_command({"/bin/busybox", "pgrep", "-f", "sleep 1000"});
    EXPECT_EQ(ps.out, "");
}

// Syscalls newer than libseccomp are skipped as runc does (security_test.cpp); a name that is no Linux syscall, or
// cannot be one, is an error.
TEST_F(Errors, UnknownSyscallNamesTheField) {
    json cfg = base_config({"true"});
    cfg["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"syscalls", {{{"names", {"getpid", "mkdri"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
    expect_create_fails(cfg, R"(linux.seccomp.syscalls[0].names[1]: unknown syscall "mkdri")");
}

TEST_F(Errors, EmptySyscallNameNamesTheField) {
    json cfg = base_config({"true"});
    cfg["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"syscalls", {{{"names", {"getpid", ""}}, {"action", "SCMP_ACT_ERRNO"}}}}};
    expect_create_fails(cfg, R"(linux.seccomp.syscalls[0].names[1]: not a syscall name: "")");
}

TEST_F(Errors, UnknownCapabilityNamesTheField) {
    json cfg = base_config({"true"});
    cfg["process"]["capabilities"] = {{"bounding", {"CAP_KILL", "CAP_NOPE"}}};
    expect_create_fails(cfg, "process.capabilities.bounding[1]");
}

TEST_F(Errors, TerminalWithoutConsoleSocket) {
    json cfg = base_config({"true"});
    cfg["process"]["terminal"] = true;
    expect_create_fails(cfg, "console-socket");
}

}  // namespace
}  // namespace berth::test
