// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/spec_builder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <string_view>

#include "common/fs.hpp"
#include "cri/user_lookup.hpp"
#include "runtime/runtime.hpp"
#include "spec/config.hpp"
#include "spec/names.hpp"

namespace berth::cri {

namespace {

using json = nlohmann::json;

constexpr std::string_view kSecurityContext = "config.linux.security_context";
constexpr std::string_view kResources = "config.linux.resources";
constexpr std::string_view kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr size_t kMaxSeccompProfileSize = 4 << 20;

// The capabilities a container gets unless its security context says otherwise: the set runc, containerd and
// CRI-O have shipped for years.
constexpr std::string_view kDefaultCapabilities[] = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE",
};

constexpr std::string_view kDefaultMaskedPaths[] = {
    "/proc/acpi",       "/proc/asound",       "/proc/kcore",        "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi",       "/sys/firmware",      "/sys/devices/virtual/powercap",
};

constexpr std::string_view kDefaultReadonlyPaths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

// The image config's "config" object (Entrypoint, Cmd, Env, ...); an empty object when the blob has none.
const json& image_runtime_config(const json& blob) {
    static const json empty = json::object();
    if (blob.is_object()) {
        auto it = blob.find("config");
        if (it != blob.end() && it->is_object()) return *it;
    }
    return empty;
}

Result<std::vector<std::string>> image_strings(const json& cfg, const char* key, const std::string& image_ref) {
    std::vector<std::string> out;
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return out;
    if (!it->is_array()) return fail("image {} config.{}: not an array of strings", image_ref, key);
    for (size_t i = 0; i < it->size(); ++i) {
        if (!(*it)[i].is_string()) return fail("image {} config.{}[{}]: not a string", image_ref, key, i);
        out.push_back((*it)[i].get<std::string>());
    }
    return out;
}

Result<std::string> image_string(const json& cfg, const char* key, const std::string& image_ref) {
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return std::string();
    if (!it->is_string()) return fail("image {} config.{}: not a string", image_ref, key);
    return it->get<std::string>();
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// ---- process ---------------------------------------------------------------------------------------------------

Result<std::vector<std::string>> process_args(const v1::ContainerConfig& config, const json& icfg,
                                              const std::string& image_ref) {
    std::vector<std::string> command(config.command().begin(), config.command().end());
    std::vector<std::string> args(config.args().begin(), config.args().end());
    if (command.empty()) {
        BERTH_ASSIGN(command, image_strings(icfg, "Entrypoint", image_ref));
        if (args.empty()) {
            BERTH_ASSIGN(args, image_strings(icfg, "Cmd", image_ref));
        }
    }
    command.insert(command.end(), args.begin(), args.end());
    if (command.empty())
        return fail("config.command: not given, and image {} has neither an Entrypoint nor a Cmd", image_ref);
    for (size_t i = 0; i < command.size(); ++i)
        if (has_nul(command[i])) return fail("config.command/args: argument {} contains a NUL byte", i);
    return command;
}

class EnvList {
public:
    // Sets "KEY=value", replacing an earlier entry of the same key in place.
    void set(std::string entry) {
        std::string_view key = key_of(entry);
        for (auto& e : entries_)
            if (key_of(e) == key) {
                e = std::move(entry);
                return;
            }
        entries_.push_back(std::move(entry));
    }
    bool has(std::string_view key) const {
        return std::any_of(entries_.begin(), entries_.end(), [&](const std::string& e) { return key_of(e) == key; });
    }
    std::vector<std::string>& entries() { return entries_; }

private:
    static std::string_view key_of(std::string_view e) { return e.substr(0, e.find('=')); }
    std::vector<std::string> entries_;
};

Result<std::vector<std::string>> process_env(const v1::ContainerConfig& config, const json& icfg,
                                             const PodContext& pod, const std::string& image_ref) {
    EnvList env;
    // As containerd and CRI-O do: HOSTNAME first, so that the image or the request can still override it.
    if (!pod.hostname.empty()) env.set("HOSTNAME=" + pod.hostname);
    BERTH_ASSIGN(auto image_env, image_strings(icfg, "Env", image_ref));
    for (size_t i = 0; i < image_env.size(); ++i) {
        const std::string& e = image_env[i];
        if (e.empty() || e.front() == '=' || has_nul(e))
            return fail("image {} config.Env[{}]: not a NAME=value entry", image_ref, i);
        env.set(e.find('=') == std::string::npos ? e + "=" : e);
    }
    for (int i = 0; i < config.envs_size(); ++i) {
        const auto& kv = config.envs(i);
        if (kv.key().empty()) return fail("config.envs[{}].key: empty", i);
        if (kv.key().find('=') != std::string::npos || has_nul(kv.key()))
            return fail("config.envs[{}].key: \"{}\" contains '=' or a NUL byte", i, kv.key());
        if (has_nul(kv.value())) return fail("config.envs[{}].value: contains a NUL byte", i);
        env.set(kv.key() + "=" + kv.value());
    }
    if (!env.has("PATH")) env.entries().insert(env.entries().begin(), std::string(kDefaultPath));
    return std::move(env.entries());
}

Result<std::string> process_cwd(const v1::ContainerConfig& config, const json& icfg, const std::string& image_ref) {
    if (!config.working_dir().empty()) {
        if (config.working_dir().front() != '/' || has_nul(config.working_dir()))
            return fail("config.working_dir: \"{}\" is not an absolute path", config.working_dir());
        return clean_path(config.working_dir());
    }
    BERTH_ASSIGN(std::string wd, image_string(icfg, "WorkingDir", image_ref));
    if (wd.empty()) return std::string("/");
    if (wd.front() != '/' || has_nul(wd))
        return fail("image {} config.WorkingDir: \"{}\" is not an absolute path", image_ref, wd);
    return clean_path(wd);
}

struct ResolvedUser {
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::vector<uint32_t> additional_gids;
};

Result<uint32_t> id_from_int64(int64_t v, std::string_view field) {
    if (v < 0 || v >= 0xffffffffLL) return fail("{}: {} is not a valid id", field, v);
    return static_cast<uint32_t>(v);
}

Result<ResolvedUser> resolve_user(const v1::LinuxContainerSecurityContext& sc, const json& icfg,
                                  const ImageContext& image) {
    auto users = RootfsUsers::load(image.rootfs_path);
    if (!users) return std::unexpected(std::move(users).error().wrap("resolve the container's user"));

    ResolvedUser r;
    const PasswdEntry* pw = nullptr;
    bool gid_known = false;
    if (sc.has_run_as_user()) {
        BERTH_ASSIGN(r.uid, id_from_int64(sc.run_as_user().value(), fmt::format("{}.run_as_user", kSecurityContext)));
        pw = users->user_by_uid(r.uid);
    } else if (!sc.run_as_username().empty()) {
        pw = users->user_by_name(sc.run_as_username());
        if (!pw)
            return fail("{}.run_as_username: user \"{}\" not found in /etc/passwd of image {}", kSecurityContext,
                        sc.run_as_username(), image.image_ref);
        r.uid = pw->uid;
    } else {
        BERTH_ASSIGN(std::string spec, image_string(icfg, "User", image.image_ref));
        std::string_view user = spec, group;
        if (auto colon = user.find(':'); colon != std::string_view::npos) {
            group = user.substr(colon + 1);
            user = user.substr(0, colon);
            if (group.empty()) return fail("image {} config.User: \"{}\" has an empty group", image.image_ref, spec);
        }
        if (user.empty()) {
            if (!group.empty()) return fail("image {} config.User: \"{}\" has an empty user", image.image_ref, spec);
            r.uid = 0;
            pw = users->user_by_uid(0);
        } else if (auto uid = parse_id(user)) {
            r.uid = *uid;
            pw = users->user_by_uid(r.uid);
        } else {
            pw = users->user_by_name(user);
            if (!pw)
                return fail("image {} config.User: user \"{}\" not found in /etc/passwd", image.image_ref, user);
            r.uid = pw->uid;
        }
        if (!group.empty()) {
            if (auto gid = parse_id(group)) {
                r.gid = *gid;
            } else {
                const GroupEntry* gr = users->group_by_name(group);
                if (!gr)
                    return fail("image {} config.User: group \"{}\" not found in /etc/group", image.image_ref, group);
                r.gid = gr->gid;
            }
            gid_known = true;
        }
    }
    if (!gid_known) r.gid = pw ? pw->gid : 0;
    if (sc.has_run_as_group()) {
        BERTH_ASSIGN(r.gid, id_from_int64(sc.run_as_group().value(), fmt::format("{}.run_as_group", kSecurityContext)));
    }

    auto add = [&](uint32_t g) {
        if (std::find(r.additional_gids.begin(), r.additional_gids.end(), g) == r.additional_gids.end())
            r.additional_gids.push_back(g);
    };
    // The primary group first, as containerd lists it: setgroups() then holds every group the process is in.
    add(r.gid);
    if (sc.supplemental_groups_policy() == v1::Merge && pw)
        for (uint32_t g : users->groups_of(pw->name)) add(g);
    for (int i = 0; i < sc.supplemental_groups_size(); ++i) {
        BERTH_ASSIGN(uint32_t g, id_from_int64(sc.supplemental_groups(i),
                                              fmt::format("{}.supplemental_groups[{}]", kSecurityContext, i)));
        add(g);
    }
    return r;
}

// "net_admin", "CAP_NET_ADMIN", "Net_Admin" -> "CAP_NET_ADMIN"; nullopt for "ALL" and unknown names.
Result<std::string> capability_name(const std::string& name, std::string_view field) {
    std::string n = name;
    for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!n.starts_with("CAP_")) n.insert(0, "CAP_");
    if (!spec::capability_from_name(n)) return fail("{}: unknown capability \"{}\"", field, name);
    return n;
}

bool is_all(const std::string& name) {
    std::string n = name;
    for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n == "ALL" || n == "CAP_ALL";
}

Result<json> process_capabilities(const v1::LinuxContainerSecurityContext& sc) {
    std::vector<std::string> caps;
    std::vector<std::string> ambient;
    auto add_unique = [](std::vector<std::string>& v, const std::string& c) {
        if (std::find(v.begin(), v.end(), c) == v.end()) v.push_back(c);
    };
    if (sc.privileged()) {
        for (std::string_view n : spec::capability_names()) caps.emplace_back(n);
    } else {
        const auto& cc = sc.capabilities();
        std::string prefix = fmt::format("{}.capabilities", kSecurityContext);
        bool add_all = std::any_of(cc.add_capabilities().begin(), cc.add_capabilities().end(), is_all);
        bool drop_all = std::any_of(cc.drop_capabilities().begin(), cc.drop_capabilities().end(), is_all);
        if (add_all)
            for (std::string_view n : spec::capability_names()) caps.emplace_back(n);
        else
            for (std::string_view n : kDefaultCapabilities) caps.emplace_back(n);
        if (drop_all) caps.clear();
        for (int i = 0; i < cc.drop_capabilities_size(); ++i) {
            if (is_all(cc.drop_capabilities(i))) continue;
            BERTH_ASSIGN(std::string n,
                         capability_name(cc.drop_capabilities(i), fmt::format("{}.drop_capabilities[{}]", prefix, i)));
            std::erase(caps, n);
        }
        for (int i = 0; i < cc.add_capabilities_size(); ++i) {
            if (is_all(cc.add_capabilities(i))) continue;
            BERTH_ASSIGN(std::string n,
                         capability_name(cc.add_capabilities(i), fmt::format("{}.add_capabilities[{}]", prefix, i)));
            add_unique(caps, n);
        }
        for (int i = 0; i < cc.add_ambient_capabilities_size(); ++i) {
            const std::string& a = cc.add_ambient_capabilities(i);
            std::string field = fmt::format("{}.add_ambient_capabilities[{}]", prefix, i);
            if (is_all(a)) return fail("{}: \"ALL\" cannot be ambient", field);
            BERTH_ASSIGN(std::string n, capability_name(a, field));
            add_unique(ambient, n);
            // An ambient capability must be permitted and inheritable, or the kernel refuses to raise it.
            add_unique(caps, n);
        }
    }
    json out = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    if (!ambient.empty()) {
        out["inheritable"] = ambient;
        out["ambient"] = ambient;
    }
    return out;
}

// ---- mounts ----------------------------------------------------------------------------------------------------

json mount_entry(std::string destination, std::string type, std::string source, std::vector<std::string> options) {
    json m = {{"destination", std::move(destination)}, {"type", std::move(type)}, {"source", std::move(source)}};
    if (!options.empty()) m["options"] = std::move(options);
    return m;
}

size_t depth(std::string_view path) {
    return static_cast<size_t>(std::count(path.begin(), path.end(), '/')) - (path == "/" ? 1 : 0);
}

struct MountPlan {
    std::vector<json> mounts;
    std::string rootfs_propagation;
};

Result<MountPlan> build_mounts(const v1::ContainerConfig& config, const v1::LinuxContainerSecurityContext& sc,
                               const PodContext& pod) {
    MountPlan plan;
    std::vector<json> user;
    std::set<std::string> user_destinations;
    bool shared = false, slave = false;
    for (int i = 0; i < config.mounts_size(); ++i) {
        const auto& m = config.mounts(i);
        std::string field = fmt::format("config.mounts[{}]", i);
        if (m.host_path().empty()) {
            if (m.has_image() && !m.image().image().empty())
                return fail("{}.image: image volumes are not supported by berth", field);
            return fail("{}.host_path: empty", field);
        }
        if (m.container_path().empty() || m.container_path().front() != '/' || has_nul(m.container_path()))
            return fail("{}.container_path: \"{}\" is not an absolute path", field, m.container_path());
        if (m.host_path().front() != '/' || has_nul(m.host_path()))
            return fail("{}.host_path: \"{}\" is not an absolute path", field, m.host_path());
        if (m.uidmappings_size() > 0 || m.gidmappings_size() > 0)
            return fail("{}: id-mapped mounts (uidMappings, gidMappings) are not supported by berth", field);
        std::string dest = clean_path(m.container_path());
        if (!user_destinations.insert(dest).second)
            return fail("{}.container_path: \"{}\" is mounted twice", field, m.container_path());
        std::vector<std::string> opts = {"rbind"};
        switch (m.propagation()) {
            case v1::PROPAGATION_PRIVATE: opts.emplace_back("rprivate"); break;
            case v1::PROPAGATION_HOST_TO_CONTAINER:
                opts.emplace_back("rslave");
                slave = true;
                break;
            case v1::PROPAGATION_BIDIRECTIONAL:
                opts.emplace_back("rshared");
                shared = true;
                break;
            default: return fail("{}.propagation: unknown value {}", field, static_cast<int>(m.propagation()));
        }
        if (m.recursive_read_only()) {
            if (!m.readonly()) return fail("{}.recursive_read_only: requires readonly", field);
            if (m.propagation() != v1::PROPAGATION_PRIVATE)
                return fail("{}.recursive_read_only: requires propagation PROPAGATION_PRIVATE", field);
            // "rro" makes every submount read-only too (mount_setattr with AT_RECURSIVE).
            opts.emplace_back("rro");
        } else {
            opts.emplace_back(m.readonly() ? "ro" : "rw");
        }
        // selinux_relabel is accepted and ignored: berth does not label files.
        user.push_back(mount_entry(dest, "bind", m.host_path(), std::move(opts)));
    }
    // Joining the host's mount events needs the rootfs' own propagation to pass them on.
    if (shared)
        plan.rootfs_propagation = "rshared";
    else if (slave)
        plan.rootfs_propagation = "rslave";

    auto standard = [&](json m) {
        if (!user_destinations.contains(m["destination"].get<std::string>())) plan.mounts.push_back(std::move(m));
    };
    standard(mount_entry("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
    standard(mount_entry("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
    standard(mount_entry("/dev/pts", "devpts", "devpts",
                         {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
    standard(mount_entry("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
    standard(mount_entry("/sys", "sysfs", "sysfs",
                         {"nosuid", "noexec", "nodev", sc.privileged() ? "rw" : "ro"}));
    standard(mount_entry("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
    if (!pod.shm_path.empty())
        standard(mount_entry("/dev/shm", "bind", pod.shm_path, {"rbind", "rprivate", "nosuid", "nodev", "noexec"}));
    else
        standard(mount_entry("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
    // The pod's files are read-only to a container whose rootfs is (as containerd does).
    std::string file_mode = sc.readonly_rootfs() ? "ro" : "rw";
    if (!pod.resolv_conf_path.empty())
        standard(mount_entry("/etc/resolv.conf", "bind", pod.resolv_conf_path, {"rbind", "rprivate", file_mode}));
    if (!pod.hosts_path.empty())
        standard(mount_entry("/etc/hosts", "bind", pod.hosts_path, {"rbind", "rprivate", file_mode}));
    if (!pod.hostname_path.empty())
        standard(mount_entry("/etc/hostname", "bind", pod.hostname_path, {"rbind", "rprivate", file_mode}));

    for (auto& m : user) plan.mounts.push_back(std::move(m));
    // Parents before children; equal depths keep their order (standard mounts first).
    std::stable_sort(plan.mounts.begin(), plan.mounts.end(), [](const json& a, const json& b) {
        return depth(a["destination"].get<std::string>()) < depth(b["destination"].get<std::string>());
    });
    return plan;
}

// ---- linux -----------------------------------------------------------------------------------------------------

Result<json> build_namespaces(const v1::LinuxContainerSecurityContext& sc, const v1::PodSandboxConfig& pod_config,
                              const PodContext& pod) {
    const auto& pod_ns = pod_config.linux().security_context().namespace_options();
    const auto& ctr_ns = sc.has_namespace_options() ? sc.namespace_options() : pod_ns;
    std::string field = fmt::format("{}.namespace_options", kSecurityContext);
    for (const auto* ns : {&pod_ns, &ctr_ns}) {
        if (!ns->has_userns_options()) continue;
        const auto& u = ns->userns_options();
        if (u.mode() == v1::NODE || (u.mode() == v1::POD && u.uids_size() == 0 && u.gids_size() == 0)) continue;
        return fail("{}.userns_options: user namespaces are not supported by berth", field);
    }

    json out = json::array();
    auto add = [&](const char* type, const std::string& path) {
        json n = {{"type", type}};
        if (!path.empty()) n["path"] = path;
        out.push_back(std::move(n));
    };
    switch (ctr_ns.pid()) {
        case v1::NODE: break;
        case v1::POD:
            if (pod.pidns_path.empty())
                return fail("{}.pid: POD, but pod {} has no shared PID namespace", field, pod.pod_id);
            add("pid", pod.pidns_path);
            break;
        case v1::CONTAINER: add("pid", ""); break;
        case v1::TARGET:
            return fail("{}.pid: TARGET (another container's PID namespace) is not supported by berth", field);
        default: return fail("{}.pid: unknown mode {}", field, static_cast<int>(ctr_ns.pid()));
    }
    // The host network comes with the host's UTS namespace, as in every CRI runtime.
    if (pod_ns.network() != v1::NODE) {
        add("network", pod.netns_path);
        add("uts", pod.utsns_path);
    }
    if (pod_ns.ipc() != v1::NODE) add("ipc", pod.ipcns_path);
    add("mount", "");
    add("cgroup", "");
    return out;
}

Result<json> build_sysctls(const v1::PodSandboxConfig& pod_config) {
    const auto& ns = pod_config.linux().security_context().namespace_options();
    bool own_net = ns.network() != v1::NODE;
    bool own_ipc = ns.ipc() != v1::NODE;
    json out = json::object();
    for (const auto& [key, value] : pod_config.linux().sysctls()) {
        std::string field = fmt::format("pod_config.linux.sysctls[\"{}\"]", key);
        if (key.empty() || has_nul(key) || has_nul(value) || key.find("..") != std::string::npos ||
            key.front() == '.' || key.front() == '/')
            return fail("{}: not a sysctl name", field);
        // Kubernetes allows "/" as the separator ("net/ipv4/ip_forward"); the classification needs only the
        // leading components, which are the same in both spellings.
        std::string n = key;
        std::replace(n.begin(), n.end(), '/', '.');
        bool ipc = n.starts_with("kernel.shm") || n.starts_with("kernel.msg") || n == "kernel.sem" ||
                   n.starts_with("fs.mqueue.");
        if (n.starts_with("net.")) {
            if (!own_net) return fail("{}: the pod uses the host's network namespace", field);
        } else if (ipc) {
            if (!own_ipc) return fail("{}: the pod uses the host's IPC namespace", field);
        } else if (n == "kernel.hostname" || n == "kernel.domainname") {
            if (!own_net) return fail("{}: the pod uses the host's UTS namespace", field);
        } else {
            return fail("{}: not a namespaced sysctl, a pod cannot set it", field);
        }
        out[key] = value;
    }
    return out;
}

Result<json> build_resources(const v1::ContainerConfig& config, const HostContext& host) {
    json res = json::object();
    if (!config.linux().has_resources()) return res;
    const auto& r = config.linux().resources();
    json cpu = json::object();
    if (r.cpu_shares() < 0) return fail("{}.cpu_shares: {} is negative", kResources, r.cpu_shares());
    if (r.cpu_shares() > 0) cpu["shares"] = r.cpu_shares();
    if (r.cpu_period() < 0) return fail("{}.cpu_period: {} is negative", kResources, r.cpu_period());
    if (r.cpu_period() > 0) cpu["period"] = r.cpu_period();
    if (r.cpu_quota() < -1) return fail("{}.cpu_quota: {} is below -1", kResources, r.cpu_quota());
    if (r.cpu_quota() != 0) cpu["quota"] = r.cpu_quota();
    if (!r.cpuset_cpus().empty()) cpu["cpus"] = r.cpuset_cpus();
    if (!r.cpuset_mems().empty()) cpu["mems"] = r.cpuset_mems();
    if (!cpu.empty()) res["cpu"] = std::move(cpu);

    json mem = json::object();
    if (r.memory_limit_in_bytes() < 0)
        return fail("{}.memory_limit_in_bytes: {} is negative", kResources, r.memory_limit_in_bytes());
    if (r.memory_limit_in_bytes() > 0) mem["limit"] = r.memory_limit_in_bytes();
    if (r.memory_swap_limit_in_bytes() < -1)
        return fail("{}.memory_swap_limit_in_bytes: {} is below -1", kResources, r.memory_swap_limit_in_bytes());
    if (r.memory_swap_limit_in_bytes() != 0) {
        // The OCI swap value is memory + swap, like the CRI's; it cannot be below the memory limit.
        if (r.memory_swap_limit_in_bytes() > 0 && r.memory_limit_in_bytes() > 0 &&
            r.memory_swap_limit_in_bytes() < r.memory_limit_in_bytes())
            return fail("{}.memory_swap_limit_in_bytes: {} is below memory_limit_in_bytes {}", kResources,
                        r.memory_swap_limit_in_bytes(), r.memory_limit_in_bytes());
        mem["swap"] = r.memory_swap_limit_in_bytes();
    }
    if (!mem.empty()) res["memory"] = std::move(mem);

    if (host.hugetlb_available) {
        json pages = json::array();
        for (int i = 0; i < r.hugepage_limits_size(); ++i) {
            const auto& h = r.hugepage_limits(i);
            if (h.page_size().empty()) return fail("{}.hugepage_limits[{}].page_size: empty", kResources, i);
            if (!host.hugepage_sizes.empty() && std::find(host.hugepage_sizes.begin(), host.hugepage_sizes.end(),
                                                          h.page_size()) == host.hugepage_sizes.end())
                return fail("{}.hugepage_limits[{}].page_size: \"{}\" is not a huge page size of this host",
                            kResources, i, h.page_size());
            pages.push_back({{"pageSize", h.page_size()}, {"limit", h.limit()}});
        }
        if (!pages.empty()) res["hugepageLimits"] = std::move(pages);
    }
    if (!r.unified().empty()) {
        json unified = json::object();
        for (const auto& [k, v] : r.unified()) {
            if (k.empty() || k.find('/') != std::string::npos || has_nul(k) || has_nul(v))
                return fail("{}.unified[\"{}\"]: not a cgroup file name", kResources, k);
            unified[k] = v;
        }
        res["unified"] = std::move(unified);
    }
    return res;
}

Result<std::optional<int>> oom_score_adj(const v1::ContainerConfig& config, const HostContext& host) {
    if (!config.linux().has_resources()) return std::optional<int>();
    int64_t v = config.linux().resources().oom_score_adj();
    if (v < -1000 || v > 1000) return fail("{}.oom_score_adj: {} is outside -1000..1000", kResources, v);
    int adj = static_cast<int>(v);
    if (host.clamp_oom_score_adj && adj < 0 && adj < host.daemon_oom_score) adj = host.daemon_oom_score;
    return std::optional<int>(adj);
}

Result<void> build_devices(const v1::ContainerConfig& config, bool privileged, json& linux_) {
    json devices = json::array();
    json rules = json::array();
    if (privileged)
        rules.push_back({{"allow", true}, {"access", "rwm"}});
    else
        rules.push_back({{"allow", false}, {"access", "rwm"}});
    for (int i = 0; i < config.devices_size(); ++i) {
        const auto& d = config.devices(i);
        std::string field = fmt::format("config.devices[{}]", i);
        if (d.host_path().empty() || d.host_path().front() != '/' || has_nul(d.host_path()))
            return fail("{}.host_path: \"{}\" is not an absolute path", field, d.host_path());
        std::string dest = d.container_path().empty() ? d.host_path() : d.container_path();
        if (dest.front() != '/' || has_nul(dest))
            return fail("{}.container_path: \"{}\" is not an absolute path", field, d.container_path());
        std::string perms = d.permissions().empty() ? "rwm" : d.permissions();
        if (perms.find_first_not_of("rwm") != std::string::npos)
            return fail("{}.permissions: \"{}\" is not a combination of r, w and m", field, d.permissions());
        struct stat st {};
        if (::stat(d.host_path().c_str(), &st) != 0) return fail_sys("{}.host_path: stat {}", field, d.host_path());
        std::string type;
        if (S_ISCHR(st.st_mode))
            type = "c";
        else if (S_ISBLK(st.st_mode))
            type = "b";
        else
            return fail("{}.host_path: {} is not a character or block device", field, d.host_path());
        int64_t major = ::major(st.st_rdev), minor = ::minor(st.st_rdev);
        devices.push_back({{"path", clean_path(dest)},
                           {"type", type},
                           {"major", major},
                           {"minor", minor},
                           {"fileMode", st.st_mode & 07777},
                           {"uid", st.st_uid},
                           {"gid", st.st_gid}});
        if (!privileged)
            rules.push_back({{"allow", true}, {"type", type}, {"major", major}, {"minor", minor}, {"access", perms}});
    }
    // A privileged container may use every device (the cgroup rule above), but berth does not create the host's
    // device nodes in it: only the ones the request lists. Kubernetes' device plugins list theirs, so this
    // matters only to workloads that expect the whole host /dev.
    if (!devices.empty()) linux_["devices"] = std::move(devices);
    linux_["resources"]["devices"] = std::move(rules);
    return {};
}

// The profile file a Localhost reference names, as an OCI linux.seccomp object.
Result<json> load_seccomp_profile(const std::string& ref, std::string_view field, const HostContext& host) {
    if (ref.empty()) return fail("{}: Localhost without a profile path", field);
    std::string path = ref.front() == '/' ? ref : path_join(host.seccomp_profile_root, ref);
    if (ref.front() != '/' && host.seccomp_profile_root.empty())
        return fail("{}: relative profile \"{}\" and no seccomp profile root is configured", field, ref);
    auto fd = open_fd(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (!fd) return std::unexpected(std::move(fd).error().wrap(std::string(field)));
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return fail_sys("{}: stat {}", field, path);
    if (!S_ISREG(st.st_mode)) return fail("{}: {} is not a regular file", field, path);
    if (static_cast<size_t>(st.st_size) > kMaxSeccompProfileSize)
        return fail("{}: {} is larger than {} bytes", field, path, kMaxSeccompProfileSize);
    BERTH_ASSIGN(std::string text, read_fd(fd->get()));
    json in = json::parse(text, nullptr, false);
    if (in.is_discarded() || !in.is_object()) return fail("{}: {} is not a JSON object", field, path);
    json out = json::object();
    for (const char* key : {"defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
                            "listenerMetadata", "syscalls"})
        if (in.contains(key)) out[key] = in[key];
    // Docker's profile format names the architectures in an archMap.
    if (!in.contains("architectures") && in.contains("archMap") && in["archMap"].is_array()) {
        json arches = json::array();
        for (const auto& a : in["archMap"]) {
            if (!a.is_object()) continue;
            if (a.contains("architecture")) arches.push_back(a["architecture"]);
            if (a.contains("subArchitectures") && a["subArchitectures"].is_array())
                for (const auto& s : a["subArchitectures"]) arches.push_back(s);
        }
        out["architectures"] = std::move(arches);
    }
    if (out.contains("syscalls") && out["syscalls"].is_array())
        for (size_t i = 0; i < out["syscalls"].size(); ++i) {
            json& s = out["syscalls"][i];
            if (s.is_object() && (s.contains("includes") || s.contains("excludes")))
                return fail("{}: {} syscalls[{}]: conditional rules (includes, excludes) are not supported", field,
                            path, i);
            if (s.is_object() && s.contains("name") && !s.contains("names")) {
                s["names"] = json::array({s["name"]});
                s.erase("name");
            }
        }
    // The profile must be a valid linux.seccomp object: checked here so the error names the file.
    json probe = {{"ociVersion", spec::kOciVersion}, {"linux", {{"seccomp", out}}}};
    auto parsed = spec::parse_config(probe.dump());
    if (!parsed) return std::unexpected(std::move(parsed).error().wrap(fmt::format("{}: profile {}", field, path)));
    return out;
}

// nullopt: no seccomp filter.
Result<std::optional<json>> build_seccomp(const v1::LinuxContainerSecurityContext& sc, const HostContext& host) {
    if (sc.privileged()) return std::optional<json>();
    if (sc.has_seccomp()) {
        std::string field = fmt::format("{}.seccomp", kSecurityContext);
        switch (sc.seccomp().profile_type()) {
            case v1::SecurityProfile::RuntimeDefault: return std::optional<json>(default_seccomp_profile());
            case v1::SecurityProfile::Unconfined: return std::optional<json>();
            case v1::SecurityProfile::Localhost: {
                BERTH_ASSIGN(json p, load_seccomp_profile(sc.seccomp().localhost_ref(), field + ".localhost_ref", host));
                return std::optional<json>(std::move(p));
            }
            default:
                return fail("{}.profile_type: unknown value {}", field, static_cast<int>(sc.seccomp().profile_type()));
        }
    }
    // The deprecated string form: "runtime/default", "docker/default", "unconfined", "localhost/<path>", "".
    // Kubelet no longer sends it, other CRI clients still may.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const std::string& p = sc.seccomp_profile_path();
#pragma GCC diagnostic pop
    std::string field = fmt::format("{}.seccomp_profile_path", kSecurityContext);
    if (p.empty() || p == "unconfined") return std::optional<json>();
    if (p == "runtime/default" || p == "docker/default") return std::optional<json>(default_seccomp_profile());
    if (p.starts_with("localhost/")) {
        BERTH_ASSIGN(json prof, load_seccomp_profile(p.substr(10), field, host));
        return std::optional<json>(std::move(prof));
    }
    return fail("{}: unknown profile \"{}\"", field, p);
}

// The AppArmor profile name, "" for none.
Result<std::string> build_apparmor(const v1::LinuxContainerSecurityContext& sc, const HostContext& host) {
    if (!host.apparmor_enabled || sc.privileged()) return std::string();
    std::string field = fmt::format("{}.apparmor", kSecurityContext);
    auto runtime_default = [&]() -> Result<std::string> {
        if (host.apparmor_default_profile.empty())
            return fail("{}: RuntimeDefault, but no default AppArmor profile is configured for berth", field);
        return host.apparmor_default_profile;
    };
    if (sc.has_apparmor()) {
        switch (sc.apparmor().profile_type()) {
            case v1::SecurityProfile::RuntimeDefault: return runtime_default();
            case v1::SecurityProfile::Unconfined: return std::string();
            case v1::SecurityProfile::Localhost: {
                std::string name = sc.apparmor().localhost_ref();
                if (name.starts_with("localhost/")) name.erase(0, 10);
                if (name.empty()) return fail("{}.localhost_ref: empty", field);
                return name;
            }
            default:
                return fail("{}.profile_type: unknown value {}", field, static_cast<int>(sc.apparmor().profile_type()));
        }
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const std::string& p = sc.apparmor_profile();
#pragma GCC diagnostic pop
    field = fmt::format("{}.apparmor_profile", kSecurityContext);
    if (p.empty() || p == "unconfined") return std::string();
    if (p == "runtime/default") return runtime_default();
    if (p.starts_with("localhost/") && p.size() > 10) return p.substr(10);
    return fail("{}: unknown profile \"{}\"", field, p);
}

std::string cgroups_path(const std::string& parent, const std::string& id) {
    if (parent.empty()) return "/" + id;
    std::string p = parent;
    if (p.front() != '/') p.insert(0, "/");
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p == "/" ? "/" + id : p + "/" + id;
}

}  // namespace

Result<nlohmann::json> build_container_spec(const std::string& container_id, const v1::ContainerConfig& config,
                                            const v1::PodSandboxConfig& pod_config, const PodContext& pod,
                                            const ImageContext& image, const HostContext& host) {
    if (container_id.empty() || container_id.find('/') != std::string::npos || has_nul(container_id))
        return fail("container id \"{}\": not a valid id", container_id);
    if (image.rootfs_path.empty() || image.rootfs_path.front() != '/')
        return fail("container {}: rootfs path \"{}\" is not absolute", container_id, image.rootfs_path);
    const json& icfg = image_runtime_config(image.config);
    const auto& sc = config.linux().security_context();

    json process = json::object();
    BERTH_ASSIGN(process["args"], process_args(config, icfg, image.image_ref));
    BERTH_ASSIGN(process["env"], process_env(config, icfg, pod, image.image_ref));
    BERTH_ASSIGN(process["cwd"], process_cwd(config, icfg, image.image_ref));
    process["terminal"] = config.tty();
    BERTH_ASSIGN(ResolvedUser user, resolve_user(sc, icfg, image));
    process["user"] = {{"uid", user.uid}, {"gid", user.gid}};
    if (!user.additional_gids.empty()) process["user"]["additionalGids"] = user.additional_gids;
    BERTH_ASSIGN(process["capabilities"], process_capabilities(sc));
    process["noNewPrivileges"] = sc.no_new_privs();
    BERTH_ASSIGN(std::string apparmor, build_apparmor(sc, host));
    if (!apparmor.empty()) process["apparmorProfile"] = apparmor;
    BERTH_ASSIGN(std::optional<int> oom, oom_score_adj(config, host));
    if (oom) process["oomScoreAdj"] = *oom;
    // selinux_options are accepted and ignored: berth does not label processes or files.

    json linux_ = json::object();
    BERTH_ASSIGN(linux_["namespaces"], build_namespaces(sc, pod_config, pod));
    if (pod.cgroup_parent.ends_with(".slice"))
        return fail("pod_config.linux.cgroup_parent: \"{}\" is a systemd slice; berth uses the cgroupfs driver",
                    pod.cgroup_parent);
    linux_["cgroupsPath"] = cgroups_path(pod.cgroup_parent, container_id);
    BERTH_ASSIGN(linux_["resources"], build_resources(config, host));
    BERTH_TRY(build_devices(config, sc.privileged(), linux_));
    BERTH_ASSIGN(json sysctls, build_sysctls(pod_config));
    if (!sysctls.empty()) linux_["sysctl"] = std::move(sysctls);
    if (!sc.privileged()) {
        std::vector<std::string> masked, readonly;
        if (sc.masked_paths_size() > 0)
            masked.assign(sc.masked_paths().begin(), sc.masked_paths().end());
        else
            for (auto p : kDefaultMaskedPaths) masked.emplace_back(p);
        if (sc.readonly_paths_size() > 0)
            readonly.assign(sc.readonly_paths().begin(), sc.readonly_paths().end());
        else
            for (auto p : kDefaultReadonlyPaths) readonly.emplace_back(p);
        for (size_t i = 0; i < masked.size(); ++i)
            if (masked[i].empty() || masked[i].front() != '/')
                return fail("{}.masked_paths[{}]: \"{}\" is not an absolute path", kSecurityContext, i, masked[i]);
        for (size_t i = 0; i < readonly.size(); ++i)
            if (readonly[i].empty() || readonly[i].front() != '/')
                return fail("{}.readonly_paths[{}]: \"{}\" is not an absolute path", kSecurityContext, i,
                            readonly[i]);
        linux_["maskedPaths"] = std::move(masked);
        linux_["readonlyPaths"] = std::move(readonly);
    }
    BERTH_ASSIGN(std::optional<json> seccomp, build_seccomp(sc, host));
    if (seccomp) linux_["seccomp"] = std::move(*seccomp);

    BERTH_ASSIGN(MountPlan mounts, build_mounts(config, sc, pod));
    if (!mounts.rootfs_propagation.empty()) linux_["rootfsPropagation"] = mounts.rootfs_propagation;

    json annotations = json::object();
    for (const auto& [k, v] : config.annotations()) annotations[k] = v;
    annotations["io.kubernetes.cri.container-type"] = "container";
    annotations["io.kubernetes.cri.container-name"] = config.metadata().name();
    annotations["io.kubernetes.cri.sandbox-id"] = pod.pod_id;
    annotations["io.kubernetes.cri.sandbox-name"] = pod_config.metadata().name();
    annotations["io.kubernetes.cri.sandbox-namespace"] = pod_config.metadata().namespace_();
    annotations["io.kubernetes.cri.sandbox-uid"] = pod_config.metadata().uid();
    annotations["io.kubernetes.cri.image-name"] = image.image_ref;

    json spec = {
        {"ociVersion", spec::kOciVersion},
        {"process", std::move(process)},
        {"root", {{"path", image.rootfs_path}, {"readonly", sc.readonly_rootfs()}}},
        {"mounts", std::move(mounts.mounts)},
        {"annotations", std::move(annotations)},
        {"linux", std::move(linux_)},
    };
    // A container with its own UTS namespace gets the pod's hostname; one joining the pod's pinned namespace
    // finds it set there already.
    if (!pod.hostname.empty() && pod.utsns_path.empty() &&
        pod_config.linux().security_context().namespace_options().network() != v1::NODE)
        spec["hostname"] = pod.hostname;

    // Whatever the request held, the result must be a config berth accepts: a bad value (a cpuset list, a
    // sysctl, a mount option) fails here, before anything is created, with the OCI field's path.
    auto parsed = spec::parse_config(spec.dump());
    if (!parsed) return std::unexpected(std::move(parsed).error().wrap(fmt::format("container {}", container_id)));
    BERTH_TRY_CTX(spec::validate_config(*parsed), "container {}", container_id);
    return spec;
}

Result<int> image_stop_signal(const nlohmann::json& image_config) {
    const json& cfg = image_runtime_config(image_config);
    auto it = cfg.find("StopSignal");
    if (it == cfg.end() || it->is_null()) return SIGTERM;
    if (!it->is_string()) return fail("image config.StopSignal: not a string");
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty()) return SIGTERM;
    auto sig = runtime::parse_signal(s);
    if (!sig) return std::unexpected(std::move(sig).error().wrap("image config.StopSignal"));
    return *sig;
}

}  // namespace berth::cri
