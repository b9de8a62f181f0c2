// What a container sees: namespaces, hostname, pid 1, mounts and their flags, masked and readonly paths, rlimits,
// ids, user namespace mappings, devices, sysctls, fds and cwd.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

class Isolation : public BerthTest {};

TEST_F(Isolation, NamespacesDifferFromTheHost) {
    const char* kinds[] = {"pid", "net", "ipc", "uts", "mnt"};
    std::string script;
    for (const char* k : kinds) script += std::string("readlink /proc/self/ns/") + k + "; ";
    auto r = run_sh(script);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* k : kinds) {
        std::string host = read_link(std::string("/proc/self/ns/") + k);
        ASSERT_FALSE(host.empty());
        EXPECT_NE(r.out.find(std::string(k) + ":["), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find(host), std::string::npos) << k << " namespace is the host's: " << host;
    }
    // Without a cgroup or user namespace in the config, those stay the host's.
    auto same = run_sh("readlink /proc/self/ns/user");
    EXPECT_EQ(same.out, read_link("/proc/self/ns/user") + "\n");
}

TEST_F(Isolation, EveryNamespaceTypeCanBeNew) {
    auto r = run_sh("for n in pid net ipc uts mnt cgroup time user; do readlink /proc/self/ns/$n; done",
                    [](json& c) {
                        c["linux"]["namespaces"] = json::array();
                        for (const char* t : {"pid", "network", "ipc", "uts", "mount", "cgroup", "time", "user"})
                            c["linux"]["namespaces"].push_back({{"type", t}});
                        c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
                        c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
                    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* k : {"pid", "net", "ipc", "uts", "mnt", "cgroup", "time", "user"}) {
        std::string host = read_link(std::string("/proc/self/ns/") + k);
        EXPECT_EQ(r.out.find(host), std::string::npos) << k << " namespace is the host's";
    }
}

TEST_F(Isolation, HostnameDomainnameAndPidOne) {
    auto r = run_sh("hostname; cat /proc/sys/kernel/domainname; echo pid=$$; cat /proc/1/cmdline | tr '\\0' ' '",
                    [](json& c) { c["domainname"] = "example.test"; });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("berth-test\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("example.test\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("pid=1\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("sh -c"), std::string::npos) << r.out;
}

TEST_F(Isolation, MountsCarryTheirFlags) {
    std::string shared = dir_ + "/shared";
    mkdir(shared.c_str(), 0755);
    write_text(shared + "/file", "from the host");
    json cfg = base_config({"sh", "-c", "cat /proc/self/mountinfo; cat /data/file; echo; touch /data/new || echo ro-ok"});
    cfg["mounts"].push_back({{"destination", "/data"},
                             {"type", "bind"},
                             {"source", shared},
                             {"options", {"rbind", "ro", "nosuid", "nodev", "noexec"}}});
    auto m = run_config(cfg);
    ASSERT_EQ(m.exit_code, 0) << m.err;
    auto line_of = [&](const std::string& mountpoint) {
        size_t pos = m.out.find(" " + mountpoint + " ");
        if (pos == std::string::npos) return std::string();
        size_t start = m.out.rfind('\n', pos);
        size_t end = m.out.find('\n', pos);
        return m.out.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1));
    };
    std::string sys = line_of("/sys");
    ASSERT_FALSE(sys.empty()) << m.out;
    EXPECT_NE(sys.find(" ro,"), std::string::npos) << sys;
    std::string shm = line_of("/dev/shm");
    EXPECT_NE(shm.find("nosuid"), std::string::npos) << shm;
    EXPECT_NE(shm.find("nodev"), std::string::npos) << shm;
    EXPECT_NE(shm.find("noexec"), std::string::npos) << shm;
    std::string data = line_of("/data");
    ASSERT_FALSE(data.empty()) << m.out;
    EXPECT_NE(data.find(" ro,"), std::string::npos) << data;
    EXPECT_NE(data.find("nosuid"), std::string::npos) << data;
    EXPECT_NE(line_of("/proc").find(" proc "), std::string::npos);
    EXPECT_NE(line_of("/dev/pts").find("devpts"), std::string::npos);
    EXPECT_NE(line_of("/dev/mqueue").find("mqueue"), std::string::npos);
    EXPECT_NE(m.out.find("from the host"), std::string::npos);
    EXPECT_NE(m.out.find("ro-ok"), std::string::npos);
    // The host sees none of the container's mounts.
    EXPECT_EQ(read_text("/proc/self/mountinfo").find(rootfs_), std::string::npos);
}

TEST_F(Isolation, MaskedPathsAreUnreadableAndReadonlyPathsUnwritable) {
    // Host /proc/timer_list is non-empty and /sys/firmware has entries (checked below): masked, both look empty.
    ASSERT_FALSE(read_text("/proc/timer_list").empty());
    ASSERT_FALSE(run_command({"/bin/ls", "/sys/firmware"}).out.empty());
    auto r = run_sh("wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
                    "/bin/busybox touch /proc/sys/kernel/berth 2>/dev/null || echo sys-ro; "
                    "echo 1 > /proc/sysrq-trigger 2>/dev/null || echo sysrq-ro");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "0\n0\nsys-ro\nsysrq-ro\n");
}

TEST_F(Isolation, ReadonlyRootfs) {
    auto r = run_sh("touch /newfile 2>/dev/null && echo wrote || echo root-ro; touch /dev/shm/ok && echo shm-rw",
                    [](json& c) { c["root"]["readonly"] = true; });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "root-ro\nshm-rw\n");
    EXPECT_NE(access((rootfs_ + "/newfile").c_str(), F_OK), 0);
}

TEST_F(Isolation, RlimitsUmaskAndIds) {
    auto r = run_sh("ulimit -n; ulimit -Hn; umask; grep -E '^(Uid|Gid|Groups|NoNewPrivs):' /proc/self/status; id -u",
                    [](json& c) {
                        c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 512}, {"hard", 768}}};
                        c["process"]["user"] = {
                            {"uid", 1000}, {"gid", 1000}, {"umask", 23}, {"additionalGids", {10, 20}}};
                    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("512\n768\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("0027\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Uid:\t1000\t1000\t1000\t1000"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Gid:\t1000\t1000\t1000\t1000"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Groups:\t10 20"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("NoNewPrivs:\t1"), std::string::npos) << r.out;
}

TEST_F(Isolation, CapabilitySets) {
    auto r = run_sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status", [](json& c) {
        json two = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
        c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
        c["process"]["capabilities"] = {{"bounding", two},
                                        {"effective", two},
                                        {"permitted", two},
                                        {"inheritable", {"CAP_NET_BIND_SERVICE"}},
                                        {"ambient", {"CAP_NET_BIND_SERVICE"}}};
    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // CAP_KILL is bit 5, CAP_NET_BIND_SERVICE bit 10. After exec as uid 1000, only the ambient capability survives
    // in the permitted and effective sets.
    EXPECT_NE(r.out.find("CapBnd:\t0000000000000420"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CapInh:\t0000000000000400"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CapAmb:\t0000000000000400"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CapEff:\t0000000000000400"), std::string::npos) << r.out;

    auto root = run_sh("grep -E '^Cap(Eff|Bnd):' /proc/self/status", [](json& c) {
        json one = {"CAP_CHOWN"};
        c["process"]["capabilities"] = {{"bounding", one}, {"effective", one}, {"permitted", one}};
    });
    ASSERT_EQ(root.exit_code, 0) << root.err;
    EXPECT_EQ(root.out, "CapEff:\t0000000000000001\nCapBnd:\t0000000000000001\n");
}

TEST_F(Isolation, SeccompRuleTurnsASyscallIntoTheConfiguredErrno) {
    auto r = run_sh("mkdir /tmp/blocked 2>&1; echo still-running", [](json& c) {
        c["linux"]["seccomp"] = {
            {"defaultAction", "SCMP_ACT_ALLOW"},
            {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
            {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}}}}};
    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Function not implemented"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("still-running"), std::string::npos) << r.out;
    EXPECT_NE(access((rootfs_ + "/tmp/blocked").c_str(), F_OK), 0);
}

TEST_F(Isolation, UserNamespaceMapping) {
    auto r = run_sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox",
                    [](json& c) {
                        c["linux"]["namespaces"].push_back({{"type", "user"}});
                        c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}};
                        c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}};
                    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("0     200000      65536"), std::string::npos) << r.out;
    // We are root inside; the host-root-owned rootfs files show as the overflow uid.
    EXPECT_NE(r.out.find("\n0\n65534\n"), std::string::npos) << r.out;
}

TEST_F(Isolation, DefaultAndSpecDevices) {
    auto r = run_sh("stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mydev; "
                    "readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx",
                    [](json& c) {
                        c["linux"]["devices"] = {{{"path", "/dev/mydev"},
                                                  {"type", "c"},
                                                  {"major", 1},
                                                  {"minor", 5},
                                                  {"fileMode", 0666},
                                                  {"uid", 0},
                                                  {"gid", 0}}};
                    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("/dev/null character special file 1:3"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("/dev/zero character special file 1:5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("/dev/tty character special file 5:0"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("/dev/mydev character special file 1:5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n"), std::string::npos) << r.out;
}

TEST_F(Isolation, Sysctl) {
    auto r = run_sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax", [](json& c) {
        c["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}, {"kernel.msgmax", "12345"}};
    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "1\n12345\n");
}

TEST_F(Isolation, NoFdLeaksAndNoHostCwd) {
    int extra = open("/dev/null", O_RDONLY);  // not preserved: must not reach the container
    ASSERT_GE(extra, 0);
    auto r = run_sh("ls /proc/self/fd; readlink /proc/self/cwd");
    close(extra);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // ls itself opens one fd (3) to read the directory.
    EXPECT_EQ(r.out, "0\n1\n2\n3\n/\n");
}

TEST_F(Isolation, PreservedFdsReachTheContainer) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(write(p[1], "through fd 3", 12), 12);
    close(p[1]);
    write_config(base_config({"sh", "-c", "cat <&3"}));
    auto r = berth({"run", "--preserve-fds", "1", "--bundle", bundle_, next_id()}, {}, {p[0]});
    close(p[0]);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "through fd 3");
}

TEST_F(Isolation, JoinsANamespaceByPath) {
    write_config(base_config({"sleep", "60"}));
    std::string first = next_id();
    ASSERT_EQ(berth({"run", "-d", "--bundle", bundle_, first}).exit_code, 0);
    int pid = json::parse(berth({"state", first}).out)["pid"];
    std::string netns = "/proc/" + std::to_string(pid) + "/ns/net";
    std::string utsns = "/proc/" + std::to_string(pid) + "/ns/uts";
    json cfg = base_config({"sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname"});
    cfg.erase("hostname");
    for (auto& ns : cfg["linux"]["namespaces"]) {
        if (ns["type"] == "network") ns["path"] = netns;
        if (ns["type"] == "uts") ns["path"] = utsns;
    }
    auto r = run_config(cfg);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, read_link(netns) + "\n" + read_link(utsns) + "\nberth-test\n");
}

TEST_F(Isolation, JoinsAPidNamespaceByPath) {
    write_config(base_config({"sleep", "60"}));
    std::string first = next_id();
    ASSERT_EQ(berth({"run", "-d", "--bundle", bundle_, first}).exit_code, 0);
    int pid = json::parse(berth({"state", first}).out)["pid"];
    std::string pidns = "/proc/" + std::to_string(pid) + "/ns/pid";
    json cfg = base_config({"sh", "-c", "readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '"});
    for (auto& ns : cfg["linux"]["namespaces"])
        if (ns["type"] == "pid") ns["path"] = pidns;
    auto r = run_config(cfg);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, read_link(pidns) + "\nsleep 60 ");
}

TEST_F(Isolation, TimeNamespaceOffsets) {
    auto r = run_sh("cut -d. -f1 /proc/uptime", [](json& c) {
        c["linux"]["namespaces"].push_back({{"type", "time"}});
        c["linux"]["timeOffsets"] = {{"boottime", {{"secs", 86400 * 365}, {"nanosecs", 0}}}};
    });
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GT(std::stol(r.out), 86400L * 365) << r.out;
}

TEST_F(Isolation, NoPivot) {
    write_config(base_config({"sh", "-c", "ls /bin/busybox && echo pid=$$"}));
    auto r = berth({"run", "--no-pivot", "--bundle", bundle_, next_id()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "/bin/busybox\npid=1\n");
}

TEST_F(Isolation, SymlinkInRootfsCannotRedirectAMountOutside) {
    // rootfs/escape -> / : a naive runtime would mount onto the host's <outside>.
    std::string outside = dir_ + "/outside";
    mkdir(outside.c_str(), 0755);
    ASSERT_EQ(symlink("/", (rootfs_ + "/escape").c_str()), 0);
    json cfg = base_config({"sh", "-c", "touch /escape" + outside + "/planted && echo inside-ok"});
    cfg["mounts"].push_back({{"destination", "/escape" + outside}, {"type", "tmpfs"}, {"source", "tmpfs"}});
    auto r = run_config(cfg);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(access((outside + "/planted").c_str(), F_OK), 0) << "the mount escaped the rootfs";
}

}  // namespace
}  // namespace berth::test
