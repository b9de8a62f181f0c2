// The container's root filesystem, built by its init process inside its new mount namespace.
//
// Sequence (runtime-spec runtime.md "create" and config.md "createContainer hooks"):
//   prepare_rootfs()   mounts and devices, still seeing the host's tree; rootfs at its host path
//   createContainer hooks (run by the caller, before pivot_root)
//   finish_rootfs()    pivot_root (or MS_MOVE + chroot), readonly and masked paths, read-only root, chdir("/")
//
// Both run in a single-threaded child: they allocate but never throw, start no threads and write nothing to
// stdout/stderr. Every mount target is resolved inside the rootfs (safe_path.hpp) and handed to mount(2) as
// /proc/self/fd/N, so a symlink in the image cannot redirect a mount onto the host.
//
// Needs a /proc of the current mount namespace at /proc (the host's, before the pivot). The process must already
// be in its cgroups when a "cgroup" mount is made: the mount shows the cgroups /proc/self/cgroup names.
#pragma once

#include <string>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::sys {

struct RootfsOptions {
    std::string rootfs;  // absolute host path of root.path
    bool no_pivot = false;
    bool in_user_namespace = false;     // mknod is not allowed: devices are bind-mounted from the host
    bool new_cgroup_namespace = false;  // "cgroup" mounts may mount cgroupfs itself instead of binding host dirs
    std::string bundle;                 // relative bind-mount sources are relative to this directory
    // SELinux context for the mounts that take one (linux.mountLabel); empty when the host has no SELinux.
    std::string mount_label;
};

// In the new mount namespace, before the createContainer hooks:
//  - "/" gets linux.rootfsPropagation recursively (default rslave: host mounts still propagate in, nothing
//    propagates out; "unbindable" is applied after the pivot), and the rootfs is bind-mounted onto itself;
//  - every config mount, in order: bind/rbind (relative sources against the bundle; a file or a directory is
//    created at the destination to match the source; per-mount flags by a bind remount that keeps the flags the
//    kernel locks in a user namespace), proc, sysfs (rbind of /sys in a user namespace where sysfs cannot be
//    mounted), tmpfs, devpts, mqueue, cgroup (cgroup v1 or hybrid: a tmpfs with each hierarchy's own cgroup
//    bind-mounted in), then propagation options and recursive attributes (rro, rnosuid, ...) via mount_setattr;
//  - unless /dev is bind-mounted from the host: /dev/{null,zero,full,random,urandom,tty}, linux.devices, the
//    /dev/fd, stdin, stdout, stderr (and core) symlinks, /dev/ptmx -> pts/ptmx with a devpts mount, /dev/shm.
// Errors name the mount: `mount proc on /proc (rootfs /x/rootfs): Operation not permitted`.
[[nodiscard]] Result<void> prepare_rootfs(const spec::Config& config, const RootfsOptions& options);

// After the createContainer hooks: pivot_root into the rootfs and detach the old root (or with no_pivot, move the
// rootfs onto "/" and chroot), apply linux.rootfsPropagation to the new "/", make linux.readonlyPaths read-only,
// mask linux.maskedPaths (/dev/null over files, a read-only tmpfs over directories; missing paths are skipped),
// remount "/" read-only when root.readonly, chdir("/").
[[nodiscard]] Result<void> finish_rootfs(const spec::Config& config, const RootfsOptions& options);

}  // namespace berth::sys
