#include "cri/metrics.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

#include "common/log.hpp"

namespace berth::cri {
namespace {

const char* type_text(MetricFamily::Type t) {
    switch (t) {
        case MetricFamily::Type::counter: return "counter";
        case MetricFamily::Type::gauge: return "gauge";
        case MetricFamily::Type::histogram: return "histogram";
    }
    return "untyped";
}

// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; label names the same without ':'.
bool valid_name(std::string_view s, bool label) {
    if (s.empty()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

[[noreturn]] void misuse(const std::string& what) {
    log::error("metrics: {}", what);
    std::abort();
}

}  // namespace

std::string escape_text(std::string_view s, bool quotes) {
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quotes)
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);
}

// ---- families ----

void MetricFamily::check_arity(const LabelValues& values) const {
    if (values.size() != label_names_.size())
        misuse(fmt::format("{}: {} label values for {} labels", name_, values.size(), label_names_.size()));
}

std::string MetricFamily::series(const std::string& name, const LabelValues& values, const std::string& extra) const {
    std::string out = name;
    if (values.empty() && extra.empty()) return out;
    out += '{';
    for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ',';
        out += fmt::format("{}=\"{}\"", label_names_[i], escape_text(values[i], true));
    }
    if (!extra.empty()) {
        if (!values.empty()) out += ',';
        out += extra;
    }
    out += '}';
    return out;
}

void MetricFamily::render(std::string& out) const {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, escape_text(help_, false), name_, type_text(type_));
    render_samples(out);
}

void Counter::inc(const LabelValues& labels, double amount) {
    check_arity(labels);
    if (!(amount >= 0)) return;
    std::lock_guard lock(mu_);
    values_[labels] += amount;
}

double Counter::value(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = values_.find(labels);
    return it == values_.end() ? 0 : it->second;
}

void Counter::render_samples(std::string& out) const {
    std::lock_guard lock(mu_);
    // A counter without labels is always shown, 0 until it moves: a scraper sees the series exists.
    if (values_.empty() && label_names_.empty()) out += fmt::format("{} 0\n", name_);
    for (const auto& [labels, v] : values_) out += fmt::format("{} {}\n", series(name_, labels), format_value(v));
}

void Gauge::set(const LabelValues& labels, double v) {
    check_arity(labels);
    std::lock_guard lock(mu_);
    values_[labels] = v;
}

void Gauge::add(const LabelValues& labels, double delta) {
    check_arity(labels);
    std::lock_guard lock(mu_);
    values_[labels] += delta;
}

double Gauge::value(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = values_.find(labels);
    return it == values_.end() ? 0 : it->second;
}

void Gauge::render_samples(std::string& out) const {
    if (reader_) {
        // The owner's callback runs without our lock; its samples are checked like set()'s.
        for (const auto& [labels, v] : reader_()) {
            check_arity(labels);
            out += fmt::format("{} {}\n", series(name_, labels), format_value(v));
        }
        return;
    }
    std::lock_guard lock(mu_);
    if (values_.empty() && label_names_.empty()) out += fmt::format("{} 0\n", name_);
    for (const auto& [labels, v] : values_) out += fmt::format("{} {}\n", series(name_, labels), format_value(v));
}

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> bounds)
    : MetricFamily(std::move(name), std::move(help), Type::histogram, std::move(label_names)),
      bounds_(std::move(bounds)) {
    for (size_t i = 0; i < bounds_.size(); ++i)
        if (std::isnan(bounds_[i]) || std::isinf(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
            misuse(fmt::format("{}: bucket bounds must be finite and ascending", name_));
    for (const auto& l : label_names_)
        if (l == "le") misuse(fmt::format("{}: \"le\" is the bucket label of a histogram", name_));
}

std::vector<double> Histogram::latency_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

void Histogram::observe(const LabelValues& labels, double v) {
    check_arity(labels);
    std::lock_guard lock(mu_);
    Series& s = series_[labels];
    if (s.buckets.empty()) s.buckets.assign(bounds_.size(), 0);
    for (size_t i = 0; i < bounds_.size(); ++i)
        if (v <= bounds_[i]) {
            ++s.buckets[i];
            break;
        }
    ++s.count;
    s.sum += v;
}

uint64_t Histogram::count(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = series_.find(labels);
    return it == series_.end() ? 0 : it->second.count;
}

double Histogram::sum(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = series_.find(labels);
    return it == series_.end() ? 0 : it->second.sum;
}

void Histogram::render_samples(std::string& out) const {
    std::lock_guard lock(mu_);
    auto one = [&](const LabelValues& labels, const Series& s) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i < bounds_.size(); ++i) {
            cumulative += s.buckets.empty() ? 0 : s.buckets[i];
            out += fmt::format("{} {}\n", series(name_ + "_bucket", labels, fmt::format("le=\"{}\"", format_value(bounds_[i]))),
                               cumulative);
        }
        out += fmt::format("{} {}\n", series(name_ + "_bucket", labels, "le=\"+Inf\""), s.count);
        out += fmt::format("{} {}\n", series(name_ + "_sum", labels), format_value(s.sum));
        out += fmt::format("{} {}\n", series(name_ + "_count", labels), s.count);
    };
    if (series_.empty() && label_names_.empty()) one({}, Series{});
    for (const auto& [labels, s] : series_) one(labels, s);
}

// ---- registry ----

MetricFamily& MetricsRegistry::add(std::shared_ptr<MetricFamily> f, int callback_id) {
    std::lock_guard lock(mu_);
    for (const auto& [id, existing] : families_)
        if (existing->name() == f->name()) misuse(fmt::format("{}: registered twice", f->name()));
    families_.emplace_back(callback_id, f);
    return *f;
}

Counter& MetricsRegistry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
    if (!valid_name(name, false)) misuse(fmt::format("\"{}\" is not a metric name", name));
    for (const auto& l : label_names)
        if (!valid_name(l, true) || l.starts_with("__")) misuse(fmt::format("{}: \"{}\" is not a label name", name, l));
    return static_cast<Counter&>(
        add(std::make_shared<Counter>(std::move(name), std::move(help), std::move(label_names)), 0));
}

Gauge& MetricsRegistry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
    if (!valid_name(name, false)) misuse(fmt::format("\"{}\" is not a metric name", name));
    for (const auto& l : label_names)
        if (!valid_name(l, true) || l.starts_with("__")) misuse(fmt::format("{}: \"{}\" is not a label name", name, l));
    return static_cast<Gauge&>(add(std::make_shared<Gauge>(std::move(name), std::move(help), std::move(label_names)), 0));
}

Histogram& MetricsRegistry::histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                      std::vector<double> bounds) {
    if (!valid_name(name, false)) misuse(fmt::format("\"{}\" is not a metric name", name));
    for (const auto& l : label_names)
        if (!valid_name(l, true) || l.starts_with("__")) misuse(fmt::format("{}: \"{}\" is not a label name", name, l));
    return static_cast<Histogram&>(add(
        std::make_shared<Histogram>(std::move(name), std::move(help), std::move(label_names), std::move(bounds)), 0));
}

int MetricsRegistry::gauge_callback(std::string name, std::string help, std::vector<std::string> label_names,
                                    Gauge::Reader reader) {
    if (!valid_name(name, false)) misuse(fmt::format("\"{}\" is not a metric name", name));
    for (const auto& l : label_names)
        if (!valid_name(l, true) || l.starts_with("__")) misuse(fmt::format("{}: \"{}\" is not a label name", name, l));
    if (!reader) misuse(fmt::format("{}: a callback gauge needs a reader", name));
    int id;
    {
        std::lock_guard lock(mu_);
        id = next_callback_++;
    }
    add(std::make_shared<Gauge>(std::move(name), std::move(help), std::move(label_names), std::move(reader)), id);
    return id;
}

void MetricsRegistry::remove_callback(int id) {
    if (id <= 0) return;
    std::lock_guard lock(mu_);
    std::erase_if(families_, [id](const auto& e) { return e.first == id; });
}

std::string MetricsRegistry::render() const {
    std::vector<std::shared_ptr<MetricFamily>> families;
    {
        std::lock_guard lock(mu_);
        for (const auto& [id, f] : families_) families.push_back(f);
    }
    std::string out;
    for (const auto& f : families) f->render(out);
    return out;
}

// ---- address ----

namespace {

struct ParsedAddress {
    sockaddr_storage addr{};
    socklen_t len = 0;
};

Result<ParsedAddress> parse_address(const std::string& address) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0)
        return fail("metrics_address: \"{}\" is not host:port (an IP address and a port)", address);
    std::string host = address.substr(0, colon), port_text = address.substr(colon + 1);
    char* end = nullptr;
    long port = std::strtol(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port < 0 || port > 65535)
        return fail("metrics_address: \"{}\": \"{}\" is not a port number", address, port_text);
    ParsedAddress p;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&p.addr);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(static_cast<uint16_t>(port));
        if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr) != 1)
            return fail("metrics_address: \"{}\": \"{}\" is not an IPv6 address", address, host);
        if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
            return fail("metrics_address: \"{}\": the unspecified address serves every interface: name a loopback or "
                        "one of the node's addresses",
                        address);
        p.len = sizeof(sockaddr_in6);
        return p;
    }
    auto* a4 = reinterpret_cast<sockaddr_in*>(&p.addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1)
        return fail("metrics_address: \"{}\": \"{}\" is not an IPv4 address (IPv6 goes in brackets; no host names)",
                    address, host);
    if (a4->sin_addr.s_addr == htonl(INADDR_ANY))
        return fail("metrics_address: \"{}\": the unspecified address serves every interface: name a loopback or one "
                    "of the node's addresses",
                    address);
    p.len = sizeof(sockaddr_in);
    return p;
}

}  // namespace

Result<void> check_metrics_address(const std::string& address) {
    BERTH_TRY(parse_address(address));
    return {};
}

// ---- server ----

namespace {

// How long one client may take to send its request and read the answer.
constexpr int kClientTimeoutMs = 5000;
// A GET with headers is far below this; a longer request is not one we serve.
constexpr size_t kMaxRequest = 8192;

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
        int r = ::poll(&p, 1, kClientTimeoutMs);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

std::string response(int code, std::string_view reason, std::string_view content_type, std::string_view body,
                     bool head, std::string_view extra_headers = "") {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n", code, reason,
        content_type, body.size(), extra_headers);
    if (!head) out += body;
    return out;
}

}  // namespace

MetricsServer::~MetricsServer() {
    stop();
}

Result<void> MetricsServer::start(const std::string& address) {
    BERTH_ASSIGN(ParsedAddress a, parse_address(address));
    UniqueFd fd(::socket(a.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return fail_sys("metrics: socket for {}", address);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a.addr), a.len) != 0)
        return fail_sys("metrics: bind {}", address);
    if (::listen(fd.get(), 16) != 0) return fail_sys("metrics: listen on {}", address);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0)
        return fail_sys("metrics: getsockname of {}", address);
    uint16_t port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    bound_ = address.substr(0, address.rfind(':')) + ":" + std::to_string(port);
    UniqueFd stop_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_fd) return fail_sys("metrics: eventfd");
    listen_ = std::move(fd);
    stop_ = std::move(stop_fd);
    thread_ = std::thread([this] { loop(); });
    return {};
}

void MetricsServer::stop() {
    if (thread_.joinable()) {
        uint64_t v = 1;
        ssize_t ignored = ::write(stop_.get(), &v, sizeof v);
        (void)ignored;
        thread_.join();
    }
    listen_.reset();
    stop_.reset();
}

void MetricsServer::loop() {
    for (;;) {
        struct pollfd p[2] = {{.fd = listen_.get(), .events = POLLIN, .revents = 0},
                              {.fd = stop_.get(), .events = POLLIN, .revents = 0}};
        int r = ::poll(p, 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            log::error("metrics: poll: {}", std::strerror(errno));
            return;
        }
        if (p[1].revents != 0) return;
        if (p[0].revents == 0) continue;
        UniqueFd client(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!client) continue;  // the peer went away, or EMFILE: the next poll tries again
        serve(client.get());
    }
}

void MetricsServer::serve(int fd) {
    // One request per connection, served on this thread: a scrape is small and rare, so a second scraper waits
    // for the first instead of the daemon keeping more threads.
    std::string req;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kClientTimeoutMs);
    while (req.find("\r\n\r\n") == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return;
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        char buf[2048];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return;
        req.append(buf, static_cast<size_t>(n));
        if (req.size() > kMaxRequest) {
            send_all(fd, response(431, "Request Header Fields Too Large", "text/plain", "request too large\n", false));
            return;
        }
    }
    // Request line: METHOD SP target SP HTTP/1.x
    std::string_view line(req.data(), req.find("\r\n"));
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1 || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
        send_all(fd, response(400, "Bad Request", "text/plain", "bad request line\n", false));
        return;
    }
    std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view path = target.substr(0, target.find('?'));
    bool head = method == "HEAD";
    if (path != "/metrics") {
        send_all(fd, response(404, "Not Found", "text/plain", "berthd serves /metrics only\n", head));
        return;
    }
    if (method != "GET" && !head) {
        send_all(fd, response(405, "Method Not Allowed", "text/plain", "GET /metrics\n", false, "Allow: GET, HEAD\r\n"));
        return;
    }
    send_all(fd, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", registry_.render(), head));
}

}  // namespace berth::cri
