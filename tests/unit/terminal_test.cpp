#include "linux/terminal.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "common/fs.hpp"

namespace berth::sys {
namespace {

constexpr const char* kBusybox = "/bin/busybox";

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/berth-terminal-test-XXXXXX";
        if (::mkdtemp(tmpl)) path_ = tmpl;
    }
    ~TempDir() {
        if (!path_.empty()) (void)remove_all(path_);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Kills and reaps a forked child unless the test reaped it already.
class Child {
public:
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    pid_t pid() const { return pid_; }
    // Returns the wait status.
    int wait() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_;
};

// Kills `pid` after `seconds` unless destroyed first: a proxy test whose container never ends fails instead of
// hanging (the kill closes the slave, which ends the proxy).
class Watchdog {
public:
    Watchdog(pid_t pid, int seconds)
        : thread_([this, pid, seconds] {
              std::unique_lock lock(mu_);
              if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) ::kill(pid, SIGKILL);
          }) {}
    ~Watchdog() {
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

// Forks a child that makes `slave` its controlling terminal and runs `script` with busybox sh.
pid_t spawn_on_terminal(int slave, const char* script) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (!make_controlling_terminal(slave)) ::_exit(126);
        ::execl(kBusybox, "sh", "-c", script, static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

struct Pipe {
    UniqueFd read, write;
};
Pipe make_pipe() {
    int fds[2] = {-1, -1};
    if (::pipe2(fds, O_CLOEXEC) < 0) return {};
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::string read_until_eof(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
}

bool has_cloexec(int fd) {
    return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

TEST(Pty, OpensConnectedPairWithCloexec) {
    auto pty = open_pty();
    ASSERT_TRUE(pty) << pty.error().message();
    EXPECT_TRUE(has_cloexec(pty->master.get()));
    EXPECT_TRUE(has_cloexec(pty->slave.get()));
    EXPECT_EQ(::isatty(pty->slave.get()), 1);
    EXPECT_EQ(pty->slave_name.rfind("/dev/pts/", 0), 0u) << pty->slave_name;
    const char* ttyname = ::ttyname(pty->slave.get());
    ASSERT_NE(ttyname, nullptr);
    EXPECT_EQ(pty->slave_name, ttyname);

    ASSERT_EQ(::write(pty->master.get(), "abc\n", 4), 4);
    char buf[16] = {};
    ASSERT_EQ(::read(pty->slave.get(), buf, sizeof buf), 4);
    EXPECT_STREQ(buf, "abc\n");
}

TEST(Pty, MissingPtmxNamesThePath) {
    auto pty = open_pty("/nonexistent/ptmx");
    ASSERT_FALSE(pty);
    EXPECT_EQ(pty.error().code(), ENOENT);
    EXPECT_NE(pty.error().message().find("/nonexistent/ptmx"), std::string::npos);
}

TEST(Pty, ConsoleSizeSetOnMasterIsSeenOnSlave) {
    auto pty = open_pty();
    ASSERT_TRUE(pty) << pty.error().message();
    ASSERT_TRUE(set_console_size(pty->master.get(), 24, 80));
    auto size = get_console_size(pty->slave.get());
    ASSERT_TRUE(size) << size.error().message();
    EXPECT_EQ(size->height, 24u);
    EXPECT_EQ(size->width, 80u);
    EXPECT_FALSE(set_console_size(pty->master.get(), 70000, 80));
    UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    auto notty = get_console_size(devnull.get());
    ASSERT_FALSE(notty);
    EXPECT_EQ(notty.error().code(), ENOTTY);
}

TEST(FdPassing, ReceivedFdIsTheSamePty) {
    auto pty = open_pty();
    ASSERT_TRUE(pty) << pty.error().message();
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);

    ASSERT_TRUE(send_fd(a.get(), pty->master.get(), "/dev/ptmx"));
    std::string name;
    auto got = recv_fd(b.get(), &name);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(name, "/dev/ptmx");
    EXPECT_TRUE(has_cloexec(got->get()));
    EXPECT_NE(got->get(), pty->master.get());
    pty->master.reset();  // only the received copy is left

    ASSERT_EQ(::write(got->get(), "ping\n", 5), 5);
    char buf[16] = {};
    ASSERT_EQ(::read(pty->slave.get(), buf, sizeof buf), 5);
    EXPECT_STREQ(buf, "ping\n");
}

TEST(FdPassing, EmptyNameAndMissingFd) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(send_fd(a.get(), devnull.get(), ""));
    std::string name = "stale";
    auto got = recv_fd(b.get(), &name);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(name, "");

    ASSERT_EQ(::write(a.get(), "x", 1), 1);  // a message without SCM_RIGHTS
    auto none = recv_fd(b.get(), nullptr);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("expected one fd, got 0"), std::string::npos) << none.error().message();

    a.reset();
    auto closed = recv_fd(b.get(), nullptr);
    ASSERT_FALSE(closed);
    EXPECT_NE(closed.error().message().find("peer closed"), std::string::npos) << closed.error().message();
}

TEST(ConnectUnix, PathLongerThanSunPath) {
    TempDir tmp;
    ASSERT_FALSE(tmp.path().empty());
    std::string dir = tmp.path() + "/" + std::string(60, 'a') + "/" + std::string(60, 'b');
    ASSERT_TRUE(mkdir_all(dir));
    std::string path = dir + "/console.sock";
    ASSERT_GT(path.size(), sizeof(sockaddr_un{}.sun_path));

    // The listener binds through the same /proc/self/fd indirection (bind has the same length limit).
    UniqueFd dirfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dirfd);
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string via = "/proc/self/fd/" + std::to_string(dirfd.get()) + "/console.sock";
    std::memcpy(addr.sun_path, via.c_str(), via.size() + 1);
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    ASSERT_TRUE(path_exists(path));

    auto client = connect_unix(path);
    ASSERT_TRUE(client) << client.error().message();
    EXPECT_TRUE(has_cloexec(client->get()));
    UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(server);
    ASSERT_EQ(::write(client->get(), "k", 1), 1);
    char c = 0;
    ASSERT_EQ(::read(server.get(), &c, 1), 1);
    EXPECT_EQ(c, 'k');

    auto too_long = connect_unix(dir + "/" + std::string(120, 'x'));
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().code(), ENAMETOOLONG);

    auto missing = connect_unix(tmp.path() + "/nope.sock");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_NE(missing.error().message().find("nope.sock"), std::string::npos);
}

TEST(ProxyTerminal, RelaysOutputWithConsoleSize) {
    auto pty = open_pty();
    ASSERT_TRUE(pty) << pty.error().message();
    ASSERT_TRUE(set_console_size(pty->master.get(), 24, 80));
    Child child(spawn_on_terminal(pty->slave.get(), "stty size; echo hi"));
    ASSERT_GT(child.pid(), 0);
    Watchdog watchdog(child.pid(), 10);
    pty->slave.reset();

    Pipe in = make_pipe(), out = make_pipe();
    ASSERT_TRUE(in.read && out.read);
    in.write.reset();  // EOF on input: the proxy passes ^D once and keeps relaying output
    auto n = proxy_terminal(pty->master.get(), child.pid(), {in.read.get(), out.write.get(), true});
    ASSERT_TRUE(n) << n.error().message();
    out.write.reset();
    std::string output = read_until_eof(out.read.get());
    EXPECT_EQ(*n, output.size());
    EXPECT_NE(output.find("24 80"), std::string::npos) << output;
    EXPECT_NE(output.find("hi"), std::string::npos) << output;
    int status = child.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ProxyTerminal, StdinEofReachesTheContainerAsVeof) {
    auto pty = open_pty();
    ASSERT_TRUE(pty) << pty.error().message();
    // cat reads the terminal; it only ends when our input's EOF arrives as ^D.
    Child child(spawn_on_terminal(pty->slave.get(), "cat; echo cat-done"));
    ASSERT_GT(child.pid(), 0);
    Watchdog watchdog(child.pid(), 10);
    pty->slave.reset();

    Pipe in = make_pipe(), out = make_pipe();
    ASSERT_EQ(::write(in.write.get(), "line1\n", 6), 6);
    in.write.reset();
    auto n = proxy_terminal(pty->master.get(), child.pid(), {in.read.get(), out.write.get(), true});
    ASSERT_TRUE(n) << n.error().message();
    out.write.reset();
    std::string output = read_until_eof(out.read.get());
    // "line1" twice: the terminal's echo and cat's copy.
    auto first = output.find("line1");
    ASSERT_NE(first, std::string::npos) << output;
    EXPECT_NE(output.find("line1", first + 1), std::string::npos) << output;
    EXPECT_NE(output.find("cat-done"), std::string::npos) << output;
    EXPECT_TRUE(WIFEXITED(child.wait()));
}

// The user's side is itself a terminal: raw mode while proxying, settings restored after, and a SIGWINCH makes
// the container see the new size before input typed after the resize.
TEST(ProxyTerminal, TtyInputRawModeAndWindowSize) {
    auto user = open_pty();
    auto ctr = open_pty();
    ASSERT_TRUE(user && ctr);
    ASSERT_TRUE(set_console_size(user->slave.get(), 30, 100));
    ASSERT_TRUE(set_console_size(ctr->master.get(), 24, 80));
    struct termios before {};
    ASSERT_EQ(::tcgetattr(user->slave.get(), &before), 0);
    ASSERT_TRUE(before.c_lflag & ICANON);

    Child child(spawn_on_terminal(ctr->slave.get(), "read x; stty size; read y; stty size; echo done"));
    ASSERT_GT(child.pid(), 0);
    ctr->slave.reset();
    Pipe out = make_pipe();

    pthread_t proxy_thread = ::pthread_self();
    std::atomic<bool> raw_seen{false};
    std::string seen;
    std::thread helper([&] {
        bool resized = false;
        struct pollfd p {
            out.read.get(), POLLIN, 0
        };
        (void)!::write(user->master.get(), "a\n", 2);
        for (;;) {
            if (::poll(&p, 1, 10000) <= 0) {
                ::kill(child.pid(), SIGKILL);  // stuck: end the proxy so the test fails instead of hanging
                p.fd = -1;
                continue;
            }
            char buf[512];
            ssize_t n = ::read(out.read.get(), buf, sizeof buf);
            if (n <= 0) return;
            seen.append(buf, static_cast<size_t>(n));
            if (!resized && seen.find("30 100") != std::string::npos) {
                resized = true;
                struct termios t {};
                ::tcgetattr(user->slave.get(), &t);
                raw_seen = !(t.c_lflag & (ICANON | ECHO | ISIG));
                (void)set_console_size(user->master.get(), 40, 120);
                ::pthread_kill(proxy_thread, SIGWINCH);
                (void)!::write(user->master.get(), "b\n", 2);
            }
        }
    });
    auto n = proxy_terminal(ctr->master.get(), child.pid(), {user->slave.get(), out.write.get(), true});
    out.write.reset();
    helper.join();
    ASSERT_TRUE(n) << n.error().message();

    EXPECT_TRUE(raw_seen);
    struct termios after {};
    ASSERT_EQ(::tcgetattr(user->slave.get(), &after), 0);
    EXPECT_EQ(after.c_lflag, before.c_lflag);
    EXPECT_EQ(after.c_iflag, before.c_iflag);
    EXPECT_EQ(after.c_oflag, before.c_oflag);
    auto first = seen.find("30 100");
    auto second = seen.find("40 120");
    ASSERT_NE(first, std::string::npos) << seen;
    ASSERT_NE(second, std::string::npos) << seen;
    EXPECT_LT(first, second);
    EXPECT_NE(seen.find("done"), std::string::npos) << seen;
    int status = child.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ProxyTerminal, ForwardsTermToTheChild) {
    auto pty = open_pty();
    ASSERT_TRUE(pty) << pty.error().message();
    Child child(spawn_on_terminal(pty->slave.get(),
                                  "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"));
    ASSERT_GT(child.pid(), 0);
    pty->slave.reset();
    Pipe in = make_pipe(), out = make_pipe();  // `in` stays open: no EOF

    pthread_t proxy_thread = ::pthread_self();
    std::string seen;
    std::thread helper([&] {
        bool sent = false;
        struct pollfd p {
            out.read.get(), POLLIN, 0
        };
        for (;;) {
            if (::poll(&p, 1, 10000) <= 0) {
                ::kill(child.pid(), SIGKILL);
                p.fd = -1;
                continue;
            }
            char buf[512];
            ssize_t n = ::read(out.read.get(), buf, sizeof buf);
            if (n <= 0) return;
            seen.append(buf, static_cast<size_t>(n));
            if (!sent && seen.find("ready") != std::string::npos) {
                sent = true;
                ::pthread_kill(proxy_thread, SIGTERM);  // blocked and read by the proxy, never delivered to us
            }
        }
    });
    auto n = proxy_terminal(pty->master.get(), child.pid(), {in.read.get(), out.write.get(), true});
    out.write.reset();
    helper.join();
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_NE(seen.find("got-term"), std::string::npos) << seen;
    int status = child.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << status;
}

// A slave fd held by someone other than the child (here: us) must not keep the proxy alive after the child exits.
TEST(ProxyTerminal, ReturnsAfterChildExitWhenSlaveLeaks) {
    auto pty = open_pty();
    ASSERT_TRUE(pty) << pty.error().message();
    Child child(spawn_on_terminal(pty->slave.get(), "echo bye"));
    ASSERT_GT(child.pid(), 0);
    UniqueFd leaked = std::move(pty->slave);
    Pipe in = make_pipe(), out = make_pipe();

    std::atomic<bool> done{false};
    std::thread watchdog([&] {
        for (int i = 0; i < 100 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (!done) ::close(leaked.release());  // unblock a hanging proxy; the timing assertion below fails
    });
    auto start = std::chrono::steady_clock::now();
    auto n = proxy_terminal(pty->master.get(), child.pid(), {in.read.get(), out.write.get(), true});
    auto elapsed = std::chrono::steady_clock::now() - start;
    done = true;
    watchdog.join();
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_LT(elapsed, std::chrono::seconds(5));
    out.write.reset();
    EXPECT_NE(read_until_eof(out.read.get()).find("bye"), std::string::npos);
    EXPECT_TRUE(WIFEXITED(child.wait()));
}

}  // namespace
}  // namespace berth::sys
