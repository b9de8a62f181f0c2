// stream_bench: berthd's streaming paths against their floors, in the same run.
//
//   stream_bench --berthd PATH --berthctl PATH --berth PATH --source DIR [--rounds N] [--megabytes N]
//                [--transfers N]
//
// Exec round trip of `true` (median of N, default 30): ExecSync, and streaming Exec (rpc + SPDY upgrade +
// streams + exit status, as kubelet does it), each against a bare `berth exec` of the same container (the
// runtime berthd runs under the hood); goal: under 2x. Port-forward throughput: one GET of a file of M MiB
// (default 256) from busybox httpd in the pod through a SPDY port-forward, against the same GET over a direct
// connection to 127.0.0.1 inside the pod's network namespace, interleaved, median of T (default 5); goal: at
// least 50%.
// clang-format off
#include "cri/api.hpp"  // before <signal.h>: see src/cri/api.hpp
// clang-format on
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_daemon.hpp"
#include "linux/namespaces.hpp"
#include "stream/protocol.hpp"
#include "stream/spdy.hpp"

namespace {

namespace v1 = ::runtime::v1;
namespace spdy = berth::stream::spdy;
using berth::bench::call;
using berth::bench::die;
using berth::bench::Quiet;
using Clock = std::chrono::steady_clock;
using Stub = v1::RuntimeService::Stub;

constexpr uint16_t kHttpdPort = 15370;

int run(const std::vector<std::string>& argv) {
    return berth::bench::run(argv, Quiet::all);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

berth::UniqueFd tcp_connect(uint16_t port) {
    berth::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) return berth::UniqueFd();
    // As Go clients (kubelet, kubectl) do: without it, small frames such as WINDOW_UPDATE wait for delayed ACKs.
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Upgrades a streaming URL to SPDY offering `protocol`; the client session.
std::unique_ptr<spdy::Session> spdy_connect(const std::string& url, const std::string& protocol) {
    size_t host_start = url.find("://") + 3;
    size_t path_start = url.find('/', host_start);
    std::string hostport = url.substr(host_start, path_start - host_start);
    auto fd = tcp_connect(static_cast<uint16_t>(std::stoi(hostport.substr(hostport.rfind(':') + 1))));
    if (!fd) die("connect " + url);
    std::string req = "POST " + url.substr(path_start) + " HTTP/1.1\r\nHost: " + hostport +
                      "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: " + protocol +
                      "\r\n\r\n";
    if (::write(fd.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) die("write upgrade");
    std::string got;
    char buf[4096];
    size_t end;
    while ((end = got.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) die("upgrade answer: EOF");
        got.append(buf, n);
    }
    if (got.compare(9, 3, "101") != 0) die("upgrade refused: " + got.substr(0, got.find("\r\n")));
    auto s = spdy::Session::start(berth::stream::plain_conn(std::move(fd)), spdy::Session::Role::client,
                                  got.substr(end + 4));
    if (!s) die(s.error().message());
    return std::move(*s);
}

std::shared_ptr<spdy::Stream> open(spdy::Session& s, std::string_view type, spdy::Headers h = {}) {
    h.emplace_back(std::string(berth::stream::kStreamTypeHeader), std::string(type));
    auto r = s.open(h);
    if (!r) die("open stream: " + r.error().message());
    return *r;
}

// Reads a stream to its end as a relaying client does (whole chunks, no copy); the byte count.
size_t drain(spdy::Stream& st, std::string* keep = nullptr) {
    std::string chunk;
    size_t total = 0;
    for (;;) {
        auto n = st.read_chunk(chunk);
        if (!n || *n == 0) return total;
        total += *n;
        if (keep) keep->append(chunk);
    }
}

// CPU time (user + system, seconds) of process `pid` so far, all its threads.
double process_cpu(pid_t pid) {
    uint64_t ticks = berth::sys::process_stat_number(pid, 14) + berth::sys::process_stat_number(pid, 15);
    return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Busy CPU time of the whole machine so far (every CPU, not idle or waiting for I/O), seconds.
double machine_busy() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    return (user + nice + system + irq + softirq + steal) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Reads an HTTP/1.0 answer to EOF from `fd`; the byte count.
size_t drain_fd(int fd) {
    std::vector<char> buf(256 * 1024);
    size_t total = 0;
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) total += static_cast<size_t>(n);
    return total;
}

}  // namespace

int main(int argc, char** argv) {
    berth::bench::init("stream_bench");
    std::string berthd, berthctl, berth, source;
    int rounds = 30, megabytes = 256, transfers = 5;
    berth::bench::parse_flags(argc, argv,
                              {{"--berthd", &berthd},
                               {"--berthctl", &berthctl},
                               {"--berth", &berth},
                               {"--source", &source},
                               {"--rounds", &rounds},
                               {"--megabytes", &megabytes},
                               {"--transfers", &transfers}},
                              "usage: stream_bench --berthd PATH --berthctl PATH --berth PATH --source REPO_DIR "
                              "[--rounds N] [--megabytes N] [--transfers N]");

    const std::string& tmp = berth::bench::make_temp_dir("streamsrv-bench");
    berth::bench::Daemon& server =
        berth::bench::start_berthd({.berthd = berthd, .dir = tmp, .busybox_from = source, .berthctl = berthctl});
    const pid_t daemon = server.pid;
    Stub& stub = *server.stub;
    const std::string& state = server.state_dir;

    // One pod, one container: busybox httpd serving a file of `megabytes` MiB.
    v1::RunPodSandboxRequest rp;
    auto* pc = rp.mutable_config();
    pc->mutable_metadata()->set_name("streamsrv-bench");
    pc->mutable_metadata()->set_namespace_("bench");
    pc->mutable_metadata()->set_uid("streamsrv-bench");
    pc->set_log_directory(tmp + "/logs");
    std::filesystem::create_directories(pc->log_directory());
    const std::string pod = call(stub, &Stub::RunPodSandbox, "RunPodSandbox", rp).pod_sandbox_id();
    v1::CreateContainerRequest cc;
    cc.set_pod_sandbox_id(pod);
    *cc.mutable_sandbox_config() = *pc;
    auto* c = cc.mutable_config();
    c->mutable_metadata()->set_name("httpd");
    c->mutable_image()->set_image(berth::bench::kBusyboxImage);
    c->add_command("/bin/sh");
    c->add_args("-c");
    c->add_args("mkdir -p /www && head -c " + std::to_string(megabytes) +
                "m /dev/zero > /www/big && echo ok > /www/ready && exec httpd -f -p " + std::to_string(kHttpdPort) +
                " -h /www");
    c->set_log_path("httpd.log");
    std::string ctr = call(stub, &Stub::CreateContainer, "CreateContainer", cc).container_id();
    v1::StartContainerRequest sc;
    sc.set_container_id(ctr);
    call(stub, &Stub::StartContainer, "StartContainer", sc);

    // The runtime root berthd uses for the libberth handler, found by asking `berth list` where the container is.
    std::string runtime_root = state + "/runtimes/berth";
    if (run({berth, "--root", runtime_root, "state", ctr}) != 0)
        die("cannot find container " + ctr + " under " + runtime_root + " for the bare berth exec baseline");

    auto exec_sync = [&] {
        v1::ExecSyncRequest r;
        r.set_container_id(ctr);
        r.add_cmd("true");
        r.set_timeout(30);
        auto resp = call(stub, &Stub::ExecSync, "ExecSync", r);
        if (resp.exit_code() != 0) die("ExecSync true: exit " + std::to_string(resp.exit_code()));
    };
    // Where a streaming exec's time goes, phase by phase (medians printed with the totals).
    std::vector<double> ph_rpc, ph_upgrade, ph_open, ph_output, ph_status;
    auto exec_stream = [&] {
        auto t = Clock::now();
        auto lap = [&t](std::vector<double>& into) {
            into.push_back(ms_since(t));
            t = Clock::now();
        };
        v1::ExecRequest r;
        r.set_container_id(ctr);
        r.add_cmd("true");
        r.set_stdout(true);
        r.set_stderr(true);
        std::string url = call(stub, &Stub::Exec, "Exec", r).url();
        lap(ph_rpc);
        auto s = spdy_connect(url, std::string(berth::stream::kRemoteCommandV4));
        lap(ph_upgrade);
        auto err = open(*s, berth::stream::kStreamTypeError);
        auto out = open(*s, berth::stream::kStreamTypeStdout);
        auto errout = open(*s, berth::stream::kStreamTypeStderr);
        lap(ph_open);
        drain(*out);
        drain(*errout);
        lap(ph_output);
        std::string status;
        drain(*err, &status);
        if (status.find("Success") == std::string::npos) die("streaming exec true: " + status);
        s->close();
        lap(ph_status);
    };
    auto bare = [&] {
        if (run({berth, "--root", runtime_root, "exec", ctr, "true"}) != 0) die("berth exec true failed");
    };
    // The file httpd serves is written first and flushed, so no writeback of it runs under the measurements.
    for (int i = 0;; ++i) {
        v1::ExecSyncRequest r;
        r.set_container_id(ctr);
        for (const char* a : {"sh", "-c", "test -f /www/ready && sync"}) r.add_cmd(a);
        r.set_timeout(120);
        if (call(stub, &Stub::ExecSync, "ExecSync", r).exit_code() == 0) break;
        if (i == 600) die("the container never wrote /www/big");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // Warm up each path once.
    exec_sync();
    exec_stream();
    bare();
    std::vector<double> t_sync, t_stream, t_bare;
    for (int i = 0; i < rounds; ++i) {
        auto t0 = Clock::now();
        bare();
        t_bare.push_back(ms_since(t0));
        t0 = Clock::now();
        exec_sync();
        t_sync.push_back(ms_since(t0));
        t0 = Clock::now();
        exec_stream();
        t_stream.push_back(ms_since(t0));
    }
    double mb = median(t_bare), ms = median(t_sync), mst = median(t_stream);
    std::printf("stream_bench: exec round trip of `true`, median of %d\n", rounds);
    std::printf("  bare berth exec      %8.2f ms\n", mb);
    std::printf("  ExecSync             %8.2f ms   ratio %.2fx (goal < 2x)\n", ms, ms / mb);
    std::printf("  Exec over SPDY       %8.2f ms   ratio %.2fx (goal < 2x)\n", mst, mst / mb);
    std::printf("    phases: Exec rpc %.2f, upgrade %.2f, open streams %.2f, until output ends %.2f, status %.2f ms\n",
                median(ph_rpc), median(ph_upgrade), median(ph_open), median(ph_output), median(ph_status));

    // Port-forward throughput.
    v1::PortForwardRequest pf;
    pf.set_pod_sandbox_id(pod);
    pf.add_port(kHttpdPort);
    const std::string get_big = "GET /big HTTP/1.0\r\n\r\n";
    auto forwarded = [&](const std::string& path, size_t* bytes) {
        std::string url = call(stub, &Stub::PortForward, "PortForward", pf).url();
        auto s = spdy_connect(url, std::string(berth::stream::kPortForwardProtocol));
        spdy::Headers h = {{std::string(berth::stream::kPortHeader), std::to_string(kHttpdPort)},
                           {std::string(berth::stream::kRequestIdHeader), "0"}};
        auto err = open(*s, berth::stream::kStreamTypeError, h);
        auto data = open(*s, berth::stream::kStreamTypeData, h);
        (void)err->close_write();
        std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
        if (!data->write(std::span<const char>(req.data(), req.size())) || !data->close_write()) die("pf write");
        auto t0 = Clock::now();
        std::string keep;
        *bytes = drain(*data, path == "/ready" ? &keep : nullptr);
        double secs = ms_since(t0) / 1000.0;
        s->close();
        return secs;
    };
    size_t n = 0;
    for (int i = 0; i < 300; ++i) {
        forwarded("/ready", &n);
        if (n > 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (n == 0) die("httpd in the pod never answered");
    // Direct: a socket made in the pod's network namespace (a thread that setns'es), connected to its loopback.
    auto direct = [&](size_t* bytes) {
        double secs = 0;
        std::thread t([&] {
            int ns = ::open((state + "/pods/" + pod + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
            if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) die("setns into the pod");
            ::close(ns);
            auto fd = tcp_connect(kHttpdPort);
            if (!fd) die("direct connect");
            if (::write(fd.get(), get_big.data(), get_big.size()) < 0) die("direct write");
            auto t0 = Clock::now();
            *bytes = drain_fd(fd.get());
            secs = ms_since(t0) / 1000.0;
        });
        t.join();
        return secs;
    };
    std::vector<double> r_pf, r_direct;
    // CPU spent per GiB moved, summed over the transfers: the machine's (httpd, the client, berthd, the kernel's
    // network work wherever it runs, and anything else running), berthd's and this client's.
    struct Cpu {
        double machine = 0, berthd = 0, client = 0, gib = 0;
    } cpu_direct, cpu_pf;
    auto measured = [&](Cpu& c, auto&& transfer) {
        size_t got = 0;
        double m0 = machine_busy(), b0 = process_cpu(daemon), c0 = process_cpu(::getpid());
        double secs = transfer(&got);
        c.machine += machine_busy() - m0;
        c.berthd += process_cpu(daemon) - b0;
        c.client += process_cpu(::getpid()) - c0;
        c.gib += static_cast<double>(got) / (1 << 30);
        return got / secs / (1 << 20);
    };
    for (int i = 0; i < transfers; ++i) {
        r_direct.push_back(measured(cpu_direct, direct));
        r_pf.push_back(measured(cpu_pf, [&](size_t* got) { return forwarded("/big", got); }));
    }
    double d = median(r_direct), p = median(r_pf);
    std::printf("stream_bench: port-forward throughput, GET of %d MiB, median of %d\n", megabytes, transfers);
    std::printf("  direct (pod netns)   %8.1f MiB/s   CPU s/GiB: machine %.2f, client %.2f\n", d,
                cpu_direct.machine / cpu_direct.gib, cpu_direct.client / cpu_direct.gib);
    std::printf("  SPDY port-forward    %8.1f MiB/s   %.0f%% of direct (goal >= 50%%)\n", p, 100.0 * p / d);
    std::printf("                                       CPU s/GiB: machine %.2f, client %.2f, berthd %.2f\n",
                cpu_pf.machine / cpu_pf.gib, cpu_pf.client / cpu_pf.gib, cpu_pf.berthd / cpu_pf.gib);
    berth::bench::cleanup();
    return 0;
}
