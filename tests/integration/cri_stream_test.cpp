// Exec, Attach and PortForward through a real berthd: the rpcs hand out URLs, and clients that share no code with
// the server (python3-websockets) or only the SPDY session (src/stream/spdy) drive real busybox containers.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <chrono>
#include <filesystem>
#include <thread>

#include "cri_fixture.hpp"
#include "harness.hpp"
#include "stream_clients.hpp"

namespace berth::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace spdy = stream::spdy;

constexpr uint16_t kHttpdPort = 15360;  // inside the pod's own network namespace

// Pids of processes whose argv is exactly `argv`.
std::vector<pid_t> processes_with_argv(const std::vector<std::string>& argv) {
    std::string want;
    for (const auto& a : argv) want += a + '\0';
    std::vector<pid_t> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        if (read_text(e.path().string() + "/cmdline") == want) out.push_back(std::stoi(name));
    }
    return out;
}

bool gone_within(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (processes_with_argv(argv).empty()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

class CriStreamTest : public CriTest {
protected:
    std::string exec_url(const std::string& id, std::vector<std::string> cmd, bool in, bool tty,
                         grpc::Status* st_out = nullptr) {
        grpc::ClientContext ctx;
        v1::ExecRequest req;
        req.set_container_id(id);
        for (auto& c : cmd) req.add_cmd(c);
        req.set_stdin(in);
        req.set_stdout(true);
        req.set_stderr(!tty);
        req.set_tty(tty);
        v1::ExecResponse resp;
        grpc::Status st = runtime()->Exec(&ctx, req, &resp);
        if (st_out)
            *st_out = st;
        else
            EXPECT_TRUE(st.ok()) << st.error_message();
        return resp.url();
    }

    std::string attach_url(const std::string& id, bool in, bool tty) {
        grpc::ClientContext ctx;
        v1::AttachRequest req;
        req.set_container_id(id);
        req.set_stdin(in);
        req.set_stdout(true);
        req.set_stderr(!tty);
        req.set_tty(tty);
        v1::AttachResponse resp;
        grpc::Status st = runtime()->Attach(&ctx, req, &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        return resp.url();
    }

    std::string port_forward_url(const std::string& pod, std::vector<int> ports) {
        grpc::ClientContext ctx;
        v1::PortForwardRequest req;
        req.set_pod_sandbox_id(pod);
        for (int p : ports) req.add_port(p);
        v1::PortForwardResponse resp;
        grpc::Status st = runtime()->PortForward(&ctx, req, &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        return resp.url();
    }

    // A pod with one running container; the container id.
    std::string running(const std::string& name, const std::string& script, bool stdin = false, bool tty = false) {
        auto pc = pod_config(name);
        pod_ = run_pod(pc);
        auto c = container_config(name, script);
        c.set_stdin(stdin);
        c.set_tty(tty);
        return create_and_start(pod_, c, pc);
    }

    std::string pod_;
};

TEST_F(CriStreamTest, RpcsValidateTheRequest) {
    std::string id = running("streamsrv-validate", "sleep 1000");
    grpc::ClientContext c1;
    v1::ExecRequest req;
    req.set_container_id(id);
    req.add_cmd("true");
    v1::ExecResponse resp;
    EXPECT_EQ(runtime()->Exec(&c1, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // no stream
    grpc::ClientContext c2;
    req.set_stdout(true);
    req.set_stderr(true);
    req.set_tty(true);
    EXPECT_EQ(runtime()->Exec(&c2, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // tty + stderr
    grpc::ClientContext c3;
    req.set_tty(false);
    req.set_container_id("streamsrv-nope");
    EXPECT_EQ(runtime()->Exec(&c3, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
    grpc::ClientContext c4;
    v1::PortForwardRequest pf;
    pf.set_pod_sandbox_id(pod_);
    pf.add_port(70000);
    v1::PortForwardResponse pr;
    EXPECT_EQ(runtime()->PortForward(&c4, pf, &pr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    std::string url = exec_url(id, {"true"}, false, false);
    EXPECT_TRUE(url.starts_with("http://127.0.0.1:")) << url;
    EXPECT_NE(url.find("/exec/"), std::string::npos);
}

TEST_F(CriStreamTest, ExecExitCodesStdinEofAndBinaryOverWebSocket) {
    std::string id = running("streamsrv-exec", "sleep 1000");
    json r = run_ws_client({ws_url(exec_url(id, {"sh", "-c", "echo out; echo err >&2; exit 7"}, false, false)),
                            "--protocol", "v5.channel.k8s.io"});
    EXPECT_EQ(r["stdout_bytes"], 4) << r.dump();
    EXPECT_EQ(r["stderr"], "err\n");
    json status = json::parse(r["error"].get<std::string>(), nullptr, false);
    EXPECT_EQ(status["details"]["causes"][0]["message"], "7") << r.dump();

    // stdin to EOF through v5's close signal, every byte value intact
    TempDir dir("streamsrv-exec");
    std::string data;
    for (int i = 0; i < (1 << 20); ++i) data.push_back(static_cast<char>((i * 7919) >> 3));
    write_text(dir.path() + "/in", data);
    r = run_ws_client({ws_url(exec_url(id, {"cat"}, true, false)), "--protocol", "v5.channel.k8s.io", "--stdin-file",
                       dir.path() + "/in", "--close-stdin"});
    EXPECT_EQ(r["stdout_bytes"], data.size()) << r.dump();
    EXPECT_EQ(r["stdout_sha256"], sha256_hex(data));
    EXPECT_EQ(json::parse(r["error"].get<std::string>(), nullptr, false)["status"], "Success") << r.dump();
}

TEST_F(CriStreamTest, ExecHundredMegabytesWithoutLossOverWebSocket) {
    std::string id = running("streamsrv-big", "sleep 1000");
    TempDir dir("streamsrv-big");
    json r = run_ws_client(
        {ws_url(exec_url(
             id, {"sh", "-c", "head -c 104857600 /dev/urandom > /tmp/big && cat /tmp/big && sha256sum /tmp/big >&2"},
             false, false)),
         "--protocol", "v4.channel.k8s.io", "--timeout", "300"});
    EXPECT_EQ(r["stdout_bytes"], 104857600) << r.dump().substr(0, 2000);
    std::string inside = r["stderr"].get<std::string>().substr(0, 64);
    EXPECT_EQ(r["stdout_sha256"], inside);
}

TEST_F(CriStreamTest, ExecTtyResizeOverWebSocketAndSpdy) {
    std::string id = running("streamsrv-tty", "sleep 1000");
    TempDir dir("streamsrv-tty");
    json r = run_ws_client({ws_url(exec_url(id, {"sh", "-c", "sleep 0.5; stty size"}, true, true)), "--protocol",
                            "v4.channel.k8s.io", "--resize", "120x40", "--out-dir", dir.path()});
    EXPECT_NE(read_text(dir.path() + "/stdout").find("40 120"), std::string::npos) << r.dump();

    auto c = spdy_connect(exec_url(id, {"sh", "-c", "read x; stty size; exit 4"}, true, true), {"v4.channel.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    auto err = spdy_open(*c.session, stream::kStreamTypeError);
    auto in = spdy_open(*c.session, stream::kStreamTypeStdin);
    auto out = spdy_open(*c.session, stream::kStreamTypeStdout);
    auto resize = spdy_open(*c.session, stream::kStreamTypeResize);
    ASSERT_TRUE(err && in && out && resize);
    std::string size = R"({"Width":91,"Height":17})";
    ASSERT_TRUE(resize->write(std::span<const char>(size.data(), size.size())));
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(in->write(std::span<const char>("go\n", 3)));
    EXPECT_NE(spdy_read_all(*out).find("17 91"), std::string::npos);
    json status = json::parse(spdy_read_all(*err), nullptr, false);
    EXPECT_EQ(status["details"]["causes"][0]["message"], "4") << status.dump();
}

TEST_F(CriStreamTest, ExecOverSpdyWithStdinEof) {
    std::string id = running("streamsrv-spdy", "sleep 1000");
    auto c = spdy_connect(exec_url(id, {"sh", "-c", "wc -c; echo e >&2"}, true, false),
                          {"v5.channel.k8s.io", "v4.channel.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    auto err = spdy_open(*c.session, stream::kStreamTypeError);
    auto in = spdy_open(*c.session, stream::kStreamTypeStdin);
    auto out = spdy_open(*c.session, stream::kStreamTypeStdout);
    auto errout = spdy_open(*c.session, stream::kStreamTypeStderr);
    ASSERT_TRUE(err && in && out && errout);
    std::string data(3 << 20, 'z');
    ASSERT_TRUE(in->write(std::span<const char>(data.data(), data.size())));
    ASSERT_TRUE(in->close_write());
    EXPECT_EQ(trim(spdy_read_all(*out)), std::to_string(data.size()));
    EXPECT_EQ(spdy_read_all(*errout), "e\n");
    EXPECT_EQ(json::parse(spdy_read_all(*err), nullptr, false)["status"], "Success");
}

TEST_F(CriStreamTest, AttachToALoopAndToAReader) {
    std::string id = running("streamsrv-attach", "while :; do echo tick; sleep 0.1; done");
    json r = run_ws_client(
        {ws_url(attach_url(id, false, false)), "--protocol", "v4.channel.k8s.io", "--vanish-after", "10"});
    EXPECT_EQ(r["vanished"], true) << r.dump();
    // A second attacher sees output too, and detaching left the container running.
    r = run_ws_client(
        {ws_url(attach_url(id, false, false)), "--protocol", "v4.channel.k8s.io", "--vanish-after", "10"});
    EXPECT_EQ(r["vanished"], true) << r.dump();
    EXPECT_EQ(container_status(id).state(), v1::CONTAINER_RUNNING);

    auto pc = pod_config("streamsrv-reader");
    std::string pod = run_pod(pc);
    auto cc = container_config("streamsrv-reader", "read line; echo got:$line");
    cc.set_stdin(true);
    cc.set_stdin_once(true);
    std::string reader = create_and_start(pod, cc, pc);
    r = run_ws_client({ws_url(attach_url(reader, true, false)), "--protocol", "v4.channel.k8s.io", "--stdin-text",
                       "hello\n", "--delay-stdin", "0.3"});
    EXPECT_EQ(r["stdout_bytes"], 10) << r.dump();  // "got:hello\n"
    EXPECT_EQ(wait_exited(reader).exit_code(), 0);
}

TEST_F(CriStreamTest, PortForwardToBusyboxHttpd) {
    std::string script = fmt::format(
        "mkdir -p /www && head -c 104857600 /dev/urandom > /www/big && sha256sum /www/big | cut -c1-64 > "
        "/www/big.sha && echo ready > /www/ready && exec httpd -f -p {} -h /www",
        kHttpdPort);
    std::string id = running("streamsrv-httpd", script);
    (void)id;
    // Wait until httpd answers (the file is written first).
    auto get = [&](spdy::Session& s, const std::string& rid, const std::string& path) -> std::string {
        spdy::Headers h = {{std::string(stream::kPortHeader), std::to_string(kHttpdPort)},
                           {std::string(stream::kRequestIdHeader), rid}};
        auto err = spdy_open(s, stream::kStreamTypeError, h);
        auto data = spdy_open(s, stream::kStreamTypeData, h);
        if (!err || !data) return "<no streams>";
        (void)err->close_write();
        std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
        if (!data->write(std::span<const char>(req.data(), req.size())) || !data->close_write()) return "<write>";
        std::string got = spdy_read_all(*data);
        std::string e = spdy_read_all(*err);
        if (!e.empty()) return "<error stream: " + e + ">";
        size_t body = got.find("\r\n\r\n");
        return body == std::string::npos ? "<no body: " + got.substr(0, 200) + ">" : got.substr(body + 4);
    };
    auto c = spdy_connect(port_forward_url(pod_, {kHttpdPort}), {"portforward.k8s.io"});
    ASSERT_EQ(c.status, 101) << c.head;
    std::string ready;
    for (int i = 0; i < 300 && ready != "ready\n"; ++i) {
        ready = get(*c.session, "ready" + std::to_string(i), "/ready");
        if (ready != "ready\n") std::this_thread::sleep_for(200ms);
    }
    ASSERT_EQ(ready, "ready\n");
    std::string want = trim(get(*c.session, "sha", "/big.sha"));
    ASSERT_EQ(want.size(), 64u) << want;

    // Many parallel requests on one session.
    constexpr int kParallel = 24;
    std::vector<std::thread> threads;
    std::atomic<int> good = 0;
    for (int i = 0; i < kParallel; ++i)
        threads.emplace_back([&, i] {
            if (trim(get(*c.session, "p" + std::to_string(i), "/big.sha")) == want) ++good;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(good, kParallel);

    // 100 MB through one forwarded connection, checksum checked.
    std::string big = get(*c.session, "big", "/big");
    EXPECT_EQ(big.size(), 104857600u);
    EXPECT_EQ(sha256_hex(big), want);
    c.session->close();

    // The same through the WebSocket client.
    json r = run_ws_client({ws_url(port_forward_url(pod_, {kHttpdPort})), "--mode", "portforward", "--protocol",
                            "v4.channel.k8s.io", "--stdin-text", "GET /big.sha HTTP/1.0\r\n\r\n"});
    EXPECT_EQ(r["ports"], json::array({kHttpdPort})) << r.dump();
    EXPECT_GT(r["data_bytes"].get<int>(), 64);

    // Nothing listens on this port: the error stream names it.
    auto c2 = spdy_connect(port_forward_url(pod_, {}), {"portforward.k8s.io"});
    ASSERT_EQ(c2.status, 101);
    spdy::Headers h = {{std::string(stream::kPortHeader), "15361"}, {std::string(stream::kRequestIdHeader), "x"}};
    auto err = spdy_open(*c2.session, stream::kStreamTypeError, h);
    auto data = spdy_open(*c2.session, stream::kStreamTypeData, h);
    ASSERT_TRUE(err && data);
    EXPECT_NE(spdy_read_all(*err).find("error forwarding port 15361"), std::string::npos);
}

TEST_F(CriStreamTest, NegotiationFailuresAndSpentTokens) {
    std::string id = running("streamsrv-tokens", "sleep 1000");
    json r = run_ws_client({ws_url(exec_url(id, {"true"}, false, false)), "--protocol", "v9.channel.k8s.io"});
    EXPECT_EQ(r["http_status"], 403) << r.dump();
    auto c = spdy_connect(exec_url(id, {"true"}, false, false), {"v0.channel.k8s.io"});
    EXPECT_EQ(c.status, 403);
    EXPECT_NE(c.head.find("v0.channel.k8s.io"), std::string::npos) << c.head;
    EXPECT_NE(c.head.find("v5.channel.k8s.io"), std::string::npos) << c.head;

    std::string url = exec_url(id, {"true"}, false, false);
    r = run_ws_client({ws_url(url), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(json::parse(r["error"].get<std::string>(), nullptr, false)["status"], "Success") << r.dump();
    r = run_ws_client({ws_url(url), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(r["http_status"], 404) << r.dump();  // reused

    // A daemon whose URLs live one second.
    daemon_->terminate();
    write_text(dir_ + "/berth.toml", "streaming_token_lifetime = 1\n");
    start_daemon(extra_);
    url = exec_url(id, {"true"}, false, false);
    std::this_thread::sleep_for(1500ms);
    r = run_ws_client({ws_url(url), "--protocol", "v4.channel.k8s.io"});
    EXPECT_EQ(r["http_status"], 404) << r.dump();  // expired
}

TEST_F(CriStreamTest, VanishingClientLeavesNoProcess) {
    std::string id = running("streamsrv-vanish", "sleep 1000");
    const std::vector<std::string> argv = {"sleep", "1337"};
    json r = run_ws_client(
        {ws_url(exec_url(id, argv, true, false)), "--protocol", "v4.channel.k8s.io", "--vanish-after", "0"});
    EXPECT_EQ(r["vanished"], true) << r.dump();
    EXPECT_TRUE(gone_within(argv, 10s));

    // Mid-output, over SPDY: the connection is dropped while the process prints.
    const std::vector<std::string> loud = {"sh", "-c", "while :; do echo streamsrv-loud; done"};
    auto c = spdy_connect(exec_url(id, loud, false, false), {"v4.channel.k8s.io"});
    ASSERT_EQ(c.status, 101);
    auto err = spdy_open(*c.session, stream::kStreamTypeError);
    auto out = spdy_open(*c.session, stream::kStreamTypeStdout);
    auto errout = spdy_open(*c.session, stream::kStreamTypeStderr);
    ASSERT_TRUE(err && out && errout);
    char buf[4096];
    ASSERT_TRUE(out->read(std::span<char>(buf, sizeof buf)));
    EXPECT_FALSE(processes_with_argv(loud).empty());
    c.session.reset();
    EXPECT_TRUE(gone_within(loud, 10s));
}

}  // namespace
}  // namespace berth::test
