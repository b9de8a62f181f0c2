// What a RuntimeClass handler can do for CRI pods, as StatusResponse.runtime_handlers reports it to kubelet (which
// refuses pods asking for a feature their handler lacks).
#pragma once

#include "cri/config.hpp"

namespace berth::cri {

struct HandlerFeatures {
    // Recursive read-only bind mounts (CRI Mount.recursive_read_only -> the "rro" mount option): libberth has
    // them (mount_setattr AT_RECURSIVE); an external runtime when its `features` lists "rro" in mountOptions.
    bool recursive_read_only_mounts = false;
    // berthd refuses userns_options for every handler: false until it implements them.
    bool user_namespaces = false;
};

// The features of `h` (libberth when h.path is empty). An external runtime's `features` command runs once per
// binary (bounded by a few seconds); a runtime without it (runc 1.1, runsc) has none.
HandlerFeatures features_of(const RuntimeHandler& h);

}  // namespace berth::cri
