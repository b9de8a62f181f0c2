// common/spawn: what a spawned child really gets (its fds, its signals, its environment), seen from inside it
// with /bin/sh and /proc.
#include "common/spawn.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/unique_fd.hpp"
#include "test_fds.hpp"

namespace berth {
namespace {

using testing::Pipe;
using testing::read_fd_all;

int wait_for(pid_t pid) {
    int st = 0;
    EXPECT_EQ(::waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Runs `script` in /bin/sh with stdout on a pipe; the output and the exit code.
std::pair<std::string, int> run_sh(const std::string& script, SpawnRequest r = {}) {
    Pipe out;
    r.path = "/bin/sh";
    r.argv = {"sh", "-c", script};
    r.stdout_fd = out.w.get();
    auto pid = spawn(r);
    EXPECT_TRUE(pid) << pid.error().message();
    if (!pid) return {"", -1};
    out.w.reset();
    std::string text = read_fd_all(out.r.get());
    return {text, wait_for(*pid)};
}

TEST(Spawn, ChildHasOnlyStdioAndNullWhereNotGiven) {
    // An fd of the parent without O_CLOEXEC must not reach the child either.
    int leaky = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(leaky, 0);
    auto [out, code] = run_sh("ls /proc/self/fd; readlink /proc/self/fd/0");
    ::close(leaky);
    EXPECT_EQ(code, 0);
    // 0, 1, 2 and the fd ls itself opens for the directory (3): nothing of ours.
    EXPECT_EQ(out, "0\n1\n2\n3\n/dev/null\n");
}

TEST(Spawn, ExtraFdsLandAtTheirNumbersEvenWhenTheyCrossEachOther) {
    // Sources and targets swapped: 8 -> 9 and 9 -> 8 (a naive dup2 order would clobber one). Single digits:
    // sh's redirections take no more.
    for (int fd : {8, 9})
        if (::fcntl(fd, F_GETFD) >= 0) GTEST_SKIP() << "fd " << fd << " is in use in the test process";
    Pipe a, b;
    ASSERT_EQ(::dup2(a.w.get(), 8), 8);
    ASSERT_EQ(::dup2(b.w.get(), 9), 9);
    a.w.reset(), b.w.reset();
    SpawnRequest r;
    r.extra_fds = {{8, 9}, {9, 8}};
    auto [out, code] = run_sh("echo to-nine >&9; echo to-eight >&8", r);
    ::close(8), ::close(9);
    EXPECT_EQ(code, 0);
    EXPECT_EQ(read_fd_all(a.r.get()), "to-nine\n");  // a's write end was 8, the child's 9
    EXPECT_EQ(read_fd_all(b.r.get()), "to-eight\n");
}

TEST(Spawn, SignalsStartAtTheirDefaultsAndUnblocked) {
    // The parent ignores SIGPIPE and blocks SIGUSR1 (as berthd does with its stop signals).
    auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
    sigset_t usr1, old_mask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask), 0);
    // SigBlk and SigIgn in /proc/self/status are hex masks; SIGPIPE is bit 13 (0x1000), SIGUSR1 bit 9 (0x200).
    auto [out, code] = run_sh("grep -E '^Sig(Blk|Ign)' /proc/self/status");
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::signal(SIGPIPE, old_pipe);
    EXPECT_EQ(code, 0);
    EXPECT_NE(out.find("SigBlk:\t0000000000000000"), std::string::npos) << out;
    auto ign = out.substr(out.find("SigIgn:\t") + 8, 16);
    EXPECT_EQ(std::stoull(ign, nullptr, 16) & (1ULL << (SIGPIPE - 1)), 0U) << out;
}

TEST(Spawn, EnvironmentIsExactlyTheOneGiven) {
    std::vector<std::string> env = {"ONLY=this", "PATH=/bin"};
    SpawnRequest r;
    r.env = &env;
    auto [out, code] = run_sh("env | sort", r);
    EXPECT_EQ(code, 0);
    // sh may add PWD (and SHLVL) of its own; nothing of the parent's (HOME, the test runner's variables).
    EXPECT_NE(out.find("ONLY=this\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("HOME="), std::string::npos) << out;
}

TEST(Spawn, NewProcessGroup) {
    SpawnRequest r;
    r.new_process_group = true;
    auto [out, code] = run_sh("echo $$; cut -d' ' -f5 /proc/self/stat", r);
    EXPECT_EQ(code, 0);
    // /proc/self/stat of `cut` (a child of sh): its process group is sh's pid.
    auto nl = out.find('\n');
    ASSERT_NE(nl, std::string::npos);
    EXPECT_EQ(out.substr(0, nl + 1), out.substr(nl + 1)) << out;
    EXPECT_NE(std::to_string(::getpgrp()) + "\n", out.substr(nl + 1));
}

TEST(Spawn, MissingProgramIsAnErrorNamingIt) {
    auto pid = spawn({.path = "/nonexistent/prog"});
    ASSERT_FALSE(pid);
    EXPECT_EQ(pid.error().code(), ENOENT);
    EXPECT_NE(pid.error().message().find("/nonexistent/prog"), std::string::npos) << pid.error().message();
}

TEST(Spawn, StdioTargetThatIsAnotherSourceIsNotClobbered) {
    // stdout's source is fd 0 and stdin's source is fd 1's: 0 -> 1 must not destroy what 0 -> ... needs.
    Pipe in, out;
    int saved0 = ::dup(0), saved1 = ::dup(1);
    ASSERT_EQ(::dup2(out.w.get(), 0), 0);  // parent's fd 0 is the output pipe
    ASSERT_EQ(::dup2(in.r.get(), 1), 1);   // parent's fd 1 is the input pipe
    out.w.reset(), in.r.reset();
    SpawnRequest r{.path = "/bin/sh", .argv = {"sh", "-c", "read x; echo got-$x"}, .stdin_fd = 1, .stdout_fd = 0};
    auto pid = spawn(r);
    ::dup2(saved0, 0), ::dup2(saved1, 1);
    ::close(saved0), ::close(saved1);
    ASSERT_TRUE(pid) << pid.error().message();
    ASSERT_EQ(::write(in.w.get(), "it\n", 3), 3);
    in.w.reset();
    EXPECT_EQ(read_fd_all(out.r.get()), "got-it\n");
    EXPECT_EQ(wait_for(*pid), 0);
}

}  // namespace
}  // namespace berth
