// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/pod_manager.hpp"

#include <unistd.h>

#include "cgroups/cgroups.hpp"
#include "common/log.hpp"
#include "cri/container_manager.hpp"
#include "cri/pod_namespaces.hpp"
#include "cri/pod_network.hpp"
#include "cri/stats.hpp"
#include "linux/namespaces.hpp"

namespace berth::cri {
namespace {

constexpr unsigned long long kShmSize = 64ULL << 20;

std::string hosts_file(bool host_network) {
    if (host_network) {
        if (auto h = read_file("/etc/hosts")) return *h;
    }
    return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
           "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";
}

// resolv.conf from the pod's DNS config; without one, the host's (as the other runtimes do).
std::string resolv_conf(const v1::PodSandboxConfig& c) {
    if (!c.has_dns_config() ||
        (c.dns_config().servers().empty() && c.dns_config().searches().empty() && c.dns_config().options().empty())) {
        return read_file("/etc/resolv.conf").value_or("");
    }
    std::string out;
    for (const auto& s : c.dns_config().servers()) out += "nameserver " + s + "\n";
    if (!c.dns_config().searches().empty()) {
        out += "search";
        for (const auto& s : c.dns_config().searches()) out += " " + s;
        out += "\n";
    }
    if (!c.dns_config().options().empty()) {
        out += "options";
        for (const auto& s : c.dns_config().options()) out += " " + s;
        out += "\n";
    }
    return out;
}

std::string host_hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) < 0) return {};
    return buf;
}

// rmdir of the pod's cgroup in every hierarchy; missing is fine.
void remove_cgroup(const std::string& path) {
    auto layout = cgroups::detect_layout();
    if (!layout || path.empty() || path == "/") return;
    std::vector<std::string> dirs;
    for (const auto& [c, mnt] : layout->v1) dirs.push_back(path_join(mnt, path));
    if (!layout->unified.empty()) dirs.push_back(path_join(layout->unified, path));
    for (const auto& d : dirs)
        if (::rmdir(d.c_str()) < 0 && errno != ENOENT) log::warn("remove pod cgroup {}: {}", d, std::strerror(errno));
}

}  // namespace

bool labels_match(const google::protobuf::Map<std::string, std::string>& labels,
                  const google::protobuf::Map<std::string, std::string>& selector) {
    for (const auto& [k, v] : selector) {
        auto it = labels.find(k);
        if (it == labels.end() || it->second != v) return false;
    }
    return true;
}

Result<std::string> PodManager::run(const v1::RunPodSandboxRequest& req) {
    if (!req.has_config()) return cri_error(EINVAL, "config: missing");
    const v1::PodSandboxConfig& c = req.config();
    if (!c.has_metadata() || c.metadata().name().empty()) return cri_error(EINVAL, "config.metadata.name: empty");
    const auto& nso = c.linux().security_context().namespace_options();
    if (nso.pid() == v1::TARGET || nso.network() == v1::TARGET || nso.ipc() == v1::TARGET)
        return cri_error(EINVAL, "config.linux.security_context.namespace_options: TARGET is for containers only");
    if (nso.network() == v1::CONTAINER || nso.ipc() == v1::CONTAINER)
        return cri_error(EINVAL,
                         "config.linux.security_context.namespace_options: network and ipc are POD or NODE for a pod");
    BERTH_ASSIGN(RuntimeHandler handler, ctx_.handler(req.runtime_handler()));

    store::PodRecord p;
    p.id = new_id();
    p.name = c.metadata().name();
    p.namespace_ = c.metadata().namespace_();
    p.uid = c.metadata().uid();
    p.attempt = c.metadata().attempt();
    p.state = store::PodState::creating;
    p.created_at = now_ns();
    c.SerializeToString(&p.config);
    p.runtime_handler = handler.name;
    p.host_network = nso.network() == v1::NODE;
    p.host_ipc = nso.ipc() == v1::NODE;
    if (!c.linux().cgroup_parent().empty()) {
        p.cgroup_parent = c.linux().cgroup_parent();
    } else {
        p.cgroup_parent = path_join(ctx_.config.cgroup_parent, p.id);
        p.owns_cgroup = true;
    }

    auto guard = ctx_.locks.lock(p.id);
    std::string holder;
    if (auto r = ctx_.records->put_pod(p, true, &holder); !r) {
        if (r.error().code() != EEXIST) return std::unexpected(std::move(r).error());
        auto held = ctx_.records->pod(holder);
        if (held && held->state == store::PodState::ready && held->config == p.config) {
            log::info("RunPodSandbox {}/{}: a retry of pod {}, answered with its id", p.namespace_, p.name, holder);
            return holder;
        }
        return cri_error(EEXIST, "pod sandbox {}/{} (uid {}, attempt {}) already exists: id {}", p.namespace_, p.name,
                         p.uid, p.attempt, holder);
    }

    auto make = [&]() -> Result<void> {
        const std::string dir = ctx_.pod_dir(p.id);
        BERTH_TRY(mkdir_all(dir, 0711));
        std::string hostname = c.hostname();
        if (hostname.empty()) hostname = p.host_network ? host_hostname() : p.name;
        BERTH_TRY(write_file(path_join(dir, "hostname"), hostname + "\n"));
        BERTH_TRY(write_file(path_join(dir, "hosts"), hosts_file(p.host_network)));
        BERTH_TRY(write_file(path_join(dir, "resolv.conf"), resolv_conf(c)));
        if (!p.host_ipc) BERTH_TRY(mount_shm(path_join(dir, "shm"), kShmSize));
        PinRequest pin{.dir = path_join(dir, "ns"),
                       .net = !p.host_network,
                       .ipc = !p.host_ipc,
                       .uts = !p.host_network,
                       .hostname = hostname};
        BERTH_TRY(pin_namespaces(pin));
        if (!p.host_network && network_) BERTH_TRY(network_->attach(p, c, path_join(dir, "ns/net")));
        if (nso.pid() == v1::POD) {
            BERTH_ASSIGN(InfraProcess infra, start_pid_infra(ctx_.monitor_binary()));
            p.infra_pid = infra.pid;
            p.infra_start = infra.start_time;
        }
        p.state = store::PodState::ready;
        return ctx_.records->put_pod(p, false);
    };
    if (auto r = make(); !r) {
        undo(p);
        return std::unexpected(std::move(r).error().wrap(fmt::format("run pod sandbox {}/{}", p.namespace_, p.name)));
    }
    log::info("pod sandbox {} ({}/{}) is ready", p.id, p.namespace_, p.name);
    return p.id;
}

Result<void> PodManager::release_resources(const store::PodRecord& p) {
    const std::string dir = ctx_.pod_dir(p.id);
    Result<void> first;
    auto step = [&](Result<void> r) {
        if (!r && first) first = std::move(r);
    };
    step(stop_pid_infra({p.infra_pid, p.infra_start}));
    // DEL while the namespace is still pinned; its cache stays when it fails, so a later Stop runs it again (with
    // the namespace gone, plugins still release what lives outside it).
    if (network_) step(network_->detach(p.id, path_join(dir, "ns/net")));
    step(unmount_and_remove(path_join(dir, "shm")));
    step(unpin_namespaces(path_join(dir, "ns")));
    return first;
}

void PodManager::undo(const store::PodRecord& p) {
    if (auto r = release_resources(p); !r) log::warn("undo pod {}: {}", p.id, r.error().message());
    if (auto r = remove_all(ctx_.pod_dir(p.id)); !r) log::warn("undo pod {}: {}", p.id, r.error().message());
    if (p.owns_cgroup) remove_cgroup(p.cgroup_parent);
    if (auto r = ctx_.records->remove_pod(p.id); !r) log::warn("undo pod {}: {}", p.id, r.error().message());
}

Result<void> PodManager::stop(const std::string& id) {
    auto guard = ctx_.locks.lock(id);
    auto p = ctx_.records->pod(id);
    if (!p) return p.error().code() == ENOENT ? Result<void>() : std::unexpected(p.error());
    if (containers_) BERTH_TRY_CTX(containers_->stop_all_of(id), "stop pod sandbox {}", id);
    BERTH_TRY_CTX(release_resources(*p), "stop pod sandbox {}", id);
    if (p->state != store::PodState::notready) {
        p->state = store::PodState::notready;
        BERTH_TRY(ctx_.records->put_pod(*p, false));
    }
    return {};
}

Result<void> PodManager::remove(const std::string& id) {
    auto guard = ctx_.locks.lock(id);
    auto p = ctx_.records->pod(id);
    if (!p) return p.error().code() == ENOENT ? Result<void>() : std::unexpected(p.error());
    if (containers_) BERTH_TRY_CTX(containers_->remove_all_of(id), "remove pod sandbox {}", id);
    BERTH_TRY_CTX(release_resources(*p), "remove pod sandbox {}", id);
    BERTH_TRY_CTX(remove_all(ctx_.pod_dir(id)), "remove pod sandbox {}", id);
    if (p->owns_cgroup) remove_cgroup(p->cgroup_parent);
    BERTH_TRY(ctx_.records->remove_pod(id));
    guard.lock.unlock();
    ctx_.locks.forget(id);
    log::info("pod sandbox {} removed", id);
    return {};
}

void PodManager::fill_status(const store::PodRecord& p, v1::PodSandboxStatus* out) const {
    v1::PodSandboxConfig c;
    c.ParseFromString(p.config);
    out->set_id(p.id);
    *out->mutable_metadata() = c.metadata();
    out->set_state(p.state == store::PodState::ready ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY);
    out->set_created_at(p.created_at);
    out->mutable_network()->set_ip("");
    *out->mutable_linux()->mutable_namespaces()->mutable_options() = c.linux().security_context().namespace_options();
    *out->mutable_labels() = c.labels();
    *out->mutable_annotations() = c.annotations();
    out->set_runtime_handler(p.runtime_handler);
}

Result<void> PodManager::status(const std::string& id, bool verbose, v1::PodSandboxStatusResponse* resp) {
    auto p = ctx_.records->pod(id);
    if (!p)
        return p.error().code() == ENOENT ? cri_error(ENOENT, "pod sandbox {} not found", id)
                                          : std::unexpected(p.error());
    fill_status(*p, resp->mutable_status());
    if (network_ && !p->host_network) {
        auto ips = network_->pod_ips(id);
        for (size_t i = 0; i < ips.size(); ++i) {
            if (i == 0) resp->mutable_status()->mutable_network()->set_ip(ips[i]);
            else resp->mutable_status()->mutable_network()->add_additional_ips()->set_ip(ips[i]);
        }
    }
    resp->set_timestamp(now_ns());
    if (containers_) BERTH_TRY(containers_->statuses_of(id, resp->mutable_containers_statuses()));
    if (verbose) {
        const std::string dir = ctx_.pod_dir(id);
        nlohmann::json info = {
            {"id", p->id},
            {"state", store::to_string(p->state)},
            {"runtimeHandler", p->runtime_handler},
            {"cgroupParent", p->cgroup_parent},
            {"netns", p->host_network ? "" : path_join(dir, "ns/net")},
            {"ipcns", p->host_ipc ? "" : path_join(dir, "ns/ipc")},
            {"utsns", p->host_network ? "" : path_join(dir, "ns/uts")},
            {"shm", p->host_ipc ? "" : path_join(dir, "shm")},
            {"pidnsHolder", p->infra_pid},
            {"resolvConf", path_join(dir, "resolv.conf")},
            {"hosts", path_join(dir, "hosts")},
            {"hostname", path_join(dir, "hostname")},
        };
        if (network_ && !p->host_network) {
            if (auto a = network_->cached(id)) {
                info["cni"] = {{"network", a->network.name}, {"file", a->source_file}, {"result", a->result}};
                // CHECK (where the network's version has it) of a ready pod: what kubelet would see of its health.
                if (p->state == store::PodState::ready) {
                    auto guard = ctx_.locks.lock(id);  // no CHECK while a Stop runs DEL for the pod
                    auto checked = network_->check(id, path_join(dir, "ns/net"));
                    info["cni"]["check"] = checked ? "ok" : checked.error().message();
                }
            }
        }
        (*resp->mutable_info())["info"] = info.dump();
    }
    return {};
}

Result<void> PodManager::list(const v1::PodSandboxFilter* f, v1::ListPodSandboxResponse* resp) {
    BERTH_ASSIGN(auto pods, ctx_.records->pods());
    for (const auto& p : pods) {
        if (p.state == store::PodState::creating) continue;
        v1::PodSandboxStatus st;
        fill_status(p, &st);
        if (f) {
            if (!f->id().empty() && !p.id.starts_with(f->id())) continue;
            if (f->has_state() && f->state().state() != st.state()) continue;
            if (!labels_match(st.labels(), f->label_selector())) continue;
        }
        v1::PodSandbox* out = resp->add_items();
        out->set_id(p.id);
        *out->mutable_metadata() = st.metadata();
        out->set_state(st.state());
        out->set_created_at(p.created_at);
        *out->mutable_labels() = st.labels();
        *out->mutable_annotations() = st.annotations();
        out->set_runtime_handler(p.runtime_handler);
    }
    return {};
}

namespace {
Result<void> fill_pod(const CriContext& ctx, ContainerManager* containers, const store::PodRecord& p,
                      v1::PodSandboxStats* out) {
    v1::PodSandboxConfig c;
    c.ParseFromString(p.config);
    PodStatsSource src;
    src.id = p.id;
    src.metadata = c.metadata();
    src.labels.insert(c.labels().begin(), c.labels().end());
    src.annotations.insert(c.annotations().begin(), c.annotations().end());
    src.cgroup_path = p.cgroup_parent;
    if (!p.host_network && p.state == store::PodState::ready) src.netns_path = path_join(ctx.pod_dir(p.id), "ns/net");
    if (containers) {
        BERTH_ASSIGN(src.containers, containers->stats_sources_of(p.id));
    }
    return fill_pod_stats(src, out);
}
}  // namespace

Result<void> PodManager::stats(const std::string& id, v1::PodSandboxStats* out) {
    auto p = ctx_.records->pod(id);
    if (!p || p->state == store::PodState::creating) {
        if (!p && p.error().code() != ENOENT) return std::unexpected(p.error());
        return cri_error(ENOENT, "pod sandbox {} not found", id);
    }
    return fill_pod(ctx_, containers_, *p, out);
}

Result<void> PodManager::list_stats(const v1::PodSandboxStatsFilter* f, v1::ListPodSandboxStatsResponse* resp) {
    BERTH_ASSIGN(auto pods, ctx_.records->pods());
    for (const auto& p : pods) {
        if (p.state != store::PodState::ready) continue;
        v1::PodSandboxConfig c;
        c.ParseFromString(p.config);
        if (f) {
            if (!f->id().empty() && !p.id.starts_with(f->id())) continue;
            if (!labels_match(c.labels(), f->label_selector())) continue;
        }
        BERTH_TRY(fill_pod(ctx_, containers_, p, resp->add_stats()));
    }
    return {};
}

Result<PodContext> PodManager::context_of(const store::PodRecord& p) const {
    if (p.state != store::PodState::ready) return cri_error(EBUSY, "pod sandbox {} is not ready", p.id);
    const std::string dir = ctx_.pod_dir(p.id);
    PodContext pc;
    pc.pod_id = p.id;
    if (!p.host_network) pc.netns_path = path_join(dir, "ns/net");
    if (!p.host_ipc) pc.ipcns_path = path_join(dir, "ns/ipc");
    if (!p.host_network) pc.utsns_path = path_join(dir, "ns/uts");
    pc.cgroup_parent = p.cgroup_parent;
    pc.hostname = read_file(path_join(dir, "hostname")).value_or("");
    while (!pc.hostname.empty() && pc.hostname.back() == '\n') pc.hostname.pop_back();
    pc.resolv_conf_path = path_join(dir, "resolv.conf");
    pc.hosts_path = path_join(dir, "hosts");
    pc.hostname_path = path_join(dir, "hostname");
    if (!p.host_ipc) pc.shm_path = path_join(dir, "shm");
    if (p.infra_pid > 0) {
        if (!sys::process_alive(p.infra_pid, p.infra_start))
            return cri_error(EBUSY, "pod sandbox {}: the holder of its shared PID namespace (pid {}) is gone", p.id,
                             p.infra_pid);
        pc.pidns_path = fmt::format("/proc/{}/ns/pid", p.infra_pid);
    }
    return pc;
}

void PodManager::recover() {
    auto pods = ctx_.records->pods();
    if (!pods) {
        log::error("recover pods: {}", pods.error().message());
        return;
    }
    for (auto p : *pods) {
        if (p.state == store::PodState::ready && !p.host_network &&
            !path_exists(path_join(ctx_.pod_dir(p.id), "ns/net"))) {
            // Its pinned namespaces are gone (the state dir is a tmpfs and the host rebooted): not usable.
            log::warn("pod sandbox {} lost its pinned namespaces: marked not ready", p.id);
            p.state = store::PodState::notready;
            if (auto r = ctx_.records->put_pod(p, false); !r) log::error("{}", r.error().message());
            continue;
        }
        if (p.state != store::PodState::creating) continue;
        log::info("pod sandbox {} ({}/{}) was being created when berthd stopped: undoing it", p.id, p.namespace_,
                  p.name);
        undo(p);
    }
}

}  // namespace berth::cri
