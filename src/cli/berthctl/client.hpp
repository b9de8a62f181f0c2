// CriClient: berthctl's connection to berthd over the CRI socket.
//
// Every call has a deadline and fails fast (no wait-for-ready) when nobody serves the socket. Errors read
// "cannot connect to berthd at <path>: <why>" when the daemon is not there, "<Rpc>: <gRPC message>" otherwise.
#pragma once

#include <grpcpp/client_context.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "cri/api.hpp"

namespace berth::ctl {

namespace v1 = ::runtime::v1;

inline constexpr std::chrono::seconds kCallTimeout{30};

class CriClient {
public:
    explicit CriClient(std::string socket_path);

    const std::string& socket_path() const { return socket_path_; }

    [[nodiscard]] Result<v1::VersionResponse> version();
    [[nodiscard]] Result<v1::StatusResponse> status(bool verbose);

    // Any unary rpc of either service: `client.runtime(&Stub::ListContainers, "ListContainers", req)`. A zero
    // `timeout` means no deadline (a pull of a large image).
    template <class Req, class Resp>
    [[nodiscard]] Result<Resp> runtime(grpc::Status (v1::RuntimeService::Stub::*rpc)(grpc::ClientContext*, const Req&,
                                                                                     Resp*),
                                       std::string_view name, const Req& req,
                                       std::chrono::seconds timeout = kCallTimeout) {
        return call(*runtime_, rpc, name, req, timeout);
    }
    template <class Req, class Resp>
    [[nodiscard]] Result<Resp> image(grpc::Status (v1::ImageService::Stub::*rpc)(grpc::ClientContext*, const Req&,
                                                                                 Resp*),
                                     std::string_view name, const Req& req,
                                     std::chrono::seconds timeout = kCallTimeout) {
        return call(*image_, rpc, name, req, timeout);
    }

private:
    template <class Stub, class Req, class Resp>
    Result<Resp> call(Stub& stub, grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
                      std::string_view name, const Req& req, std::chrono::seconds timeout) {
        grpc::ClientContext ctx;
        if (timeout.count() > 0) ctx.set_deadline(std::chrono::system_clock::now() + timeout);
        Resp resp;
        if (grpc::Status st = (stub.*rpc)(&ctx, req, &resp); !st.ok()) return std::unexpected(call_error(name, st));
        return resp;
    }
    Error call_error(std::string_view rpc, const grpc::Status& st) const;

    std::string socket_path_;
    std::unique_ptr<v1::RuntimeService::Stub> runtime_;
    std::unique_ptr<v1::ImageService::Stub> image_;
};

}  // namespace berth::ctl
