// CriClient: berthctl's connection to berthd over the CRI socket.
//
// Every call has a deadline and fails fast (no wait-for-ready) when nobody serves the socket. Errors read
// "cannot connect to berthd at <path>: <why>" when the daemon is not there, "<Rpc>: <gRPC message>" otherwise.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "cri/api.hpp"

namespace berth::ctl {

namespace v1 = ::runtime::v1;

class CriClient {
public:
    explicit CriClient(std::string socket_path);

    const std::string& socket_path() const { return socket_path_; }

    [[nodiscard]] Result<v1::VersionResponse> version();
    [[nodiscard]] Result<v1::StatusResponse> status(bool verbose);

private:
    std::string socket_path_;
    std::unique_ptr<v1::RuntimeService::Stub> runtime_;
};

}  // namespace berth::ctl
