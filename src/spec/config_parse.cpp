// config.json -> Config. Field by field from the spec's JSON keys (runtime-spec 1.2 config.md, config-linux.md).
//
// The parser checks JSON types, integer ranges, the enums that become typed values (namespace types, rlimit
// names) and the REQUIRED members the structs cannot represent as "absent" (an rlimit without `soft`, a char
// device without `major`, ...). Everything else the spec demands is validate_config's job.
#include <array>
#include <utility>

#include "common/fs.hpp"
#include "spec/config.hpp"
#include "spec/json_reader.hpp"
#include "spec/names.hpp"

namespace berth::spec {

namespace {

constexpr std::array<std::pair<std::string_view, NamespaceType>, 8> kNamespaceNames{{
    {"pid", NamespaceType::pid},
    {"network", NamespaceType::network},
    {"mount", NamespaceType::mount},
    {"ipc", NamespaceType::ipc},
    {"uts", NamespaceType::uts},
    {"user", NamespaceType::user},
    {"cgroup", NamespaceType::cgroup},
    {"time", NamespaceType::time},
}};

}  // namespace

std::string_view to_string(NamespaceType t) {
    for (const auto& [name, type] : kNamespaceNames)
        if (type == t) return name;
    return "unknown";
}

std::optional<NamespaceType> namespace_type_from_string(std::string_view name) {
    for (const auto& [n, type] : kNamespaceNames)
        if (n == name) return type;
    return std::nullopt;
}

const Namespace* Linux::find_namespace(NamespaceType t) const {
    for (const auto& ns : namespaces)
        if (ns.type == t) return &ns;
    return nullptr;
}

// The struct readers live in detail (not an unnamed namespace) so that the container templates of
// json_reader.hpp find them by argument-dependent lookup through JsonPath; `static` keeps them file-local.
namespace detail {

static Result<void> read(Json& j, const JsonPath& p, NamespaceType& out) {
    if (!j.is_string()) return type_error(j, p, "string");
    const auto& s = j.get_ref<const std::string&>();
    auto t = namespace_type_from_string(s);
    if (!t) return path_error(p, "unknown namespace type {}", quote(s));
    out = *t;
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, ConsoleSize& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("height", out.height));
    BERTH_TRY(o.req("width", out.width));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, User& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("uid", out.uid));
    BERTH_TRY(o.opt("gid", out.gid));
    BERTH_TRY(o.opt("umask", out.umask));
    BERTH_TRY(o.opt("additionalGids", out.additional_gids));
    BERTH_TRY(o.opt("username", out.username));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Capabilities& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("bounding", out.bounding));
    BERTH_TRY(o.opt("effective", out.effective));
    BERTH_TRY(o.opt("inheritable", out.inheritable));
    BERTH_TRY(o.opt("permitted", out.permitted));
    BERTH_TRY(o.opt("ambient", out.ambient));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Rlimit& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("type", out.type));
    auto resource = rlimit_from_name(out.type);
    if (!resource) return path_error(JsonPath(p, "type"), "unknown rlimit {}", quote(out.type));
    out.resource = *resource;
    BERTH_TRY(o.req("soft", out.soft));
    BERTH_TRY(o.req("hard", out.hard));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Scheduler& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("policy", out.policy));
    BERTH_TRY(o.opt("nice", out.nice));
    BERTH_TRY(o.opt("priority", out.priority));
    BERTH_TRY(o.opt("flags", out.flags));
    BERTH_TRY(o.opt("runtime", out.runtime));
    BERTH_TRY(o.opt("deadline", out.deadline));
    BERTH_TRY(o.opt("period", out.period));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, IoPriority& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("class", out.klass));
    BERTH_TRY(o.opt("priority", out.priority));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, CpuAffinity& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("initial", out.initial));
    BERTH_TRY(o.opt("final", out.final_));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Process& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("terminal", out.terminal));
    BERTH_TRY(o.opt("consoleSize", out.console_size));
    BERTH_TRY(o.opt("user", out.user));
    BERTH_TRY(o.opt("args", out.args));
    BERTH_TRY(o.opt("env", out.env));
    BERTH_TRY(o.opt("cwd", out.cwd));
    BERTH_TRY(o.opt("capabilities", out.capabilities));
    BERTH_TRY(o.opt("rlimits", out.rlimits));
    BERTH_TRY(o.opt("noNewPrivileges", out.no_new_privileges));
    BERTH_TRY(o.opt("apparmorProfile", out.apparmor_profile));
    BERTH_TRY(o.opt("oomScoreAdj", out.oom_score_adj));
    BERTH_TRY(o.opt("selinuxLabel", out.selinux_label));
    BERTH_TRY(o.opt("scheduler", out.scheduler));
    BERTH_TRY(o.opt("ioPriority", out.io_priority));
    BERTH_TRY(o.opt("execCPUAffinity", out.exec_cpu_affinity));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Root& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("path", out.path));
    BERTH_TRY(o.opt("readonly", out.readonly));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, IdMapping& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("containerID", out.container_id));
    BERTH_TRY(o.req("hostID", out.host_id));
    BERTH_TRY(o.req("size", out.size));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Mount& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("destination", out.destination));
    BERTH_TRY(o.opt("type", out.type));
    BERTH_TRY(o.opt("source", out.source));
    BERTH_TRY(o.opt("options", out.options));
    BERTH_TRY(o.opt("uidMappings", out.uid_mappings));
    BERTH_TRY(o.opt("gidMappings", out.gid_mappings));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Hook& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("path", out.path));
    BERTH_TRY(o.opt("args", out.args));
    BERTH_TRY(o.opt("env", out.env));
    BERTH_TRY(o.opt("timeout", out.timeout));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Hooks& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("prestart", out.prestart));
    BERTH_TRY(o.opt("createRuntime", out.create_runtime));
    BERTH_TRY(o.opt("createContainer", out.create_container));
    BERTH_TRY(o.opt("startContainer", out.start_container));
    BERTH_TRY(o.opt("poststart", out.poststart));
    BERTH_TRY(o.opt("poststop", out.poststop));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Namespace& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("type", out.type));
    BERTH_TRY(o.opt("path", out.path));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Device& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("type", out.type));
    BERTH_TRY(o.opt("path", out.path));
    // "major, minor (int64, REQUIRED unless type is p)": a missing number must not silently become 0:0.
    if (out.type == "p") {
        BERTH_TRY(o.opt("major", out.major));
        BERTH_TRY(o.opt("minor", out.minor));
    } else {
        BERTH_TRY(o.req("major", out.major));
        BERTH_TRY(o.req("minor", out.minor));
    }
    BERTH_TRY(o.opt("fileMode", out.file_mode));
    BERTH_TRY(o.opt("uid", out.uid));
    BERTH_TRY(o.opt("gid", out.gid));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, DeviceCgroupRule& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("allow", out.allow));
    BERTH_TRY(o.opt("type", out.type));
    BERTH_TRY(o.opt("major", out.major));
    BERTH_TRY(o.opt("minor", out.minor));
    BERTH_TRY(o.opt("access", out.access));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Memory& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("limit", out.limit));
    BERTH_TRY(o.opt("reservation", out.reservation));
    BERTH_TRY(o.opt("swap", out.swap));
    BERTH_TRY(o.opt("kernel", out.kernel));
    BERTH_TRY(o.opt("kernelTCP", out.kernel_tcp));
    BERTH_TRY(o.opt("swappiness", out.swappiness));
    BERTH_TRY(o.opt("disableOOMKiller", out.disable_oom_killer));
    BERTH_TRY(o.opt("useHierarchy", out.use_hierarchy));
    BERTH_TRY(o.opt("checkBeforeUpdate", out.check_before_update));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Cpu& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("shares", out.shares));
    BERTH_TRY(o.opt("quota", out.quota));
    BERTH_TRY(o.opt("burst", out.burst));
    BERTH_TRY(o.opt("period", out.period));
    BERTH_TRY(o.opt("realtimeRuntime", out.realtime_runtime));
    BERTH_TRY(o.opt("realtimePeriod", out.realtime_period));
    BERTH_TRY(o.opt("cpus", out.cpus));
    BERTH_TRY(o.opt("mems", out.mems));
    BERTH_TRY(o.opt("idle", out.idle));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Pids& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("limit", out.limit));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, WeightDevice& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("major", out.major));
    BERTH_TRY(o.req("minor", out.minor));
    BERTH_TRY(o.opt("weight", out.weight));
    BERTH_TRY(o.opt("leafWeight", out.leaf_weight));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, ThrottleDevice& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("major", out.major));
    BERTH_TRY(o.req("minor", out.minor));
    BERTH_TRY(o.req("rate", out.rate));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, BlockIo& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("weight", out.weight));
    BERTH_TRY(o.opt("leafWeight", out.leaf_weight));
    BERTH_TRY(o.opt("weightDevice", out.weight_device));
    BERTH_TRY(o.opt("throttleReadBpsDevice", out.throttle_read_bps_device));
    BERTH_TRY(o.opt("throttleWriteBpsDevice", out.throttle_write_bps_device));
    BERTH_TRY(o.opt("throttleReadIOPSDevice", out.throttle_read_iops_device));
    BERTH_TRY(o.opt("throttleWriteIOPSDevice", out.throttle_write_iops_device));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, HugepageLimit& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("pageSize", out.page_size));
    BERTH_TRY(o.req("limit", out.limit));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, InterfacePriority& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("name", out.name));
    BERTH_TRY(o.req("priority", out.priority));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Network& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("classID", out.class_id));
    BERTH_TRY(o.opt("priorities", out.priorities));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Rdma& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("hcaHandles", out.hca_handles));
    BERTH_TRY(o.opt("hcaObjects", out.hca_objects));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Resources& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("devices", out.devices));
    BERTH_TRY(o.opt("memory", out.memory));
    BERTH_TRY(o.opt("cpu", out.cpu));
    BERTH_TRY(o.opt("pids", out.pids));
    BERTH_TRY(o.opt("blockIO", out.block_io));
    BERTH_TRY(o.opt("hugepageLimits", out.hugepage_limits));
    BERTH_TRY(o.opt("network", out.network));
    BERTH_TRY(o.opt("rdma", out.rdma));
    BERTH_TRY(o.opt("unified", out.unified));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, SeccompArg& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("index", out.index));
    BERTH_TRY(o.req("value", out.value));
    BERTH_TRY(o.opt("valueTwo", out.value_two));
    BERTH_TRY(o.req("op", out.op));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, SeccompSyscall& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("names", out.names));
    BERTH_TRY(o.req("action", out.action));
    BERTH_TRY(o.opt("errnoRet", out.errno_ret));
    BERTH_TRY(o.opt("args", out.args));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Seccomp& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("defaultAction", out.default_action));
    BERTH_TRY(o.opt("defaultErrnoRet", out.default_errno_ret));
    BERTH_TRY(o.opt("architectures", out.architectures));
    BERTH_TRY(o.opt("flags", out.flags));
    BERTH_TRY(o.opt("listenerPath", out.listener_path));
    BERTH_TRY(o.opt("listenerMetadata", out.listener_metadata));
    BERTH_TRY(o.opt("syscalls", out.syscalls));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, IntelRdt& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("closID", out.clos_id));
    BERTH_TRY(o.opt("l3CacheSchema", out.l3_cache_schema));
    BERTH_TRY(o.opt("memBwSchema", out.mem_bw_schema));
    BERTH_TRY(o.opt("enableCMT", out.enable_cmt));
    BERTH_TRY(o.opt("enableMBM", out.enable_mbm));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Personality& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.req("domain", out.domain));
    BERTH_TRY(o.opt("flags", out.flags));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, TimeOffset& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("secs", out.secs));
    BERTH_TRY(o.opt("nanosecs", out.nanosecs));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Linux& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("namespaces", out.namespaces));
    BERTH_TRY(o.opt("uidMappings", out.uid_mappings));
    BERTH_TRY(o.opt("gidMappings", out.gid_mappings));
    BERTH_TRY(o.opt("timeOffsets", out.time_offsets));
    BERTH_TRY(o.opt("devices", out.devices));
    BERTH_TRY(o.opt("cgroupsPath", out.cgroups_path));
    BERTH_TRY(o.opt("resources", out.resources));
    BERTH_TRY(o.opt("rootfsPropagation", out.rootfs_propagation));
    BERTH_TRY(o.opt("seccomp", out.seccomp));
    BERTH_TRY(o.opt("sysctl", out.sysctl));
    BERTH_TRY(o.opt("maskedPaths", out.masked_paths));
    BERTH_TRY(o.opt("readonlyPaths", out.readonly_paths));
    BERTH_TRY(o.opt("mountLabel", out.mount_label));
    BERTH_TRY(o.opt("intelRdt", out.intel_rdt));
    BERTH_TRY(o.opt("personality", out.personality));
    return {};
}

static Result<void> read(Json& j, const JsonPath& p, Config& out) {
    BERTH_ASSIGN(auto o, as_object(j, p));
    BERTH_TRY(o.opt("ociVersion", out.oci_version));
    BERTH_TRY(o.opt("process", out.process));
    BERTH_TRY(o.opt("root", out.root));
    BERTH_TRY(o.opt("hostname", out.hostname));
    BERTH_TRY(o.opt("domainname", out.domainname));
    BERTH_TRY(o.opt("mounts", out.mounts));
    BERTH_TRY(o.opt("hooks", out.hooks));
    BERTH_TRY(o.opt("annotations", out.annotations));
    BERTH_TRY(o.opt("linux", out.linux));
    return {};
}

}  // namespace detail

namespace {

// Parses `json_text` and reads its root into a T. Every exception (nlohmann's, bad_alloc) ends here.
template <typename T>
Result<T> parse_document(std::string_view json_text) {
    try {
        detail::Json doc;
        BERTH_TRY(detail::parse_json(json_text, doc));
        T out{};
        BERTH_TRY(detail::read(doc, detail::JsonPath(), out));
        return out;
    } catch (const std::exception& e) {
        return fail("parse: {}", e.what());
    }
}

}  // namespace

Result<Config> parse_config(std::string_view json_text) {
    return parse_document<Config>(json_text);
}

Result<Process> parse_process(std::string_view json_text) {
    return parse_document<Process>(json_text);
}

Result<Config> load_config(const std::string& bundle_dir) {
    std::string path = path_join(bundle_dir, "config.json");
    auto text = read_file(path);
    if (!text) return std::unexpected(std::move(text).error());  // read_file already names the path
    auto config = parse_config(*text);
    if (!config) return std::unexpected(std::move(config).error().wrap(path));
    return config;
}

}  // namespace berth::spec
