// The metrics registry's text format (checked line by line against the exposition format 0.0.4), its thread-safety,
// scrape-time callbacks, and the HTTP server over loopback (port 0).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "cri/metrics.hpp"

namespace berth::cri {
namespace {

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in:\n" << (haystack)

TEST(MetricsText, CounterGaugeWithHelpTypeAndEscaping) {
    MetricsRegistry r;
    Counter& c = r.counter("t_requests_total", "Requests.\nSecond line with a \\ backslash.", {"method", "code"});
    c.inc({"Get\"x\"", "OK"});
    c.inc({"Get\"x\"", "OK"}, 2.5);
    c.inc({"a\\b\nc", "NOT_FOUND"});
    c.inc({"Get\"x\"", "OK"}, -1);  // ignored: counters only go up
    Gauge& g = r.gauge("t_temperature", "A gauge.");
    g.set({}, -3);
    g.add({}, 1);
    std::string text = r.render();
    EXPECT_EQ(text,
              "# HELP t_requests_total Requests.\\nSecond line with a \\\\ backslash.\n"
              "# TYPE t_requests_total counter\n"
              "t_requests_total{method=\"Get\\\"x\\\"\",code=\"OK\"} 3.5\n"
              "t_requests_total{method=\"a\\\\b\\nc\",code=\"NOT_FOUND\"} 1\n"
              "# HELP t_temperature A gauge.\n"
              "# TYPE t_temperature gauge\n"
              "t_temperature -2\n");
    EXPECT_EQ(c.value({"Get\"x\"", "OK"}), 3.5);
    EXPECT_EQ(g.value(), -2);
}

TEST(MetricsText, UnlabelledFamiliesShowZeroBeforeTheFirstUpdate) {
    MetricsRegistry r;
    r.counter("t_c_total", "c");
    r.histogram("t_h_seconds", "h", {}, {1});
    std::string text = r.render();
    EXPECT_CONTAINS(text, "\nt_c_total 0\n");
    EXPECT_CONTAINS(text, "\nt_h_seconds_bucket{le=\"1\"} 0\nt_h_seconds_bucket{le=\"+Inf\"} 0\n");
    EXPECT_CONTAINS(text, "\nt_h_seconds_sum 0\nt_h_seconds_count 0\n");
}

TEST(MetricsText, HistogramBucketsAreCumulative) {
    MetricsRegistry r;
    Histogram& h = r.histogram("t_latency_seconds", "Latency.", {"rpc"}, {0.01, 0.1, 1});
    for (double v : {0.005, 0.01, 0.05, 0.5, 3.0}) h.observe({"Version"}, v);
    h.observe({"Status"}, 0.2);
    std::string text = r.render();
    EXPECT_CONTAINS(text, "# TYPE t_latency_seconds histogram\n");
    EXPECT_CONTAINS(text,
                    "t_latency_seconds_bucket{rpc=\"Version\",le=\"0.01\"} 2\n"
                    "t_latency_seconds_bucket{rpc=\"Version\",le=\"0.1\"} 3\n"
                    "t_latency_seconds_bucket{rpc=\"Version\",le=\"1\"} 4\n"
                    "t_latency_seconds_bucket{rpc=\"Version\",le=\"+Inf\"} 5\n"
                    "t_latency_seconds_sum{rpc=\"Version\"} 3.565\n"
                    "t_latency_seconds_count{rpc=\"Version\"} 5\n");
    EXPECT_CONTAINS(text, "t_latency_seconds_bucket{rpc=\"Status\",le=\"0.1\"} 0\n");
    EXPECT_CONTAINS(text, "t_latency_seconds_bucket{rpc=\"Status\",le=\"1\"} 1\n");
    EXPECT_EQ(h.count({"Version"}), 5u);
    EXPECT_DOUBLE_EQ(h.sum({"Version"}), 3.565);
}

TEST(MetricsText, SpecialValues) {
    EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
    EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
    EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
    EXPECT_EQ(format_value(42), "42");
    EXPECT_EQ(format_value(0.25), "0.25");
}

TEST(MetricsRegistry, CallbackGaugesAreReadAtScrapeAndCanBeRemoved) {
    MetricsRegistry r;
    int sessions = 2;
    int id = r.gauge_callback("t_sessions", "Sessions.", {"kind"}, [&] {
        return std::vector<std::pair<LabelValues, double>>{{{"exec"}, double(sessions)}, {{"attach"}, 1}};
    });
    EXPECT_CONTAINS(r.render(), "t_sessions{kind=\"exec\"} 2\nt_sessions{kind=\"attach\"} 1\n");
    sessions = 5;
    EXPECT_CONTAINS(r.render(), "t_sessions{kind=\"exec\"} 5\n");
    r.remove_callback(id);
    EXPECT_EQ(r.render().find("t_sessions"), std::string::npos);
    // The name is free again.
    r.gauge_callback("t_sessions", "Again.", {}, [] { return std::vector<std::pair<LabelValues, double>>{{{}, 7}}; });
    EXPECT_CONTAINS(r.render(), "t_sessions 7\n");
}

TEST(MetricsRegistry, ConcurrentUpdatesAndScrapesLoseNothing) {
    MetricsRegistry r;
    Counter& c = r.counter("t_total", "t", {"thread"});
    Histogram& h = r.histogram("t_seconds", "t", {}, Histogram::latency_buckets());
    constexpr int kThreads = 4, kEach = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                c.inc({std::to_string(t % 2)});
                h.observe({}, 0.003);
            }
        });
    std::thread scraper([&] {
        for (int i = 0; i < 200; ++i) (void)r.render();
    });
    for (auto& t : threads) t.join();
    scraper.join();
    EXPECT_EQ(c.value({"0"}) + c.value({"1"}), kThreads * kEach);
    EXPECT_EQ(h.count(), static_cast<uint64_t>(kThreads * kEach));
    EXPECT_CONTAINS(r.render(), "t_seconds_bucket{le=\"0.005\"} 80000\n");
}

TEST(MetricsAddress, OnlyIpLiteralsThatAreNotTheUnspecifiedAddress) {
    EXPECT_TRUE(check_metrics_address("127.0.0.1:9323"));
    EXPECT_TRUE(check_metrics_address("[::1]:0"));
    EXPECT_TRUE(check_metrics_address("192.168.1.5:9323"));
    EXPECT_FALSE(check_metrics_address("0.0.0.0:9323"));
    EXPECT_FALSE(check_metrics_address("[::]:9323"));
    EXPECT_FALSE(check_metrics_address("localhost:9323"));
    EXPECT_FALSE(check_metrics_address("::1:9323"));
    EXPECT_FALSE(check_metrics_address(":9323"));
    EXPECT_FALSE(check_metrics_address("127.0.0.1:x"));
}

// One HTTP exchange with 127.0.0.1:<port>: the whole response (the server closes the connection).
std::string http(int port, const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return "connect failed";
    }
    (void)::write(fd, request.data(), request.size());
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
}

TEST(MetricsServer, ServesMetricsOnlyAndStops) {
    MetricsRegistry r;
    r.counter("t_scrapes_total", "t").inc();
    MetricsServer server(r);
    ASSERT_TRUE(server.start("127.0.0.1:0"));
    const std::string& addr = server.address();
    ASSERT_TRUE(addr.starts_with("127.0.0.1:")) << addr;
    int port = std::stoi(addr.substr(addr.rfind(':') + 1));
    ASSERT_GT(port, 0);

    std::string ok = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
    EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 OK\r\n")) << ok;
    EXPECT_CONTAINS(ok, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
    EXPECT_CONTAINS(ok, "\r\n\r\n# HELP t_scrapes_total t\n# TYPE t_scrapes_total counter\nt_scrapes_total 1\n");
    std::string body = ok.substr(ok.find("\r\n\r\n") + 4);
    EXPECT_CONTAINS(ok, "Content-Length: " + std::to_string(body.size()) + "\r\n");

    std::string head = http(port, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 200 OK\r\n")) << head;
    EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
    EXPECT_TRUE(http(port, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 ")) << http(port, "GET / HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(http(port, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    EXPECT_TRUE(http(port, "garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));

    server.stop();
    EXPECT_EQ(http(port, "GET /metrics HTTP/1.1\r\n\r\n"), "connect failed");
}

}  // namespace
}  // namespace berth::cri
