// Security and scheduling attributes of real busybox containers: capabilities, seccomp (rules, errno, argument
// conditions, SCMP_ACT_NOTIFY with a listener), personality, I/O priority, scheduler, exec CPU affinity,
// AppArmor/SELinux on a host with or without them, Intel RDT, and `berth features`.
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <thread>

#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

class Security : public BerthTest {
protected:
    // A detached container running `sleep 600` with `tweak` applied; returns its id and host pid.
    std::pair<std::string, int> start_sleeper(const std::function<void(json&)>& tweak) {
        json cfg = base_config({"sleep", "600"});
        tweak(cfg);
        write_config(cfg);
        std::string id = next_id();
        auto r = berth({"run", "-d", "--bundle", bundle_, id});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        if (r.exit_code != 0) return {id, -1};
        return {id, json::parse(berth({"state", id}).out)["pid"].get<int>()};
    }
    void expect_create_fails(const json& cfg, const std::string& message) {
        write_config(cfg);
        auto r = berth({"create", "--bundle", bundle_, next_id()});
        EXPECT_NE(r.exit_code, 0) << "create succeeded; wanted: " << message;
        EXPECT_NE(r.err.find(message), std::string::npos) << "stderr: " << r.err;
        EXPECT_TRUE(root_entries().empty()) << "state left behind after a failed create";
    }
    static std::string status_lines(const std::string& text, const std::string& prefix) {
        std::string out;
        size_t pos = 0;
        while (pos < text.size()) {
            size_t eol = text.find('\n', pos);
            if (eol == std::string::npos) eol = text.size();
            if (text.compare(pos, prefix.size(), prefix) == 0) out += text.substr(pos, eol - pos) + "\n";
            pos = eol + 1;
        }
        return out;
    }
};

// ---- capabilities ----------------------------------------------------------------------------------------------

TEST_F(Security, DroppedCapabilitiesAreAbsentInContainerAndExec) {
    auto [id, pid] = start_sleeper([](json& c) {
        json one = {"CAP_CHOWN"};
        c["process"]["capabilities"] = {
            {"bounding", one}, {"effective", one}, {"permitted", one}, {"inheritable", json::array()}};
    });
    ASSERT_GT(pid, 0);
    std::string init_status = read_text("/proc/" + std::to_string(pid) + "/status");
    EXPECT_EQ(status_lines(init_status, "CapEff:") + status_lines(init_status, "CapBnd:") +
                  status_lines(init_status, "CapPrm:") + status_lines(init_status, "CapAmb:"),
              "CapEff:\t0000000000000001\nCapBnd:\t0000000000000001\nCapPrm:\t0000000000000001\n"
              "CapAmb:\t0000000000000000\n");

    // exec inherits the container's sets...
    auto r = berth({"exec", id, "grep", "-E", "^Cap(Eff|Bnd):", "/proc/self/status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "CapEff:\t0000000000000001\nCapBnd:\t0000000000000001\n");
    // ...and --cap adds one to every set (CAP_KILL is bit 5), ambient included.
    r = berth({"exec", "--cap", "CAP_KILL", id, "grep", "-E", "^Cap(Eff|Bnd|Amb):", "/proc/self/status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "CapEff:\t0000000000000021\nCapBnd:\t0000000000000021\nCapAmb:\t0000000000000020\n");
    r = berth({"exec", "--cap", "CAP_NOPE", id, "true"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(R"(unknown capability "CAP_NOPE")"), std::string::npos) << r.err;
}

// ---- seccomp ---------------------------------------------------------------------------------------------------

json seccomp_rule(std::vector<std::string> names, const std::string& action, json extra = json::object()) {
    json rule = {{"names", names}, {"action", action}};
    for (auto& [k, v] : extra.items()) rule[k] = v;
    return rule;
}

TEST_F(Security, SeccompDefaultErrnoRet) {
    // Everything busybox needs for `mkdir` is allowed; every other syscall fails with defaultErrnoRet.
    auto r = run_sh("mkdir /tmp/denied; echo rc=$?", [](json& c) {
        c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ERRNO"},
                                 {"defaultErrnoRet", 18},  // EXDEV
                                 {"syscalls",
                                  {seccomp_rule({"execve",
                                                 "brk",
                                                 "arch_prctl",
                                                 "set_tid_address",
                                                 "set_robust_list",
                                                 "rseq",
                                                 "prlimit64",
                                                 "mmap",
                                                 "munmap",
                                                 "mprotect",
                                                 "read",
                                                 "write",
                                                 "writev",
                                                 "close",
                                                 "exit",
                                                 "exit_group",
                                                 "fstat",
                                                 "newfstatat",
                                                 "stat",
                                                 "lstat",
                                                 "ioctl",
                                                 "getuid",
                                                 "geteuid",
                                                 "getgid",
                                                 "getegid",
                                                 "getpid",
                                                 "getppid",
                                                 "rt_sigaction",
                                                 "rt_sigprocmask",
                                                 "rt_sigreturn",
                                                 "openat",
                                                 "open",
                                                 "readlinkat",
                                                 "getrandom",
                                                 "uname",
                                                 "fcntl",
                                                 "dup2",
                                                 "dup3",
                                                 "wait4",
                                                 "clone",
                                                 "fork",
                                                 "vfork",
                                                 "getcwd",
                                                 "statx",
                                                 "sigaltstack",
                                                 "setpgid",
                                                 "getpgid",
                                                 "getpgrp",
                                                 "chdir",
                                                 "futex"},
                                                "SCMP_ACT_ALLOW")}}};
    });
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("Invalid cross-device link"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
    EXPECT_NE(access((rootfs_ + "/tmp/denied").c_str(), F_OK), 0);
}

TEST_F(Security, SeccompFilterIsLoadedWithoutForcingNoNewPrivs) {
    auto r = run_sh("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/x 2>&1; echo rc=$?", [](json& c) {
        c["process"]["noNewPrivileges"] = false;
        c["linux"]["seccomp"] = {
            {"defaultAction", "SCMP_ACT_ALLOW"},
            {"flags", {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}},
            {"syscalls", {seccomp_rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", {{"errnoRet", 28}})}}};  // ENOSPC
    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("NoNewPrivs:\t0\nSeccomp:\t2\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
}

// `renice -n N` asks setpriority(PRIO_PROCESS, pid, nice + N), nice being what the container inherited from this
// test (0, or more when the tests run under `nice`): the rule's condition on argument 2 decides.
void renice_rule(json& c, const json& arg) {
    c["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"syscalls", {seccomp_rule({"setpriority"}, "SCMP_ACT_ERRNO", {{"errnoRet", 18}, {"args", {arg}}})}}};
}

TEST_F(Security, SeccompArgumentConditionMatchesOnlyItsValue) {
    errno = 0;
    const int base = ::getpriority(PRIO_PROCESS, 0);
    if (base > 14) GTEST_SKIP() << "the tests run at nice " << base << ": renice -n 5 would pass 19";
    const int five = base + 5;  // what setpriority sees for -n 5 (and base + 3 for -n 3)
    const std::string script = "renice -n 5 -p $$ 2>&1; echo rc=$?; renice -n 3 -p $$; echo rc=$?";
    auto eq = run_sh(script, [&](json& c) { renice_rule(c, {{"index", 2}, {"value", five}, {"op", "SCMP_CMP_EQ"}}); });
    ASSERT_EQ(eq.exit_code, 0) << eq.err;
    EXPECT_NE(eq.out.find("Invalid cross-device link"), std::string::npos) << eq.out;
    EXPECT_NE(eq.out.find("rc=1\nrc=0\n"), std::string::npos) << eq.out;

    // (arg2 & five) == five: base + 5 matches, base + 3 (smaller, so missing one of its bits) does not.
    auto masked = run_sh(script, [&](json& c) {
        renice_rule(c, {{"index", 2}, {"value", five}, {"valueTwo", five}, {"op", "SCMP_CMP_MASKED_EQ"}});
    });
    ASSERT_EQ(masked.exit_code, 0) << masked.err;
    EXPECT_NE(masked.out.find("rc=1\nrc=0\n"), std::string::npos) << masked.out;

    auto gt = run_sh(script, [&](json& c) { renice_rule(c, {{"index", 2}, {"value", base + 4}, {"op", "SCMP_CMP_GT"}}); });
    ASSERT_EQ(gt.exit_code, 0) << gt.err;
    EXPECT_NE(gt.out.find("rc=1\nrc=0\n"), std::string::npos) << gt.out;
}

TEST_F(Security, SeccompSkipsSyscallNamesLibseccompDoesNotKnow) {
    // As runc: a profile written for a newer kernel still works (mseal is Linux 6.10, unknown to libseccomp 2.5);
    // the names that are known are still enforced.
    auto r = run_sh("mkdir /tmp/blocked 2>&1; echo rc=$?", [](json& c) {
        c["linux"]["seccomp"] = {
            {"defaultAction", "SCMP_ACT_ALLOW"},
            {"syscalls", {seccomp_rule({"mseal", "mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", {{"errnoRet", 38}})}}};
    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Function not implemented"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
}

TEST_F(Security, SeccompErrorsNameTheField) {
    json cfg = base_config({"true"});
    cfg["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"flags", {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_BOGUS"}}};
    expect_create_fails(cfg, R"(linux.seccomp.flags[1]: unknown seccomp flag "SECCOMP_FILTER_FLAG_BOGUS")");
    cfg["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"syscalls",
                                {seccomp_rule({"getpid"}, "SCMP_ACT_ERRNO",
                                              {{"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_X"}}}}})}}};
    expect_create_fails(cfg, R"(linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_X")");
    cfg["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_KILL"}, {"defaultErrnoRet", 1}};
    expect_create_fails(cfg, "linux.seccomp.defaultErrnoRet: action SCMP_ACT_KILL takes no errno");
}

TEST_F(Security, SeccompKillProcessKillsTheContainer) {
    auto r = run_sh("echo before; mkdir /tmp/x; echo after", [](json& c) {
        c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"syscalls", {seccomp_rule({"mkdir", "mkdirat"}, "SCMP_ACT_KILL_PROCESS")}}};
    });
    // mkdir runs in a forked child of sh: that child dies of SIGSYS, sh goes on.
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "before\nafter\n");
    EXPECT_NE(access((rootfs_ + "/tmp/x").c_str(), F_OK), 0);
}

TEST_F(Security, SeccompEveryActionInARealContainer) {
    // What `mkdir` (a child of sh) sees under each action; SIGSYS is 31, so a killed child reports 159.
    const std::pair<const char*, const char*> cases[] = {
        {"SCMP_ACT_KILL", "rc=159"}, {"SCMP_ACT_KILL_THREAD", "rc=159"}, {"SCMP_ACT_KILL_PROCESS", "rc=159"},
        {"SCMP_ACT_TRAP", "rc=159"}, {"SCMP_ACT_ERRNO", "rc=1"},         {"SCMP_ACT_TRACE", "rc=1"},
        {"SCMP_ACT_LOG", "rc=0"},    {"SCMP_ACT_ALLOW", "rc=0"},
    };
    for (const auto& [action, want] : cases) {
        json cfg =
            base_config({"sh", "-c", "mkdir /tmp/made 2>/dev/null; echo rc=$?; rmdir /tmp/made 2>/dev/null; true"});
        std::string act = action;
        // ALLOW as a rule needs another default to mean anything.
        cfg["linux"]["seccomp"] = {{"defaultAction", act == "SCMP_ACT_ALLOW" ? "SCMP_ACT_LOG" : "SCMP_ACT_ALLOW"},
                                   {"syscalls", {seccomp_rule({"mkdir", "mkdirat"}, act)}}};
        auto r = run_config(cfg);
        EXPECT_EQ(r.exit_code, 0) << action << ": " << r.err;
        EXPECT_EQ(r.out, std::string(want) + "\n") << action;
    }
}

TEST_F(Security, SeccompPodmanDefaultProfile) {
    // containers-common's profile in OCI form, resolved the way podman does for an x86_64 container that keeps
    // all capabilities (base_config sets none, so berth leaves them): rules included for amd64 or by kernel version
    // apply; rules that need a capability it has, or that are excluded for it, do not.
    std::string text = read_text("/usr/share/containers/seccomp.json");
    if (text.empty()) GTEST_SKIP() << "no /usr/share/containers/seccomp.json on this host";
    json profile = json::parse(text);
    json oci = {{"defaultAction", profile["defaultAction"]},
                {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
                {"syscalls", json::array()}};
    if (profile.contains("defaultErrnoRet")) oci["defaultErrnoRet"] = profile["defaultErrnoRet"];
    for (const auto& rule : profile["syscalls"]) {
        json inc = rule.value("includes", json::object()), exc = rule.value("excludes", json::object());
        if (inc.contains("caps") && !inc["caps"].empty()) continue;
        if (inc.contains("arches") && !inc["arches"].empty() &&
            std::find(inc["arches"].begin(), inc["arches"].end(), "amd64") == inc["arches"].end())
            continue;
        if (exc.contains("caps") && !exc["caps"].empty()) continue;
        if (exc.contains("arches") &&
            std::find(exc["arches"].begin(), exc["arches"].end(), "amd64") != exc["arches"].end())
            continue;
        json r = {{"names", rule["names"]}, {"action", rule["action"]}};
        if (rule.contains("errnoRet")) r["errnoRet"] = rule["errnoRet"];
        if (rule.contains("args") && !rule["args"].is_null()) r["args"] = rule["args"];
        oci["syscalls"].push_back(r);
    }
    json cfg = base_config({"sh", "-c",
                            "grep '^Seccomp:' /proc/self/status; mkdir /tmp/p && rmdir /tmp/p && echo fs-ok; "
                            "swapoff /tmp 2>&1; true"});
    cfg["linux"]["seccomp"] = oci;
    auto r = run_config(cfg);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Seccomp:\t2\nfs-ok\n"), std::string::npos) << r.out;
    // swapoff is in the profile's EPERM list (errnoRet 1).
    EXPECT_NE(r.out.find("Operation not permitted"), std::string::npos) << r.out;
}

TEST_F(Security, SeccompListenerPathThatNobodyServes) {
    json cfg = base_config({"true"});
    std::string sock = dir_ + "/nobody.sock";
    cfg["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"listenerPath", sock},
                               {"syscalls", {seccomp_rule({"mkdir"}, "SCMP_ACT_NOTIFY")}}};
    expect_create_fails(cfg, sock);
}

// A seccomp agent on `path`: accepts `connections` connections, each bringing a notify fd and the container
// process state, and answers every notification with -ENOSPC. It ends once every connection came and every
// filter went away, or when stop() is called.
struct Agent {
    int listen_fd = -1;
    int stop_fd = -1;
    int connections = 1;
    std::thread thread;
    std::vector<std::string> states;
    int answered = 0;
    std::vector<int> syscalls;
    std::string error;

    explicit Agent(const std::string& path, int expected_connections = 1) : connections(expected_connections) {
        listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        stop_fd = ::eventfd(0, EFD_CLOEXEC);
        struct sockaddr_un addr {};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(listen_fd, 4) < 0)
            error = "bind/listen failed";
        thread = std::thread([this] { serve(); });
    }
    ~Agent() {
        stop();
        if (thread.joinable()) thread.join();
        if (listen_fd >= 0) ::close(listen_fd);
        if (stop_fd >= 0) ::close(stop_fd);
    }
    void stop() {
        uint64_t one = 1;
        if (::write(stop_fd, &one, sizeof one) < 0) error += " stop failed";
    }
    void join() {
        if (thread.joinable()) thread.join();
    }

    // Receives one notify fd and its message on a new connection; -1 on failure.
    int receive(int conn) {
        std::string buf(1 << 16, '\0');
        alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        struct iovec iov {
            buf.data(), buf.size()
        };
        struct msghdr msg {};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
        int notify_fd = -1;
        for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                std::memcpy(&notify_fd, CMSG_DATA(c), sizeof(int));
        // The rest of a long message may follow on the stream.
        std::string text = n > 0 ? buf.substr(0, static_cast<size_t>(n)) : "";
        while (!json::accept(text)) {
            ssize_t more = ::read(conn, buf.data(), buf.size());
            if (more <= 0) break;
            text.append(buf.data(), static_cast<size_t>(more));
        }
        states.push_back(text);
        return notify_fd;
    }

    void answer(int notify_fd) {
        struct seccomp_notif req {};
        if (::ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) return;  // the caller died meanwhile
        syscalls.push_back(req.data.nr);
        struct seccomp_notif_resp resp {};
        resp.id = req.id;
        resp.error = -ENOSPC;
        if (::ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0) ++answered;
    }

    void serve() {
        std::vector<int> fds;
        int accepted = 0;
        for (;;) {
            std::vector<struct pollfd> p = {{stop_fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
            for (int fd : fds) p.push_back({fd, POLLIN, 0});
            // The timeout only guards against a hung test when berth never connects; it is not an assertion.
            int ready = ::poll(p.data(), p.size(), 60000);
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) {
                if (accepted < connections) error = "berth never connected";
                break;
            }
            if (p[0].revents) break;
            std::vector<int> open;
            if (p[1].revents & POLLIN) {
                int conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (conn >= 0) {
                    int fd = receive(conn);
                    ::close(conn);
                    if (fd < 0)
                        error = "no fd received";
                    else
                        open.push_back(fd);
                    ++accepted;
                }
            }
            for (size_t i = 2; i < p.size(); ++i) {
                if (p[i].revents & POLLIN) answer(p[i].fd);
                if (p[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                    ::close(p[i].fd);
                } else {
                    open.push_back(p[i].fd);
                }
            }
            fds = std::move(open);
            if (accepted >= connections && fds.empty()) break;
        }
        for (int fd : fds) ::close(fd);
    }
};

class SecurityNotify : public Security {
protected:
    void round_trip(const std::vector<std::string>& flags) {
        std::string sock = dir_ + "/agent.sock";
        json cfg = base_config({"sh", "-c", "mkdir /tmp/notified 2>&1; echo rc=$?"});
        cfg["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                   {"listenerPath", sock},
                                   {"listenerMetadata", "agent-metadata"},
                                   {"flags", flags},
                                   {"syscalls", {seccomp_rule({"mkdir", "mkdirat"}, "SCMP_ACT_NOTIFY")}}};
        CommandResult r;
        {
            Agent agent(sock);
            ASSERT_EQ(agent.error, "");
            r = run_config(cfg);
            agent.join();
            ASSERT_EQ(agent.error, "") << r.err;
            EXPECT_EQ(r.exit_code, 0) << r.err;
            // The agent's answer is what the container saw.
            EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
            EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
            EXPECT_GE(agent.answered, 1);
            for (int nr : agent.syscalls) EXPECT_TRUE(nr == SYS_mkdir || nr == SYS_mkdirat) << nr;
            ASSERT_EQ(agent.states.size(), 1u);
            ASSERT_TRUE(json::accept(agent.states[0])) << agent.states[0];
            json st = json::parse(agent.states[0]);
            EXPECT_EQ(st["ociVersion"], "1.2.0");
            EXPECT_EQ(st["fds"], json({"seccompFd"}));
            EXPECT_GT(st["pid"].get<int>(), 0);
            EXPECT_EQ(st["metadata"], "agent-metadata");
            EXPECT_EQ(st["state"]["status"], "creating");
            EXPECT_EQ(st["state"]["bundle"], bundle_);
        }
        EXPECT_NE(access((rootfs_ + "/tmp/notified").c_str(), F_OK), 0);
    }
};

TEST_F(SecurityNotify, SendsTheListenerToTheAgent) {
    round_trip({});
}

TEST_F(SecurityNotify, ExecSendsItsOwnListener) {
    std::string sock = dir_ + "/agent.sock";
    Agent agent(sock, 2);
    ASSERT_EQ(agent.error, "");
    auto [id, pid] = start_sleeper([&](json& c) {
        c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"listenerPath", sock},
                                 {"syscalls", {seccomp_rule({"mkdir", "mkdirat"}, "SCMP_ACT_NOTIFY")}}};
    });
    ASSERT_GT(pid, 0);
    std::string pidfile = dir_ + "/exec.pid";
    auto r = berth({"exec", "--pid-file", pidfile, id, "sh", "-c", "mkdir /tmp/from-exec 2>&1; echo rc=$?"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
    agent.stop();
    agent.join();
    EXPECT_EQ(agent.error, "");
    EXPECT_GE(agent.answered, 1);
    ASSERT_EQ(agent.states.size(), 2u);
    json create = json::parse(agent.states[0]), exec = json::parse(agent.states[1]);
    EXPECT_EQ(create["state"]["status"], "creating");
    EXPECT_EQ(create["pid"], pid);
    EXPECT_EQ(exec["state"]["status"], "running");
    EXPECT_EQ(exec["state"]["id"], id);
    EXPECT_EQ(exec["pid"], std::stoi(read_text(pidfile)));
}

// TSYNC next to a listener needs TSYNC_ESRCH, which berth adds.
TEST_F(SecurityNotify, WithTsyncAndWaitKillableRecv) {
    round_trip({"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"});
}

// ---- personality, I/O priority, scheduler, CPU affinity --------------------------------------------------------

TEST_F(Security, PersonalityLinux32InContainerAndExec) {
    auto [id, pid] = start_sleeper([](json& c) { c["linux"]["personality"] = {{"domain", "LINUX32"}}; });
    ASSERT_GT(pid, 0);
    EXPECT_EQ(read_text("/proc/" + std::to_string(pid) + "/personality"), "00000008\n");
    auto r = berth({"exec", id, "cat", "/proc/self/personality"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "00000008\n");
    auto plain = run_sh("cat /proc/self/personality");
    EXPECT_EQ(plain.out, "00000000\n");
}

TEST_F(Security, IoPriorityIsSetOnTheContainerProcess) {
    // The real-time class needs CAP_SYS_ADMIN: set while init still has it, kept after the capabilities drop.
    auto [id, pid] = start_sleeper([](json& c) {
        c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_RT"}, {"priority", 3}};
        c["process"]["capabilities"] = {
            {"bounding", {"CAP_KILL"}}, {"effective", {"CAP_KILL"}}, {"permitted", {"CAP_KILL"}}};
    });
    ASSERT_GT(pid, 0);
    EXPECT_EQ(::syscall(SYS_ioprio_get, 1, pid), 1 << 13 | 3);

    // exec with a process.json of its own.
    std::string pf = dir_ + "/process.json";
    std::string pidfile = dir_ + "/exec.pid";
    write_text(pf, json{{"args", {"sleep", "600"}},
                        {"cwd", "/"},
                        {"user", {{"uid", 0}, {"gid", 0}}},
                        {"ioPriority", {{"class", "IOPRIO_CLASS_IDLE"}, {"priority", 0}}}}
                       .dump());
    auto r = berth({"exec", "-d", "--pid-file", pidfile, "-p", pf, id});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int epid = std::stoi(read_text(pidfile));
    EXPECT_EQ(::syscall(SYS_ioprio_get, 1, epid), 3 << 13);
}

TEST_F(Security, SchedulerPolicyAndNice) {
    auto [id, pid] = start_sleeper([](json& c) {
        c["process"]["scheduler"] = {{"policy", "SCHED_BATCH"}, {"nice", -3}};
    });
    ASSERT_GT(pid, 0);
    EXPECT_EQ(::sched_getscheduler(pid), SCHED_BATCH);
    errno = 0;
    EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(pid)), -3);

    std::string pf = dir_ + "/process.json";
    std::string pidfile = dir_ + "/exec.pid";
    write_text(pf, json{{"args", {"sleep", "600"}},
                        {"cwd", "/"},
                        {"user", {{"uid", 0}, {"gid", 0}}},
                        {"scheduler", {{"policy", "SCHED_IDLE"}}}}
                       .dump());
    auto r = berth({"exec", "-d", "--pid-file", pidfile, "-p", pf, id});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(::sched_getscheduler(std::stoi(read_text(pidfile))), SCHED_IDLE);
}

TEST_F(Security, SchedulerRealtimeFifo) {
    json cfg = base_config({"sleep", "600"});
    cfg["process"]["scheduler"] = {{"policy", "SCHED_FIFO"}, {"priority", 10}, {"flags", {"SCHED_FLAG_RESET_ON_FORK"}}};
    write_config(cfg);
    std::string id = next_id();
    auto r = berth({"run", "-d", "--bundle", bundle_, id});
    // A cgroup v1 cpu controller without real-time runtime refuses SCHED_FIFO with EPERM.
    if (r.exit_code != 0 && r.err.find("Operation not permitted") != std::string::npos)
        GTEST_SKIP() << "no real-time runtime for this cgroup: " << r.err;
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int pid = json::parse(berth({"state", id}).out)["pid"].get<int>();
    EXPECT_EQ(::sched_getscheduler(pid), SCHED_FIFO | SCHED_RESET_ON_FORK);
    struct sched_param param {};
    ASSERT_EQ(::sched_getparam(pid, &param), 0);
    EXPECT_EQ(param.sched_priority, 10);
}

TEST_F(Security, SchedulerErrorsNameTheField) {
    json cfg = base_config({"true"});
    cfg["process"]["scheduler"] = {{"policy", "SCHED_FIFO"}, {"priority", 100}};
    expect_create_fails(cfg, "process.scheduler.priority: 100 is outside [1, 99] for SCHED_FIFO");
    cfg["process"]["scheduler"] = {{"policy", "SCHED_OTHER"}, {"priority", 5}};
    expect_create_fails(cfg, "process.scheduler: sched_setattr policy SCHED_OTHER nice 0 priority 5: Invalid argument");
}

TEST_F(Security, ExecCpuAffinityFinal) {
    if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs two CPUs";
    auto [id, pid] = start_sleeper([](json&) {});
    ASSERT_GT(pid, 0);
    std::string pf = dir_ + "/process.json";
    write_text(pf, json{{"args", {"grep", "^Cpus_allowed_list:", "/proc/self/status"}},
                        {"cwd", "/"},
                        {"user", {{"uid", 0}, {"gid", 0}}},
                        {"execCPUAffinity", {{"initial", "0"}, {"final", "1"}}}}
                       .dump());
    auto r = berth({"exec", "-p", pf, id});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Cpus_allowed_list:\t1\n");
    write_text(pf, json{{"args", {"true"}},
                        {"cwd", "/"},
                        {"user", {{"uid", 0}, {"gid", 0}}},
                        {"execCPUAffinity", {{"final", "4096"}}}}
                       .dump());
    r = berth({"exec", "-p", pf, id});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("execCPUAffinity.final"), std::string::npos) << r.err;
}

// ---- LSMs and Intel RDT ----------------------------------------------------------------------------------------

bool host_apparmor() {
    std::ifstream f("/sys/module/apparmor/parameters/enabled");
    std::string v;
    return f >> v && v == "Y";
}
bool host_selinux() {
    return access("/sys/fs/selinux/enforce", F_OK) == 0;
}

TEST_F(Security, AppArmorProfileIsSkippedWithoutAppArmor) {
    if (host_apparmor()) GTEST_SKIP() << "this host has AppArmor";
    auto [id, pid] = start_sleeper([](json& c) { c["process"]["apparmorProfile"] = "berth-no-such-profile"; });
    ASSERT_GT(pid, 0);
    auto r = berth({"exec", "--apparmor", "berth-other-profile", id, "true"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Security, SelinuxLabelIsRefusedWithoutSelinux) {
    if (host_selinux()) GTEST_SKIP() << "this host has SELinux";
    json cfg = base_config({"true"});
    cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0";
    expect_create_fails(cfg,
                        "process.selinuxLabel: SELinux label \"system_u:system_r:container_t:s0\" requested, "
                        "but SELinux is not enabled on this host");

    // A mount label alone is ignored, as runc does.
    cfg = base_config({"true"});
    cfg["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0";
    write_config(cfg);
    auto run = berth({"run", "--bundle", bundle_, next_id()});
    EXPECT_EQ(run.exit_code, 0) << run.err;

    auto [id, pid] = start_sleeper([](json&) {});
    ASSERT_GT(pid, 0);
    auto r = berth({"exec", "--process-label", "system_u:system_r:container_t:s0", id, "true"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--process-label: process.selinuxLabel: SELinux label \"system_u:system_r:container_t:s0\" "
                         "requested, but SELinux is not enabled on this host"),
              std::string::npos)
        << r.err;
}

TEST_F(Security, IntelRdtWithoutResctrl) {
    if (read_text("/proc/self/mounts").find(" resctrl ") != std::string::npos) GTEST_SKIP() << "resctrl is mounted";
    json cfg = base_config({"true"});
    cfg["linux"]["intelRdt"] = {{"closID", "berth"}, {"l3CacheSchema", "L3:0=ff"}};
    expect_create_fails(cfg, "linux.intelRdt: the host has no resctrl file system mounted");
}

// ---- features ----------------------------------------------------------------------------------------------------

TEST_F(Security, FeaturesCommand) {
    auto r = berth({"features"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(json::accept(r.out)) << r.out;
    json f = json::parse(r.out);
    EXPECT_EQ(f["ociVersionMin"], "1.0.0");
    EXPECT_EQ(f["ociVersionMax"], "1.2.0");
    EXPECT_EQ(f["linux"]["seccomp"]["enabled"], true);
    EXPECT_EQ(f["annotations"]["io.github.berth.host.apparmor.enabled"], host_apparmor() ? "true" : "false");
    EXPECT_EQ(f["annotations"]["io.github.berth.host.selinux.enabled"], host_selinux() ? "true" : "false");
    EXPECT_EQ(f["linux"]["seccomp"]["actions"].size(), 9u);
    // No longer in the list of unsupported commands.
    auto help = berth({"--help"});
    EXPECT_EQ(help.out.find("features     print the features berth supports (not supported yet)"), std::string::npos);
    EXPECT_NE(help.out.find("features"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace berth::test
