#include "client.hpp"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>

namespace berth::ctl {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(30);

// Turns a failed call into berthctl's error: a missing daemon is told apart from an rpc that failed.
Error call_error(const std::string& socket_path, std::string_view rpc, const grpc::Status& st) {
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE)
        return Error(0, fmt::format("cannot connect to berthd at {}: {}", socket_path, st.error_message()));
    return Error(0, fmt::format("{}: {}", rpc, st.error_message()));
}

void set_deadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
}

}  // namespace

CriClient::CriClient(std::string socket_path)
    : socket_path_(std::move(socket_path)),
      runtime_(v1::RuntimeService::NewStub(
          grpc::CreateChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials()))) {}

Result<v1::VersionResponse> CriClient::version() {
    grpc::ClientContext ctx;
    set_deadline(ctx);
    v1::VersionRequest req;
    req.set_version("v1");
    v1::VersionResponse resp;
    if (grpc::Status st = runtime_->Version(&ctx, req, &resp); !st.ok())
        return std::unexpected(call_error(socket_path_, "Version", st));
    return resp;
}

Result<v1::StatusResponse> CriClient::status(bool verbose) {
    grpc::ClientContext ctx;
    set_deadline(ctx);
    v1::StatusRequest req;
    req.set_verbose(verbose);
    v1::StatusResponse resp;
    if (grpc::Status st = runtime_->Status(&ctx, req, &resp); !st.ok())
        return std::unexpected(call_error(socket_path_, "Status", st));
    return resp;
}

}  // namespace berth::ctl
