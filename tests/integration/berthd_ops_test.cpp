// berthd's operator side, on a real daemon: Prometheus metrics scraped over loopback (ports 15500-15524; the
// registry of the pull test takes one from 15525 up) while pods and containers run, fail and get OOM-killed; JSON
// logs; the log level changed at runtime by SIGUSR1 and SIGHUP; RuntimeHandlers in Status and `berthctl info`.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cri_fixture.hpp"
#include "harness.hpp"
#include "local_registry.hpp"

namespace berth::test {
namespace {

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in:\n" << (haystack)

// GET http://127.0.0.1:<port>/metrics; the body, or "" with a test failure.
std::string scrape(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        ADD_FAILURE() << "connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
        return "";
    }
    std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    EXPECT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string out;
    char buf[8192];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out.substr(0, 200);
    size_t body = out.find("\r\n\r\n");
    return body == std::string::npos ? "" : out.substr(body + 4);
}

// The value of the sample `series` (name with its labels, exactly as rendered); -1 when absent.
double sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    return -1;
}

std::string rpc_count(const std::string& service, const std::string& method) {
    return fmt::format("berthd_cri_request_duration_seconds_count{{service=\"{}\",method=\"{}\"}}", service, method);
}

class BerthdOpsTest : public CriTest {
protected:
    std::unique_ptr<v1::ImageService::Stub> images() {
        return v1::ImageService::NewStub(grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
    }
    grpc::Status version() {
        grpc::ClientContext ctx;
        v1::VersionResponse resp;
        return runtime()->Version(&ctx, v1::VersionRequest(), &resp);
    }
    // Starts berthd with metrics on a free port of this suite; the port.
    int start_with_metrics(const std::string& more_config = "") {
        int port = free_loopback_port(15500, 25);
        EXPECT_GT(port, 0);
        write_text(dir_ + "/berth.toml", fmt::format("metrics_address = \"127.0.0.1:{}\"\n{}", port, more_config));
        start_daemon();
        EXPECT_CONTAINS(daemon_->output(), fmt::format("serving metrics on http://127.0.0.1:{}/metrics", port));
        return port;
    }
};

TEST_F(BerthdOpsTest, MetricsFollowPodsContainersErrorsAndOomKills) {
    const int port = start_with_metrics();
    if (HasFailure()) return;
    const long rss_before = daemon_->rss_kib();

    std::string text = scrape(port);
    EXPECT_CONTAINS(text, "# TYPE berthd_cri_request_duration_seconds histogram\n");
    EXPECT_EQ(sample(text, "berthd_pods{state=\"ready\"}"), 0);
    EXPECT_EQ(sample(text, "berthd_containers{state=\"running\"}"), 0);
    EXPECT_EQ(sample(text, "berthd_container_monitors"), 0);
    EXPECT_EQ(sample(text, "berthd_container_oom_kills_total"), 0);

    auto pc = pod_config("metrics");
    std::string pod = run_pod(pc);
    ASSERT_FALSE(pod.empty());
    std::string sleeper = create_and_start(pod, container_config("sleeper", "sleep 1000"), pc);
    ASSERT_FALSE(sleeper.empty());
    // An rpc that fails: NOT_FOUND.
    grpc::Status missing;
    container_status(std::string(64, 'f'), &missing);
    EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
    {
        grpc::ClientContext ctx;
        v1::ImageStatusRequest req;
        req.mutable_image()->set_image(kBusybox);
        v1::ImageStatusResponse resp;
        EXPECT_TRUE(images()->ImageStatus(&ctx, req, &resp).ok());
    }

    text = scrape(port);
    EXPECT_EQ(sample(text, "berthd_pods{state=\"ready\"}"), 1) << text;
    EXPECT_EQ(sample(text, "berthd_containers{state=\"running\"}"), 1) << text;
    EXPECT_EQ(sample(text, "berthd_container_monitors"), 1) << text;
    EXPECT_EQ(sample(text, rpc_count("RuntimeService", "RunPodSandbox")), 1) << text;
    EXPECT_EQ(sample(text, rpc_count("RuntimeService", "CreateContainer")), 1) << text;
    EXPECT_EQ(sample(text, rpc_count("RuntimeService", "StartContainer")), 1) << text;
    EXPECT_EQ(sample(text, rpc_count("ImageService", "ImageStatus")), 1) << text;
    // RunPodSandbox took some time: it is in a finite bucket, and its sum is positive.
    EXPECT_EQ(sample(text, "berthd_cri_request_duration_seconds_bucket{service=\"RuntimeService\",method="
                           "\"RunPodSandbox\",le=\"+Inf\"}"),
              1);
    EXPECT_GT(sample(text, "berthd_cri_request_duration_seconds_sum{service=\"RuntimeService\",method=\"RunPodSandbox\"}"),
              0);
    EXPECT_EQ(sample(text, "berthd_cri_request_errors_total{service=\"RuntimeService\",method=\"ContainerStatus\","
                           "code=\"NOT_FOUND\"}"),
              1)
        << text;
    EXPECT_EQ(sample(text, "berthd_cri_request_errors_total{service=\"RuntimeService\",method=\"RunPodSandbox\","
                           "code=\"NOT_FOUND\"}"),
              -1);

    ASSERT_TRUE(stop_container(sleeper, 0).ok());
    // A container that exceeds its memory limit.
    auto oom = container_config("oom", "exec dd if=/dev/zero of=/dev/null bs=128M count=1");
    oom.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
    std::string oom_id = create_and_start(pod, oom, pc);
    ASSERT_FALSE(oom_id.empty());
    EXPECT_EQ(wait_exited(oom_id).reason(), "OOMKilled");

    text = scrape(port);
    EXPECT_EQ(sample(text, "berthd_containers{state=\"running\"}"), 0) << text;
    EXPECT_EQ(sample(text, "berthd_containers{state=\"exited\"}"), 2) << text;
    EXPECT_EQ(sample(text, "berthd_container_monitors"), 0) << text;
    EXPECT_EQ(sample(text, "berthd_container_oom_kills_total"), 1) << text;

    ASSERT_TRUE(remove_pod(pod).ok());
    text = scrape(port);
    EXPECT_EQ(sample(text, "berthd_pods{state=\"ready\"}"), 0) << text;
    EXPECT_EQ(sample(text, "berthd_containers{state=\"exited\"}"), 0) << text;

    // The daemon's footprint with metrics on is recorded here; the target (idle RSS under 15 MiB) is checked by
    // `make bench` (bench/cri/cri_bench.cpp), as memory targets are, not by a test on a shared machine.
    const long rss_after = daemon_->rss_kib();
    RecordProperty("rss_kib_before", std::to_string(rss_before));
    RecordProperty("rss_kib_after", std::to_string(rss_after));
    EXPECT_GT(rss_before, 0);
    EXPECT_GT(rss_after, 0);
}

TEST_F(BerthdOpsTest, ImagePullsAreCountedWithBytesSecondsAndFailures) {
    LocalRegistry registry(15525);
    TempDir regdir("ops-registry");
    ASSERT_TRUE(registry.start(regdir.path())) << registry.log();
    auto pushed = run_command({"/usr/bin/skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                               "oci:" + busybox_layout(), "docker://" + registry.host() + "/ops/busybox:1"});
    ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
    const int port =
        start_with_metrics(fmt::format("[registries.\"{}\"]\ninsecure = true\n", registry.host()));
    if (HasFailure()) return;
    // The fixture's root holds the same blobs: without them every layer is fetched.
    {
        grpc::ClientContext ctx;
        v1::RemoveImageRequest req;
        req.mutable_image()->set_image(kBusybox);
        v1::RemoveImageResponse resp;
        ASSERT_TRUE(images()->RemoveImage(&ctx, req, &resp).ok());
    }
    // What the pull must fetch: the compressed size of every layer (as the registry holds it: skopeo may have
    // recompressed on the way) whose blob the store does not hold now.
    uint64_t layer_bytes = 0;
    {
        auto raw = run_command({"/usr/bin/skopeo", "inspect", "--raw", "--tls-verify=false",
                                "docker://" + registry.host() + "/ops/busybox:1"});
        ASSERT_EQ(raw.exit_code, 0) << raw.err;
        auto manifest = nlohmann::json::parse(raw.out);
        for (const auto& l : manifest["layers"]) {
            std::string d = l["digest"];
            if (::access((root_ + "/blobs/sha256/" + d.substr(d.find(':') + 1)).c_str(), F_OK) != 0)
                layer_bytes += l["size"].get<uint64_t>();
        }
    }
    ASSERT_GT(layer_bytes, 0u);

    auto pull = [&](const std::string& ref) {
        grpc::ClientContext ctx;
        v1::PullImageRequest req;
        req.mutable_image()->set_image(ref);
        v1::PullImageResponse resp;
        return images()->PullImage(&ctx, req, &resp);
    };
    grpc::Status ok = pull(registry.host() + "/ops/busybox:1");
    ASSERT_TRUE(ok.ok()) << ok.error_message();
    // Nothing listens on the port of the stopped registry's neighbour range: a failed pull.
    int closed = free_loopback_port(15500, 25);
    grpc::Status bad = pull(fmt::format("127.0.0.1:{}/ops/none:1", closed));
    EXPECT_FALSE(bad.ok());

    std::string text = scrape(port);
    EXPECT_EQ(sample(text, "berthd_image_pulls_total"), 2) << text;
    EXPECT_EQ(sample(text, "berthd_image_pull_failures_total"), 1) << text;
    EXPECT_EQ(sample(text, "berthd_image_pull_duration_seconds_count"), 1) << text;
    EXPECT_GT(sample(text, "berthd_image_pull_duration_seconds_sum"), 0) << text;
    EXPECT_EQ(sample(text, "berthd_image_pull_bytes_total"), static_cast<double>(layer_bytes)) << text;
    EXPECT_EQ(sample(text, "berthd_cri_request_errors_total{service=\"ImageService\",method=\"PullImage\",code="
                           "\"UNKNOWN\"}"),
              1)
        << text;
}

// One JSON object per line with level, msg and time; every line of `text` from `from` on.
void expect_json_lines(const std::string& text, size_t from) {
    std::istringstream in(text.substr(from));
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
        EXPECT_TRUE(j.contains("level") && j.contains("msg") && j.contains("time")) << line;
        ++n;
    }
    EXPECT_GT(n, 0);
}

TEST_F(BerthdOpsTest, JsonLogsAndDebugToggledBySigusr1) {
    write_text(dir_ + "/berth.toml", "log_format = \"json\"\n");
    start_daemon();
    expect_json_lines(daemon_->output(), 0);
    const std::string debug_line = "rpc RuntimeService/Version: OK in ";

    // info: no debug line for an rpc.
    size_t mark = daemon_->output().size();
    ASSERT_TRUE(version().ok());
    EXPECT_FALSE(daemon_->read_output_until(debug_line, mark, 500)) << daemon_->output().substr(mark);

    daemon_->signal(SIGUSR1);
    ASSERT_TRUE(daemon_->read_output_until("SIGUSR1: debug logging on", mark, 10000)) << daemon_->output();
    mark = daemon_->output().size();
    ASSERT_TRUE(version().ok());
    EXPECT_TRUE(daemon_->read_output_until(debug_line, mark, 10000)) << daemon_->output().substr(mark);
    // The debug line is JSON with level "debug".
    size_t at = daemon_->output().find(debug_line, mark);
    size_t begin = daemon_->output().rfind('\n', at) + 1;
    auto j = nlohmann::json::parse(daemon_->output().substr(begin, daemon_->output().find('\n', at) - begin), nullptr,
                                   false);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j.value("level", ""), "debug");

    daemon_->signal(SIGUSR1);
    ASSERT_TRUE(daemon_->read_output_until("SIGUSR1: debug logging off", mark, 10000)) << daemon_->output();
    mark = daemon_->output().size();
    ASSERT_TRUE(version().ok());
    EXPECT_FALSE(daemon_->read_output_until(debug_line, mark, 500)) << daemon_->output().substr(mark);
    expect_json_lines(daemon_->output(), 0);
}

TEST_F(BerthdOpsTest, SighupReloadsLogLevelAndFormatAndNamesWhatNeedsARestart) {
    write_text(dir_ + "/berth.toml", "log_level = \"info\"\n");
    start_daemon();
    const std::string debug_line = "rpc RuntimeService/Version: OK in ";
    size_t mark = daemon_->output().size();
    ASSERT_TRUE(version().ok());
    EXPECT_FALSE(daemon_->read_output_until(debug_line, mark, 500));

    // Debug and JSON from the file; a key only a restart applies is named.
    write_text(dir_ + "/berth.toml",
               "log_level = \"debug\"\nlog_format = \"json\"\ncgroup_parent = \"/ops-elsewhere\"\n");
    daemon_->signal(SIGHUP);
    ASSERT_TRUE(daemon_->read_output_until("log_format text -> json", mark, 10000)) << daemon_->output();
    EXPECT_CONTAINS(daemon_->output().substr(mark), "log_level info -> debug");
    ASSERT_TRUE(daemon_->read_output_until("cgroup_parent changed", mark, 10000)) << daemon_->output();
    EXPECT_CONTAINS(daemon_->output().substr(mark), "restart berthd to apply it");
    // The changes are announced in the old format, then applied: JSON after the last announcement.
    size_t json_from = daemon_->output().find('\n', daemon_->output().find("cgroup_parent changed", mark)) + 1;
    mark = daemon_->output().size();
    ASSERT_TRUE(version().ok());
    EXPECT_TRUE(daemon_->read_output_until(debug_line, mark, 10000)) << daemon_->output().substr(mark);
    expect_json_lines(daemon_->output(), json_from);
    // Status's verbose config shows the settings in force: the reloaded log keys, the running cgroup_parent.
    auto info = run_command({BERTHCTL_BIN, "--socket", socket_, "info", "-o", "json"});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    auto running = nlohmann::json::parse(info.out, nullptr, false);
    ASSERT_TRUE(running.is_object()) << info.out;
    EXPECT_EQ(running["config"]["berthConfig"]["log_level"], "debug") << info.out;
    EXPECT_EQ(running["config"]["berthConfig"]["log_format"], "json") << info.out;
    EXPECT_NE(running["config"]["berthConfig"]["cgroup_parent"], "/ops-elsewhere") << info.out;

    // A broken file changes nothing and says so.
    write_text(dir_ + "/berth.toml", "log_level = \"loud\"\n");
    mark = daemon_->output().size();
    daemon_->signal(SIGHUP);
    ASSERT_TRUE(daemon_->read_output_until("the running configuration is kept", mark, 10000)) << daemon_->output();
    EXPECT_CONTAINS(daemon_->output().substr(mark), "log_level: \\\"loud\\\" is not one of");

    // Back to info and text.
    write_text(dir_ + "/berth.toml", "");
    mark = daemon_->output().size();
    daemon_->signal(SIGHUP);
    ASSERT_TRUE(daemon_->read_output_until("log_format json -> text", mark, 10000)) << daemon_->output();
    mark = daemon_->output().size();
    ASSERT_TRUE(version().ok());
    EXPECT_FALSE(daemon_->read_output_until(debug_line, mark, 500)) << daemon_->output().substr(mark);
    // The daemon still serves and stops cleanly.
    EXPECT_EQ(daemon_->terminate(), 0) << daemon_->output();
}

TEST_F(BerthdOpsTest, StatusAndBerthctlInfoListEveryHandlerWithItsFeatures) {
    write_text(dir_ + "/berth.toml",
               "[runtimes.runc]\npath = \"/usr/bin/runc\"\n"
               "[runtimes.gvisor]\npath = \"/usr/bin/runsc\"\nruntime_args = [\"--platform=ptrace\"]\n");
    start_daemon();
    grpc::ClientContext ctx;
    v1::StatusRequest req;
    req.set_verbose(true);
    v1::StatusResponse status;
    ASSERT_TRUE(runtime()->Status(&ctx, req, &status).ok());
    std::map<std::string, v1::RuntimeHandlerFeatures> handlers;
    for (const auto& h : status.runtime_handlers()) handlers[h.name()] = h.features();
    ASSERT_EQ(handlers.size(), 4u) << status.DebugString();
    ASSERT_TRUE(handlers.contains("")) << "the default handler";
    // libberth has recursive read-only mounts; runc 1.1 and runsc do not say they have.
    EXPECT_TRUE(handlers[""].recursive_read_only_mounts());
    EXPECT_TRUE(handlers["berth"].recursive_read_only_mounts());
    EXPECT_FALSE(handlers["gvisor"].recursive_read_only_mounts());
    for (const auto& [name, f] : handlers) EXPECT_FALSE(f.user_namespaces()) << name;

    auto table = run_command({BERTHCTL_BIN, "--socket", socket_, "info"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_CONTAINS(table.out, "RuntimeReady");
    EXPECT_CONTAINS(table.out, "NetworkReady");
    EXPECT_CONTAINS(table.out, "HANDLER");
    EXPECT_CONTAINS(table.out, "(default)");
    EXPECT_CONTAINS(table.out, "gvisor");
    EXPECT_CONTAINS(table.out, "/usr/bin/runsc");
    EXPECT_CONTAINS(table.out, "--platform=ptrace");
    EXPECT_CONTAINS(table.out, "cgroup_parent");

    auto json = run_command({BERTHCTL_BIN, "--socket", socket_, "info", "-o", "json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    auto j = nlohmann::json::parse(json.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << json.out;
    ASSERT_TRUE(j.contains("runtimeHandlers")) << json.out;
    EXPECT_EQ(j["runtimeHandlers"].size(), 4u);
    EXPECT_EQ(j["runtimeHandlers"][0]["name"], "");
    // The network section is the NetworkReady condition.
    for (const auto& c : j["status"]["conditions"])
        if (c["type"] == "NetworkReady") {
            EXPECT_EQ(j["network"]["ready"], c["status"]) << json.out;
            EXPECT_EQ(j["network"]["message"], c["message"]) << json.out;
        }
    EXPECT_TRUE(j["network"].contains("reason")) << json.out;
    EXPECT_EQ(j["config"]["berthConfig"]["runtimes"]["gvisor"]["runtime_args"][0], "--platform=ptrace");
    EXPECT_EQ(j["status"]["conditions"].size(), 2u);
}

}  // namespace
}  // namespace berth::test
