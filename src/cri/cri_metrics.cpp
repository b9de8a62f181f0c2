#include "cri/cri_metrics.hpp"

#include <chrono>
#include <string_view>

#include "common/log.hpp"
#include "cri/cri_context.hpp"
#include "linux/namespaces.hpp"

namespace berth::cri {

CriMetrics::CriMetrics(MetricsRegistry& r)
    : registry(r),
      rpc_seconds(r.histogram("berthd_cri_request_duration_seconds",
                              "Time from the arrival of a CRI rpc to its status, by service and method.",
                              {"service", "method"}, Histogram::latency_buckets())),
      rpc_errors(r.counter("berthd_cri_request_errors_total",
                           "CRI rpcs that ended with a status other than OK, by service, method and gRPC code.",
                           {"service", "method", "code"})),
      image_pulls(r.counter("berthd_image_pulls_total", "PullImage calls that ran a pull, failed or not.")),
      image_pull_failures(r.counter("berthd_image_pull_failures_total", "PullImage calls whose pull failed.")),
      image_pull_bytes(r.counter("berthd_image_pull_bytes_total",
                                 "Compressed layer bytes fetched from registries by PullImage (layers already "
                                 "in the store are not fetched and not counted).")),
      image_pull_seconds(r.histogram("berthd_image_pull_duration_seconds", "Wall time of successful image pulls.", {},
                                     {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600})),
      oom_kills(r.counter("berthd_container_oom_kills_total",
                          "Container exits berthd recorded with reason OOMKilled (since berthd started).")) {}

void register_record_gauges(MetricsRegistry& registry, CriContext& ctx) {
    registry.gauge_callback("berthd_pods", "Pod sandboxes by state (creating, ready, notready).", {"state"}, [&ctx] {
        std::vector<std::pair<LabelValues, double>> out;
        std::map<std::string, double> n = {{"creating", 0}, {"ready", 0}, {"notready", 0}};
        if (auto pods = ctx.records->pods())
            for (const auto& p : *pods) n[store::to_string(p.state)] += 1;
        for (auto& [state, v] : n) out.push_back({{state}, v});
        return out;
    });
    registry.gauge_callback(
        "berthd_containers", "Containers by state (creating, created, running, exited).", {"state"}, [&ctx] {
            std::vector<std::pair<LabelValues, double>> out;
            std::map<std::string, double> n = {{"creating", 0}, {"created", 0}, {"running", 0}, {"exited", 0}};
            if (auto cs = ctx.records->containers())
                for (const auto& c : *cs) n[store::to_string(c.state)] += 1;
            for (auto& [state, v] : n) out.push_back({{state}, v});
            return out;
        });
    registry.gauge_callback("berthd_container_monitors",
                            "berth-monitor processes alive for created or running containers.", {}, [&ctx] {
                                double n = 0;
                                if (auto cs = ctx.records->containers())
                                    for (const auto& c : *cs)
                                        if ((c.state == store::ContainerState::created ||
                                             c.state == store::ContainerState::running) &&
                                            c.monitor_pid > 0 && sys::process_alive(c.monitor_pid, c.monitor_start))
                                            n += 1;
                                return std::vector<std::pair<LabelValues, double>>{{{}, n}};
                            });
}

const char* grpc_code_name(int code) {
    static const char* const names[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    return code >= 0 && code < static_cast<int>(std::size(names)) ? names[code] : "UNKNOWN";
}

namespace {

namespace exp = grpc::experimental;

class RpcMetricsInterceptor final : public exp::Interceptor {
public:
    RpcMetricsInterceptor(exp::ServerRpcInfo* info, CriMetrics& metrics)
        : metrics_(metrics), start_(std::chrono::steady_clock::now()) {
        // "/runtime.v1.RuntimeService/Version" -> service "RuntimeService", method "Version".
        std::string_view m = info->method() ? info->method() : "";
        size_t slash = m.rfind('/');
        std::string_view service = slash == std::string_view::npos ? std::string_view() : m.substr(0, slash);
        if (size_t dot = service.rfind('.'); dot != std::string_view::npos) service = service.substr(dot + 1);
        if (service.starts_with('/')) service.remove_prefix(1);
        labels_ = {std::string(service), std::string(slash == std::string_view::npos ? m : m.substr(slash + 1))};
    }

    void Intercept(exp::InterceptorBatchMethods* methods) override {
        if (methods->QueryInterceptionHookPoint(exp::InterceptionHookPoints::PRE_SEND_STATUS)) {
            std::chrono::duration<double> took = std::chrono::steady_clock::now() - start_;
            metrics_.rpc_seconds.observe(labels_, took.count());
            grpc::Status st = methods->GetSendStatus();
            const char* code = grpc_code_name(static_cast<int>(st.error_code()));
            if (!st.ok()) metrics_.rpc_errors.inc({labels_[0], labels_[1], code});
            if (log::debug_enabled())
                log::debug("rpc {}/{}: {} in {:.3f} ms{}{}", labels_[0], labels_[1], code, took.count() * 1e3,
                           st.ok() ? "" : ": ", st.error_message());
        }
        methods->Proceed();
    }

private:
    CriMetrics& metrics_;
    std::chrono::steady_clock::time_point start_;
    LabelValues labels_;
};

class RpcMetricsFactory final : public exp::ServerInterceptorFactoryInterface {
public:
    explicit RpcMetricsFactory(CriMetrics& metrics) : metrics_(metrics) {}
    exp::Interceptor* CreateServerInterceptor(exp::ServerRpcInfo* info) override {
        return new RpcMetricsInterceptor(info, metrics_);
    }

private:
    CriMetrics& metrics_;
};

}  // namespace

std::unique_ptr<exp::ServerInterceptorFactoryInterface> make_rpc_metrics_interceptor(CriMetrics& metrics) {
    return std::make_unique<RpcMetricsFactory>(metrics);
}

}  // namespace berth::cri
