#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/time.hpp"
#include "runtime/container_state.hpp"
#include "runtime/init.hpp"
#include "runtime/runtime.hpp"
#include "runtime/sync.hpp"

namespace berth::runtime {
namespace {

TEST(ContainerId, AcceptsFileNameCharactersOnly) {
    EXPECT_TRUE(validate_container_id("abc-DEF_1.2+3"));
    EXPECT_FALSE(validate_container_id(""));
    EXPECT_FALSE(validate_container_id("."));
    EXPECT_FALSE(validate_container_id(".."));
    EXPECT_FALSE(validate_container_id("a/b"));
    EXPECT_FALSE(validate_container_id("a b"));
    EXPECT_FALSE(validate_container_id(std::string(1025, 'a')));
}

TEST(ParseSignal, NamesNumbersAndRealtime) {
    EXPECT_EQ(*parse_signal("KILL"), SIGKILL);
    EXPECT_EQ(*parse_signal("SIGKILL"), SIGKILL);
    EXPECT_EQ(*parse_signal("sigterm"), SIGTERM);
    EXPECT_EQ(*parse_signal("15"), SIGTERM);
    EXPECT_EQ(*parse_signal("USR1"), SIGUSR1);
    EXPECT_EQ(*parse_signal("RTMIN+2"), SIGRTMIN + 2);
    EXPECT_EQ(*parse_signal("SIGRTMAX"), SIGRTMAX);
    EXPECT_FALSE(parse_signal("0"));
    EXPECT_FALSE(parse_signal("99"));
    EXPECT_FALSE(parse_signal("SIGFOO"));
    EXPECT_FALSE(parse_signal("9x"));
    EXPECT_FALSE(parse_signal(""));
}

class StateStore : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-state-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override { (void)remove_all(root_); }
    std::string root_;
};

TEST_F(StateStore, SaveLoadRoundTrip) {
    ContainerState st;
    st.id = "c1";
    st.bundle = "/b";
    st.rootfs = "/b/rootfs";
    st.pid = getpid();
    st.pid_start_time = 12345;
    st.created = now_rfc3339_nano();
    st.annotations = {{"k", "v"}};
    st.hooks.poststop.push_back({"/bin/true", {"true", "x"}, {"A=1"}, 5});
    st.cgroup_paths = {{"memory", "/sys/fs/cgroup/memory/x"}};
    ASSERT_TRUE(mkdir_all(container_dir(root_, "c1")));
    ASSERT_TRUE(save_state(root_, st));
    auto back = load_state(root_, "c1");
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->bundle, "/b");
    EXPECT_EQ(back->pid, getpid());
    EXPECT_EQ(back->pid_start_time, 12345u);
    EXPECT_EQ(back->annotations.at("k"), "v");
    ASSERT_EQ(back->hooks.poststop.size(), 1u);
    EXPECT_EQ(back->hooks.poststop[0].args[1], "x");
    EXPECT_EQ(back->hooks.poststop[0].timeout, 5);
    EXPECT_EQ(back->cgroup_paths.at("memory"), "/sys/fs/cgroup/memory/x");
    auto ids = list_container_ids(root_);
    ASSERT_TRUE(ids);
    EXPECT_EQ(*ids, std::vector<std::string>{"c1"});
}

TEST_F(StateStore, StatusFollowsTheProcessAndTheFifo) {
    ContainerState st;
    st.id = "c2";
    st.pid = getpid();
    st.pid_start_time = 0;
    ASSERT_TRUE(mkdir_all(container_dir(root_, "c2")));
    EXPECT_EQ(current_status(root_, st), Status::running);
    ASSERT_TRUE(write_file(exec_fifo_path(root_, "c2"), ""));
    EXPECT_EQ(current_status(root_, st), Status::created);
    // A pid whose start time does not match is a reused pid: the container is stopped.
    st.pid_start_time = 1;
    EXPECT_EQ(current_status(root_, st), Status::stopped);
    st.pid = 0;
    EXPECT_EQ(current_status(root_, st), Status::stopped);
}

TEST_F(StateStore, MissingContainerIsENOENT) {
    auto r = load_state(root_, "nope");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ENOENT);
    EXPECT_NE(r.error().message().find("does not exist"), std::string::npos);
}

TEST(StateJson, CarriesSpecAndRuncKeys) {
    ContainerState st;
    st.id = "x";
    st.pid = 42;
    st.bundle = "/b";
    st.annotations = {{"a", "b"}};
    auto j = nlohmann::json::parse(state_json(st, "running"));
    EXPECT_EQ(j["ociVersion"], "1.2.0");
    EXPECT_EQ(j["status"], "running");
    EXPECT_EQ(j["pid"], 42);
    EXPECT_EQ(j["annotations"]["a"], "b");
    EXPECT_TRUE(j.contains("rootfs"));
    EXPECT_TRUE(j.contains("created"));
    EXPECT_EQ(nlohmann::json::parse(state_json(st, "stopped"))["pid"], 0);
}

TEST(Sync, MessagesCarryTextAndFds) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    int one = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    ASSERT_TRUE(sync_send(sv[0], SyncType::error, EPERM, "mount /proc: Operation not permitted", p[1]));
    auto m = sync_recv(sv[1]);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->type, SyncType::error);
    EXPECT_EQ(m->value, EPERM);
    EXPECT_EQ(m->text, "mount /proc: Operation not permitted");
    ASSERT_TRUE(m->fd.valid());
    ASSERT_EQ(write(m->fd.get(), "x", 1), 1);
    char c = 0;
    ASSERT_EQ(read(p[0], &c, 1), 1);
    EXPECT_EQ(c, 'x');
    ASSERT_TRUE(sync_send_with_creds(sv[0], SyncType::child_pid));
    auto cred = sync_recv(sv[1]);
    ASSERT_TRUE(cred);
    EXPECT_EQ(cred->sender_pid, getpid());
    close(sv[0]);
    auto eof = sync_recv(sv[1]);
    ASSERT_FALSE(eof);
    EXPECT_EQ(eof.error().code(), EPIPE);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

TEST(FindExecutable, SearchesPathAndNamesItOnFailure) {
    auto sh = find_executable("sh", {"PATH=/nonexistent:/bin"}, "/");
    ASSERT_TRUE(sh) << sh.error().message();
    EXPECT_EQ(*sh, "/bin/sh");
    auto missing = find_executable("definitely-not-here", {"PATH=/bin"}, "/");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("definitely-not-here"), std::string::npos);
    EXPECT_TRUE(find_executable("/bin/sh", {}, "/"));
    // execve's errno, whose text clients match (podman: 127 for ENOENT, 126 for EACCES).
    auto not_executable = find_executable("/etc/passwd", {}, "/");
    ASSERT_FALSE(not_executable);
    EXPECT_EQ(not_executable.error().code(), EACCES);
    EXPECT_NE(not_executable.error().message().find("Permission denied"), std::string::npos);
    auto directory = find_executable("/etc", {}, "/");
    ASSERT_FALSE(directory);
    EXPECT_EQ(directory.error().code(), EACCES);
    auto absent = find_executable("/no/such/file", {}, "/");
    ASSERT_FALSE(absent);
    EXPECT_EQ(absent.error().code(), ENOENT);
    EXPECT_NE(absent.error().message().find("No such file or directory"), std::string::npos);
}

}  // namespace
}  // namespace berth::runtime
