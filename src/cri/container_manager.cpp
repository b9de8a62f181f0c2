// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/container_manager.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cgroups/cgroups.hpp"
#include "common/log.hpp"
#include "cri/spec_builder.hpp"
#include "cri/subprocess.hpp"
#include "image/snapshots.hpp"
#include "linux/namespaces.hpp"
#include "linux/pidfd.hpp"
#include "monitor/exit_record.hpp"
#include "runtime/runtime.hpp"

namespace berth::cri {
namespace {

// ExecSync output per stream, as the CRI says (kubelet's maxExecSyncOutputSize... 16 MiB).
constexpr size_t kExecOutputCap = 16 << 20;
// How long Stop waits for the exit after SIGKILL before it gives up with an error.
constexpr int64_t kKillWaitMs = 30000;

// "2026-01-02T03:04:05.123456789Z" -> unix nanoseconds; 0 when unparsable.
int64_t parse_rfc3339_ns(const std::string& s) {
    struct tm tm {};
    const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) return 0;
    int64_t ns = 0;
    if (*rest == '.') {
        ++rest;
        int digits = 0;
        while (*rest >= '0' && *rest <= '9') {
            if (digits < 9) ns = ns * 10 + (*rest - '0'), ++digits;
            ++rest;
        }
        while (digits++ < 9) ns *= 10;
    }
    return static_cast<int64_t>(::timegm(&tm)) * 1000000000 + ns;
}

bool has_cap_sys_resource() {
    auto status = read_file("/proc/self/status");
    if (!status) return false;
    auto pos = status->find("CapEff:");
    if (pos == std::string::npos) return false;
    unsigned long long caps = std::strtoull(status->c_str() + pos + 7, nullptr, 16);
    return (caps >> 24) & 1;  // CAP_SYS_RESOURCE
}

HostContext detect_host(const DaemonConfig& config) {
    HostContext h;
    bool cap = has_cap_sys_resource();
    h.clamp_oom_score_adj = config.oom_clamp == OomClamp::always || (config.oom_clamp == OomClamp::automatic && !cap);
    h.daemon_oom_score = std::atoi(read_file("/proc/self/oom_score_adj").value_or("0").c_str());
    auto layout = cgroups::detect_layout();
    h.hugetlb_available = false;
    if (layout) {
        if (layout->v1.contains("hugetlb")) h.hugetlb_available = true;
        auto ctrls = read_file(path_join(layout->unified, "cgroup.controllers"));
        if (!layout->unified.empty() && ctrls && ctrls->find("hugetlb") != std::string::npos &&
            layout->mode == cgroups::Mode::v2)
            h.hugetlb_available = true;
    }
    h.apparmor_enabled = read_file("/sys/module/apparmor/parameters/enabled").value_or("").starts_with("Y");
    if (::access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0) h.hugepage_sizes.push_back("2MB");
    if (::access("/sys/kernel/mm/hugepages/hugepages-1048576kB", F_OK) == 0) h.hugepage_sizes.push_back("1GB");
    return h;
}

// The spec builder quietly adapts knobs the host cannot honour (HostContext); say so once per container, so an
// operator sees why a Guaranteed pod's oom_score_adj or a hugepage limit is not what kubelet asked for.
void log_host_clamps(const std::string& id, const v1::ContainerConfig& cfg, const nlohmann::json& spec) {
    const auto& res = cfg.linux().resources();
    if (cfg.has_linux() && cfg.linux().has_resources() && res.oom_score_adj() < 0) {
        const auto* process = spec.contains("process") ? &spec["process"] : nullptr;
        const long long written = process && process->contains("oomScoreAdj") ? (*process)["oomScoreAdj"].get<long long>() : 0;
        if (written != res.oom_score_adj())
            log::info("container {}: oom_score_adj {} clamped to {} (no CAP_SYS_RESOURCE; oom_clamp in berth.toml)", id,
                      res.oom_score_adj(), written);
    }
    if (cfg.has_linux() && cfg.linux().has_resources() && res.hugepage_limits_size() > 0) {
        const bool kept = spec.contains("linux") && spec["linux"].contains("resources") &&
                          spec["linux"]["resources"].contains("hugepageLimits");
        if (!kept)
            log::info("container {}: {} hugepage limit(s) dropped: this host has no hugetlb cgroup controller", id,
                      res.hugepage_limits_size());
    }
}

v1::ContainerState cri_state(store::ContainerState s) {
    switch (s) {
        case store::ContainerState::created:
            return v1::CONTAINER_CREATED;
        case store::ContainerState::running:
            return v1::CONTAINER_RUNNING;
        case store::ContainerState::exited:
            return v1::CONTAINER_EXITED;
        default:
            return v1::CONTAINER_UNKNOWN;
    }
}

std::string dirname_of(const std::string& p) {
    auto slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash == 0 ? 1 : slash);
}

// The OCI LinuxResources of CRI resources (only what is set).
nlohmann::json oci_resources(const v1::LinuxContainerResources& r) {
    nlohmann::json j = nlohmann::json::object();
    nlohmann::json cpu = nlohmann::json::object(), mem = nlohmann::json::object();
    if (r.cpu_shares()) cpu["shares"] = r.cpu_shares();
    if (r.cpu_quota()) cpu["quota"] = r.cpu_quota();
    if (r.cpu_period()) cpu["period"] = r.cpu_period();
    if (!r.cpuset_cpus().empty()) cpu["cpus"] = r.cpuset_cpus();
    if (!r.cpuset_mems().empty()) cpu["mems"] = r.cpuset_mems();
    if (r.memory_limit_in_bytes()) mem["limit"] = r.memory_limit_in_bytes();
    if (r.memory_swap_limit_in_bytes()) mem["swap"] = r.memory_swap_limit_in_bytes();
    if (!cpu.empty()) j["cpu"] = cpu;
    if (!mem.empty()) j["memory"] = mem;
    if (!r.unified().empty()) {
        nlohmann::json u = nlohmann::json::object();
        for (const auto& [k, v] : r.unified()) u[k] = v;
        j["unified"] = u;
    }
    return j;
}

// The ociVersion to write for an external runtime: the newest it declares (`<runtime> features`,
// ociVersionMax), else 1.0.2: a runtime without the features command predates runtime-spec 1.1, and some (crun
// 1.8) refuse a config of a version they do not know. Fields newer than the version are ignored by such runtimes
// as unknown fields. Asked once per binary.
std::string oci_version_of(const std::string& runtime) {
    static std::mutex mu;
    static std::map<std::string, std::string> known;
    std::lock_guard lock(mu);
    if (auto it = known.find(runtime); it != known.end()) return it->second;
    std::string version = "1.0.2";
    if (auto r = run_captured({runtime, "features"}, "", 5000, 1 << 20); r && r->exit_code == 0) {
        auto j = nlohmann::json::parse(r->out, nullptr, false);
        if (j.is_object() && j.contains("ociVersionMax") && j["ociVersionMax"].is_string())
            version = j["ociVersionMax"].get<std::string>();
    }
    known[runtime] = version;
    return version;
}

}  // namespace

ContainerManager::ContainerManager(CriContext& ctx, PodManager& pods) : ctx_(ctx), pods_(pods) {
    watcher_ = std::make_unique<ExitWatcher>([this](const std::string& id) { on_exit(id); });
}

Result<void> ContainerManager::start_watcher() {
    return watcher_->start();
}

std::string ContainerManager::monitor_binary() const {
    return ctx_.monitor_binary();
}

std::string ContainerManager::runtime_binary(const RuntimeHandler& h) const {
    return h.path.empty() ? path_join(dirname_of(monitor_binary()), "berth") : h.path;
}

Result<std::string> ContainerManager::create(const v1::CreateContainerRequest& req) {
    if (req.pod_sandbox_id().empty()) return cri_error(EINVAL, "pod_sandbox_id: empty");
    if (!req.has_config()) return cri_error(EINVAL, "config: missing");
    const v1::ContainerConfig& cfg = req.config();
    if (!cfg.has_metadata() || cfg.metadata().name().empty()) return cri_error(EINVAL, "config.metadata.name: empty");
    if (cfg.image().image().empty()) return cri_error(EINVAL, "config.image.image: empty");

    auto pod_guard = ctx_.locks.lock(req.pod_sandbox_id());
    auto pod = ctx_.records->pod(req.pod_sandbox_id());
    if (!pod)
        return pod.error().code() == ENOENT ? cri_error(ENOENT, "pod sandbox {} not found", req.pod_sandbox_id())
                                            : std::unexpected(pod.error());
    BERTH_ASSIGN(PodContext pod_ctx, pods_.context_of(*pod));
    BERTH_ASSIGN(RuntimeHandler handler, ctx_.handler(pod->runtime_handler));
    v1::PodSandboxConfig pod_cfg;
    pod_cfg.ParseFromString(pod->config);

    store::ContainerRecord c;
    c.id = new_id();
    c.pod_id = pod->id;
    c.name = cfg.metadata().name();
    c.attempt = cfg.metadata().attempt();
    c.state = store::ContainerState::creating;
    c.created_at = now_ns();
    cfg.SerializeToString(&c.config);
    c.image_ref = cfg.image().image();
    c.handler = handler.name;
    if (!pod_cfg.log_directory().empty() && !cfg.log_path().empty())
        c.log_path = path_join(pod_cfg.log_directory(), cfg.log_path());
    std::string holder;
    if (auto r = ctx_.records->put_container(c, true, &holder); !r) {
        if (r.error().code() != EEXIST) return std::unexpected(std::move(r).error());
        return cri_error(EEXIST, "container {} (attempt {}) already exists in pod sandbox {}: id {}", c.name, c.attempt,
                         c.pod_id, holder);
    }
    auto guard = ctx_.locks.lock(c.id);

    auto make = [&]() -> Result<void> {
        store::ImageRecord image;
        std::vector<std::string> lowerdirs;
        {
            std::lock_guard lock(ctx_.images_mu);
            auto held = ctx_.images->hold(c.id, c.image_ref);
            if (!held) {
                if (held.error().code() == ENOENT) return cri_error(ENOENT, "image {} not found", c.image_ref);
                return std::unexpected(std::move(held).error());
            }
            image = std::move(*held);
            if (image.chain_ids.empty())
                return cri_error(EINVAL, "config.image.image: image {} has no layers", c.image_ref);
            BERTH_ASSIGN(lowerdirs, ctx_.images->snapshots().lowerdirs(image.chain_ids.back()));
        }
        c.image_id = image.id.string();
        auto image_config = nlohmann::json::parse(image.config_json, nullptr, false);
        if (image_config.is_discarded()) return fail("image {}: its config is not JSON", c.image_id);

        const std::string root_dir = ctx_.container_root_dir(c.id);
        const std::string rootfs = ctx_.rootfs_dir(c.id);
        BERTH_TRY(mkdir_all(rootfs, 0755));
        BERTH_TRY(image::mount_overlay(lowerdirs, root_dir, rootfs));

        ImageContext ic{.image_ref = c.image_ref, .config = image_config, .rootfs_path = rootfs};
        BERTH_ASSIGN(nlohmann::json spec,
                     build_container_spec(c.id, cfg, pod_cfg, pod_ctx, ic, detect_host(ctx_.config)));
        spec["root"]["path"] = rootfs;
        log_host_clamps(c.id, cfg, spec);
        if (!handler.path.empty()) spec["ociVersion"] = oci_version_of(handler.path);
        const std::string bundle = ctx_.bundle_dir(c.id);
        BERTH_TRY(mkdir_all(bundle, 0700));
        BERTH_TRY(write_file(path_join(bundle, "config.json"), spec.dump()));

        if (cfg.stop_signal() != v1::RUNTIME_DEFAULT) {
            BERTH_ASSIGN(c.stop_signal, runtime::parse_signal(v1::Signal_Name(cfg.stop_signal())));
        } else {
            BERTH_ASSIGN(c.stop_signal, image_stop_signal(image_config));
        }

        std::string log_path = c.log_path;
        if (log_path.empty()) log_path = path_join(ctx_.container_state_dir(c.id), "console.log");
        BERTH_TRY(mkdir_all(dirname_of(log_path), 0755));
        BERTH_TRY(mkdir_all(handler.root, 0711));

        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("pipe");
        UniqueFd sync_r(p[0]), sync_w(p[1]);
        std::vector<std::string> argv = {
            monitor_binary(), "--id",   c.id,     "--bundle",   bundle,      "--dir", ctx_.monitor_dir(c.id),
            "--log-path",     log_path, "--root", handler.root, "--sync-fd", "3"};
        if (!handler.path.empty()) argv.insert(argv.end(), {"--runtime", handler.path});
        if (cfg.tty()) argv.push_back("--terminal");
        if (cfg.stdin()) argv.push_back("--stdin");
        if (cfg.stdin() && cfg.stdin_once()) argv.push_back("--stdin-once");
        SpawnOptions so{.argv = argv, .extra_fds = {{sync_w.get(), 3}}};
        BERTH_ASSIGN(pid_t starter, spawn_process(so));
        sync_w.reset();
        BERTH_ASSIGN(int starter_exit, wait_process(starter));
        // One line, not to EOF: the container's init holds a copy of the pipe until it execs (at start).
        std::string report;
        char ch;
        for (;;) {
            ssize_t n = ::read(sync_r.get(), &ch, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0 || ch == '\n') break;
            report.push_back(ch);
        }
        auto j = nlohmann::json::parse(report, nullptr, false);
        if (!j.is_object()) {
            return fail("berth-monitor of container {} reported nothing (exit {}); see {}/monitor.log", c.id,
                        starter_exit, ctx_.monitor_dir(c.id));
        }
        if (j.contains("error")) return fail("{}", j["error"].get<std::string>());
        c.monitor_pid = j.value("pid", 0);
        c.pid = j.value("container_pid", 0);
        c.monitor_start = sys::process_start_time(c.monitor_pid);
        c.pid_start = sys::process_start_time(c.pid);
        c.state = store::ContainerState::created;
        BERTH_TRY(ctx_.records->put_container(c, false));
        BERTH_TRY(watcher_->watch(c.id, ctx_.monitor_dir(c.id)));
        return {};
    };
    if (auto r = make(); !r) {
        undo_create(c);
        return std::unexpected(
            std::move(r).error().wrap(fmt::format("create container {} in pod sandbox {}", c.name, c.pod_id)));
    }
    // An exit between the monitor's report and the watch.
    apply_exit(c);
    publish(c, v1::CONTAINER_CREATED_EVENT);
    log::info("container {} ({}) created in pod sandbox {}", c.id, c.name, c.pod_id);
    return c.id;
}

void ContainerManager::undo_create(const store::ContainerRecord& c) {
    watcher_->unwatch(c.id);
    if (path_exists(ctx_.monitor_dir(c.id))) {
        if (auto r = runtime_delete(c); !r) log::warn("undo container {}: {}", c.id, r.error().message());
    }
    const std::string rootfs = ctx_.rootfs_dir(c.id);
    if (auto r = image::unmount_overlay(rootfs); !r && r.error().code() != EINVAL && r.error().code() != ENOENT)
        log::warn("undo container {}: {}", c.id, r.error().message());
    for (const auto& d : {ctx_.container_root_dir(c.id), ctx_.container_state_dir(c.id), ctx_.monitor_dir(c.id)})
        if (auto r = remove_all(d); !r) log::warn("undo container {}: {}", c.id, r.error().message());
    {
        std::lock_guard lock(ctx_.images_mu);
        if (auto r = ctx_.images->release(c.id); !r) log::warn("undo container {}: {}", c.id, r.error().message());
    }
    if (auto r = ctx_.records->remove_container(c.id); !r)
        log::warn("undo container {}: {}", c.id, r.error().message());
}

Result<std::string> ContainerManager::ctl(const store::ContainerRecord& c, const std::string& command) {
    const std::string path = path_join(ctx_.monitor_dir(c.id), "ctl");
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_sys("socket");
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail("monitor socket path {} is too long", path);
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        return fail_sys("connect to the monitor of container {} ({})", c.id, path);
    BERTH_TRY(write_all(fd.get(), command + "\n"));
    BERTH_ASSIGN(std::string reply, read_fd(fd.get()));
    while (!reply.empty() && reply.back() == '\n') reply.pop_back();
    if (reply == "ok") return reply;
    if (reply.starts_with("error ")) return fail("{}", reply.substr(6));
    return fail("monitor of container {}: unexpected reply \"{}\" to {}", c.id, reply, command);
}

Result<void> ContainerManager::start(const std::string& id) {
    auto guard = ctx_.locks.lock(id);
    auto c = ctx_.records->container(id);
    if (!c)
        return c.error().code() == ENOENT ? cri_error(ENOENT, "container {} not found", id)
                                          : std::unexpected(c.error());
    if (c->state != store::ContainerState::created)
        return cri_error(EBUSY, "container {} is {}, not created", id, store::to_string(c->state));
    const int64_t started = now_ns();
    if (auto r = ctl(*c, "start"); !r) {
        apply_exit(*c);
        return std::unexpected(std::move(r).error().wrap(fmt::format("start container {}", id)));
    }
    c->state = store::ContainerState::running;
    c->started_at = started;
    BERTH_TRY(ctx_.records->put_container(*c, false));
    publish(*c, v1::CONTAINER_STARTED_EVENT);
    // A container that exits at once may have written its record before the state above was stored.
    apply_exit(*c);
    return {};
}

Result<void> ContainerManager::signal(const store::ContainerRecord& c, int signo) {
    if (c.pid <= 0 || !sys::process_alive(c.pid, c.pid_start)) return {};
    UniqueFd pidfd(sys::pidfd_open(c.pid));
    if (!pidfd) return errno == ESRCH ? Result<void>() : fail_sys("pidfd_open {} (container {})", c.pid, c.id);
    // The pidfd was opened after the start-time check: recheck, so a reused pid is never signalled.
    if (!sys::process_alive(c.pid, c.pid_start)) return {};
    if (sys::pidfd_send_signal(pidfd.get(), signo) < 0 && errno != ESRCH)
        return fail_sys("signal {} to container {} (pid {})", signo, c.id, c.pid);
    return {};
}

bool ContainerManager::wait_exit(const store::ContainerRecord& c, int64_t timeout_ms) {
    const std::string exit_file = path_join(ctx_.monitor_dir(c.id), monitor::kExitFileName);
    auto monitor_gone = [&] { return c.monitor_pid > 0 && !sys::process_alive(c.monitor_pid, c.monitor_start); };
    std::unique_lock lock(exit_mu_);
    // The watcher notifies under exit_mu_ after the file is in place; the monitor's own death is not notified,
    // so that case is looked at once a second.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (path_exists(exit_file) || monitor_gone()) return true;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        auto step = std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::seconds(1));
        exit_cv_.wait_for(lock, step);
    }
}

bool ContainerManager::apply_exit(store::ContainerRecord& c) {
    if (c.state == store::ContainerState::exited) return true;
    if (c.state == store::ContainerState::creating) return false;
    auto rec = monitor::read_exit_record(ctx_.monitor_dir(c.id));
    if (rec) {
        c.exit_code = rec->exit_code;
        c.finished_at = parse_rfc3339_ns(rec->finished_at);
        if (c.finished_at == 0) c.finished_at = now_ns();
        // The monitor's start time is the real one (berthd's is taken around the ctl call).
        if (int64_t t = parse_rfc3339_ns(rec->started_at); t > 0) c.started_at = t;
        c.reason = rec->oom_killed ? "OOMKilled" : rec->exit_code == 0 ? "Completed" : "Error";
        c.message = rec->signal ? fmt::format("killed by signal {}", rec->signal) : "";
    } else if (c.monitor_pid > 0 && !sys::process_alive(c.monitor_pid, c.monitor_start)) {
        // The monitor is gone without a record (killed): the container cannot be followed any more.
        c.exit_code = 255;
        c.finished_at = now_ns();
        c.reason = "Error";
        c.message = "berth-monitor exited without recording the container's exit";
        (void)signal(c, SIGKILL);
    } else {
        return false;
    }
    c.state = store::ContainerState::exited;
    if (auto r = runtime_delete(c); !r) log::warn("container {} exited: {}", c.id, r.error().message());
    if (auto r = ctx_.records->put_container(c, false); !r) log::error("{}", r.error().message());
    watcher_->unwatch(c.id);
    log::info("container {} exited with {} ({})", c.id, c.exit_code, c.reason);
    publish(c, v1::CONTAINER_STOPPED_EVENT);
    return true;
}

void ContainerManager::on_exit(const std::string& id) {
    { std::lock_guard lock(exit_mu_); }
    exit_cv_.notify_all();
    auto guard = ctx_.locks.lock(id);
    auto c = ctx_.records->container(id);
    if (!c) return;
    apply_exit(*c);
}

Result<void> ContainerManager::runtime_delete(const store::ContainerRecord& c) {
    BERTH_ASSIGN(RuntimeHandler h, ctx_.handler(c.handler));
    auto r = run_captured({runtime_binary(h), "--root", h.root, "delete", "--force", c.id}, "", 0, 1 << 16);
    if (!r) return std::unexpected(std::move(r).error());
    if (r->exit_code == 0) return {};
    // Already gone (never created, or deleted before a crash) is what we want.
    if (r->err.find("not exist") != std::string::npos || r->err.find("not found") != std::string::npos ||
        r->err.find("No such") != std::string::npos)
        return {};
    std::string why = r->err;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return fail("{} delete {}: {}", runtime_binary(h), c.id, why.empty() ? fmt::format("exit {}", r->exit_code) : why);
}

Result<void> ContainerManager::stop_locked(store::ContainerRecord& c, int64_t timeout_s) {
    if (apply_exit(c)) return {};
    if (c.state == store::ContainerState::creating) return cri_error(EBUSY, "container {} is being created", c.id);
    if (timeout_s > 0 && c.state == store::ContainerState::running) {
        BERTH_TRY(signal(c, c.stop_signal > 0 ? c.stop_signal : SIGTERM));
        if (wait_exit(c, timeout_s * 1000) && apply_exit(c)) return {};
    }
    BERTH_TRY(signal(c, SIGKILL));
    if (wait_exit(c, kKillWaitMs) && apply_exit(c)) return {};
    return cri_error(ETIMEDOUT, "container {} did not exit {} s after SIGKILL", c.id, kKillWaitMs / 1000);
}

Result<void> ContainerManager::stop(const std::string& id, int64_t timeout_s) {
    auto guard = ctx_.locks.lock(id);
    auto c = ctx_.records->container(id);
    if (!c) return c.error().code() == ENOENT ? Result<void>() : std::unexpected(c.error());
    return stop_locked(*c, timeout_s);
}

Result<void> ContainerManager::remove_locked(store::ContainerRecord& c) {
    if (c.state != store::ContainerState::creating) BERTH_TRY(stop_locked(c, 0));
    watcher_->unwatch(c.id);
    BERTH_TRY(runtime_delete(c));
    const std::string rootfs = ctx_.rootfs_dir(c.id);
    if (auto r = image::unmount_overlay(rootfs); !r && r.error().code() != EINVAL && r.error().code() != ENOENT)
        return std::unexpected(std::move(r).error().wrap(fmt::format("remove container {}", c.id)));
    BERTH_TRY(remove_all(ctx_.container_root_dir(c.id)));
    BERTH_TRY(remove_all(ctx_.container_state_dir(c.id)));
    BERTH_TRY(remove_all(ctx_.monitor_dir(c.id)));
    {
        std::lock_guard lock(ctx_.images_mu);
        BERTH_TRY(ctx_.images->release(c.id));
    }
    BERTH_TRY(ctx_.records->remove_container(c.id));
    publish(c, v1::CONTAINER_DELETED_EVENT);
    log::info("container {} removed", c.id);
    return {};
}

Result<void> ContainerManager::remove(const std::string& id) {
    auto guard = ctx_.locks.lock(id);
    auto c = ctx_.records->container(id);
    if (!c) return c.error().code() == ENOENT ? Result<void>() : std::unexpected(c.error());
    BERTH_TRY(remove_locked(*c));
    guard.lock.unlock();
    ctx_.locks.forget(id);
    return {};
}

Result<void> ContainerManager::stop_all_of(const std::string& pod_id) {
    BERTH_ASSIGN(auto list, ctx_.records->containers_of(pod_id));
    for (auto& c : list) {
        auto guard = ctx_.locks.lock(c.id);
        auto fresh = ctx_.records->container(c.id);
        if (!fresh) continue;
        BERTH_TRY(stop_locked(*fresh, 0));
    }
    return {};
}

Result<void> ContainerManager::remove_all_of(const std::string& pod_id) {
    BERTH_ASSIGN(auto list, ctx_.records->containers_of(pod_id));
    for (auto& c : list) {
        auto guard = ctx_.locks.lock(c.id);
        auto fresh = ctx_.records->container(c.id);
        if (!fresh) continue;
        BERTH_TRY(remove_locked(*fresh));
    }
    return {};
}

void ContainerManager::fill_status(const store::ContainerRecord& c, v1::ContainerStatus* out) const {
    v1::ContainerConfig cfg;
    cfg.ParseFromString(c.config);
    out->set_id(c.id);
    *out->mutable_metadata() = cfg.metadata();
    out->set_state(cri_state(c.state));
    out->set_created_at(c.created_at);
    out->set_started_at(c.started_at);
    out->set_finished_at(c.finished_at);
    out->set_exit_code(c.exit_code);
    *out->mutable_image() = cfg.image();
    out->set_image_ref(c.image_id);
    out->set_image_id(c.image_id);
    out->set_reason(c.reason);
    out->set_message(c.message);
    *out->mutable_labels() = cfg.labels();
    *out->mutable_annotations() = cfg.annotations();
    *out->mutable_mounts() = cfg.mounts();
    out->set_log_path(c.log_path);
    if (cfg.linux().has_resources()) *out->mutable_resources()->mutable_linux() = cfg.linux().resources();
    if (cfg.stop_signal() != v1::RUNTIME_DEFAULT) out->set_stop_signal(cfg.stop_signal());
}

Result<void> ContainerManager::status(const std::string& id, bool verbose, v1::ContainerStatusResponse* resp) {
    auto c = ctx_.records->container(id);
    if (!c || c->state == store::ContainerState::creating) {
        if (!c && c.error().code() != ENOENT) return std::unexpected(c.error());
        return cri_error(ENOENT, "container {} not found", id);
    }
    fill_status(*c, resp->mutable_status());
    if (verbose) {
        nlohmann::json info = {{"id", c->id},
                               {"sandboxID", c->pod_id},
                               {"pid", c->pid},
                               {"monitorPid", c->monitor_pid},
                               {"runtimeHandler", c->handler},
                               {"bundle", ctx_.bundle_dir(c->id)},
                               {"rootfs", ctx_.rootfs_dir(c->id)},
                               {"monitorDir", ctx_.monitor_dir(c->id)},
                               {"stopSignal", c->stop_signal}};
        auto spec = read_file(path_join(ctx_.bundle_dir(c->id), "config.json"));
        if (spec) info["runtimeSpec"] = nlohmann::json::parse(*spec, nullptr, false);
        (*resp->mutable_info())["info"] = info.dump();
    }
    return {};
}

Result<void> ContainerManager::list(const v1::ContainerFilter* f, v1::ListContainersResponse* resp) {
    BERTH_ASSIGN(auto all, ctx_.records->containers());
    for (const auto& c : all) {
        if (c.state == store::ContainerState::creating) continue;
        v1::ContainerConfig cfg;
        cfg.ParseFromString(c.config);
        if (f) {
            if (!f->id().empty() && !c.id.starts_with(f->id())) continue;
            if (!f->pod_sandbox_id().empty() && !c.pod_id.starts_with(f->pod_sandbox_id())) continue;
            if (f->has_state() && f->state().state() != cri_state(c.state)) continue;
            if (!labels_match(cfg.labels(), f->label_selector())) continue;
        }
        v1::Container* out = resp->add_containers();
        out->set_id(c.id);
        out->set_pod_sandbox_id(c.pod_id);
        *out->mutable_metadata() = cfg.metadata();
        *out->mutable_image() = cfg.image();
        out->set_image_ref(c.image_id);
        out->set_image_id(c.image_id);
        out->set_state(cri_state(c.state));
        out->set_created_at(c.created_at);
        *out->mutable_labels() = cfg.labels();
        *out->mutable_annotations() = cfg.annotations();
    }
    return {};
}

Result<void> ContainerManager::statuses_of(const std::string& pod_id,
                                           google::protobuf::RepeatedPtrField<v1::ContainerStatus>* out) {
    BERTH_ASSIGN(auto list, ctx_.records->containers_of(pod_id));
    for (const auto& c : list)
        if (c.state != store::ContainerState::creating) fill_status(c, out->Add());
    return {};
}

Result<void> ContainerManager::update_resources(const std::string& id, const v1::LinuxContainerResources& r) {
    auto guard = ctx_.locks.lock(id);
    auto c = ctx_.records->container(id);
    if (!c)
        return c.error().code() == ENOENT ? cri_error(ENOENT, "container {} not found", id)
                                          : std::unexpected(c.error());
    if (apply_exit(*c) || c->state == store::ContainerState::creating)
        return cri_error(EBUSY, "container {} is {}: its resources cannot be updated", id, store::to_string(c->state));
    BERTH_ASSIGN(RuntimeHandler h, ctx_.handler(c->handler));
    BERTH_TRY_CTX(
        run_checked({runtime_binary(h), "--root", h.root, "update", "--resources", "-", id}, oci_resources(r).dump()),
        "update container {}", id);
    v1::ContainerConfig cfg;
    cfg.ParseFromString(c->config);
    *cfg.mutable_linux()->mutable_resources() = r;
    cfg.SerializeToString(&c->config);
    return ctx_.records->put_container(*c, false);
}

Result<void> ContainerManager::reopen_log(const std::string& id) {
    auto guard = ctx_.locks.lock(id);
    auto c = ctx_.records->container(id);
    if (!c)
        return c.error().code() == ENOENT ? cri_error(ENOENT, "container {} not found", id)
                                          : std::unexpected(c.error());
    if (apply_exit(*c) || c->state != store::ContainerState::running)
        return cri_error(EBUSY, "container {} is not running: its log cannot be reopened", id);
    BERTH_TRY_CTX(ctl(*c, "reopen"), "reopen the log of container {}", id);
    return {};
}

namespace {
struct ExecKill {
    std::string pid_file;
};
void kill_exec(void* arg) {
    auto* k = static_cast<ExecKill*>(arg);
    auto text = read_file(k->pid_file);
    if (!text) return;
    pid_t pid = static_cast<pid_t>(std::atoi(text->c_str()));
    if (pid > 0) ::kill(pid, SIGKILL);
}
}  // namespace

Result<void> ContainerManager::exec_sync(const v1::ExecSyncRequest& req, v1::ExecSyncResponse* resp) {
    if (req.cmd().empty()) return cri_error(EINVAL, "cmd: empty");
    store::ContainerRecord c;
    {
        auto guard = ctx_.locks.lock(req.container_id());
        auto got = ctx_.records->container(req.container_id());
        if (!got)
            return got.error().code() == ENOENT ? cri_error(ENOENT, "container {} not found", req.container_id())
                                                : std::unexpected(got.error());
        if (apply_exit(*got) || got->state != store::ContainerState::running)
            return cri_error(EBUSY, "container {} is not running", req.container_id());
        c = *got;
    }
    BERTH_ASSIGN(RuntimeHandler h, ctx_.handler(c.handler));
    ExecKill k{path_join(ctx_.container_state_dir(c.id), "exec-" + new_id().substr(0, 16) + ".pid")};
    std::vector<std::string> argv = {runtime_binary(h), "--root", h.root, "exec", "--pid-file", k.pid_file, c.id};
    argv.insert(argv.end(), req.cmd().begin(), req.cmd().end());
    auto r = run_captured(argv, "", req.timeout() > 0 ? req.timeout() * 1000 : 0, kExecOutputCap, kill_exec, &k);
    ::unlink(k.pid_file.c_str());
    if (!r) return std::unexpected(std::move(r).error().wrap(fmt::format("exec in container {}", c.id)));
    if (r->timed_out)
        return cri_error(ETIMEDOUT, "exec in container {}: command timed out after {} s", c.id, req.timeout());
    resp->set_stdout(std::move(r->out));
    resp->set_stderr(std::move(r->err));
    resp->set_exit_code(r->exit_code);
    return {};
}

ContainerStatsSource ContainerManager::stats_source(const store::ContainerRecord& c) const {
    v1::ContainerConfig cfg;
    cfg.ParseFromString(c.config);
    ContainerStatsSource src;
    src.id = c.id;
    src.metadata = cfg.metadata();
    src.labels.insert(cfg.labels().begin(), cfg.labels().end());
    src.annotations.insert(cfg.annotations().begin(), cfg.annotations().end());
    auto spec = read_file(path_join(ctx_.bundle_dir(c.id), "config.json"));
    if (spec) {
        auto j = nlohmann::json::parse(*spec, nullptr, false);
        if (j.is_object() && j.contains("linux") && j["linux"].is_object())
            src.cgroups_path = j["linux"].value("cgroupsPath", "");
    }
    src.writable_layer_dir = path_join(ctx_.container_root_dir(c.id), "upper");
    src.image_fs_mountpoint = ctx_.config.root_dir;
    return src;
}

Result<void> ContainerManager::stats(const std::string& id, v1::ContainerStats* out) {
    auto c = ctx_.records->container(id);
    if (!c || c->state == store::ContainerState::creating) {
        if (!c && c.error().code() != ENOENT) return std::unexpected(c.error());
        return cri_error(ENOENT, "container {} not found", id);
    }
    return fill_container_stats(stats_source(*c), out);
}

Result<void> ContainerManager::list_stats(const v1::ContainerStatsFilter* f, v1::ListContainerStatsResponse* resp) {
    BERTH_ASSIGN(auto all, ctx_.records->containers());
    for (const auto& c : all) {
        if (c.state != store::ContainerState::running) continue;
        v1::ContainerConfig cfg;
        cfg.ParseFromString(c.config);
        if (f) {
            if (!f->id().empty() && !c.id.starts_with(f->id())) continue;
            if (!f->pod_sandbox_id().empty() && !c.pod_id.starts_with(f->pod_sandbox_id())) continue;
            if (!labels_match(cfg.labels(), f->label_selector())) continue;
        }
        BERTH_TRY(fill_container_stats(stats_source(c), resp->add_stats()));
    }
    return {};
}

Result<std::vector<ContainerStatsSource>> ContainerManager::stats_sources_of(const std::string& pod_id) {
    BERTH_ASSIGN(auto list, ctx_.records->containers_of(pod_id));
    std::vector<ContainerStatsSource> out;
    for (const auto& c : list)
        if (c.state == store::ContainerState::running) out.push_back(stats_source(c));
    return out;
}

void ContainerManager::publish(const store::ContainerRecord& c, v1::ContainerEventType type) {
    v1::ContainerEventResponse ev;
    ev.set_container_id(c.id);
    ev.set_container_event_type(type);
    ev.set_created_at(now_ns());
    if (auto pod = ctx_.records->pod(c.pod_id)) pods_.fill_status(*pod, ev.mutable_pod_sandbox_status());
    if (type != v1::CONTAINER_DELETED_EVENT) (void)statuses_of(c.pod_id, ev.mutable_containers_statuses());
    ctx_.events.publish(ev);
}

void ContainerManager::recover() {
    auto all = ctx_.records->containers();
    if (!all) {
        log::error("recover containers: {}", all.error().message());
        return;
    }
    for (auto& c : *all) {
        auto guard = ctx_.locks.lock(c.id);
        if (c.state == store::ContainerState::creating) {
            log::info("container {} was being created when berthd stopped: undoing it", c.id);
            undo_create(c);
            continue;
        }
        if (c.state == store::ContainerState::exited) continue;
        // Watch first, then look: an exit between the two is seen by one of them.
        if (auto r = watcher_->watch(c.id, ctx_.monitor_dir(c.id)); !r)
            log::warn("recover container {}: {}", c.id, r.error().message());
        if (apply_exit(c)) continue;
        log::info("container {} is still {} (pid {})", c.id, store::to_string(c.state), c.pid);
    }
}

}  // namespace berth::cri
