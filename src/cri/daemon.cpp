// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/daemon.hpp"

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>

#include "common/log.hpp"
#include "cri/container_manager.hpp"
#include "cri/cri_context.hpp"
#include "cri/image_service.hpp"
#include "cri/pod_manager.hpp"
#include "cri/runtime_service.hpp"
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

Result<void> run_daemon(const DaemonConfig& config) {
    BERTH_TRY(block_stop_signals());

    BERTH_ASSIGN(SocketClaim claim, SocketClaim::claim(config.socket_path));

    // Records and images first, then what was left running or half-made is reconciled, before anything is served.
    CriContext ctx{.config = config};
    BERTH_ASSIGN(ctx.records, store::CriRecords::open(config.root_dir));
    {
        BERTH_ASSIGN(store::Images images, store::Images::open(config.root_dir));
        ctx.images = std::make_unique<store::Images>(std::move(images));
    }
    PodManager pods(ctx);
    ContainerManager containers(ctx, pods);
    pods.set_containers(&containers);
    BERTH_TRY(containers.start_watcher());
    containers.recover();
    pods.recover();

    RuntimeState state(config);
    RuntimeService runtime_service(state, pods, containers, ctx.events);

    // The streaming server behind Exec/Attach/PortForward URLs; stopped (connections ended, exec'd processes
    // killed) when this scope ends, after the gRPC server.
    StreamTargets targets(ctx, containers, pods);
    stream::ServerOptions stream_options{.address = config.streaming_address,
                                         .tls_cert = config.streaming_tls_cert,
                                         .tls_key = config.streaming_tls_key,
                                         .token_lifetime = std::chrono::seconds(config.streaming_token_lifetime)};
    stream::StreamBackend backend{
        .exec = [&targets](const ExecOptions& o) { return targets.exec(o); },
        .attach = [&targets](const AttachOptions& o) { return targets.attach(o); },
        .dial = [&targets](const std::string& pod, uint16_t port) { return targets.dial(pod, port); }};
    BERTH_ASSIGN(std::unique_ptr<stream::StreamServer> stream_server,
                 stream::StreamServer::start(stream_options, std::move(backend)));
    runtime_service.set_streaming(&targets, stream_server.get());
    BERTH_ASSIGN(std::unique_ptr<ImageService> image_service, ImageService::create(config));

    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + config.socket_path, grpc::InsecureServerCredentials());
    builder.RegisterService(&runtime_service);
    builder.RegisterService(image_service.get());
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
    log::info("serving CRI on {}", config.socket_path);

    Result<int> signo = wait_for_stop_signal();
    if (!signo) {
        server->Shutdown();
        return std::unexpected(std::move(signo).error());
    }
    log::info("signal {} received: stopping", *signo);
    server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    server->Wait();
    // `claim` removes the socket when it goes out of scope, after the server has stopped using it.
    return {};
}

}  // namespace berth::cri
