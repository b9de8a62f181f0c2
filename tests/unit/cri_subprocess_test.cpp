// cri/subprocess: run_captured on top of common/capture (the hook with its argument, the input on a pipe, errors
// naming argv[0]) and run_checked's error.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "cri/subprocess.hpp"

namespace berth::cri {
namespace {

void count_hook(void* arg) {
    ++*static_cast<int*>(arg);
}

TEST(RunCaptured, HookGetsItsArgumentAtTheTimeout) {
    int hooks = 0;
    auto r = run_captured({"/bin/sleep", "30"}, "", 200, 1 << 10, count_hook, &hooks);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->timed_out);
    EXPECT_EQ(hooks, 1);
    EXPECT_EQ(r->exit_code, 128 + SIGKILL);
}

TEST(RunCaptured, InputOnAPipeAndErrorsNamingTheProgram) {
    auto r = run_captured({"/bin/sh", "-c", "readlink /proc/self/fd/0; cat"}, "capture-input", 0, 1 << 10);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->out.rfind("pipe:[", 0), 0U) << r->out;
    EXPECT_NE(r->out.find("]\ncapture-input"), std::string::npos) << r->out;

    auto missing = run_captured({"/nonexistent/capture-runtime", "features"}, "", 0, 1 << 10);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message().rfind("start /nonexistent/capture-runtime: ", 0), 0U)
        << missing.error().message();
    auto checked = run_checked({"/bin/sh", "-c", "echo capture-broke >&2; exit 1"});
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().message().find("capture-broke"), std::string::npos) << checked.error().message();
}

}  // namespace
}  // namespace berth::cri
