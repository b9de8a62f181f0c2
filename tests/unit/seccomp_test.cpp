// Seccomp compilation (every action, operator and flag) and the loaded filter's behaviour in a forked child.
#include "linux/seccomp.hpp"

#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "child_process.hpp"

namespace berth::sys {
namespace {

spec::Seccomp allow_all_but(const std::string& name, const std::string& action) {
    spec::Seccomp s;
    s.default_action = "SCMP_ACT_ALLOW";
    spec::SeccompSyscall sc;
    sc.names = {name};
    sc.action = action;
    s.syscalls.push_back(sc);
    return s;
}

std::string error_of(const spec::Seccomp& s) {
    auto r = compile_seccomp(s);
    return r ? "" : r.error().message();
}

TEST(Seccomp, CompilesEveryAction) {
    for (const auto& action : known_seccomp_actions()) {
        auto s = allow_all_but("getcwd", action);
        if (action == "SCMP_ACT_ALLOW") s.default_action = "SCMP_ACT_ERRNO";
        auto f = compile_seccomp(s);
        ASSERT_TRUE(f) << action << ": " << f.error().message();
        EXPECT_FALSE(f->program().empty()) << action;
        EXPECT_EQ(f->uses_notify(), action == "SCMP_ACT_NOTIFY") << action;
        EXPECT_EQ((f->flags() & SECCOMP_FILTER_FLAG_NEW_LISTENER) != 0, action == "SCMP_ACT_NOTIFY") << action;
    }
    EXPECT_EQ(known_seccomp_actions().size(), 9u);
}

TEST(Seccomp, ActionErrors) {
    spec::Seccomp s = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    s.default_action = "SCMP_ACT_NOTIFY";
    EXPECT_EQ(error_of(s), "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    s = allow_all_but("getcwd", "SCMP_ACT_BOOM");
    EXPECT_EQ(error_of(s), R"(linux.seccomp.syscalls[0].action: unknown seccomp action "SCMP_ACT_BOOM")");
}

TEST(Seccomp, CompilesEveryOperator) {
    for (const auto& op : known_seccomp_operators()) {
        auto s = allow_all_but("getpriority", "SCMP_ACT_ERRNO");
        s.syscalls[0].args.push_back({0, 7, 3, op});
        auto f = compile_seccomp(s);
        EXPECT_TRUE(f) << op << ": " << (f ? "" : f.error().message());
    }
    EXPECT_EQ(known_seccomp_operators().size(), 7u);
    auto s = allow_all_but("getpriority", "SCMP_ACT_ERRNO");
    s.syscalls[0].args.push_back({0, 1, 0, "SCMP_CMP_ABOUT"});
    EXPECT_EQ(error_of(s), R"(linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_ABOUT")");
    s.syscalls[0].args[0] = {6, 1, 0, "SCMP_CMP_EQ"};
    EXPECT_EQ(error_of(s), "linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument (0-5)");
}

TEST(Seccomp, FlagsBecomeSeccompFlags) {
    auto s = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    s.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
    auto f = compile_seccomp(s);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(f->flags(), SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);

    s.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
    EXPECT_EQ(error_of(s),
              "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with "
              "SCMP_ACT_NOTIFY");
    s.syscalls[0].action = "SCMP_ACT_NOTIFY";
    s.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"};
    auto supported = supported_seccomp_flags();
    if (std::find(supported.begin(), supported.end(), "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") != supported.end()) {
        f = compile_seccomp(s);
        ASSERT_TRUE(f) << f.error().message();
        // TSYNC together with a listener needs TSYNC_ESRCH, or the kernel refuses the combination.
        EXPECT_EQ(f->flags(), SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | SECCOMP_FILTER_FLAG_TSYNC |
                                  SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC_ESRCH);
    } else {
        EXPECT_EQ(error_of(s), R"(linux.seccomp.flags[0]: seccomp flag "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" )"
                               "is not supported by this kernel");
    }
    s.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_FAST"};
    EXPECT_EQ(error_of(s), R"(linux.seccomp.flags[1]: unknown seccomp flag "SECCOMP_FILTER_FLAG_FAST")");
}

TEST(Seccomp, KnownAndSupportedFlags) {
    auto known = known_seccomp_flags();
    EXPECT_EQ(known,
              (std::vector<std::string>{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}));
    auto supported = supported_seccomp_flags();
    for (const auto& f : supported) EXPECT_NE(std::find(known.begin(), known.end(), f), known.end()) << f;
    // Every kernel berth runs on (>= 4.17) has these three.
    for (const char* f : {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"})
        EXPECT_NE(std::find(supported.begin(), supported.end(), f), supported.end()) << f;
}

TEST(Seccomp, Architectures) {
    auto s = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
    EXPECT_EQ(error_of(s), "");
    s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"};
    EXPECT_EQ(error_of(s), R"(linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80")");
    s.architectures = {"SCMP_ARCH_S390X"};
    EXPECT_EQ(error_of(s),
              "linux.seccomp.architectures[0]: SCMP_ARCH_S390X has another byte order than this host's "
              "architecture; one filter cannot hold both");
    auto archs = known_seccomp_architectures();
    EXPECT_EQ(std::find(archs.begin(), archs.end(), "SCMP_ARCH_S390X"), archs.end());
    EXPECT_NE(std::find(archs.begin(), archs.end(), "SCMP_ARCH_X86_64"), archs.end());
    EXPECT_NE(std::find(archs.begin(), archs.end(), "SCMP_ARCH_AARCH64"), archs.end());
}

TEST(Seccomp, SyscallsNewerThanLibseccompAreSkipped) {
    // mseal (Linux 6.10) is unknown to libseccomp 2.5; a profile for newer kernels must still load.
    auto s = allow_all_but("mseal", "SCMP_ACT_ERRNO");
    s.syscalls[0].names.push_back("getcwd");
    EXPECT_EQ(error_of(s), "");
}

TEST(Seccomp, NamesThatAreNoSyscallAreErrors) {
    auto s = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    s.syscalls[0].names.push_back("no_such_syscall_at_all");
    EXPECT_EQ(error_of(s), R"(linux.seccomp.syscalls[0].names[1]: unknown syscall "no_such_syscall_at_all")");
}

TEST(Seccomp, OtherArchitecturesSyscallsAreAccepted) {
    // Names of other architectures' syscalls resolve to pseudo numbers: accepted, they match nothing here.
    auto s = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    s.syscalls[0].names.push_back("s390_runtime_instr");
    EXPECT_EQ(error_of(s), "");
}

// Loads `s` with no_new_privs in a child and runs `check` under it.
std::string under_filter(const spec::Seccomp& s, const std::function<void(berth::testing::ChildChecks&)>& check) {
    auto f = compile_seccomp(s);
    if (!f) return f.error().message();
    auto out = berth::testing::run_in_child([&](int&) -> std::string {
        berth::testing::ChildChecks c;
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return "PR_SET_NO_NEW_PRIVS failed";
        auto loaded = f->load();
        if (!loaded) return loaded.error().message();
        check(c);
        return c.failures();
    });
    return out.ok() ? "" : out.describe();
}

TEST(Seccomp, RuleReturnsTheConfiguredErrno) {
    auto s = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    s.syscalls[0].errno_ret = EXDEV;
    EXPECT_EQ(under_filter(s,
                           [](berth::testing::ChildChecks& c) {
                               char buf[64];
                               errno = 0;
                               long r = ::syscall(SYS_getcwd, buf, sizeof buf);
                               c.expect(r == -1 && errno == EXDEV, "getcwd fails with EXDEV, got " + std::to_string(r) +
                                                                       " errno " + std::to_string(errno));
                           }),
              "");
}

TEST(Seccomp, ArgumentConditionsMatchOnlyTheirValue) {
    auto s = allow_all_but("getpriority", "SCMP_ACT_ERRNO");
    s.syscalls[0].errno_ret = EXDEV;
    s.syscalls[0].args.push_back({0, PRIO_PGRP, 0, "SCMP_CMP_EQ"});
    spec::SeccompSyscall masked;
    masked.names = {"umask"};
    masked.action = "SCMP_ACT_ERRNO";
    masked.errno_ret = ENOTTY;
    // (arg0 & 07) == 07: any umask that masks all of "other"'s bits.
    masked.args.push_back({0, 07, 07, "SCMP_CMP_MASKED_EQ"});
    s.syscalls.push_back(masked);
    // Two conditions on one argument: either matches (one rule per condition, as runc).
    spec::SeccompSyscall either;
    either.names = {"getpgid"};
    either.action = "SCMP_ACT_ERRNO";
    either.errno_ret = EDOM;
    either.args.push_back({0, 11111, 0, "SCMP_CMP_EQ"});
    either.args.push_back({0, 22222, 0, "SCMP_CMP_EQ"});
    s.syscalls.push_back(either);
    EXPECT_EQ(under_filter(
                  s,
                  [](berth::testing::ChildChecks& c) {
                      errno = 0;
                      c.expect(::syscall(SYS_getpriority, PRIO_PROCESS, 0) != -1, "getpriority(PRIO_PROCESS) allowed");
                      errno = 0;
                      c.expect(::syscall(SYS_getpriority, PRIO_PGRP, 0) == -1 && errno == EXDEV,
                               "getpriority(PRIO_PGRP) fails EXDEV");
                      errno = 0;
                      c.expect(::syscall(SYS_umask, 0070) != -1, "umask 070 allowed");
                      errno = 0;
                      c.expect(::syscall(SYS_umask, 0077) == -1 && errno == ENOTTY, "umask 077 fails ENOTTY");
                      errno = 0;
                      c.expect(::syscall(SYS_getpgid, 11111) == -1 && errno == EDOM, "getpgid(11111) fails EDOM");
                      errno = 0;
                      c.expect(::syscall(SYS_getpgid, 22222) == -1 && errno == EDOM, "getpgid(22222) fails EDOM");
                      errno = 0;
                      c.expect(::syscall(SYS_getpgid, 0) >= 0, "getpgid(0) allowed");
                  }),
              "");
}

TEST(Seccomp, NotifyYieldsAListenerFd) {
    auto s = allow_all_but("getcwd", "SCMP_ACT_NOTIFY");
    auto f = compile_seccomp(s);
    ASSERT_TRUE(f) << f.error().message();
    auto out = berth::testing::run_in_child([&](int&) -> std::string {
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return "PR_SET_NO_NEW_PRIVS failed";
        auto fd = f->load();
        if (!fd) return fd.error().message();
        if (fd->get() < 0) return "no listener fd";
        return "";
    });
    EXPECT_TRUE(out.ok()) << out.describe();
}

// ---- the compiled-program cache ----

class SeccompCache : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-seccomp-cache-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = std::string(tmpl) + "/cache";
    }
    void TearDown() override { std::filesystem::remove_all(std::filesystem::path(dir_).parent_path()); }
    std::vector<std::string> entries() const {
        std::vector<std::string> out;
        if (!std::filesystem::exists(dir_)) return out;
        for (const auto& e : std::filesystem::directory_iterator(dir_)) out.push_back(e.path().string());
        return out;
    }
    static bool same(const SeccompFilter& a, const SeccompFilter& b) {
        return a.flags() == b.flags() && a.uses_notify() == b.uses_notify() &&
               a.program().size() == b.program().size() &&
               std::memcmp(a.program().data(), b.program().data(), a.program().size() * sizeof(sock_filter)) == 0;
    }
    std::string dir_;
};

TEST_F(SeccompCache, AHitGivesTheProgramACompileGives) {
    auto s = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    auto fresh = compile_seccomp(s);
    ASSERT_TRUE(fresh) << fresh.error().message();
    auto first = compile_seccomp_cached(s, dir_);
    ASSERT_TRUE(first) << first.error().message();
    ASSERT_EQ(entries().size(), 1u);
    auto second = compile_seccomp_cached(s, dir_);  // from the entry
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_TRUE(same(*fresh, *first));
    EXPECT_TRUE(same(*fresh, *second));
    struct stat st {};
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(SeccompCache, AnotherProfileNeverGetsThisOnesProgram) {
    auto a = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    auto b = allow_all_but("getcwd", "SCMP_ACT_ERRNO");
    b.syscalls[0].errno_ret = EXDEV;  // differs in one field only
    ASSERT_TRUE(compile_seccomp_cached(a, dir_));
    auto from_cache = compile_seccomp_cached(b, dir_);
    auto fresh = compile_seccomp(b);
    ASSERT_TRUE(from_cache && fresh);
    EXPECT_TRUE(same(*from_cache, *fresh));
    EXPECT_EQ(entries().size(), 2u);
    // Even an entry that claims b's file name but holds a's profile is not taken for b.
    auto names = entries();
    std::filesystem::copy_file(names[0], dir_ + "/swap");
    std::filesystem::rename(names[1], dir_ + "/gone");
    std::filesystem::rename(dir_ + "/swap", names[1]);
    std::filesystem::rename(dir_ + "/gone", dir_ + "/unused");
    auto again_b = compile_seccomp_cached(b, dir_);
    auto again_a = compile_seccomp_cached(a, dir_);
    ASSERT_TRUE(again_b && again_a);
    EXPECT_TRUE(same(*again_b, *fresh));
    EXPECT_TRUE(same(*again_a, *compile_seccomp(a)));
}

TEST_F(SeccompCache, ACorruptEntryIsRecompiledAndErrorsAreNotCached) {
    auto s = allow_all_but("getcwd", "SCMP_ACT_KILL");
    ASSERT_TRUE(compile_seccomp_cached(s, dir_));
    auto names = entries();
    ASSERT_EQ(names.size(), 1u);
    std::filesystem::resize_file(names[0], std::filesystem::file_size(names[0]) - 3);
    auto r = compile_seccomp_cached(s, dir_);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(same(*r, *compile_seccomp(s)));

    auto bad = allow_all_but("no_such_syscall_at_all", "SCMP_ACT_ERRNO");
    auto e = compile_seccomp_cached(bad, dir_);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().message(), R"(linux.seccomp.syscalls[0].names[0]: unknown syscall "no_such_syscall_at_all")");
    EXPECT_EQ(entries().size(), 1u);
}

}  // namespace
}  // namespace berth::sys
