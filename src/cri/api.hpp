// The generated CRI runtime.v1 code (proto/api.proto, compiled into the build dir). Include this, not the
// generated headers, and include it before anything that pulls in <signal.h> (<sys/wait.h> does): the CRI's
// Signal enum names its values SIGABRT, SIGKILL, ..., which <signal.h> defines as macros.
#pragma once

#if defined(SIGKILL) || defined(SIGABRT)
#error "cri/api.hpp must come before <signal.h>: the CRI Signal enum uses the signal macro names"
#endif

#include "api.grpc.pb.h"  // IWYU pragma: export
#include "api.pb.h"       // IWYU pragma: export

namespace berth::cri {
namespace v1 = ::runtime::v1;
}  // namespace berth::cri
