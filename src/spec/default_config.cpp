// The config.json that `berth spec` writes: the customary default of OCI runtimes (a shell in a read-only
// rootfs with the usual pseudo-filesystems, three capabilities and the usual masked and read-only /proc paths).
#include <nlohmann/json.hpp>

#include "spec/config.hpp"

namespace berth::spec {

namespace {

using OJson = nlohmann::ordered_json;

OJson mount(std::string_view destination, std::string_view type, std::string_view source,
            std::initializer_list<std::string_view> options) {
    OJson m = {{"destination", destination}, {"type", type}, {"source", source}};
    if (options.size() > 0) {
        OJson opts = OJson::array();
        for (auto o : options) opts.push_back(o);
        m["options"] = std::move(opts);
    }
    return m;
}

OJson string_array(std::initializer_list<std::string_view> items) {
    OJson a = OJson::array();
    for (auto s : items) a.push_back(s);
    return a;
}

}  // namespace

std::string default_config_json(bool rootless, uint32_t uid, uint32_t gid) {
    OJson caps = string_array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});

    OJson process = {
        {"terminal", true},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", string_array({"sh"})},
        {"env", string_array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"})},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", OJson::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true},
    };

    OJson mounts = OJson::array();
    mounts.push_back(mount("/proc", "proc", "proc", {}));
    mounts.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
    // gid=5 (tty) cannot be applied by a user whose user namespace maps only its own gid.
    if (rootless)
        mounts.push_back(
            mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}));
    else
        mounts.push_back(mount("/dev/pts", "devpts", "devpts",
                               {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
    mounts.push_back(mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
    mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
    if (rootless) {
        // sysfs can only be mounted by the owner of the network namespace, which a rootless container shares with
        // the host; a recursive bind of the host's /sys is the read-only view it can have. For the same reason
        // there is no cgroup mount: the user owns no cgroup namespace.
        mounts.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
    } else {
        mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
        mounts.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
    }

    OJson namespaces = OJson::array();
    for (std::string_view ns : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
        if (rootless && (ns == "network" || ns == "cgroup")) continue;
        namespaces.push_back({{"type", ns}});
    }

    OJson linux_ = OJson::object();
    if (rootless) {
        linux_["uidMappings"] = OJson::array({{{"containerID", 0}, {"hostID", uid}, {"size", 1}}});
        linux_["gidMappings"] = OJson::array({{{"containerID", 0}, {"hostID", gid}, {"size", 1}}});
        namespaces.push_back({{"type", "user"}});
    } else {
        // Deny every device by default; the runtime allows its default devices on top.
        linux_["resources"] = {{"devices", OJson::array({{{"allow", false}, {"access", "rwm"}}})}};
    }
    linux_["namespaces"] = std::move(namespaces);
    linux_["maskedPaths"] =
        string_array({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"});
    linux_["readonlyPaths"] = string_array({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});

    OJson config = {
        {"ociVersion", kOciVersion},
        {"process", std::move(process)},
        {"root", {{"path", "rootfs"}, {"readonly", true}}},
        {"hostname", "berth"},
        {"mounts", std::move(mounts)},
        {"linux", std::move(linux_)},
    };
    return config.dump(2) + "\n";
}

}  // namespace berth::spec
