#include "linux/process_attrs.hpp"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>

#include "child_process.hpp"
#include "common/fs.hpp"

namespace berth::sys {
namespace {

using berth::testing::ChildChecks;
using berth::testing::run_in_child;

#define SKIP_UNLESS_ROOT()                                  \
    do {                                                    \
        if (::geteuid() != 0) GTEST_SKIP() << "needs root"; \
    } while (0)

// Makes CAP_SYS_RESOURCE unavailable to this (child) process the way this project's hosts have it: out of the
// bounding set, and out of the effective and permitted sets. A no-op where it is already gone.
bool drop_cap_sys_resource() {
    if (::prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) == 1 &&
        ::prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) < 0)
        return false;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    std::array<__user_cap_data_struct, 2> data{};
    if (::syscall(SYS_capget, &header, data.data()) < 0) return false;
    constexpr unsigned word = CAP_SYS_RESOURCE / 32, bit = CAP_SYS_RESOURCE % 32;
    data[word].effective &= ~(1U << bit);
    data[word].permitted &= ~(1U << bit);
    data[word].inheritable &= ~(1U << bit);
    return ::syscall(SYS_capset, &header, data.data()) == 0;
}

spec::Rlimit rlimit(std::string type, uint64_t soft, uint64_t hard, int resource = -1) {
    spec::Rlimit r;
    r.type = std::move(type);
    r.soft = soft;
    r.hard = hard;
    r.resource = resource;
    return r;
}

TEST(ProcessAttrs, RlimitsAreSetAndReadBack) {
    auto outcome = run_in_child([](int&) {
        ChildChecks c;
        struct rlimit cur {};
        ::getrlimit(RLIMIT_NOFILE, &cur);
        rlim_t hard = cur.rlim_max > 1024 ? 1024 : cur.rlim_max;
        auto r = set_rlimits({rlimit("RLIMIT_NOFILE", hard / 2, hard), rlimit("RLIMIT_CORE", 0, 0, RLIMIT_CORE)});
        c.expect(r.has_value(), r ? "" : r.error().message());
        struct rlimit now {};
        ::getrlimit(RLIMIT_NOFILE, &now);
        c.expect(now.rlim_cur == hard / 2 && now.rlim_max == hard,
                 fmt::format("NOFILE now {}/{}", now.rlim_cur, now.rlim_max));
        ::getrlimit(RLIMIT_CORE, &now);
        c.expect(now.rlim_cur == 0 && now.rlim_max == 0, "CORE is 0/0");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

TEST(ProcessAttrs, RaisingTheHardLimitWithoutCapSysResourceSaysSo) {
    SKIP_UNLESS_ROOT();
    auto outcome = run_in_child([](int&) {
        ChildChecks c;
        c.expect(drop_cap_sys_resource(), "drop CAP_SYS_RESOURCE");
        struct rlimit cur {};
        ::getrlimit(RLIMIT_NOFILE, &cur);
        uint64_t want_hard = cur.rlim_max + 1;
        auto r = set_rlimits({rlimit("RLIMIT_NOFILE", 4096, want_hard)});
        c.expect(!r, "raising the hard limit failed");
        if (!r) {
            std::string expected = fmt::format(
                "setrlimit RLIMIT_NOFILE soft=4096 hard={}: Operation not permitted (raising a hard limit needs "
                "CAP_SYS_RESOURCE, which this host does not grant",
                want_hard);
            c.expect(r.error().message().starts_with(expected), "message: " + r.error().message());
            c.expect(r.error().code() == EPERM, "errno EPERM");
        }
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

TEST(ProcessAttrs, RlimitErrors) {
    auto unknown = set_rlimits({rlimit("RLIMIT_BOGUS", 1, 1)});
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message().find("\"RLIMIT_BOGUS\""), std::string::npos) << unknown.error().message();

    auto inverted = set_rlimits({rlimit("RLIMIT_CORE", 10, 5)});
    ASSERT_FALSE(inverted);
    EXPECT_EQ(inverted.error().code(), EINVAL);
    EXPECT_NE(inverted.error().message().find("soft limit is above the hard limit"), std::string::npos)
        << inverted.error().message();
    EXPECT_EQ(*rlimit_resource("RLIMIT_NPROC"), RLIMIT_NPROC);
}

TEST(ProcessAttrs, OomScoreAdj) {
    SKIP_UNLESS_ROOT();
    auto outcome = run_in_child([](int&) {
        ChildChecks c;
        c.expect(drop_cap_sys_resource(), "drop CAP_SYS_RESOURCE");
        auto up = set_oom_score_adj(500);
        c.expect(up.has_value(), up ? "" : up.error().message());
        auto text = read_file("/proc/self/oom_score_adj");
        c.expect(text && *text == "500\n", "oom_score_adj reads back 500: " + (text ? *text : text.error().message()));
        auto down = set_oom_score_adj(-998);
        c.expect(!down, "a negative oom_score_adj without CAP_SYS_RESOURCE fails");
        if (!down)
            c.expect(down.error().message() ==
                         "oom_score_adj -998: Permission denied (a negative oom_score_adj needs CAP_SYS_RESOURCE)",
                     "message: " + down.error().message());
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

TEST(ProcessAttrs, HostnameDomainnameAndSysctlInANewUtsNamespace) {
    SKIP_UNLESS_ROOT();
    struct utsname host {};
    ASSERT_EQ(::uname(&host), 0);
    auto outcome = run_in_child([](int&) {
        ChildChecks c;
        if (::unshare(CLONE_NEWUTS) < 0) return std::string("unshare CLONE_NEWUTS failed");
        auto h = set_hostname("berth-test-host");
        c.expect(h.has_value(), h ? "" : h.error().message());
        auto d = set_domainname("berth.example");
        c.expect(d.has_value(), d ? "" : d.error().message());
        struct utsname u {};
        ::uname(&u);
        c.expect(std::string_view(u.nodename) == "berth-test-host", std::string("nodename ") + u.nodename);
        c.expect(std::string_view(u.domainname) == "berth.example", std::string("domainname ") + u.domainname);

        // kernel.hostname is a UTS-namespaced sysctl: writing it changes only this namespace.
        auto s = apply_sysctl({{"kernel.hostname", "via-sysctl"}});
        c.expect(s.has_value(), s ? "" : s.error().message());
        ::uname(&u);
        c.expect(std::string_view(u.nodename) == "via-sysctl", std::string("nodename after sysctl ") + u.nodename);
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
    struct utsname after {};
    ASSERT_EQ(::uname(&after), 0);
    EXPECT_STREQ(after.nodename, host.nodename);
}

TEST(ProcessAttrs, SysctlRejectsBadKeysAndNamesTheKey) {
    for (std::string key : {"../../etc/passwd", "kernel..hostname", "/kernel/hostname", "", "kernel.hostname."}) {
        auto r = apply_sysctl({{key, "x"}});
        ASSERT_FALSE(r) << key;
        EXPECT_NE(r.error().message().find("\"" + key + "\""), std::string::npos) << r.error().message();
    }
    auto missing = apply_sysctl({{"kernel.berth_no_such_sysctl", "1"}});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_NE(missing.error().message().find("sysctl kernel.berth_no_such_sysctl=1"), std::string::npos)
        << missing.error().message();
}

TEST(ProcessAttrs, ApplyUserSetsIdsGroupsAndUmask) {
    SKIP_UNLESS_ROOT();
    auto outcome = run_in_child([](int&) {
        ChildChecks c;
        spec::User u;
        u.uid = 1234;
        u.gid = 2345;
        u.additional_gids = {10, 20, 30};
        u.umask = 027;
        auto r = apply_user(u, false);
        c.expect(r.has_value(), r ? "" : r.error().message());
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        ::getresuid(&ru, &eu, &su);
        ::getresgid(&rg, &eg, &sg);
        c.expect(ru == 1234 && eu == 1234 && su == 1234, "uids");
        c.expect(rg == 2345 && eg == 2345 && sg == 2345, "gids");
        gid_t groups[16];
        int n = ::getgroups(16, groups);
        c.expect(n == 3 && groups[0] == 10 && groups[1] == 20 && groups[2] == 30, fmt::format("{} groups", n));
        mode_t old = ::umask(0);
        c.expect(old == 027, fmt::format("umask {:o}", old));
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

// In a user namespace whose setgroups is "deny", an empty group list is skipped; asked-for groups are an error.
TEST(ProcessAttrs, ApplyUserInAUserNamespaceWithSetgroupsDenied) {
    SKIP_UNLESS_ROOT();
    auto outcome = run_in_child([](int&) {
        ChildChecks c;
        uid_t uid = ::geteuid();
        gid_t gid = ::getegid();
        if (::unshare(CLONE_NEWUSER) < 0) return std::string("unshare CLONE_NEWUSER failed");
        bool mapped = write_file("/proc/self/setgroups", "deny").has_value() &&
                      write_file("/proc/self/uid_map", fmt::format("0 {} 1", uid)).has_value() &&
                      write_file("/proc/self/gid_map", fmt::format("0 {} 1", gid)).has_value();
        if (!mapped) return std::string("writing the id maps failed");
        spec::User u;
        auto plain = apply_user(u, true);
        c.expect(plain.has_value(), plain ? "" : "no additional gids: " + plain.error().message());
        u.additional_gids = {0};
        auto with_groups = apply_user(u, true);
        c.expect(!with_groups, "additional gids with setgroups denied fail");
        if (!with_groups)
            c.expect(with_groups.error().message().starts_with("setgroups 0: Operation not permitted"),
                     "message: " + with_groups.error().message());
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

TEST(ProcessAttrs, NoNewPrivs) {
    auto outcome = run_in_child([](int&) {
        ChildChecks c;
        auto r = set_no_new_privs();
        c.expect(r.has_value(), r ? "" : r.error().message());
        c.expect(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "PR_GET_NO_NEW_PRIVS is 1");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

TEST(ProcessAttrs, CloseFdsAboveAndSetCloexecFrom) {
    auto outcome = run_in_child([](int& report_fd) {
        ChildChecks c;
        // Keep the report pipe at fd 3, below what gets closed.
        if (::dup2(report_fd, 3) < 0) return std::string("dup2 report fd");
        report_fd = 3;
        int null_fd = ::open("/dev/null", O_RDONLY);
        ::dup2(null_fd, 30);
        ::dup2(null_fd, 50);
        ::dup2(null_fd, 60);
        ::close(null_fd);

        auto cloexec = set_cloexec_from(50);
        c.expect(cloexec.has_value(), cloexec ? "" : cloexec.error().message());
        c.expect(::fcntl(30, F_GETFD) == 0, "fd 30 (below) left alone");
        c.expect(::fcntl(50, F_GETFD) == FD_CLOEXEC && ::fcntl(60, F_GETFD) == FD_CLOEXEC, "50 and 60 close-on-exec");

        auto closed = close_fds_above(3);
        c.expect(closed.has_value(), closed ? "" : closed.error().message());
        c.expect(::fcntl(3, F_GETFD) >= 0, "fd 3 kept");
        c.expect(::fcntl(30, F_GETFD) < 0 && errno == EBADF, "fd 30 closed");
        c.expect(::fcntl(60, F_GETFD) < 0 && errno == EBADF, "fd 60 closed");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

}  // namespace
}  // namespace berth::sys
