#include "client.hpp"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

namespace berth::ctl {

Error CriClient::call_error(std::string_view rpc, const grpc::Status& st) const {
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE)
        return Error(0, fmt::format("cannot connect to berthd at {}: {}", socket_path_, st.error_message()));
    return Error(0, fmt::format("{}: {}", rpc, st.error_message()));
}

CriClient::CriClient(std::string socket_path) : socket_path_(std::move(socket_path)) {
    auto channel = grpc::CreateChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials());
    runtime_ = v1::RuntimeService::NewStub(channel);
    image_ = v1::ImageService::NewStub(channel);
}

Result<v1::VersionResponse> CriClient::version() {
    v1::VersionRequest req;
    req.set_version("v1");
    return runtime(&v1::RuntimeService::Stub::Version, "Version", req);
}

Result<v1::StatusResponse> CriClient::status(bool verbose) {
    v1::StatusRequest req;
    req.set_verbose(verbose);
    return runtime(&v1::RuntimeService::Stub::Status, "Status", req);
}

}  // namespace berth::ctl
