#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/fs.hpp"

namespace berth::runtime {
namespace {

constexpr const char* kBusybox = "/bin/busybox";

class HooksTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-hooks-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        if (!dir_.empty()) (void)remove_all(dir_);
    }

    // Writes an executable busybox sh script and returns its path.
    std::string script(const std::string& name, const std::string& body) {
        std::string path = dir_ + "/" + name;
        EXPECT_TRUE(write_file(path, std::string("#!/bin/busybox sh\n") + body + "\n", 0755));
        return path;
    }
    std::string file(const std::string& name) const { return dir_ + "/" + name; }
    std::string slurp(const std::string& name) const {
        auto r = read_file(file(name));
        return r ? *r : std::string("<missing>");
    }

    std::string dir_;
};

TEST(HookFailure, FatalPhases) {
    for (auto phase : {"prestart", "createRuntime", "createContainer", "startContainer"})
        EXPECT_TRUE(hook_failure_is_fatal(phase)) << phase;
    EXPECT_FALSE(hook_failure_is_fatal("poststart"));
    EXPECT_FALSE(hook_failure_is_fatal("poststop"));
    EXPECT_TRUE(hook_failure_is_fatal("somethingElse"));
}

TEST_F(HooksTest, StateJsonArrivesExactlyOnStdin) {
    // Larger than a pipe's buffer, so the write has to wait for the hook to read.
    std::string state = R"({"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b",)";
    state += R"("annotations":{"big":")" + std::string(300 * 1024, 'x') + R"("}})";
    spec::Hook hook{.path = script("copy", "cat > \"$1\""), .args = {"copy", file("state.json")}};
    auto r = run_hooks({hook}, state, "createRuntime");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(slurp("state.json"), state);
}

TEST_F(HooksTest, ArgsAndEnvAreExactlyTheHooks) {
    ASSERT_EQ(::setenv("BERTH_HOOK_TEST_LEAK", "1", 1), 0);
    spec::Hook hook{
        .path = kBusybox,
        // argv[0] "sh" is what makes busybox run its shell: args[0] is passed as given.
        .args = {"sh", "-c", R"(echo "$0|$1|$FOO|$BAR|${BERTH_HOOK_TEST_LEAK-unset}" > "$OUT")", "zero", "one"},
        .env = {"FOO=foo value", "BAR=bar", "OUT=" + file("out")},
    };
    auto r = run_hook(hook, "{}", "prestart");
    ::unsetenv("BERTH_HOOK_TEST_LEAK");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(slurp("out"), "zero|one|foo value|bar|unset\n");
}

TEST_F(HooksTest, EmptyArgsRunWithPathAsArgv0) {
    // busybox picks the applet by argv[0]'s base name: the link's own name shows which argv[0] it got.
    ASSERT_EQ(::symlink(kBusybox, file("true").c_str()), 0);
    ASSERT_EQ(::symlink(kBusybox, file("false").c_str()), 0);
    auto ok = run_hook({.path = file("true")}, "{}", "poststart");
    EXPECT_TRUE(ok) << ok.error().message();
    auto bad = run_hook({.path = file("false")}, "{}", "poststart");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("exit status 1"), std::string::npos) << bad.error().message();
}

TEST_F(HooksTest, NonZeroExitNamesCodeAndStderr) {
    spec::Hook hook{.path = script("fail", "echo some-output; echo 'no such network' >&2; exit 3")};
    auto r = run_hooks({hook}, "{}", "createRuntime");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "createRuntime hook " + hook.path + ": exit status 3 (stderr: no such network)");
}

TEST_F(HooksTest, StdoutShownWhenStderrIsEmpty) {
    spec::Hook hook{.path = script("fail", "echo only-stdout; exit 2")};
    auto r = run_hook(hook, "{}", "startContainer");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("exit status 2 (stdout: only-stdout)"), std::string::npos)
        << r.error().message();
}

TEST_F(HooksTest, KilledBySignal) {
    spec::Hook hook{.path = script("suicide", "kill -9 $$")};
    auto r = run_hook(hook, "{}", "createContainer");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("killed by signal 9"), std::string::npos) << r.error().message();
}

TEST_F(HooksTest, TimeoutKillsTheHookAndItsChildren) {
    // The sleep runs in a child of the hook's shell: the whole process group must die, not only the shell.
    spec::Hook hook{
        .path = script("slow", "sleep 30 & echo $! > \"$1\"; wait"), .args = {"slow", file("sleep.pid")}, .timeout = 1};
    auto start = std::chrono::steady_clock::now();
    auto r = run_hooks({hook}, "{}", "createRuntime");
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "createRuntime hook " + hook.path + ": timed out after 1s");
    EXPECT_LT(elapsed, std::chrono::seconds(20));

    std::string pid = slurp("sleep.pid");
    while (!pid.empty() && pid.back() == '\n') pid.pop_back();
    ASSERT_FALSE(pid.empty());
    // Reparented to init once its parent died: gone, or a zombie waiting for init, within a few seconds.
    bool dead = false;
    for (int i = 0; i < 50 && !dead; ++i) {
        auto stat = read_file("/proc/" + pid + "/stat");
        dead = !stat || stat->find(") Z ") != std::string::npos;
        if (!dead) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!dead) ::kill(std::stoi(pid), SIGKILL);
    EXPECT_TRUE(dead) << "sleep " << pid << " survived the hook's timeout";
}

TEST_F(HooksTest, OnlyStdioIsInherited) {
    // An fd without O_CLOEXEC, as careless code elsewhere in the process might leave.
    int leaked = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(leaked, 0);
    ASSERT_EQ(::dup2(leaked, 100), 100);
    ::close(leaked);
    spec::Hook hook{.path = script("fds", "ls /proc/$$/fd > \"$1\""), .args = {"fds", file("fds")}};
    auto r = run_hook(hook, "{}", "prestart");
    ::close(100);
    ASSERT_TRUE(r) << r.error().message();
    // 0-2, plus whatever the shell itself opens (the script, at 10 or above, and ls's directory fd).
    std::string fds = slurp("fds");
    EXPECT_EQ(fds.find("100"), std::string::npos) << fds;
    for (int fd = 3; fd < 10; ++fd) {
        if (fds.find("\n" + std::to_string(fd) + "\n") != std::string::npos)
            ADD_FAILURE() << "fd " << fd << " open in hook: " << fds;
    }
}

TEST_F(HooksTest, HookThatIgnoresStdinSucceeds) {
    std::string state(1 << 20, 's');  // far more than the pipe holds: our write gets EPIPE once the hook is gone
    auto r = run_hook({.path = script("noread", "exit 0")}, state, "poststop");
    EXPECT_TRUE(r) << r.error().message();
}

TEST_F(HooksTest, FatalPhaseStopsAtFirstFailure) {
    spec::Hook fails{.path = script("fails", "exit 1")};
    spec::Hook marks{.path = script("marks", "touch \"$1\""), .args = {"marks", file("marker")}};
    auto r = run_hooks({fails, marks}, "{}", "createContainer");
    ASSERT_FALSE(r);
    EXPECT_FALSE(path_exists(file("marker")));
}

TEST_F(HooksTest, NonFatalPhaseRunsAllAndReportsEveryFailure) {
    spec::Hook first{.path = script("first", "echo first-broke >&2; exit 1")};
    spec::Hook marks{.path = script("marks", "touch \"$1\""), .args = {"marks", file("marker")}};
    spec::Hook third{.path = script("third", "exit 4")};
    auto r = run_hooks({first, marks, third}, "{}", "poststop");
    ASSERT_FALSE(r);
    EXPECT_TRUE(path_exists(file("marker")));
    EXPECT_EQ(r.error().message(), "poststop hook " + first.path + ": exit status 1 (stderr: first-broke); " +
                                       "poststop hook " + third.path + ": exit status 4");
}

TEST_F(HooksTest, MissingOrRelativePath) {
    auto missing = run_hook({.path = file("nope")}, "{}", "prestart");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_NE(missing.error().message().find("prestart hook " + file("nope") + ": exec"), std::string::npos)
        << missing.error().message();
    auto relative = run_hook({.path = "bin/true"}, "{}", "prestart");
    ASSERT_FALSE(relative);
    EXPECT_NE(relative.error().message().find("not absolute"), std::string::npos);
}

}  // namespace
}  // namespace berth::runtime
