// common/capture: a child run to its end with its output collected, against /bin/sh children that fill pipes,
// read stdin to EOF, close their output early or outlive their deadline; what became of the child is checked in
// /proc.
#include "common/capture.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

namespace berth {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

CaptureRequest sh(const std::string& script) {
    return {.spawn = {.path = "/bin/sh", .argv = {"sh", "-c", script}}, .label = "capture-test sh"};
}

// `n` bytes of "<word>\n" repeated, as `yes <word> | head -c n` writes them.
std::string repeated(const std::string& word, size_t n) {
    std::string line = word + "\n", s;
    while (s.size() < n) s += line;
    s.resize(n);
    return s;
}

// Runs `req` under a deadline of 30 s (a hang fails the test instead of blocking the suite); the child must end
// on its own, with `exit_code`.
CaptureResult run_to_exit(CaptureRequest req, int exit_code) {
    req.timeout = milliseconds(30000);
    auto r = capture(req);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    if (!r) return {};
    EXPECT_FALSE(r->timed_out);
    EXPECT_EQ(r->exit_code, exit_code);
    return *r;
}

bool proc_exists(pid_t pid) {
    struct stat st;
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

// SIGPIPE at its default (the process dies of it) for the scope of a test, as in a program that does not ignore it.
class DefaultSigpipe {
public:
    DefaultSigpipe() { old_ = ::signal(SIGPIPE, SIG_DFL); }
    ~DefaultSigpipe() { ::signal(SIGPIPE, old_); }

private:
    sighandler_t old_;
};

bool sigpipe_pending() {
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    return sigismember(&pending, SIGPIPE) == 1;
}

TEST(Capture, BothStreamsFarBeyondThePipeBufferAtOnce) {
    // 2 MB on each, written at the same time: a reader that drains one stream to its end first leaves the child
    // blocked on the other (64 KiB pipes) and both wait forever; the deadline turns that into a failure.
    constexpr size_t kSize = 2'000'000;
    auto req = sh("(yes capture-err | head -c 2000000 >&2) & yes capture-out | head -c 2000000; wait");
    req.cap = 4 << 20;
    auto r = run_to_exit(req, 0);
    EXPECT_EQ(r.out.size(), kSize);
    EXPECT_EQ(r.err.size(), kSize);
    EXPECT_TRUE(r.out == repeated("capture-out", kSize)) << "stdout differs";
    EXPECT_TRUE(r.err == repeated("capture-err", kSize)) << "stderr differs";
}

TEST(Capture, OutputBeyondTheCapIsReadAndDropped) {
    // Past the cap the output is still read: the writer neither blocks on a full pipe (the deadline would pass)
    // nor meets a closed one (head would die of SIGPIPE: status 141). It writes 1 MB, then its status.
    auto req = sh("yes capture-cap | head -c 1000000; echo \"head $?\" >&2; exit 4");
    req.cap = 1000;
    auto r = run_to_exit(req, 4);
    EXPECT_EQ(r.out, repeated("capture-cap", 1000));
    EXPECT_EQ(r.err, "head 0\n");
}

// Runs `script`, which prints its pid first and runs on for 30 s, with a deadline of 300 ms: the hook runs once,
// the child is killed, and its pid is gone from /proc (killed and reaped: no zombie). What it wrote before the
// deadline is kept.
void expect_killed_at_the_deadline(const std::string& script) {
    auto req = sh(script);
    req.timeout = milliseconds(300);
    int hooks = 0;
    req.on_timeout = [&] { ++hooks; };
    auto t0 = steady_clock::now();
    auto r = capture(req);
    auto took = steady_clock::now() - t0;
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->timed_out);
    EXPECT_EQ(hooks, 1);
    EXPECT_EQ(r->exit_code, 128 + SIGKILL);
    EXPECT_GE(took, milliseconds(300));
    EXPECT_LT(took, milliseconds(10000));
    ASSERT_FALSE(r->out.empty());
    pid_t pid = static_cast<pid_t>(std::stoi(r->out));
    ASSERT_GT(pid, 0);
    EXPECT_FALSE(proc_exists(pid)) << "pid " << pid << " is still there";
}

TEST(Capture, TimeoutRunsTheHookKillsAndReapsTheChild) {
    expect_killed_at_the_deadline("echo $$; exec sleep 30");
}

TEST(Capture, NoHookWithoutATimeout) {
    auto req = sh("exit 0");
    int hooks = 0;
    req.on_timeout = [&] { ++hooks; };
    auto r = capture(req);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE(r->timed_out);
    EXPECT_EQ(hooks, 0);
}

TEST(Capture, StdinIsDeliveredWhileOutputIsReadAndEndsInEof) {
    // 3 MB through cat: cat blocks on its stdout long before the input is all written, so the input must be
    // written in the same loop that reads the output; cat exits only when it sees EOF.
    const std::string input = repeated("capture-in", 3'000'000);
    for (bool socket : {false, true}) {
        SCOPED_TRACE(socket ? "socket" : "pipe");
        auto req = sh("cat; echo eof-seen >&2");
        req.input = input;
        req.stdin_socket = socket;
        req.cap = 4 << 20;
        auto r = run_to_exit(req, 0);
        EXPECT_EQ(r.out.size(), input.size());
        EXPECT_TRUE(r.out == input) << "stdout differs from the input";
        EXPECT_EQ(r.err, "eof-seen\n");
    }
}

TEST(Capture, StdinKindIsWhatWasAsked) {
    for (bool socket : {false, true}) {
        SCOPED_TRACE(socket ? "socket" : "pipe");
        auto req = sh("readlink /proc/self/fd/0");
        req.stdin_socket = socket;
        auto r = capture(req);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->out.rfind(socket ? "socket:[" : "pipe:[", 0), 0U) << r->out;
    }
}

TEST(Capture, AChildThatDoesNotReadItsStdinRaisesNoSigpipeHere) {
    // 4 MB the child never reads: the write fails with EPIPE once it exited. With SIGPIPE at its default, a
    // write that raised it would kill this test process.
    DefaultSigpipe dfl;
    const std::string input(4 << 20, 'x');
    for (bool socket : {false, true}) {
        SCOPED_TRACE(socket ? "socket" : "pipe");
        auto req = sh("exit 7");
        req.input = input;
        req.stdin_socket = socket;
        run_to_exit(req, 7);
        EXPECT_FALSE(sigpipe_pending());
    }
}

TEST(Capture, StderrIsStillReadAfterTheChildClosedItsStdout) {
    auto r = run_to_exit(sh("echo early; exec >&-; sleep 0.3; echo late >&2; exit 3"), 3);
    EXPECT_EQ(r.out, "early\n");
    EXPECT_EQ(r.err, "late\n");
}

TEST(Capture, AChildWithItsOutputClosedIsWaitedForItsExit) {
    // No output at all to wait on: its exit code is still what it exits with later.
    run_to_exit(sh("exec >&- 2>&-; sleep 0.3; exit 6"), 6);
}

TEST(Capture, TheDeadlineHoldsAfterTheChildClosedItsOutput) {
    // Both outputs closed, running on: it is killed at the deadline like any other.
    expect_killed_at_the_deadline("echo $$; exec >&- 2>&-; exec sleep 30");
}

TEST(Capture, OutputEndsAtEofNotAtTheChildsExit) {
    // The child exits at once; what it started holds stdout a little longer, and what that writes is kept.
    auto r = run_to_exit(sh("(sleep 0.3; echo from-the-grandchild) & exit 2"), 2);
    EXPECT_EQ(r.out, "from-the-grandchild\n");
}

TEST(Capture, DeathBySignalIs128PlusTheSignal) {
    run_to_exit(sh("kill -TERM $$"), 128 + SIGTERM);
}

TEST(Capture, AProgramThatCannotStartIsAnErrorNamingIt) {
    auto r = capture({.spawn = {.path = "/nonexistent/capture-prog"}, .label = "plugin /nonexistent/capture-prog"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ENOENT);
    EXPECT_EQ(r.error().message().rfind("start plugin /nonexistent/capture-prog: ", 0), 0U) << r.error().message();
}

}  // namespace
}  // namespace berth
