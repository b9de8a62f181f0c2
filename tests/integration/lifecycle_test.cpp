// The state machine and command line of `berth`: create, start, state, kill, delete, run, list, spec.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

std::string status_of(BerthTest& t, CommandResult r) {
    (void)t;
    if (r.exit_code != 0) return "error: " + r.err;
    return json::parse(r.out).value("status", "");
}

// True once pid has exited (gone, or a zombie waiting for its reaper), within 5 s.
bool process_gone(int pid) {
    for (int i = 0; i < 200; ++i) {
        std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
        if (stat.empty() || stat.find(") Z") != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
}

class Lifecycle : public BerthTest {
protected:
    std::string status(const std::string& id) { return status_of(*this, berth({"state", id})); }
    // Polls `state` until it reports `want` (containers stop asynchronously).
    bool wait_status(const std::string& id, const std::string& want) {
        for (int i = 0; i < 200; ++i) {
            if (status(id) == want) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        return false;
    }
};

TEST_F(Lifecycle, CreateStartKillDelete) {
    write_config(base_config({"sleep", "60"}));
    std::string id = next_id();
    std::string pidfile = dir_ + "/pid";
    auto c = berth({"create", "--bundle", bundle_, "--pid-file", pidfile, id});
    ASSERT_EQ(c.exit_code, 0) << c.err;

    auto st = berth({"state", id});
    ASSERT_EQ(st.exit_code, 0) << st.err;
    json j = json::parse(st.out);
    EXPECT_EQ(j["status"], "created");
    EXPECT_EQ(j["id"], id);
    EXPECT_EQ(j["bundle"], bundle_);
    EXPECT_EQ(j["ociVersion"], "1.2.0");
    int pid = j["pid"];
    ASSERT_GT(pid, 0);
    EXPECT_EQ(read_text(pidfile), std::to_string(pid));
    // The init process exists but has not exec'd the user process yet.
    EXPECT_EQ(kill(pid, 0), 0);
    EXPECT_EQ(read_text("/proc/" + std::to_string(pid) + "/cmdline").find("sleep"), std::string::npos);

    auto s = berth({"start", id});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_EQ(status(id), "running");
    EXPECT_NE(read_text("/proc/" + std::to_string(pid) + "/cmdline").find("sleep"), std::string::npos);

    // Wrong transitions are errors that say why.
    auto again = berth({"start", id});
    EXPECT_NE(again.exit_code, 0);
    EXPECT_NE(again.err.find("running"), std::string::npos) << again.err;
    auto del = berth({"delete", id});
    EXPECT_NE(del.exit_code, 0);
    EXPECT_NE(del.err.find("running"), std::string::npos) << del.err;

    auto k = berth({"kill", id, "KILL"});
    ASSERT_EQ(k.exit_code, 0) << k.err;
    ASSERT_TRUE(wait_status(id, "stopped"));
    auto k2 = berth({"kill", id, "TERM"});
    EXPECT_NE(k2.exit_code, 0);
    // runc's words: containerd's shim and CRI-O recognise "container not running" as "already exited".
    EXPECT_NE(k2.err.find("container not running"), std::string::npos) << k2.err;

    auto d = berth({"delete", id});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto gone = berth({"state", id});
    EXPECT_NE(gone.exit_code, 0);
    EXPECT_NE(gone.err.find("does not exist"), std::string::npos) << gone.err;
    EXPECT_TRUE(root_entries().empty());
}

TEST_F(Lifecycle, KillBySignalNameAndNumber) {
    // The container reports the signal it received through its exit status.
    // As pid 1 of its namespace the shell ignores USR1 until its trap is set: it says when by creating a file.
    write_config(base_config({"sh", "-c", "trap 'exit 42' USR1; touch /tmp/trapped; while true; do sleep 0.05; done"}));
    std::string id = next_id();
    std::string trapped = rootfs_ + "/tmp/trapped";
    ASSERT_EQ(berth({"create", "--bundle", bundle_, id}).exit_code, 0);
    ASSERT_EQ(berth({"start", id}).exit_code, 0);
    for (int i = 0; i < 400 && access(trapped.c_str(), F_OK) != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    ASSERT_EQ(access(trapped.c_str(), F_OK), 0) << "the container never set its trap";
    auto k = berth({"kill", id, "SIGUSR1"});
    ASSERT_EQ(k.exit_code, 0) << k.err;
    EXPECT_TRUE(wait_status(id, "stopped"));
    EXPECT_EQ(berth({"delete", id}).exit_code, 0);

    auto bad = berth({"kill", "whatever", "SIGNOPE"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("SIGNOPE"), std::string::npos) << bad.err;

    ASSERT_EQ(berth({"create", "--bundle", bundle_, id}).exit_code, 0);
    ASSERT_EQ(berth({"start", id}).exit_code, 0);
    ASSERT_EQ(berth({"kill", id, "9"}).exit_code, 0);
    EXPECT_TRUE(wait_status(id, "stopped"));
}

TEST_F(Lifecycle, DeleteForceKillsRunningAndCreatedDeletesPlainly) {
    write_config(base_config({"sleep", "60"}));
    std::string running = next_id(), created = next_id();
    ASSERT_EQ(berth({"run", "-d", "--bundle", bundle_, running}).exit_code, 0);
    ASSERT_EQ(berth({"create", "--bundle", bundle_, created}).exit_code, 0);
    int pid = json::parse(berth({"state", running}).out)["pid"];
    int cpid = json::parse(berth({"state", created}).out)["pid"];
    EXPECT_EQ(berth({"delete", "--force", running}).exit_code, 0);
    EXPECT_TRUE(process_gone(pid));
    // A created container is deleted without --force, as runc does (containerd's shim relies on it).
    auto d = berth({"delete", created});
    EXPECT_EQ(d.exit_code, 0) << d.err;
    EXPECT_TRUE(root_entries().empty());
    EXPECT_TRUE(process_gone(cpid));
    // --force on a container that does not exist succeeds; without it, it is an error.
    EXPECT_EQ(berth({"delete", "--force", "nope"}).exit_code, 0);
    EXPECT_NE(berth({"delete", "nope"}).exit_code, 0);
}

TEST_F(Lifecycle, RunReturnsExitCodeAndSignal) {
    auto r = run_sh("echo hello from berth; exit 3");
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.out, "hello from berth\n");
    // Without a pid namespace of its own: the kernel ignores SIGKILL sent by a namespace's init to itself.
    auto k = run_sh("kill -9 $$", [](json& c) {
        auto& nss = c["linux"]["namespaces"];
        for (size_t i = 0; i < nss.size(); ++i)
            if (nss[i]["type"] == "pid") nss.erase(i);
    });
    EXPECT_EQ(k.exit_code, 128 + 9) << k.err;
    // A foreground run removes the container afterwards.
    EXPECT_TRUE(root_entries().empty());
}

TEST_F(Lifecycle, RunForwardsSignals) {
    write_config(base_config({"sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.05; done"}));
    std::string id = next_id();
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        execl(BERTH_BIN, BERTH_BIN, "--root", root_.c_str(), "run", "--bundle", bundle_.c_str(), id.c_str(), nullptr);
        _exit(127);
    }
    close(out[1]);
    char buf[256];
    std::string got;
    while (got.find("ready") == std::string::npos) {
        ssize_t n = read(out[0], buf, sizeof buf);
        ASSERT_GT(n, 0);
        got.append(buf, static_cast<size_t>(n));
    }
    kill(pid, SIGTERM);
    for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 7);
    EXPECT_NE(got.find("got TERM"), std::string::npos) << got;
}

TEST_F(Lifecycle, ListTableAndJson) {
    write_config(base_config({"sleep", "60"}));
    std::string a = next_id(), b = next_id();
    ASSERT_EQ(berth({"create", "--bundle", bundle_, a}).exit_code, 0);
    ASSERT_EQ(berth({"run", "-d", "--bundle", bundle_, b}).exit_code, 0);
    auto table = berth({"list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("ID"), std::string::npos);
    EXPECT_NE(table.out.find(a), std::string::npos);
    auto js = berth({"list", "--format", "json"});
    ASSERT_EQ(js.exit_code, 0) << js.err;
    json arr = json::parse(js.out);
    ASSERT_EQ(arr.size(), 2u);
    std::map<std::string, std::string> by_id;
    for (const auto& e : arr) by_id[e["id"]] = e["status"];
    EXPECT_EQ(by_id[a], "created");
    EXPECT_EQ(by_id[b], "running");
    auto q = berth({"list", "-q"});
    EXPECT_EQ(q.out, a + "\n" + b + "\n");
}

TEST_F(Lifecycle, DuplicateIdAndBadIdAreErrors) {
    write_config(base_config({"sleep", "60"}));
    std::string id = next_id();
    ASSERT_EQ(berth({"create", "--bundle", bundle_, id}).exit_code, 0);
    auto dup = berth({"create", "--bundle", bundle_, id});
    EXPECT_NE(dup.exit_code, 0);
    EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;
    // The first container is untouched by the failed second create.
    EXPECT_EQ(json::parse(berth({"state", id}).out)["status"], "created");
    auto bad = berth({"create", "--bundle", bundle_, "../escape"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("invalid container id"), std::string::npos) << bad.err;
}

TEST_F(Lifecycle, SpecWritesAValidDefaultConfig) {
    std::string d = dir_ + "/specdir";
    mkdir(d.c_str(), 0755);
    auto r = berth({"spec", "--bundle", d});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(read_text(d + "/config.json"));
    EXPECT_EQ(j["ociVersion"], "1.2.0");
    EXPECT_EQ(j["root"]["path"], "rootfs");
    EXPECT_EQ(j["process"]["terminal"], true);
    auto again = berth({"spec", "--bundle", d});
    EXPECT_NE(again.exit_code, 0);
    EXPECT_NE(again.err.find("exists"), std::string::npos);
    std::string rl = dir_ + "/rootless";
    mkdir(rl.c_str(), 0755);
    ASSERT_EQ(berth({"spec", "--rootless", "--bundle", rl}).exit_code, 0);
    json r2 = json::parse(read_text(rl + "/config.json"));
    bool has_user = false;
    for (const auto& ns : r2["linux"]["namespaces"]) has_user |= ns["type"] == "user";
    EXPECT_TRUE(has_user);
    EXPECT_FALSE(r2["linux"]["uidMappings"].empty());
}

TEST_F(Lifecycle, UnimplementedCommandsSayNotSupported) {
    auto r = berth({"checkpoint", "x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("not supported"), std::string::npos) << r.err;
}

TEST_F(Lifecycle, GlobalLogJsonFormatCarriesErrors) {
    std::string log = dir_ + "/log.json";
    auto r = run_command({BERTH_BIN, "--root", root_, "--log", log, "--log-format", "json", "state", "nope"});
    EXPECT_NE(r.exit_code, 0);
    std::string text = read_text(log);
    ASSERT_FALSE(text.empty());
    json j = json::parse(text.substr(0, text.find('\n')));
    EXPECT_EQ(j["level"], "error");
    EXPECT_NE(j["msg"].get<std::string>().find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace berth::test
