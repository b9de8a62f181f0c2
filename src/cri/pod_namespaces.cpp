#include "cri/pod_namespaces.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.hpp"
#include "common/unique_fd.hpp"

namespace berth::cri {
namespace {

constexpr const char* kTypes[] = {"net", "ipc", "uts"};

// What the pinning child reports when a step fails: the step and errno.
struct ChildError {
    int step;
    int err;
};
constexpr const char* kSteps[] = {"unshare", "sethostname", "bring up loopback", "bind-mount the net namespace",
                                  "bind-mount the ipc namespace", "bind-mount the uts namespace"};

bool is_mountpoint(const std::string& path) {
    struct stat st {}, parent {};
    if (::lstat(path.c_str(), &st) != 0) return false;
    if (::lstat(clean_path(path + "/..").c_str(), &parent) != 0) return false;
    // A bind-mounted nsfs file lives on another device than its parent directory.
    return st.st_dev != parent.st_dev;
}

}  // namespace

Result<void> pin_namespaces(const PinRequest& r) {
    BERTH_TRY(mkdir_all(r.dir, 0711));
    bool want[3] = {r.net, r.ipc, r.uts};
    std::string targets[3];
    std::string sources[3];
    int flags = 0;
    const int clone_flags[3] = {CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS};
    for (int i = 0; i < 3; ++i) {
        if (!want[i]) continue;
        targets[i] = path_join(r.dir, kTypes[i]);
        sources[i] = std::string("/proc/self/ns/") + kTypes[i];
        UniqueFd f(::open(targets[i].c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0444));
        if (!f) {
            (void)unpin_namespaces(r.dir);
            return fail_sys("make namespace pin {}", targets[i]);
        }
        flags |= clone_flags[i];
    }
    if (flags == 0) return {};
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
    UniqueFd rd(p[0]), wr(p[1]);
    const std::string hostname = r.hostname;
    pid_t pid = ::fork();
    if (pid < 0) return fail_sys("fork the namespace pinner of {}", r.dir);
    if (pid == 0) {
        // Only system calls from here: the parent has other threads.
        auto die = [&](int step) {
            ChildError e{step, errno};
            (void)!::write(wr.get(), &e, sizeof e);
            ::_exit(1);
        };
        if (::unshare(flags) < 0) die(0);
        if (r.uts && !hostname.empty() && ::sethostname(hostname.data(), hostname.size()) < 0) die(1);
        if (r.net) {
            int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            struct ifreq ifr {};
            std::memcpy(ifr.ifr_name, "lo", 3);
            if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die(2);
            ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
            if (::ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die(2);
            ::close(s);
        }
        for (int i = 0; i < 3; ++i)
            if (want[i] && ::mount(sources[i].c_str(), targets[i].c_str(), nullptr, MS_BIND, nullptr) < 0) die(3 + i);
        ::_exit(0);
    }
    wr.reset();
    ChildError e{-1, 0};
    ssize_t n;
    while ((n = ::read(rd.get(), &e, sizeof e)) < 0 && errno == EINTR) {
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof e) && e.step >= 0) {
        (void)unpin_namespaces(r.dir);
        return fail_errno(e.err, "pin the namespaces of {}: {}", r.dir, kSteps[e.step]);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        (void)unpin_namespaces(r.dir);
        return fail("pin the namespaces of {}: the pinner died", r.dir);
    }
    return {};
}

Result<void> unpin_namespaces(const std::string& dir) {
    for (const char* t : kTypes) {
        std::string path = path_join(dir, t);
        if (is_mountpoint(path) && ::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            return fail_sys("unmount namespace pin {}", path);
        if (::unlink(path.c_str()) < 0 && errno != ENOENT) return fail_sys("remove namespace pin {}", path);
    }
    if (::rmdir(dir.c_str()) < 0 && errno != ENOENT) return fail_sys("remove {}", dir);
    return {};
}

Result<void> mount_shm(const std::string& path, unsigned long long size_bytes) {
    BERTH_TRY(mkdir_all(path, 0755));
    std::string opts = fmt::format("mode=1777,size={}", size_bytes);
    if (::mount("shm", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts.c_str()) < 0)
        return fail_sys("mount the pod's /dev/shm tmpfs on {}", path);
    return {};
}

Result<void> unmount_and_remove(const std::string& path) {
    while (is_mountpoint(path)) {
        if (::umount2(path.c_str(), MNT_DETACH) < 0) {
            if (errno == EINVAL || errno == ENOENT) break;
            return fail_sys("unmount {}", path);
        }
    }
    if (::rmdir(path.c_str()) < 0 && errno != ENOENT) return fail_sys("remove {}", path);
    return {};
}

}  // namespace berth::cri
