// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/daemon.hpp"

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <set>

#include "common/log.hpp"
#include "cri/container_manager.hpp"
#include "cri/cri_context.hpp"
#include "cri/cri_metrics.hpp"
#include "cri/image_service.hpp"
#include "cri/log_control.hpp"
#include "cri/metrics.hpp"
#include "cri/pod_manager.hpp"
#include "cri/pod_network.hpp"
#include "cri/runtime_service.hpp"
#include "cri/sd_notify.hpp"
#include "cri/socket_claim.hpp"
#include "cri/stop_signals.hpp"
#include "cri/stream_targets.hpp"
#include "stream/server.hpp"

namespace berth::cri {
namespace {

// How long running calls may take to finish after a stop signal before they are cancelled.
constexpr auto kShutdownGrace = std::chrono::seconds(5);

// Restores the process umask on scope exit.
class UmaskGuard {
public:
    explicit UmaskGuard(mode_t mask) : old_(::umask(mask)) {}
    ~UmaskGuard() { ::umask(old_); }
    UmaskGuard(const UmaskGuard&) = delete;
    UmaskGuard& operator=(const UmaskGuard&) = delete;

private:
    mode_t old_;
};

}  // namespace

Result<void> run_daemon(const DaemonConfig& config, const ConfigFile& file) {
    BERTH_TRY(block_stop_signals());
    sd_notify_init();

    BERTH_ASSIGN(SocketClaim claim, SocketClaim::claim(config.socket_path));

    // Records and images first, then what was left running or half-made is reconciled, before anything is served.
    CriContext ctx{.config = config};
    // Metrics are kept whether or not they are served; the registry is the hook for other parts' gauges.
    MetricsRegistry registry;
    CriMetrics metrics(registry);
    ctx.metrics = &metrics;
    register_record_gauges(registry, ctx);
    BERTH_ASSIGN(ctx.records, store::CriRecords::open(config.root_dir));
    {
        BERTH_ASSIGN(store::Images images, store::Images::open(config.root_dir));
        ctx.images = std::make_unique<store::Images>(std::move(images));
    }
    PodManager pods(ctx);
    ContainerManager containers(ctx, pods);
    PodNetwork network(config);
    pods.set_containers(&containers);
    pods.set_network(&network);
    BERTH_TRY(containers.start_watcher());
    containers.recover();
    pods.recover();
    {
        // Attachments of pods that are gone get their DEL; the current network its GC.
        std::set<std::string> live;
        if (auto all = ctx.records->pods())
            for (const auto& p : *all) live.insert(p.id);
        network.collect_garbage(live);
    }

    RuntimeState state(config);
    state.set_network_probe([&network] { return network.condition(); });
    RuntimeService runtime_service(state, pods, containers, ctx.events);

    // The streaming server behind Exec/Attach/PortForward URLs; stopped (connections ended, exec'd processes
    // killed) when this scope ends, after the gRPC server.
    StreamTargets targets(ctx, containers, pods);
    stream::ServerOptions stream_options{.address = config.streaming_address,
                                         .tls_cert = config.streaming_tls_cert,
                                         .tls_key = config.streaming_tls_key,
                                         .token_lifetime = std::chrono::seconds(config.streaming_token_lifetime),
                                         .idle_timeout = std::chrono::seconds(config.streaming_idle_timeout)};
    stream::StreamBackend backend{
        .exec = [&targets](const ExecOptions& o) { return targets.exec(o); },
        .attach = [&targets](const AttachOptions& o) { return targets.attach(o); },
        .dial = [&targets](const std::string& pod, uint16_t port) { return targets.dial(pod, port); }};
    BERTH_ASSIGN(std::unique_ptr<stream::StreamServer> stream_server,
                 stream::StreamServer::start(stream_options, std::move(backend)));
    runtime_service.set_streaming(&targets, stream_server.get());
    // Streaming sessions as gauges read at scrape time; the callback is removed before the server goes away.
    stream::StreamServer* streams = stream_server.get();
    const int stream_gauge = registry.gauge_callback(
        "berthd_streaming_sessions", "Open streaming sessions by kind (exec, attach, port-forward connection, HTTP)",
        {"kind"}, [streams] {
            stream::StreamCounts n = streams->counts();
            return std::vector<std::pair<LabelValues, double>>{
                {{"exec"}, static_cast<double>(n.exec_sessions)},
                {{"attach"}, static_cast<double>(n.attach_sessions)},
                {{"port_forward"}, static_cast<double>(n.port_forward_connections)},
                {{"http"}, static_cast<double>(n.connections)}};
        });
    struct RemoveGauge {
        MetricsRegistry& r;
        int id;
        ~RemoveGauge() { r.remove_callback(id); }
    } remove_stream_gauge{registry, stream_gauge};
    BERTH_ASSIGN(std::unique_ptr<ImageService> image_service, ImageService::create(config));
    image_service->set_metrics(&metrics);

    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + config.socket_path, grpc::InsecureServerCredentials());
    builder.RegisterService(&runtime_service);
    builder.RegisterService(image_service.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(make_rpc_metrics_interceptor(metrics));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    std::unique_ptr<grpc::Server> server;
    {
        // bind(2) creates the socket file with 0777 & ~umask: 0660 from the first moment, no window to chmod.
        UmaskGuard umask(0117);
        server = builder.BuildAndStart();
    }
    if (!server) return fail("cannot serve CRI on {}: gRPC failed to bind the socket", config.socket_path);
    // The contract is 0660 whatever gRPC did on its way; say so explicitly.
    if (::chmod(config.socket_path.c_str(), 0660) != 0) {
        auto err = fail_sys("chmod 0660 {}", config.socket_path);
        server->Shutdown();
        return err;
    }
    MetricsServer metrics_server(registry);
    if (!config.metrics_address.empty()) {
        if (auto r = metrics_server.start(config.metrics_address); !r) {
            server->Shutdown();
            return r;
        }
        log::info("serving metrics on http://{}/metrics", metrics_server.address());
    }
    log::info("serving CRI on {}", config.socket_path);
    sd_notify("READY=1");

    LogControl log_control(file, log::min_level());
    for (;;) {
        Result<ReceivedSignal> sig = wait_for_daemon_signal();
        if (!sig) {
            server->Shutdown();
            return std::unexpected(std::move(sig).error());
        }
        if (sig->what == DaemonSignal::toggle_debug) {
            log_control.toggle_debug();
            continue;
        }
        if (sig->what == DaemonSignal::reload) {
            sd_notify("RELOADING=1");
            log_control.reload();
            sd_notify("READY=1");
            continue;
        }
        log::info("signal {} received: stopping", sig->signo);
        break;
    }
    sd_notify("STOPPING=1");
    metrics_server.stop();
    server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    server->Wait();
    // `claim` removes the socket when it goes out of scope, after the server has stopped using it.
    return {};
}

}  // namespace berth::cri
