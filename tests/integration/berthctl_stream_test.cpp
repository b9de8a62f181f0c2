// berthctl exec -i/-t, attach and port-forward through a real berthd, over SPDY and WebSocket: exit codes, stdin
// EOF, stderr apart, a tty with its size (berthctl run under a pty of ours), attach to a printing and to a reading
// container, port-forward to a busybox httpd with parallel requests and a checksummed transfer.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>

#include <chrono>
#include <csignal>
#include <regex>
#include <thread>

#include "cri_fixture.hpp"
#include "harness.hpp"
#include "stream_clients.hpp"

namespace berth::test {
namespace {

using namespace std::chrono_literals;

constexpr uint16_t kHttpdPort = 15310;  // inside the pod's network namespace (spdy helper's range)
const std::vector<std::string> kTransports = {"spdy", "websocket"};

// A child process whose stdout (and stderr) we read, with a deadline; killed (by pid) when the test is done.
class Spawned {
public:
    // `pty`: stdin/stdout/stderr are the slave of a new pty of `rows`x`cols`, which is its controlling terminal.
    Spawned(const std::vector<std::string>& argv, bool pty = false, unsigned short rows = 0, unsigned short cols = 0) {
        int out_r = -1, child_fd = -1;
        if (pty) {
            out_r = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
            EXPECT_GE(out_r, 0);
            EXPECT_EQ(::grantpt(out_r), 0);
            EXPECT_EQ(::unlockpt(out_r), 0);
            slave_ = ::ptsname(out_r);
            winsize ws{};
            ws.ws_row = rows;
            ws.ws_col = cols;
            ::ioctl(out_r, TIOCSWINSZ, &ws);
        } else {
            int p[2];
            EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
            out_r = p[0];
            child_fd = p[1];
        }
        out_.reset(out_r);
        pid_ = ::fork();
        if (pid_ == 0) {
            if (pty) {
                ::setsid();
                int s = ::open(slave_.c_str(), O_RDWR);
                ::ioctl(s, TIOCSCTTY, 0);
                ::dup2(s, 0);
                ::dup2(s, 1);
                ::dup2(s, 2);
            } else {
                int devnull = ::open("/dev/null", O_RDONLY);
                ::dup2(devnull, 0);
                ::dup2(child_fd, 1);
                ::dup2(child_fd, 2);
            }
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        if (child_fd >= 0) ::close(child_fd);
    }
    ~Spawned() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    int master() const { return out_.get(); }
    // Reads output until `pred(output)` or the deadline; the output so far.
    std::string read_until(const std::function<bool(const std::string&)>& pred, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!pred(output) && std::chrono::steady_clock::now() < deadline) {
            pollfd p{out_.get(), POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[4096];
            ssize_t n = ::read(out_.get(), buf, sizeof(buf));
            if (n <= 0) break;  // EOF (pipe) or EIO (pty whose slave is closed)
            output.append(buf, size_t(n));
        }
        return output;
    }
    // Waits for the exit (bounded); the exit code, or -1.
    int wait(std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                reaped_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            read_until([](const std::string&) { return false; }, 50ms);
        }
        return -1;
    }
    void signal(int sig) { ::kill(pid_, sig); }
    std::string output;

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    UniqueFd out_;
    std::string slave_;
};

class BerthctlStreamTest : public CriTest {
protected:
    void SetUp() override {
        CriTest::SetUp();
        if (HasFatalFailure()) return;
        start_daemon();
    }
    std::vector<std::string> ctl(std::vector<std::string> args) {
        args.insert(args.begin(), {BERTHCTL_BIN, "--socket", socket_});
        return args;
    }
    std::string running(const std::string& name, const std::string& script, bool stdin = false, bool tty = false) {
        auto pc = pod_config(name);
        pod_ = run_pod(pc);
        auto c = container_config(name, script);
        c.set_stdin(stdin);
        c.set_stdin_once(stdin);
        c.set_tty(tty);
        return create_and_start(pod_, c, pc);
    }
    std::string pod_;
};

TEST_F(BerthctlStreamTest, ExecExitCodeStdinEofAndStderr) {
    std::string id = running("spdy-exec", "sleep 1000");
    for (const auto& t : kTransports) {
        SCOPED_TRACE(t);
        // stdin EOF reaches the process (tr ends), stderr stays apart, the exit code is berthctl's.
        auto r = run_command(ctl({"exec", "-i", "--transport", t, id, "--", "sh", "-c",
                                  "tr a-z A-Z; echo to-stderr >&2; exit 7"}),
                             "hello stream\n");
        EXPECT_EQ(r.exit_code, 7) << r.err;
        EXPECT_EQ(r.out, "HELLO STREAM\n");
        EXPECT_EQ(r.err, "to-stderr\n");

        // Without -i: no stdin stream; success is 0.
        auto ok = run_command(ctl({"exec", "--transport", t, id, "--", "echo", "hi"}));
        EXPECT_EQ(ok.exit_code, 0) << ok.err;
        EXPECT_EQ(ok.out, "hi\n");

        // Binary data through stdin and back, intact (under a pipe buffer: run_command writes all input first).
        std::string bin;
        for (uint32_t i = 0; i < 48u * 1024; ++i) bin.push_back(char((i * 7919u) >> 3));
        auto cat = run_command(ctl({"exec", "-i", "--transport", t, id, "--", "cat"}), bin);
        EXPECT_EQ(cat.exit_code, 0) << cat.err;
        EXPECT_TRUE(cat.out == bin) << "got " << cat.out.size() << " bytes";

        // A command that cannot start: an error, not a hang.
        auto missing = run_command(ctl({"exec", "--transport", t, id, "--", "/no/such/binary"}));
        EXPECT_NE(missing.exit_code, 0);
    }
    // Without -i/-t or --transport, exec is still ExecSync.
    auto sync = run_command(ctl({"exec", id, "--", "sh", "-c", "echo sync; exit 3"}));
    EXPECT_EQ(sync.exit_code, 3);
    EXPECT_EQ(sync.out, "sync\n");
}

TEST_F(BerthctlStreamTest, ExecTtySeesTheTerminalSize) {
    std::string id = running("spdy-tty", "sleep 1000");
    for (const auto& t : kTransports) {
        SCOPED_TRACE(t);
        // berthctl on a 33x101 pty of ours: raw mode, the initial size sent on the resize stream/channel.
        Spawned p(ctl({"exec", "-it", "--transport", t, id, "--", "sh", "-c", "sleep 0.3; stty size; exit 5"}), true,
                  33, 101);
        int code = p.wait(20s);
        EXPECT_EQ(code, 5) << p.output;
        EXPECT_NE(p.output.find("33 101"), std::string::npos) << p.output;
    }
}

TEST_F(BerthctlStreamTest, AttachToAPrinterAndToAReader) {
    for (const auto& t : kTransports) {
        SCOPED_TRACE(t);
        std::string printer = running("spdy-attach-" + t, "while true; do echo tick; sleep 0.2; done");
        Spawned p(ctl({"attach", "--transport", t, printer}));
        auto out = p.read_until([](const std::string& o) { return o.find("tick\ntick\n") != std::string::npos; }, 15s);
        EXPECT_NE(out.find("tick\ntick\n"), std::string::npos) << out;
        // Detaching leaves the container running.
        p.signal(SIGTERM);
        p.wait(5s);
        EXPECT_EQ(container_status(printer).state(), v1::CONTAINER_RUNNING);

        std::string reader = running("spdy-reader-" + t, "read line; echo got:$line", true);
        auto r = run_command(ctl({"attach", "-i", "--transport", t, reader}), "hello\n");
        EXPECT_NE(r.out.find("got:hello"), std::string::npos) << r.out << r.err;
    }
}

// One HTTP/1.0 GET through 127.0.0.1:port; the body, or "<...>" describing what went wrong.
std::string http_get(uint16_t port, const std::string& path) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return "<connect>";
    std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (::write(fd.get(), req.data(), req.size()) != ssize_t(req.size())) return "<write>";
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0) got.append(buf, size_t(n));
    size_t body = got.find("\r\n\r\n");
    return body == std::string::npos ? "<no body: " + got.substr(0, 200) + ">" : got.substr(body + 4);
}

TEST_F(BerthctlStreamTest, PortForwardToHttpd) {
    std::string script = fmt::format(
        "mkdir -p /www && head -c 20971520 /dev/urandom > /www/big && sha256sum /www/big | cut -c1-64 > "
        "/www/big.sha && echo ready > /www/ready && exec httpd -f -p {} -h /www",
        kHttpdPort);
    running("spdy-httpd", script);
    for (const auto& t : kTransports) {
        SCOPED_TRACE(t);
        Spawned p(ctl({"port-forward", "--transport", t, pod_, fmt::format("0:{}", kHttpdPort)}));
        std::regex re("Forwarding from 127\\.0\\.0\\.1:([0-9]+) -> " + std::to_string(kHttpdPort));
        std::smatch m;
        auto out = p.read_until([&](const std::string& o) { return std::regex_search(o, m, re); }, 15s);
        ASSERT_TRUE(std::regex_search(out, m, re)) << out;
        uint16_t local = uint16_t(std::stoi(m[1]));
        std::string ready;
        for (int i = 0; i < 150 && ready != "ready\n"; ++i) {
            ready = http_get(local, "/ready");
            if (ready != "ready\n") std::this_thread::sleep_for(200ms);
        }
        ASSERT_EQ(ready, "ready\n") << p.read_until([](auto&) { return false; }, 100ms);
        std::string want = trim(http_get(local, "/big.sha"));
        ASSERT_EQ(want.size(), 64u) << want;

        std::vector<std::thread> threads;
        std::atomic<int> good = 0;
        for (int i = 0; i < 12; ++i)
            threads.emplace_back([&] {
                if (trim(http_get(local, "/big.sha")) == want) ++good;
            });
        for (auto& th : threads) th.join();
        EXPECT_EQ(good, 12);

        std::string big = http_get(local, "/big");
        EXPECT_EQ(big.size(), 20971520u);
        EXPECT_EQ(sha256_hex(big), want);

        p.signal(SIGTERM);
        EXPECT_EQ(p.wait(10s), 0) << p.output;
    }
}

TEST_F(BerthctlStreamTest, PortForwardToAClosedPortReportsIt) {
    running("spdy-noport", "sleep 1000");
    for (const auto& t : kTransports) {
        SCOPED_TRACE(t);
        Spawned p(ctl({"port-forward", "--transport", t, pod_, "0:15311"}));
        std::regex re("Forwarding from 127\\.0\\.0\\.1:([0-9]+)");
        std::smatch m;
        auto out = p.read_until([&](const std::string& o) { return std::regex_search(o, m, re); }, 15s);
        ASSERT_TRUE(std::regex_search(out, m, re)) << out;
        EXPECT_EQ(http_get(uint16_t(std::stoi(m[1])), "/"), "<no body: >");
        out = p.read_until([](const std::string& o) { return o.find("berthctl: port-forward") != std::string::npos; }, 5s);
        EXPECT_NE(out.find("berthctl: port-forward to port 15311"), std::string::npos) << out;
        p.signal(SIGTERM);
        p.wait(10s);
    }
}

TEST_F(BerthctlStreamTest, BadTransportAndMissingContainer) {
    auto bad = run_command(ctl({"exec", "-i", "--transport", "carrier-pigeon", "x", "--", "true"}));
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("expected spdy or websocket"), std::string::npos) << bad.err;
    auto missing = run_command(ctl({"attach", "--transport", "spdy", "spdy-no-such-container"}));
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("spdy-no-such-container"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace berth::test
