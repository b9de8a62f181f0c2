// The metrics berthd keeps (names and labels in docs/metrics.md) and the gRPC server interceptor that times every
// RuntimeService and ImageService rpc.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "cri/metrics.hpp"

namespace berth::cri {

struct CriContext;

// Counters and histograms updated where things happen. Lives as long as the registry it was made on.
struct CriMetrics {
    explicit CriMetrics(MetricsRegistry& registry);

    MetricsRegistry& registry;
    Histogram& rpc_seconds;       // berthd_cri_request_duration_seconds{service,method}
    Counter& rpc_errors;          // berthd_cri_request_errors_total{service,method,code}
    Counter& image_pulls;         // berthd_image_pulls_total: every PullImage that ran a pull, failed or not
    Counter& image_pull_failures; // berthd_image_pull_failures_total
    Counter& image_pull_bytes;    // berthd_image_pull_bytes_total: compressed layer bytes fetched from registries
    Histogram& image_pull_seconds;  // berthd_image_pull_duration_seconds (successful pulls)
    Counter& oom_kills;           // berthd_container_oom_kills_total: container exits with reason OOMKilled
};

// Pods by state, containers by state and running container monitors, read from the records at each scrape.
// `ctx` must outlive the registry's last scrape.
void register_record_gauges(MetricsRegistry& registry, CriContext& ctx);

// The gRPC code's name as grpc's headers spell it ("NOT_FOUND").
const char* grpc_code_name(int code);

// Times each rpc from its arrival to its status, into CriMetrics::rpc_seconds, and counts non-OK statuses by code.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_rpc_metrics_interceptor(
    CriMetrics& metrics);

}  // namespace berth::cri
