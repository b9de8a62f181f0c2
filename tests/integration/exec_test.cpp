// `berth exec`: a new process joins every namespace of a running container.
#include <unistd.h>

#include <chrono>
#include <thread>

#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

class Exec : public BerthTest {
protected:
    // A running container with a long sleep; returns its id and init pid.
    std::pair<std::string, int> start_sleeper(void (*tweak)(json&) = nullptr) {
        json cfg = base_config({"sleep", "600"});
        cfg["process"]["env"].push_back("FROM_CONFIG=yes");
        if (tweak) tweak(cfg);
        write_config(cfg);
        std::string id = next_id();
        auto r = berth({"run", "-d", "--bundle", bundle_, id});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        int pid = json::parse(berth({"state", id}).out)["pid"];
        return {id, pid};
    }
};

TEST_F(Exec, JoinsEveryNamespaceOfTheContainer) {
    auto [id, pid] = start_sleeper();
    auto r = berth({"exec", id, "sh", "-c", "for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done; hostname"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string want;
    for (const char* n : {"pid", "net", "ipc", "uts", "mnt"})
        want += read_link("/proc/" + std::to_string(pid) + "/ns/" + n) + "\n";
    EXPECT_EQ(r.out, want + "berth-test\n");
}

TEST_F(Exec, SeesTheContainersProcessesAndInheritsItsEnv) {
    auto [id, pid] = start_sleeper();
    (void)pid;
    auto r = berth({"exec", "-e", "EXTRA=1", "--cwd", "/tmp", id, "sh", "-c",
                    "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $FROM_CONFIG $EXTRA; pwd; ls /bin/busybox"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "sleep 600 \nyes 1\n/tmp\n/bin/busybox\n");
}

TEST_F(Exec, ExitCodeUserAndGroups) {
    auto [id, pid] = start_sleeper();
    (void)pid;
    auto r = berth({"exec", "-u", "1000:1001", "-g", "7", id, "sh", "-c",
                    "id -u; id -g; grep '^Groups:' /proc/self/status; exit 5"});
    EXPECT_EQ(r.exit_code, 5) << r.err;
    // The supplementary groups are exactly -g's: none is inherited from berth or from the container's process.
    EXPECT_EQ(r.out, "1000\n1001\nGroups:\t7 \n");
}

TEST_F(Exec, DetachedWithPidFile) {
    auto [id, pid] = start_sleeper();
    (void)pid;
    std::string pidfile = dir_ + "/exec.pid";
    auto r = berth({"exec", "-d", "--pid-file", pidfile, id, "sleep", "30"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int epid = std::stoi(read_text(pidfile));
    EXPECT_NE(read_text("/proc/" + std::to_string(epid) + "/cmdline").find("sleep"), std::string::npos);
    EXPECT_EQ(read_link("/proc/" + std::to_string(epid) + "/ns/pid"),
              read_link("/proc/" + std::to_string(pid) + "/ns/pid"));
}

TEST_F(Exec, ProcessFileAndErrors) {
    auto [id, pid] = start_sleeper();
    (void)pid;
    std::string pf = dir_ + "/process.json";
    write_text(pf, json{{"args", {"sh", "-c", "echo from-file $A"}}, {"env", {"A=b", "PATH=/bin"}}, {"cwd", "/"},
                        {"user", {{"uid", 0}, {"gid", 0}}}}
                       .dump());
    auto r = berth({"exec", "-p", pf, id});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "from-file b\n");
    auto missing = berth({"exec", id, "no-such-command"});
    EXPECT_NE(missing.exit_code, 0);
    EXPECT_NE(missing.err.find("no-such-command"), std::string::npos) << missing.err;
    auto nocontainer = berth({"exec", "nope", "true"});
    EXPECT_NE(nocontainer.exit_code, 0);
    EXPECT_NE(nocontainer.err.find("does not exist"), std::string::npos) << nocontainer.err;
}

TEST_F(Exec, UserNamespaceContainer) {
    auto [id, pid] = start_sleeper([](json& c) {
        c["linux"]["namespaces"].push_back({{"type", "user"}});
        c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 300000}, {"size", 65536}}};
        c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 300000}, {"size", 65536}}};
    });
    auto r = berth({"exec", id, "sh", "-c", "readlink /proc/self/ns/user; id -u; cat /proc/self/uid_map"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(read_link("/proc/" + std::to_string(pid) + "/ns/user")), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\n0\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("300000"), std::string::npos) << r.out;
}

TEST_F(Exec, TtyInForeground) {
    auto [id, pid] = start_sleeper();
    (void)pid;
    auto r = berth({"exec", "-t", id, "tty"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace berth::test
