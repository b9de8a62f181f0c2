// Helpers shared by the gRPC services: the answers every rpc gives in the same words.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

namespace berth::cri {

// The answer of an rpc berthd does not implement yet. Never a fake success: kubelet must see that it failed.
inline grpc::Status not_implemented(std::string_view rpc) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "berthd: " + std::string(rpc) + " is not implemented yet");
}

}  // namespace berth::cri
