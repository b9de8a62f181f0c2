// berth-monitor --reap-exec (monitor/exec_reaper.hpp) with a stand-in for a detached runtime: a shell that leaves
// a background process behind, writes its pid to the pid file and exits, as `runc exec --detach` does. The reaper
// must adopt the orphan and exit with its status.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "harness.hpp"

namespace berth::test {
namespace {

class ExecReaperTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/reaper-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        pid_file_ = dir_ + "/pid";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // The reaper running `sh -c script` as the runtime; $F in the script is the pid file.
    CommandResult reap(const std::string& script) {
        return run_command(
            {BERTH_MONITOR_BIN, "--reap-exec", pid_file_, "--", "/bin/sh", "-c", "F=" + pid_file_ + "; " + script});
    }

    std::string dir_, pid_file_;
};

TEST_F(ExecReaperTest, ExitsWithTheStatusOfTheOrphanedProcess) {
    // The process outlives the "runtime" by a while, so it really is re-parented before it exits.
    auto r = reap("(sleep 0.3; exit 7) & echo $! > $F");
    EXPECT_EQ(r.exit_code, 7) << r.err;
    EXPECT_EQ(r.err, "");
    // Other orphans on the way (the runtime's helpers) are reaped, and the reaper still waits for its process.
    r = reap("sleep 0.1 & (sleep 0.4; exit 4) & echo $! > $F");
    EXPECT_EQ(r.exit_code, 4) << r.err;
}

TEST_F(ExecReaperTest, AKilledProcessIs128PlusTheSignal) {
    auto r = reap("sh -c 'sleep 0.3; kill -KILL $$' & echo $! > $F");
    EXPECT_EQ(r.exit_code, 137) << r.err;
}

TEST_F(ExecReaperTest, AFailingRuntimeIsItsOwnStatusAndMessage) {
    auto r = reap("echo 'exec failed: no such container' >&2; exit 3");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(trim(r.err), "exec failed: no such container");
    r = reap("kill -TERM $$");
    EXPECT_EQ(r.exit_code, 143);
}

TEST_F(ExecReaperTest, NoPidFromTheRuntimeIsTheReapersError) {
    auto r = reap("true");
    EXPECT_EQ(r.exit_code, 255);
    EXPECT_NE(r.err.find(pid_file_), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("without writing"), std::string::npos) << r.err;

    // A pid that is not the reaper's child (here: init's) is not waited for, nor reported as the process's.
    r = reap("echo 1 > $F");
    EXPECT_EQ(r.exit_code, 255);
    EXPECT_NE(r.err.find("not re-parented"), std::string::npos) << r.err;

    r = run_command({BERTH_MONITOR_BIN, "--reap-exec", pid_file_, "--", dir_ + "/no-such-runtime"});
    EXPECT_EQ(r.exit_code, 255);
    EXPECT_NE(r.err.find("no-such-runtime"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace berth::test
