// Hooks (order, state on stdin, timeouts) and terminals (console socket, foreground run with a pty).
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

class Hooks : public BerthTest {
protected:
    // A hook script that appends "<phase>" to the log, and saves its stdin to <dir>/state.<phase>.
    std::string hook(const std::string& log, const std::string& state_dir) {
        std::string path = dir_ + "/hook.sh";
        write_text(path, "#!/bin/sh\necho \"$1\" >> " + log + "\ncat > " + state_dir + "/state.$1\n", 0755);
        return path;
    }
};

TEST_F(Hooks, AllSixKindsRunInOrderWithTheState) {
    std::string log = rootfs_ + "/tmp/hooks.log";
    std::string host_hook = hook(log, rootfs_ + "/tmp");
    // startContainer runs after pivot_root: its path resolves inside the container.
    write_text(rootfs_ + "/start-hook.sh", "#!/bin/sh\necho \"$1\" >> /tmp/hooks.log\ncat > /tmp/state.$1\n", 0755);
    json cfg = base_config({"sh", "-c", "echo process >> /tmp/hooks.log"});
    auto h = [&](const std::string& phase) { return json{{"path", host_hook}, {"args", {"hook.sh", phase}}}; };
    cfg["hooks"] = {{"prestart", {h("prestart")}},
                    {"createRuntime", {h("createRuntime")}},
                    {"createContainer", {h("createContainer")}},
                    {"startContainer", {{{"path", "/start-hook.sh"}, {"args", {"start-hook.sh", "startContainer"}}}}},
                    {"poststart", {h("poststart")}},
                    {"poststop", {h("poststop")}}};
    write_config(cfg);
    std::string id = next_id();
    ASSERT_EQ(berth({"create", "--bundle", bundle_, id}).exit_code, 0);
    EXPECT_EQ(read_text(log), "prestart\ncreateRuntime\ncreateContainer\n");
    int pid = json::parse(berth({"state", id}).out)["pid"];
    auto s = berth({"start", id});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    // The process and poststart race; wait for the process to finish, then delete.
    for (int i = 0; i < 200 && json::parse(berth({"state", id}).out)["status"] != "stopped"; ++i) usleep(20000);
    ASSERT_EQ(berth({"delete", id}).exit_code, 0);
    std::string got = read_text(log);
    EXPECT_TRUE(got == "prestart\ncreateRuntime\ncreateContainer\nstartContainer\nprocess\npoststart\npoststop\n" ||
                got == "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\nprocess\npoststop\n")
        << got;
    for (const char* phase :
         {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}) {
        std::string text = read_text(rootfs_ + "/tmp/state." + phase);
        ASSERT_FALSE(text.empty()) << phase;
        json st = json::parse(text);
        EXPECT_EQ(st["id"], id) << phase;
        EXPECT_EQ(st["ociVersion"], "1.2.0") << phase;
        EXPECT_EQ(st["bundle"], bundle_) << phase;
        if (std::string(phase) != "poststop") {
            EXPECT_EQ(st["pid"], pid) << phase;
        }
    }
    EXPECT_EQ(json::parse(read_text(rootfs_ + "/tmp/state.createRuntime"))["status"], "creating");
    EXPECT_EQ(json::parse(read_text(rootfs_ + "/tmp/state.poststop"))["status"], "stopped");
}

TEST_F(Hooks, FailingAndTimedOutHooksFailCreate) {
    std::string bad = dir_ + "/bad.sh";
    write_text(bad, "#!/bin/sh\necho broken hook >&2\nexit 3\n", 0755);
    json cfg = base_config({"true"});
    cfg["hooks"] = {{"createRuntime", {{{"path", bad}}}}};
    write_config(cfg);
    auto r = berth({"create", "--bundle", bundle_, next_id()});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("createRuntime"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("3"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("broken hook"), std::string::npos) << r.err;
    EXPECT_TRUE(root_entries().empty());

    cfg["hooks"] = {{"prestart", {{{"path", "/bin/sleep"}, {"args", {"sleep", "30"}}, {"timeout", 1}}}}};
    write_config(cfg);
    auto t = berth({"create", "--bundle", bundle_, next_id()});
    EXPECT_NE(t.exit_code, 0);
    EXPECT_NE(t.err.find("timed out"), std::string::npos) << t.err;
    EXPECT_TRUE(root_entries().empty());
}

TEST_F(Hooks, FailingStartContainerHookFailsStart) {
    // startContainer runs inside the container: a hook that fails there ends init before the process runs, and
    // `start` reports it instead of returning as if the container had started.
    write_text(rootfs_ + "/bad-start.sh", "#!/bin/sh\nexit 4\n", 0755);
    json cfg = base_config({"sh", "-c", "echo ran > /tmp/ran"});
    cfg["hooks"] = {{"startContainer", {{{"path", "/bad-start.sh"}}}}};
    write_config(cfg);
    std::string id = next_id();
    ASSERT_EQ(berth({"create", "--bundle", bundle_, id}).exit_code, 0);
    auto s = berth({"start", id});
    EXPECT_NE(s.exit_code, 0);
    EXPECT_NE(s.err.find("init exited before it was started"), std::string::npos) << s.err;
    // init closed the fifo on its way out; it may need a moment more to be gone.
    std::string status;
    for (int i = 0; i < 200 && (status = json::parse(berth({"state", id}).out)["status"]) != "stopped"; ++i)
        usleep(20000);
    EXPECT_EQ(status, "stopped");
    EXPECT_NE(access((rootfs_ + "/tmp/ran").c_str(), F_OK), 0);
}

// Receives one fd sent with SCM_RIGHTS on an accepted connection.
int receive_fd(int listener) {
    int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return -1;
    char name[256];
    struct iovec iov = {name, sizeof name};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    int fd = -1;
    if (recvmsg(conn, &msg, 0) > 0) {
        struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    }
    close(conn);
    return fd;
}

class Terminal : public BerthTest {};

TEST_F(Terminal, ConsoleSocketReceivesThePtyMaster) {
    std::string sock_path = dir_ + "/console.sock";
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(listen(listener, 1), 0);

    json cfg = base_config({"sh", "-c", "tty; stty size; sleep 0.2"});
    cfg["process"]["terminal"] = true;
    cfg["process"]["consoleSize"] = {{"height", 30}, {"width", 100}};
    write_config(cfg);
    std::string id = next_id();
    CommandResult created;
    pid_t child = fork();
    if (child == 0) {
        auto r = berth({"create", "--console-socket", sock_path, "--bundle", bundle_, id});
        _exit(r.exit_code);
    }
    int master = receive_fd(listener);
    close(listener);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_GE(master, 0);
    ASSERT_EQ(berth({"start", id}).exit_code, 0);
    std::string out;
    char buf[512];
    for (ssize_t n; out.find("30 100") == std::string::npos && (n = read(master, buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<size_t>(n));
    close(master);
    EXPECT_NE(out.find("/dev/pts/0"), std::string::npos) << out;
    EXPECT_NE(out.find("30 100"), std::string::npos) << out;
}

TEST_F(Terminal, ForegroundRunProxiesThePty) {
    json cfg = base_config({"sh", "-c", "tty; read line; echo got:$line"});
    cfg["process"]["terminal"] = true;
    write_config(cfg);
    auto r = berth({"run", "--bundle", bundle_, next_id()}, "hello\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("/dev/pts/0\r\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("got:hello"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace berth::test
