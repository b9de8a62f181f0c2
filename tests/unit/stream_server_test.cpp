// berthd's streaming server against an independent WebSocket client (tests/tools/ws_stream_client.py on Debian's
// python3-websockets), with real host processes behind it (stream_host_session.hpp) and a real TCP peer for
// port-forward. Also the codecs under it: WebSocket frames, base64, tokens, resize JSON, the error stream Status.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "../integration/stream_clients.hpp"
#include "common/fs.hpp"
#include "stream/client.hpp"
#include "stream/protocol.hpp"
#include "stream/remote_command.hpp"
#include "stream/server.hpp"
#include "stream/spdy.hpp"
#include "stream/tokens.hpp"
#include "stream/websocket.hpp"
#include "stream_host_session.hpp"
#include "test_fds.hpp"

namespace berth::stream {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
// The clients the integration tests use against berthd serve here against the bare server.
using test::sha256_hex;
using test::spdy_connect;
using test::SpdyClient;
inline json run_client(const std::vector<std::string>& args) {
    return test::run_ws_client(args);
}
inline std::string read_all(spdy::Stream& st) {
    return test::spdy_read_all(st);
}

// ---- codecs ----

TEST(StreamWebSocket, FrameHeaderLengthsAndMask) {
    std::array<uint8_t, 4> mask{1, 2, 3, 4};
    for (uint64_t len : {0ull, 125ull, 126ull, 65535ull, 65536ull, 1ull << 33}) {
        std::string h = encode_ws_frame_header(WsOpcode::binary, true, len, &mask);
        auto parsed = parse_ws_frame_header(h);
        ASSERT_TRUE(parsed && *parsed) << len;
        EXPECT_EQ((*parsed)->length, len);
        EXPECT_TRUE((*parsed)->masked);
        EXPECT_EQ((*parsed)->mask, mask);
        EXPECT_EQ((*parsed)->header_size, h.size());
        // Every shorter prefix is "need more".
        for (size_t i = 0; i < h.size(); ++i) {
            auto p = parse_ws_frame_header(std::string_view(h).substr(0, i));
            ASSERT_TRUE(p);
            EXPECT_FALSE(*p);
        }
    }
    std::string bad("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10);
    EXPECT_FALSE(parse_ws_frame_header(bad));
}

TEST(StreamWebSocket, AcceptKeyOfTheRfcExample) {
    // RFC 6455 section 1.3.
    EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(StreamWebSocket, Base64RoundTripAndStrictness) {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    for (size_t n = 0; n < 10; ++n) {
        auto d = base64_decode(base64_encode(all.substr(0, n)));
        ASSERT_TRUE(d);
        EXPECT_EQ(*d, all.substr(0, n));
    }
    EXPECT_EQ(*base64_decode(base64_encode(all)), all);
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    EXPECT_FALSE(base64_decode("Zm9"));
    EXPECT_FALSE(base64_decode("Zm=v"));
    EXPECT_FALSE(base64_decode("Zm9v!A=="));
}

TEST(StreamWebSocket, Utf8Validation) {
    EXPECT_TRUE(valid_utf8("plain"));
    EXPECT_TRUE(valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8("\xc3"));
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(StreamTokens, SingleUseUnguessableAndExpiring) {
    TokenStore store(std::chrono::seconds(60));
    auto t1 = store.add(PortForwardTarget{"pod", {80}});
    auto t2 = store.add(PortForwardTarget{"pod", {81}});
    ASSERT_TRUE(t1 && t2);
    EXPECT_EQ(t1->size(), 43u);  // 32 bytes in base64url without padding
    EXPECT_EQ(t1->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    EXPECT_NE(*t1, *t2);
    auto r = store.take(*t1);
    ASSERT_TRUE(r);
    EXPECT_EQ(std::get<PortForwardTarget>(*r).ports, std::vector<uint16_t>{80});
    EXPECT_FALSE(store.take(*t1));  // used
    EXPECT_FALSE(store.take("nope"));

    auto now = TokenStore::Clock::now();
    store.set_now_for_test(now + std::chrono::seconds(61));
    EXPECT_FALSE(store.take(*t2));  // expired
    auto t3 = store.add(PortForwardTarget{"pod", {}});
    store.set_now_for_test(now + std::chrono::seconds(200));
    ASSERT_TRUE(store.add(PortForwardTarget{"pod", {}}));  // sweeps t3
    EXPECT_EQ(store.size(), 1u);
}

TEST(StreamRemoteCommand, ResizeDecoderSplitsAndJoinsObjects) {
    ResizeDecoder d;
    auto a = d.feed("{\"Width\":80,\"He");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->empty());
    auto b = d.feed("ight\":24}\n{\"Width\":100,\"Height\":30}");
    ASSERT_TRUE(b);
    ASSERT_EQ(b->size(), 2u);
    EXPECT_EQ((*b)[0].width, 80);
    EXPECT_EQ((*b)[0].height, 24);
    EXPECT_EQ((*b)[1].width, 100);
    EXPECT_EQ((*b)[1].height, 30);
    ResizeDecoder bad;
    EXPECT_FALSE(bad.feed("x"));
    ResizeDecoder big;
    EXPECT_FALSE(big.feed("{\"Width\":70000,\"Height\":1}"));
}

TEST(StreamRemoteCommand, ErrorStreamStatus) {
    EXPECT_EQ(json::parse(command_status(CommandVersion::v4, 0, "command [true]")),
              json::parse(R"({"metadata":{},"status":"Success"})"));
    json nonzero = json::parse(command_status(CommandVersion::v5, 3, "command [sh -c exit 3]"));
    EXPECT_EQ(nonzero["status"], "Failure");
    EXPECT_EQ(nonzero["reason"], "NonZeroExitCode");
    EXPECT_EQ(nonzero["details"]["causes"][0]["reason"], "ExitCode");
    EXPECT_EQ(nonzero["details"]["causes"][0]["message"], "3");
    json failed = json::parse(
        command_status(CommandVersion::v4, std::unexpected(Error(ENOENT, "no such file")), "command [nope]"));
    EXPECT_EQ(failed["status"], "Failure");
    EXPECT_EQ(failed["reason"], "InternalError");
    EXPECT_EQ(failed["code"], 500);
    EXPECT_NE(failed["message"].get<std::string>().find("no such file"), std::string::npos);
    EXPECT_EQ(command_status(CommandVersion::v2, 0, "command [true]"), "");
    EXPECT_NE(command_status(CommandVersion::v1, 2, "command [false]").find("exit code 2"), std::string::npos);
}

// ---- the server against python3-websockets ----

std::string random_bytes(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

// A directory for one test's files, removed afterwards.
struct TestDir {
    std::string path;
    TestDir() {
        char tmpl[] = "/tmp/streamsrv-unit-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TestDir() { (void)remove_all(path); }
};

// A TCP server on 127.0.0.1: each connection reads a request up to "\r\n\r\n" (or EOF), then sends `payload` and
// closes; "ECHO\n" as the first line switches to echoing until EOF.
class PayloadServer {
public:
    explicit PayloadServer(std::string payload) : payload_(std::move(payload)) {
        fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(fd_.get(), 64);
        socklen_t len = sizeof a;
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] {
            for (;;) {
                int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) return;
                std::thread([this, c] { serve(c); }).detach();
            }
        });
    }
    ~PayloadServer() {
        ::shutdown(fd_.get(), SHUT_RDWR);
        thread_.join();
    }
    uint16_t port() const { return port_; }

private:
    void serve(int c) {
        std::string req;
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(c, buf, sizeof buf);
            if (n <= 0) break;
            req.append(buf, n);
            if (req.starts_with("ECHO\n")) {
                (void)!::write(c, req.data() + 5, req.size() - 5);
                for (;;) {
                    n = ::read(c, buf, sizeof buf);
                    if (n <= 0) break;
                    (void)!::write(c, buf, n);
                }
                ::close(c);
                return;
            }
            if (req.find("\r\n\r\n") != std::string::npos) break;
        }
        (void)write_all(c, payload_);
        ::close(c);
    }
    UniqueFd fd_;
    uint16_t port_ = 0;
    std::string payload_;
    std::thread thread_;
};

class StreamServerTest : public ::testing::Test {
protected:
    void SetUp() override { start({}); }

    void start(ServerOptions o) {
        server_.reset();
        o.address = "127.0.0.1:0";
        StreamBackend b;
        b.exec = [this](const cri::ExecOptions& o) -> Result<std::unique_ptr<cri::ExecSession>> {
            BERTH_ASSIGN(auto p, testing::HostProcess::start(o.cmd, o.tty));
            {
                std::lock_guard lock(mu_);
                pids_.push_back(p->pid());
            }
            return std::unique_ptr<cri::ExecSession>(new testing::HostExecSession(std::move(p)));
        };
        b.attach = [this](const cri::AttachOptions&) -> Result<std::unique_ptr<cri::AttachSession>> {
            if (!attached_) return fail_errno(ENOENT, "no process to attach to");
            return std::unique_ptr<cri::AttachSession>(new testing::HostAttachSession(*attached_, &detached_));
        };
        b.dial = [](const std::string& pod, uint16_t port) -> Result<UniqueFd> {
            if (pod != "pod-1") return fail_errno(ENOENT, "pod {} not found", pod);
            UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
                return fail_sys("connect 127.0.0.1:{}", port);
            return fd;
        };
        auto s = StreamServer::start(o, std::move(b));
        ASSERT_TRUE(s) << s.error().message();
        server_ = std::move(*s);
    }

    std::string exec_url(std::vector<std::string> cmd, bool in, bool tty, bool err = true) {
        auto u = server_->exec_url(cri::ExecOptions{.container_id = "c1",
                                                    .cmd = std::move(cmd),
                                                    .tty = tty,
                                                    .stdin = in,
                                                    .stdout = true,
                                                    .stderr = tty ? false : err});
        EXPECT_TRUE(u);
        return u ? *u : "";
    }
    static std::string ws(const std::string& url) { return "ws" + url.substr(4); }

    // Waits until no exec session is live and every started process is gone (reaped, not even a zombie).
    bool no_process_left(std::chrono::milliseconds limit = 10s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            bool any = server_->counts().exec_sessions != 0;
            std::lock_guard lock(mu_);
            for (pid_t p : pids_)
                if (::access(fmt::format("/proc/{}", p).c_str(), F_OK) == 0) any = true;
            if (!any) return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    std::unique_ptr<StreamServer> server_;
    std::mutex mu_;
    std::vector<pid_t> pids_;
    std::unique_ptr<testing::HostProcess> attached_;
    std::atomic<int> detached_ = 0;
};

TEST_F(StreamServerTest, ExecV4ExitCodeStdoutStderr) {
    json r = run_client({ws(exec_url({"sh", "-c", "echo out; echo err >&2; exit 3"}, false, false)), "--protocol",
                         "v4.channel.k8s.io"});
    EXPECT_EQ(r["protocol"], "v4.channel.k8s.io") << r.dump();
    EXPECT_EQ(r["stdout_bytes"], 4) << r.dump();
    EXPECT_EQ(r["stderr"], "err\n");
    EXPECT_EQ(r["initial"], json::array({1}));  // the empty "ready" message on stdout
    json status = json::parse(r["error"].get<std::string>(), nullptr, false);
    EXPECT_EQ(status["reason"], "NonZeroExitCode") << r.dump();
    EXPECT_EQ(status["details"]["causes"][0]["reason"], "ExitCode");
    EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
    EXPECT_EQ(r["close_code"], 1000);
    EXPECT_TRUE(no_process_left());
}

TEST_F(StreamServerTest, ExecV5StdinEofAndBinaryDataIntact) {
    TestDir dir;
    std::string data = random_bytes(3 << 20, 7);
    ASSERT_TRUE(write_file(dir.path + "/in", data));
    json r = run_client({ws(exec_url({"cat"}, true, false)), "--protocol", "v5.channel.k8s.io", "--stdin-file",
                         dir.path + "/in", "--close-stdin"});
    EXPECT_EQ(r["protocol"], "v5.channel.k8s.io") << r.dump();
    EXPECT_EQ(r["stdout_bytes"], data.size());
    EXPECT_EQ(r["stdout_sha256"], sha256_hex(data));
    EXPECT_EQ(json::parse(r["error"].get<std::string>(), nullptr, false)["status"], "Success") << r.dump();
    EXPECT_TRUE(no_process_left());
}

TEST_F(StreamServerTest, ExecBase64Protocol) {
    json r = run_client({ws(exec_url({"sh", "-c", "printf '\\001\\377\\000x'; exit 0"}, false, false)), "--protocol",
                         "v4.base64.channel.k8s.io"});
    EXPECT_EQ(r["protocol"], "v4.base64.channel.k8s.io") << r.dump();
    EXPECT_EQ(r["stdout_bytes"], 4);
    EXPECT_EQ(r["stdout_sha256"], sha256_hex(std::string("\x01\xff\x00x", 4)));
    EXPECT_EQ(json::parse(r["error"].get<std::string>(), nullptr, false)["status"], "Success");
}

TEST_F(StreamServerTest, ExecPreV4ErrorIsText) {
    json r = run_client({ws(exec_url({"sh", "-c", "exit 2"}, false, false)), "--protocol", "channel.k8s.io"});
    EXPECT_EQ(r["protocol"], "channel.k8s.io") << r.dump();
    EXPECT_NE(r["error"].get<std::string>().find("non-zero exit code"), std::string::npos) << r.dump();
    EXPECT_NE(r["error"].get<std::string>().find("exit code 2"), std::string::npos);
}

TEST_F(StreamServerTest, ExecTtyResizeSeenByStty) {
    TestDir dir;
    json r = run_client({ws(exec_url({"sh", "-c", "sleep 0.5; stty size"}, true, true)), "--protocol",
                         "v4.channel.k8s.io", "--resize", "100x30", "--out-dir", dir.path});
    EXPECT_EQ(json::parse(r["error"].get<std::string>(), nullptr, false)["status"], "Success") << r.dump();
    auto out = read_file(dir.path + "/stdout");
    ASSERT_TRUE(out);
    EXPECT_EQ(*out, "30 100\r\n");
}

TEST_F(StreamServerTest, ExecStartFailureGoesToTheErrorStream) {
    json r =
        run_client({ws(exec_url({"/nonexistent/streamsrv-binary"}, false, false)), "--protocol", "v4.channel.k8s.io"});
    json status = json::parse(r["error"].get<std::string>(), nullptr, false);
    // execvp fails in the child: exit 127, a non-zero exit like any other.
    EXPECT_EQ(status["details"]["causes"][0]["message"], "127") << r.dump();
}

TEST_F(StreamServerTest, UnsupportedProtocolIsRefusedNamingBoth) {
    json r = run_client({ws(exec_url({"true"}, false, false)), "--protocol", "v9.channel.k8s.io"});
    EXPECT_EQ(r["http_status"], 403) << r.dump();
}

TEST_F(StreamServerTest, TokensAreSingleUseAndExpire) {
    std::string url = exec_url({"true"}, false, false);
    json first = run_client({ws(url), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(first["protocol"], "v4.channel.k8s.io") << first.dump();
    json again = run_client({ws(url), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(again["http_status"], 404) << again.dump();
    json unknown = run_client({ws(server_->base_url() + "/exec/AAAA"), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(unknown["http_status"], 404);

    ServerOptions o;
    o.token_lifetime = 200ms;
    start(o);
    std::string expiring = exec_url({"true"}, false, false);
    std::this_thread::sleep_for(400ms);
    json expired = run_client({ws(expiring), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(expired["http_status"], 404) << expired.dump();
}

TEST_F(StreamServerTest, ClientVanishingKillsTheProcess) {
    json r = run_client({ws(exec_url({"sh", "-c", "while :; do echo streamsrv-vanish; done"}, true, false)),
                         "--protocol", "v4.channel.k8s.io", "--vanish-after", "100000"});
    EXPECT_EQ(r["vanished"], true) << r.dump();
    EXPECT_TRUE(no_process_left());
    // A silent process (no output to fail on): the input side notices the client is gone.
    r = run_client({ws(exec_url({"sleep", "1000"}, true, false)), "--protocol", "v4.channel.k8s.io", "--vanish-after",
                    "0", "--stdin-text", "x"});
    EXPECT_TRUE(no_process_left());
    EXPECT_EQ(server_->counts().connections, 0u);
}

TEST_F(StreamServerTest, AttachAndDetachLeavesTheProcess) {
    auto p = testing::HostProcess::start({"sh", "-c", "while :; do echo tick; sleep 0.05; done"}, false);
    ASSERT_TRUE(p);
    attached_ = std::move(*p);
    auto url = server_->attach_url(cri::AttachOptions{.container_id = "c1", .stdout = true, .stderr = true});
    ASSERT_TRUE(url);
    json r = run_client({ws(*url), "--protocol", "v4.channel.k8s.io", "--vanish-after", "20"});
    EXPECT_EQ(r["vanished"], true) << r.dump();
    for (int i = 0; i < 100 && detached_ == 0; ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(detached_, 1);
    EXPECT_EQ(server_->counts().attach_sessions, 0u);
    EXPECT_EQ(::access(fmt::format("/proc/{}", attached_->pid()).c_str(), F_OK), 0);  // still running
}

TEST_F(StreamServerTest, PortForwardOverWebSocket) {
    std::string payload = random_bytes(5 << 20, 11);
    PayloadServer peer(payload);
    auto url = server_->port_forward_url("pod-1", {peer.port()});
    ASSERT_TRUE(url);
    json r = run_client({ws(*url), "--mode", "portforward", "--protocol", "v4.channel.k8s.io", "--stdin-text",
                         "GET / HTTP/1.0\r\n\r\n"});
    EXPECT_EQ(r["ports"], json::array({peer.port()})) << r.dump();
    EXPECT_EQ(r["data_bytes"], payload.size());
    EXPECT_EQ(r["data_sha256"], sha256_hex(payload));
    EXPECT_EQ(r["errors"], json::array());
    EXPECT_EQ(server_->counts().port_forward_connections, 0u);
}

TEST_F(StreamServerTest, PortForwardDialFailureOnTheErrorChannel) {
    PayloadServer peer("x");
    uint16_t closed_port = peer.port();
    auto url = server_->port_forward_url("pod-2", {closed_port});
    ASSERT_TRUE(url);
    json r = run_client({ws(*url), "--mode", "portforward", "--protocol", "v4.channel.k8s.io"});
    ASSERT_EQ(r["errors"].size(), 1u) << r.dump();
    EXPECT_NE(r["errors"][0].get<std::string>().find("pod pod-2 not found"), std::string::npos);
}

TEST_F(StreamServerTest, PlainHttpIsRefused) {
    std::string url = exec_url({"true"}, false, false);
    std::string cmd = "curl -s -o /dev/null -w '%{http_code}' '" + url + "'";
    FILE* f = ::popen(cmd.c_str(), "r");
    char buf[16] = {};
    ASSERT_TRUE(f);
    (void)!::fread(buf, 1, sizeof buf - 1, f);
    ::pclose(f);
    EXPECT_STREQ(buf, "400");
    // and the token is spent
    json again = run_client({ws(url), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(again["http_status"], 404);
}

TEST_F(StreamServerTest, TlsWhenACertificateIsConfigured) {
    TestDir dir;
    std::string cert = dir.path + "/c.pem", key = dir.path + "/k.pem";
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=streamsrv-test -keyout " + key +
                      " -out " + cert + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ServerOptions o;
    o.tls_cert = cert;
    o.tls_key = key;
    start(o);
    std::string url = exec_url({"sh", "-c", "echo over-tls"}, false, false);
    ASSERT_TRUE(url.starts_with("https://")) << url;
    json r = run_client({"wss" + url.substr(5), "--protocol", "v4.channel.k8s.io", "--cafile", cert});
    EXPECT_EQ(r["stdout_bytes"], 9) << r.dump();
    EXPECT_EQ(json::parse(r["error"].get<std::string>(), nullptr, false)["status"], "Success") << r.dump();

    // A key that does not match the certificate is refused at start, naming both files.
    std::string other = dir.path + "/other.pem";
    ASSERT_EQ(std::system(("openssl genrsa -out " + other + " 2048 >/dev/null 2>&1").c_str()), 0);
    auto bad = StreamServer::start(ServerOptions{.tls_cert = cert, .tls_key = other}, StreamBackend{});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find(other), std::string::npos) << bad.error().message();
}

// Reads exactly `n` bytes from `fd` (less only at EOF).
std::string test_read_exactly(int fd, size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
        ssize_t k = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
        if (k <= 0) break;
        out.append(buf, size_t(k));
    }
    return out;
}

// berthctl's clients (stream/client.hpp) against an https server: the certificate checked against a CA file and
// the URL's IP address, a server the CA does not vouch for refused, and the check skipped when asked.
TEST_F(StreamServerTest, ClientsSpeakTlsAndCheckTheServer) {
    TestDir dir;
    auto make_cert = [&](const std::string& name) {
        std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=streamsrv-" + name +
                          " -addext subjectAltName=IP:127.0.0.1 -keyout " + dir.path + "/" + name + ".key -out " +
                          dir.path + "/" + name + ".pem >/dev/null 2>&1";
        EXPECT_EQ(std::system(cmd.c_str()), 0);
        return dir.path + "/" + name;
    };
    std::string server = make_cert("server"), stranger = make_cert("stranger");
    ServerOptions o;
    o.tls_cert = server + ".pem";
    o.tls_key = server + ".key";
    start(o);
    auto exec_over = [&](const TlsClientOptions& tls,
                         Transport transport = Transport::spdy) -> Result<std::pair<int, std::string>> {
        std::string url = exec_url({"sh", "-c", "echo over-tls; exit 4"}, false, false, false);
        EXPECT_TRUE(url.starts_with("https://127.0.0.1:")) << url;
        testing::Pipe out;
        RemoteCommandOptions ro{.transport = transport, .stdout_fd = out.w.get(), .tls = tls};
        auto code = run_remote_command(url, ro);
        out.w.reset();
        std::string text = testing::read_fd_all(out.r.get());
        if (!code) return std::unexpected(code.error());
        return std::pair{*code, text};
    };
    auto trusted = exec_over({.ca_file = server + ".pem"});
    ASSERT_TRUE(trusted) << trusted.error().message();
    EXPECT_EQ(trusted->first, 4);
    EXPECT_EQ(trusted->second, "over-tls\n");

    auto refused = exec_over({.ca_file = stranger + ".pem"});
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("certificate"), std::string::npos) << refused.error().message();
    auto system_cas = exec_over({});
    ASSERT_FALSE(system_cas);

    auto unchecked = exec_over({.skip_verify = true});
    ASSERT_TRUE(unchecked) << unchecked.error().message();
    EXPECT_EQ(unchecked->second, "over-tls\n");

    // The same checks over WebSocket (wss).
    auto ws_trusted = exec_over({.ca_file = server + ".pem"}, Transport::websocket);
    ASSERT_TRUE(ws_trusted) << ws_trusted.error().message();
    EXPECT_EQ(ws_trusted->first, 4);
    EXPECT_EQ(ws_trusted->second, "over-tls\n");
    auto ws_refused = exec_over({.ca_file = stranger + ".pem"}, Transport::websocket);
    ASSERT_FALSE(ws_refused);
    EXPECT_NE(ws_refused.error().message().find("certificate"), std::string::npos) << ws_refused.error().message();
    auto ws_unchecked = exec_over({.skip_verify = true}, Transport::websocket);
    ASSERT_TRUE(ws_unchecked) << ws_unchecked.error().message();

    // Port-forward over the same TLS, to a server on the loopback (the test backend dials 127.0.0.1).
    PayloadServer payload(std::string(300000, 'p'));
    auto url = server_->port_forward_url("pod-1", {payload.port()});
    ASSERT_TRUE(url);
    auto pf = SpdyPortForward::connect(*url, {.ca_file = server + ".pem"});
    ASSERT_TRUE(pf) << pf.error().message();
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd mine(sv[0]);
    auto fwd = std::async(std::launch::async, [&, fd = sv[1]] { return (*pf)->forward(UniqueFd(fd), payload.port()); });
    ASSERT_EQ(::write(mine.get(), "GET\r\n\r\n", 7), 7);
    ::shutdown(mine.get(), SHUT_WR);
    EXPECT_EQ(testing::read_fd_all(mine.get()), std::string(300000, 'p'));
    auto r = fwd.get();
    EXPECT_TRUE(r) << r.error().message();
    (*pf)->close();

    // And a WebSocket port-forward (one connection per forwarded connection).
    auto ws_url = server_->port_forward_url("pod-1", {payload.port()});
    ASSERT_TRUE(ws_url);
    int wv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wv), 0);
    UniqueFd ws_mine(wv[0]);
    auto ws_fwd = std::async(std::launch::async, [&, fd = wv[1]] {
        return websocket_port_forward(*ws_url, UniqueFd(fd), payload.port(), {.ca_file = server + ".pem"});
    });
    ASSERT_EQ(::write(ws_mine.get(), "GET\r\n\r\n", 7), 7);
    EXPECT_EQ(test_read_exactly(ws_mine.get(), 300000), std::string(300000, 'p'));
    ws_mine.reset();
    auto wr = ws_fwd.get();
    EXPECT_TRUE(wr) << wr.error().message();
}

// ---- SPDY, with the spdy branch's Session as the client ----

std::shared_ptr<spdy::Stream> open_stream(spdy::Session& s, std::string_view type, spdy::Headers extra = {}) {
    extra.emplace_back(std::string(kStreamTypeHeader), std::string(type));
    auto r = s.open(extra);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return r ? *r : nullptr;
}

// The streams of an exec with stdin, stdout and stderr, the error stream first as kubelet's clients open them.
struct ExecStreams {
    std::shared_ptr<spdy::Stream> err, in, out, errout;
    bool ok() const { return err && in && out && errout; }
};
ExecStreams open_exec_streams(spdy::Session& s) {
    ExecStreams e;
    e.err = open_stream(s, kStreamTypeError);
    e.in = open_stream(s, kStreamTypeStdin);
    e.out = open_stream(s, kStreamTypeStdout);
    e.errout = open_stream(s, kStreamTypeStderr);
    return e;
}

TEST_F(StreamServerTest, SpdyExecV4StdinStdoutStderrExitCode) {
    auto c = spdy_connect(exec_url({"sh", "-c", "cat; echo done >&2; exit 5"}, true, false),
                          {"v4.channel.k8s.io", "v3.channel.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    EXPECT_NE(c.head.find("X-Stream-Protocol-Version: v4.channel.k8s.io"), std::string::npos) << c.head;
    ASSERT_TRUE(c.session);
    auto cs = open_exec_streams(*c.session);
    ASSERT_TRUE(cs.ok());
    auto [err, in, out, errout] = cs;
    std::string data = random_bytes(2 << 20, 3);
    std::thread writer([&] {
        EXPECT_TRUE(in->write(std::span<const char>(data.data(), data.size())));
        EXPECT_TRUE(in->close_write());
    });
    std::string got_err;
    std::thread err_reader([&] { got_err = read_all(*errout); });
    std::string got = read_all(*out);
    writer.join();
    err_reader.join();
    EXPECT_EQ(got.size(), data.size());
    EXPECT_EQ(sha256_hex(got), sha256_hex(data));
    EXPECT_EQ(got_err, "done\n");
    json status = json::parse(read_all(*err), nullptr, false);
    EXPECT_EQ(status["details"]["causes"][0]["message"], "5") << status.dump();
    c.session->close();
    EXPECT_TRUE(no_process_left());
}

TEST_F(StreamServerTest, SpdyTtyResize) {
    auto c = spdy_connect(exec_url({"sh", "-c", "read x; stty size"}, true, true), {"v4.channel.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    auto err = open_stream(*c.session, kStreamTypeError);
    auto in = open_stream(*c.session, kStreamTypeStdin);
    auto out = open_stream(*c.session, kStreamTypeStdout);
    auto resize = open_stream(*c.session, kStreamTypeResize);
    ASSERT_TRUE(err && in && out && resize);
    std::string r = R"({"Width":132,"Height":43})";
    ASSERT_TRUE(resize->write(std::span<const char>(r.data(), r.size())));
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(in->write(std::span<const char>("go\n", 3)));
    std::string got = read_all(*out);
    EXPECT_NE(got.find("43 132"), std::string::npos) << got;
    EXPECT_EQ(json::parse(read_all(*err), nullptr, false)["status"], "Success");
    c.session->close();
}

TEST_F(StreamServerTest, SpdyNegotiationFailureAndMissingUpgrade) {
    auto c = spdy_connect(exec_url({"true"}, false, false), {"v9.channel.k8s.io"});
    EXPECT_EQ(c.status, 403) << c.head;
    EXPECT_NE(c.head.find("X-Stream-Protocol-Version: v4.channel.k8s.io"), std::string::npos) << c.head;
    EXPECT_NE(c.head.find("v9.channel.k8s.io"), std::string::npos) << c.head;
}

TEST_F(StreamServerTest, SpdyClientVanishingKillsTheProcess) {
    auto c = spdy_connect(exec_url({"sleep", "1000"}, true, false), {"v4.channel.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    auto [err, in, out, errout] = open_exec_streams(*c.session);
    for (int i = 0; i < 100 && server_->counts().exec_sessions == 0; ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(server_->counts().exec_sessions, 1u);
    c.session.reset();  // the connection goes away mid-command
    EXPECT_TRUE(no_process_left());
}

TEST_F(StreamServerTest, IdleConnectionsAreClosedTalkingOnesKept) {
    ServerOptions o;
    o.idle_timeout = 600ms;  // 4 times the pauses of the conversation below: margin for a loaded machine
    start(o);
    // A silent exec: once nothing moved for the timeout, the connection is closed and the process killed.
    auto c = spdy_connect(exec_url({"sleep", "1000"}, true, false), {"v4.channel.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    auto cs = open_exec_streams(*c.session);
    ASSERT_TRUE(cs.ok());
    auto [err, in, out, errout] = cs;
    auto opened = std::chrono::steady_clock::now();
    for (int i = 0; i < 100 && server_->counts().exec_sessions == 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(server_->counts().exec_sessions, 1u);
    for (int i = 0; i < 500 && !c.session->closed(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(c.session->closed()) << "an idle connection was not closed";
    EXPECT_GE(std::chrono::steady_clock::now() - opened, 500ms);
    EXPECT_TRUE(no_process_left());

    // A conversation with pauses shorter than the timeout outlives it several times over.
    auto d = spdy_connect(exec_url({"cat"}, true, false), {"v4.channel.k8s.io"});
    ASSERT_EQ(d.status, 101) << d.head;
    auto ds = open_exec_streams(*d.session);
    ASSERT_TRUE(ds.ok());
    auto [derr, din, dout, derrout] = ds;
    for (int i = 0; i < 10; ++i) {  // 1.5 s in all: the timeout 2.5 times over
        std::this_thread::sleep_for(150ms);
        std::string line = fmt::format("line {}\n", i);
        ASSERT_TRUE(din->write(std::span<const char>(line.data(), line.size())));
        std::string echoed;
        char buf[64];
        while (echoed.size() < line.size()) {
            auto n = dout->read(buf);
            ASSERT_TRUE(n && *n > 0) << "connection closed while talking, round " << i;
            echoed.append(buf, *n);
        }
        EXPECT_EQ(echoed, line);
    }
    EXPECT_FALSE(d.session->closed());
    ASSERT_TRUE(din->close_write());
    EXPECT_EQ(read_all(*dout), "");
    EXPECT_EQ(json::parse(read_all(*derr), nullptr, false)["status"], "Success");
    d.session->close();
    EXPECT_TRUE(no_process_left());
}

TEST_F(StreamServerTest, SpdyPortForwardParallelAndDialFailure) {
    std::string payload = random_bytes(1 << 20, 5);
    PayloadServer peer(payload);
    auto url = server_->port_forward_url("pod-1", {});
    ASSERT_TRUE(url);
    auto c = spdy_connect(*url, {"portforward.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    std::string port = std::to_string(peer.port());
    constexpr int kParallel = 16;
    std::vector<std::thread> clients;
    std::atomic<int> good = 0;
    for (int i = 0; i < kParallel; ++i) {
        clients.emplace_back([&, i] {
            spdy::Headers h = {{std::string(kPortHeader), port}, {std::string(kRequestIdHeader), std::to_string(i)}};
            auto err = open_stream(*c.session, kStreamTypeError, h);
            auto data = open_stream(*c.session, kStreamTypeData, h);
            if (!err || !data) return;
            (void)err->close_write();
            std::string req = "GET / HTTP/1.0\r\n\r\n";
            if (!data->write(std::span<const char>(req.data(), req.size())) || !data->close_write()) return;
            std::string got = read_all(*data);
            if (got == payload && read_all(*err).empty()) ++good;
        });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(good, kParallel);

    // Echo through a half-close: the server passes our FIN on, the peer answers and closes.
    spdy::Headers h = {{std::string(kPortHeader), port}, {std::string(kRequestIdHeader), "echo"}};
    auto err = open_stream(*c.session, kStreamTypeError, h);
    auto data = open_stream(*c.session, kStreamTypeData, h);
    ASSERT_TRUE(err && data);
    std::string echo = "ECHO\n" + random_bytes(300000, 9);
    ASSERT_TRUE(data->write(std::span<const char>(echo.data(), echo.size())));
    ASSERT_TRUE(data->close_write());
    EXPECT_EQ(read_all(*data), echo.substr(5));

    // Nothing listens on a port of ours that was just closed: the error stream says so.
    uint16_t closed_port;
    {
        PayloadServer gone("");
        closed_port = gone.port();
    }
    spdy::Headers h2 = {{std::string(kPortHeader), std::to_string(closed_port)},
                        {std::string(kRequestIdHeader), "dead"}};
    auto err2 = open_stream(*c.session, kStreamTypeError, h2);
    auto data2 = open_stream(*c.session, kStreamTypeData, h2);
    ASSERT_TRUE(err2 && data2);
    std::string msg = read_all(*err2);
    EXPECT_NE(msg.find(fmt::format("error forwarding port {} to pod pod-1", closed_port)), std::string::npos) << msg;
    c.session->close();
    for (int i = 0; i < 100 && server_->counts().port_forward_connections != 0; ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(server_->counts().port_forward_connections, 0u);
}

}  // namespace
}  // namespace berth::stream
