// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include "cri/pod_network.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "cni/result.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"
#include "cri/cri_context.hpp"

namespace berth::cri {
namespace {

using json = nlohmann::json;

constexpr const char* kIfName = "eth0";
constexpr long kNsfsMagic = 0x6e736673;

// True when `path` is a network namespace file (a pin still mounted), so a plugin can enter it.
bool is_netns(const std::string& path) {
    if (path.empty()) return false;
    struct statfs st {};
    return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == kNsfsMagic;
}

// A Kubernetes quantity ("10M", "1Gi", "500k", "100") in units; EINVAL on anything else.
Result<uint64_t> parse_quantity(const std::string& text, const std::string& field) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) return cri_error(EINVAL, "{}: \"{}\" is not a quantity", field, text);
    double value = 0;
    try {
        value = std::stod(text.substr(0, i));
    } catch (...) {
        return cri_error(EINVAL, "{}: \"{}\" is not a quantity", field, text);
    }
    const std::string suffix = text.substr(i);
    static const std::pair<const char*, double> kSuffixes[] = {
        {"", 1},     {"k", 1e3},     {"M", 1e6},        {"G", 1e9},           {"T", 1e12},
        {"P", 1e15}, {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
    };
    for (const auto& [s, mult] : kSuffixes) {
        if (suffix != s) continue;
        double v = value * mult;
        if (!(v >= 1) || v > 1e18) return cri_error(EINVAL, "{}: \"{}\" is out of range", field, text);
        return static_cast<uint64_t>(std::llround(v));
    }
    return cri_error(EINVAL, "{}: \"{}\" has an unknown suffix \"{}\"", field, text, suffix);
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (!item.empty()) out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

// What identifies the config dir's state: names, sizes, mtimes and inodes of its config files.
std::string dir_fingerprint(const std::string& dir) {
    auto files = cni::list_config_files(dir);
    if (!files) return "error:" + files.error().message();
    std::string out;
    for (const auto& f : *files) {
        struct stat st {};
        if (::stat(f.c_str(), &st) != 0) continue;
        out += fmt::format("{}|{}|{}|{}.{}\n", f, st.st_size, st.st_ino, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    }
    return out;
}

json attachment_json(const PodAttachment& a) {
    json args = json::array();
    for (const auto& [k, v] : a.attachment.args) args.push_back({k, v});
    return {
        {"network", a.network.to_json()},
        {"file", a.source_file},
        {"containerID", a.attachment.container_id},
        {"netns", a.attachment.netns},
        {"ifname", a.attachment.ifname},
        {"args", std::move(args)},
        {"capabilityArgs", a.attachment.capability_args},
        {"result", a.result},
    };
}

Result<PodAttachment> parse_attachment(const std::string& text, const std::string& path) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("network"))
        return fail("CNI attachment cache {}: not an attachment", path);
    PodAttachment a;
    BERTH_ASSIGN(a.network, cni::parse_network_config(j.at("network").dump(), path, true));
    a.source_file = j.value("file", "");
    a.network.file = a.source_file;
    a.attachment.container_id = j.value("containerID", "");
    a.attachment.netns = j.value("netns", "");
    a.attachment.ifname = j.value("ifname", kIfName);
    if (auto args = j.find("args"); args != j.end() && args->is_array())
        for (const auto& kv : *args)
            if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string())
                a.attachment.args.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
    if (auto c = j.find("capabilityArgs"); c != j.end() && c->is_object()) a.attachment.capability_args = *c;
    if (auto r = j.find("result"); r != j.end()) a.result = *r;
    if (a.attachment.container_id.empty()) return fail("CNI attachment cache {}: containerID: missing", path);
    return a;
}

}  // namespace

PodNetwork::PodNetwork(const DaemonConfig& config)
    : enabled_(config.cni_enabled),
      conf_dir_(config.cni_conf_dir),
      cache_dir_(path_join(config.root_dir, "cni")),
      runner_(config.cni_bin_dirs, std::chrono::seconds(config.cni_plugin_timeout_s)) {}

std::string PodNetwork::cache_path(const std::string& pod_id) const {
    return path_join(cache_dir_, pod_id + ".json");
}

Result<void> PodNetwork::write_cache(const PodAttachment& a) const {
    BERTH_TRY(mkdir_all(cache_dir_, 0700));
    return write_file_atomic(cache_path(a.attachment.container_id), attachment_json(a).dump(), 0600);
}

std::optional<PodAttachment> PodNetwork::cached(const std::string& pod_id) const {
    const std::string path = cache_path(pod_id);
    auto text = read_file(path);
    if (!text) return std::nullopt;
    auto a = parse_attachment(*text, path);
    if (!a) {
        log::warn("{}", a.error().message());
        return std::nullopt;
    }
    return std::move(*a);
}

std::vector<std::string> PodNetwork::pod_ips(const std::string& pod_id) const {
    auto a = cached(pod_id);
    if (!a || a->result.is_null()) return {};
    auto parsed = cni::parse_add_result(a->result);
    if (!parsed) return {};
    return parsed->pod_ips(a->attachment.ifname);
}

Result<cni::NetworkConfig> PodNetwork::current() {
    std::lock_guard lock(mu_);
    std::string fp = dir_fingerprint(conf_dir_);
    if (!loaded_ || fp != fingerprint_) {
        fingerprint_ = fp;
        loaded_ = cni::load_default_network(conf_dir_);
        if (*loaded_) log::info("CNI network \"{}\" from {}", (*loaded_)->name, (*loaded_)->file);
    }
    return *loaded_;
}

RuntimeCondition PodNetwork::condition() {
    RuntimeCondition c{"NetworkReady", false, "NetworkPluginNotReady", ""};
    auto detail = [&]() -> Result<void> {
        auto cfg = current();
        if (!cfg) {
            if (cfg.error().code() == ENOENT) return fail("CNI is not configured: {}", cfg.error().message());
            return fail("CNI configuration is invalid: {}", cfg.error().message());
        }
        BERTH_TRY(runner_.check_binaries(*cfg));
        BERTH_TRY_CTX(runner_.status(*cfg), "CNI STATUS");
        return {};
    };
    if (!enabled_) {
        c.message =
            "berthd: network plugin is not ready: CNI is disabled (cni.enabled = false in berth.toml): pods "
            "get a network namespace with loopback only";
        return c;
    }
    auto r = detail();
    if (r) {
        c.status = true;
        c.reason.clear();
    } else {
        c.message = "berthd: network plugin is not ready: " + r.error().message();
    }
    std::lock_guard lock(mu_);
    if (c.message != last_message_) {
        if (c.status)
            log::info("network is ready");
        else
            log::warn("{}", c.message);
        last_message_ = c.message;
    }
    return c;
}

Result<json> PodNetwork::capability_args(const v1::PodSandboxConfig& c) {
    json caps = json::object();
    json ports = json::array();
    for (int i = 0; i < c.port_mappings_size(); ++i) {
        const v1::PortMapping& pm = c.port_mappings(i);
        if (pm.host_port() <= 0) continue;  // a container port alone needs no host-side rule
        if (pm.host_port() > 65535 || pm.container_port() <= 0 || pm.container_port() > 65535)
            return cri_error(EINVAL, "config.port_mappings[{}]: ports must be 1-65535 (host {}, container {})", i,
                             pm.host_port(), pm.container_port());
        std::string proto = pm.protocol() == v1::UDP ? "udp" : pm.protocol() == v1::SCTP ? "sctp" : "tcp";
        json m = {{"hostPort", pm.host_port()}, {"containerPort", pm.container_port()}, {"protocol", proto}};
        if (!pm.host_ip().empty()) m["hostIP"] = pm.host_ip();
        ports.push_back(std::move(m));
    }
    if (!ports.empty()) caps["portMappings"] = std::move(ports);
    const auto& ann = c.annotations();
    json bw = json::object();
    for (auto [key, prefix] : {std::pair{"kubernetes.io/ingress-bandwidth", "ingress"},
                               std::pair{"kubernetes.io/egress-bandwidth", "egress"}}) {
        auto it = ann.find(key);
        if (it == ann.end()) continue;
        BERTH_ASSIGN(uint64_t rate, parse_quantity(it->second, fmt::format("config.annotations[{}]", key)));
        bw[std::string(prefix) + "Rate"] = rate;
        // The burst is left to the plugin's largest value, as kubelet-driven runtimes do.
        bw[std::string(prefix) + "Burst"] = std::numeric_limits<uint32_t>::max();
    }
    if (!bw.empty()) caps["bandwidth"] = std::move(bw);
    if (auto it = ann.find("berth.dev/ips"); it != ann.end()) {
        auto ips = split_list(it->second);
        if (ips.empty()) return cri_error(EINVAL, "config.annotations[berth.dev/ips]: no address");
        caps["ips"] = ips;
    }
    if (auto it = ann.find("berth.dev/mac"); it != ann.end() && !it->second.empty()) caps["mac"] = it->second;
    return caps;
}

Result<void> PodNetwork::attach(const store::PodRecord& p, const v1::PodSandboxConfig& c, const std::string& netns) {
    if (!enabled_) return {};
    auto cfg = current();
    if (!cfg) {
        std::string why = cfg.error().code() == ENOENT ? "CNI is not configured: " : "CNI configuration is invalid: ";
        return cri_error(EBUSY, "network plugin is not ready: {}{}", why, cfg.error().message());
    }
    if (auto r = runner_.check_binaries(*cfg); !r)
        return cri_error(EBUSY, "network plugin is not ready: {}", r.error().message());

    PodAttachment a;
    a.network = *cfg;
    a.source_file = cfg->file;
    a.attachment.container_id = p.id;
    a.attachment.netns = netns;
    a.attachment.ifname = kIfName;
    a.attachment.args = {{"IgnoreUnknown", "1"},
                         {"K8S_POD_NAMESPACE", p.namespace_},
                         {"K8S_POD_NAME", p.name},
                         {"K8S_POD_INFRA_CONTAINER_ID", p.id},
                         {"K8S_POD_UID", p.uid}};
    BERTH_ASSIGN(a.attachment.capability_args, capability_args(c));
    // Cached before ADD: a crash in the middle leaves what DEL needs.
    BERTH_TRY_CTX(write_cache(a), "pod network of {}", p.id);

    auto added = runner_.add(a.network, a.attachment);
    if (!added) {
        Error err = std::move(added).error();
        if (auto d = runner_.del(a.network, a.attachment, json()); !d) {
            log::warn("pod {}: DEL after the failed ADD: {}", p.id, d.error().message());
            return std::unexpected(Error(
                err.code(), fmt::format("{} (and the DEL that followed: {})", err.message(), d.error().message())));
        }
        if (::unlink(cache_path(p.id).c_str()) < 0 && errno != ENOENT)
            log::warn("remove {}: {}", cache_path(p.id), std::strerror(errno));
        return std::unexpected(std::move(err));
    }
    a.result = std::move(*added);
    BERTH_TRY_CTX(write_cache(a), "pod network of {}", p.id);
    auto parsed = cni::parse_add_result(a.result);
    log::info("pod {}: network \"{}\" attached{}", p.id, a.network.name,
              parsed && !parsed->pod_ips(kIfName).empty() ? " with IP " + parsed->pod_ips(kIfName).front() : "");
    return {};
}

Result<void> PodNetwork::detach(const std::string& pod_id, const std::string& netns) {
    const std::string path = cache_path(pod_id);
    auto text = read_file(path);
    if (!text) return text.error().code() == ENOENT ? Result<void>() : std::unexpected(text.error());
    BERTH_ASSIGN(PodAttachment a, parse_attachment(*text, path));
    // The namespace as it is now: gone after a reboot or when the pin was lost, and then the plugins clean up
    // what lives outside it (IPAM, iptables).
    a.attachment.netns = is_netns(netns) ? netns : "";
    BERTH_TRY_CTX(runner_.del(a.network, a.attachment, a.result), "tear down the network of pod {}", pod_id);
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) return fail_sys("remove {}", path);
    log::info("pod {}: network \"{}\" detached", pod_id, a.network.name);
    return {};
}

Result<void> PodNetwork::check(const std::string& pod_id, const std::string& netns) {
    auto a = cached(pod_id);
    if (!a) return fail("pod {} has no network attachment", pod_id);
    if (!is_netns(netns)) return fail("pod {}: its network namespace {} is gone", pod_id, netns);
    a->attachment.netns = netns;
    return runner_.check(a->network, a->attachment, a->result);
}

void PodNetwork::collect_garbage(const std::set<std::string>& live_pods) {
    std::vector<cni::AttachmentKey> valid;
    std::vector<std::string> stale;
    if (DIR* d = ::opendir(cache_dir_.c_str())) {
        while (struct dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (!name.ends_with(".json")) continue;
            std::string id = name.substr(0, name.size() - 5);
            if (live_pods.contains(id))
                valid.push_back({id, kIfName});
            else
                stale.push_back(id);
        }
        ::closedir(d);
    }
    for (const auto& id : stale) {
        log::info("CNI attachment of pod {} has no pod any more: DEL", id);
        if (auto r = detach(id, ""); !r) log::warn("{}", r.error().message());
    }
    if (!enabled_) return;
    auto cfg = current();
    if (!cfg) return;
    if (auto r = runner_.gc(*cfg, valid); !r) log::warn("CNI GC of network \"{}\": {}", cfg->name, r.error().message());
}

}  // namespace berth::cri
