// Scheduling attributes: name tables, cpu lists, and each attribute really applied to a forked child.
#include "linux/sched_attrs.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child_process.hpp"

namespace berth::sys {
namespace {

TEST(SchedAttrs, PolicyAndFlagNames) {
    EXPECT_EQ(*scheduler_policy("SCHED_OTHER"), SCHED_OTHER);
    EXPECT_EQ(*scheduler_policy("SCHED_FIFO"), SCHED_FIFO);
    EXPECT_EQ(*scheduler_policy("SCHED_RR"), SCHED_RR);
    EXPECT_EQ(*scheduler_policy("SCHED_BATCH"), SCHED_BATCH);
    EXPECT_EQ(*scheduler_policy("SCHED_IDLE"), SCHED_IDLE);
    EXPECT_EQ(*scheduler_policy("SCHED_DEADLINE"), 6);
    EXPECT_EQ(scheduler_policy("SCHED_ISO").error().message(),
              "scheduler policy SCHED_ISO is not implemented by Linux");
    EXPECT_FALSE(scheduler_policy("SCHED_FAST"));
    EXPECT_EQ(*scheduler_flag("SCHED_FLAG_RESET_ON_FORK"), 1u);
    EXPECT_EQ(*scheduler_flag("SCHED_FLAG_UTIL_CLAMP_MAX"), 0x40u);
    EXPECT_FALSE(scheduler_flag("SCHED_FLAG_FAST"));
}

TEST(SchedAttrs, IoPriorityValues) {
    EXPECT_EQ(*io_priority_value({"IOPRIO_CLASS_RT", 0}), 1 << 13);
    EXPECT_EQ(*io_priority_value({"IOPRIO_CLASS_BE", 7}), 2 << 13 | 7);
    EXPECT_EQ(*io_priority_value({"IOPRIO_CLASS_IDLE", 0}), 3 << 13);
    EXPECT_FALSE(io_priority_value({"IOPRIO_CLASS_NONE", 0}));
    EXPECT_FALSE(io_priority_value({"IOPRIO_CLASS_BE", 8}));
}

TEST(SchedAttrs, CpuLists) {
    EXPECT_EQ(*parse_cpu_list("0-2, 7"), (std::vector<int>{0, 1, 2, 7}));
    EXPECT_EQ(*parse_cpu_list("3"), (std::vector<int>{3}));
    EXPECT_EQ(parse_cpu_list("3-1").error().message(), R"("3-1" is not a CPU list)");
    EXPECT_FALSE(parse_cpu_list(""));
    EXPECT_FALSE(parse_cpu_list("a"));
    EXPECT_FALSE(parse_cpu_list("1,,2"));
}

TEST(SchedAttrs, Personality) {
    EXPECT_EQ(*personality_value({"LINUX", {}}), static_cast<unsigned long>(PER_LINUX));
    EXPECT_EQ(*personality_value({"LINUX32", {}}), static_cast<unsigned long>(PER_LINUX32));
    EXPECT_FALSE(personality_value({"BSD", {}}));
    EXPECT_FALSE(personality_value({"LINUX", {"ADDR_NO_RANDOMIZE"}}));
}

TEST(SchedAttrs, AppliedToTheProcess) {
    auto out = berth::testing::run_in_child([](int&) -> std::string {
        berth::testing::ChildChecks c;
        // Raising nice and the BE/IDLE classes need no privilege.
        spec::Scheduler s;
        s.policy = "SCHED_BATCH";
        s.nice = 7;
        auto r = set_scheduler(s);
        c.expect(r.has_value(), r ? "" : r.error().message());
        c.expect(::sched_getscheduler(0) == SCHED_BATCH, "policy is SCHED_BATCH");
        errno = 0;
        c.expect(::getpriority(PRIO_PROCESS, 0) == 7, "nice is 7");

        r = set_io_priority({"IOPRIO_CLASS_BE", 6});
        c.expect(r.has_value(), r ? "" : r.error().message());
        c.expect(::syscall(SYS_ioprio_get, 1, 0) == (2 << 13 | 6), "ioprio is BE/6");

        r = set_cpu_affinity("0", "process.execCPUAffinity.final");
        c.expect(r.has_value(), r ? "" : r.error().message());
        cpu_set_t set;
        CPU_ZERO(&set);
        ::sched_getaffinity(0, sizeof set, &set);
        c.expect(CPU_COUNT(&set) == 1 && CPU_ISSET(0, &set), "affinity is cpu 0");
        r = set_cpu_affinity("1-0", "process.execCPUAffinity.final");
        c.expect(!r && r.error().message() == R"(process.execCPUAffinity.final: "1-0" is not a CPU list)",
                 r ? "accepted 1-0" : r.error().message());

        r = set_personality({"LINUX32", {}});
        c.expect(r.has_value(), r ? "" : r.error().message());
        c.expect(::personality(0xffffffff) == PER_LINUX32, "personality is PER_LINUX32");

        spec::Scheduler iso;
        iso.policy = "SCHED_ISO";
        r = set_scheduler(iso, "");
        c.expect(
            !r && r.error().message() == "scheduler.policy: scheduler policy SCHED_ISO is not implemented by Linux",
            r ? "accepted SCHED_ISO" : r.error().message());
        return c.failures();
    });
    EXPECT_TRUE(out.ok()) << out.describe();
}

}  // namespace
}  // namespace berth::sys
