// berthd's metrics: a small registry of counters, gauges and histograms with label sets, rendered in the
// Prometheus text exposition format 0.0.4, and the HTTP server that answers GET /metrics (one thread).
//
// Families are created once (at start-up, by whoever owns the numbers) and live as long as the registry; a
// family's samples are keyed by the values of its labels, in the order of its label names. Gauges that are cheaper
// to read than to keep up to date (pods and containers by state, streaming sessions) are registered as callbacks
// run at scrape time.
//
// Thread-safety: every member of every class here may be called from any thread at once. Callbacks run on the
// scraping thread with no lock of the registry held, so they may take their own locks.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace berth::cri {

// Label values in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class MetricFamily {
public:
    enum class Type { counter, gauge, histogram };

    MetricFamily(std::string name, std::string help, Type type, std::vector<std::string> label_names)
        : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)) {}
    virtual ~MetricFamily() = default;
    MetricFamily(const MetricFamily&) = delete;
    MetricFamily& operator=(const MetricFamily&) = delete;

    const std::string& name() const { return name_; }
    Type type() const { return type_; }
    // Appends the HELP and TYPE lines and every sample to `out`.
    void render(std::string& out) const;

protected:
    // Appends the sample lines only.
    virtual void render_samples(std::string& out) const = 0;
    // `name{l1="v1",l2="v2"<extra>}` (no braces without labels), label values escaped.
    std::string series(const std::string& name, const LabelValues& values, const std::string& extra = "") const;
    // Aborts (a programming error, not input) unless `values` has one value per label name.
    void check_arity(const LabelValues& values) const;

    const std::string name_, help_;
    const Type type_;
    const std::vector<std::string> label_names_;
};

// A monotonic count. inc() with a negative amount is a programming error and is ignored.
class Counter final : public MetricFamily {
public:
    Counter(std::string name, std::string help, std::vector<std::string> label_names)
        : MetricFamily(std::move(name), std::move(help), Type::counter, std::move(label_names)) {}
    void inc(const LabelValues& labels = {}, double amount = 1);
    double value(const LabelValues& labels = {}) const;

private:
    void render_samples(std::string& out) const override;
    mutable std::mutex mu_;
    std::map<LabelValues, double> values_;  // guarded by mu_
};

// A value that goes up and down, set by its owner or read from a callback at scrape time (not both).
class Gauge final : public MetricFamily {
public:
    // The samples of a callback gauge: label values -> value.
    using Reader = std::function<std::vector<std::pair<LabelValues, double>>()>;

    Gauge(std::string name, std::string help, std::vector<std::string> label_names, Reader reader = {})
        : MetricFamily(std::move(name), std::move(help), Type::gauge, std::move(label_names)),
          reader_(std::move(reader)) {}
    void set(const LabelValues& labels, double v);
    void add(const LabelValues& labels, double delta);
    double value(const LabelValues& labels = {}) const;

private:
    void render_samples(std::string& out) const override;
    const Reader reader_;
    mutable std::mutex mu_;
    std::map<LabelValues, double> values_;  // guarded by mu_
};

// Observations counted into fixed buckets (upper bounds, ascending; +Inf is implied), with their sum and count.
class Histogram final : public MetricFamily {
public:
    Histogram(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds);
    void observe(const LabelValues& labels, double v);
    // The number of observations and their sum for `labels` (0 when none).
    uint64_t count(const LabelValues& labels = {}) const;
    double sum(const LabelValues& labels = {}) const;

    // Latency buckets in seconds, from 1 ms to 2 minutes (CRI calls range from a status read to an image pull).
    static std::vector<double> latency_buckets();

private:
    struct Series {
        std::vector<uint64_t> buckets;  // per bound, not cumulative
        uint64_t count = 0;
        double sum = 0;
    };
    void render_samples(std::string& out) const override;
    const std::vector<double> bounds_;
    mutable std::mutex mu_;
    std::map<LabelValues, Series> series_;  // guarded by mu_
};

class MetricsRegistry {
public:
    // Names must be valid Prometheus metric names and unique in the registry (a duplicate aborts: it is a
    // programming error). The returned reference lives as long as the registry.
    Counter& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
    Gauge& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
    Histogram& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                         std::vector<double> bounds);
    // A gauge whose samples `reader` returns at each scrape. The hook for parts that keep their own state (the
    // streaming server's sessions): they register at start-up and unregister with the returned id before they go.
    int gauge_callback(std::string name, std::string help, std::vector<std::string> label_names, Gauge::Reader reader);
    void remove_callback(int id);

    // The whole registry in the text format 0.0.4, families in registration order.
    std::string render() const;

private:
    MetricFamily& add(std::shared_ptr<MetricFamily> f, int callback_id);

    mutable std::mutex mu_;
    // (callback id or 0, family) in registration order; shared so a scrape renders a family removed meanwhile.
    std::vector<std::pair<int, std::shared_ptr<MetricFamily>>> families_;  // guarded by mu_
    int next_callback_ = 1;                                                  // guarded by mu_
};

// The Prometheus text format's escaping: \\ and \n, and \" too when `quotes` (label values; not HELP text).
std::string escape_text(std::string_view s, bool quotes);
// A sample value as the format writes it: shortest round-trip decimal, +Inf, -Inf, NaN.
std::string format_value(double v);

// "host:port" where host is an IPv4 literal or a bracketed IPv6 literal, neither the unspecified address: what
// metrics_address accepts. Errors say what is wrong with `address`.
[[nodiscard]] Result<void> check_metrics_address(const std::string& address);

// A minimal HTTP/1.1 server on one thread: GET (and HEAD) /metrics answers the registry's text, anything else 404
// or 405; one request per connection (Connection: close), a slow client is dropped after a few seconds.
class MetricsServer {
public:
    explicit MetricsServer(const MetricsRegistry& registry) : registry_(registry) {}
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // Binds `address` (check_metrics_address's form; port 0 picks one) and starts the thread.
    [[nodiscard]] Result<void> start(const std::string& address);
    // The bound address, "host:port" with the real port.
    const std::string& address() const { return bound_; }
    // Stops the thread and closes the socket; idempotent.
    void stop();

private:
    void loop();
    void serve(int fd);

    const MetricsRegistry& registry_;
    UniqueFd listen_, stop_;
    std::string bound_;
    std::thread thread_;
};

}  // namespace berth::cri
