// Helpers shared by the gRPC services: the answers every rpc gives in the same words.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace berth::cri {

// The answer of an rpc berthd does not implement yet. Never a fake success: kubelet must see that it failed.
inline grpc::Status not_implemented(std::string_view rpc) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "berthd: " + std::string(rpc) + " is not implemented yet");
}

// The status of a failed manager call. The managers choose the errno of what they return on purpose: ENOENT
// (unknown id or image) NOT_FOUND, EEXIST ALREADY_EXISTS, EINVAL INVALID_ARGUMENT (the message names the field),
// EOPNOTSUPP UNIMPLEMENTED, ETIMEDOUT DEADLINE_EXCEEDED, EBUSY FAILED_PRECONDITION (wrong state); anything else
// is UNKNOWN.
inline grpc::Status to_status(const Error& e) {
    grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
    switch (e.code()) {
    case ENOENT: code = grpc::StatusCode::NOT_FOUND; break;
    case EEXIST: code = grpc::StatusCode::ALREADY_EXISTS; break;
    case EINVAL: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case EOPNOTSUPP: code = grpc::StatusCode::UNIMPLEMENTED; break;
    case ETIMEDOUT: code = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case EBUSY: code = grpc::StatusCode::FAILED_PRECONDITION; break;
    default: break;
    }
    return grpc::Status(code, "berthd: " + e.message());
}

}  // namespace berth::cri
