#include "linux/seccomp.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "linux/terminal.hpp"

namespace berth::sys {

namespace {

struct NamedValue {
    const char* name;
    uint32_t value;
};

constexpr NamedValue kOperators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

constexpr const char* kActions[] = {"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
                                    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};

constexpr const char* kArchitectures[] = {
    "SCMP_ARCH_X86",         "SCMP_ARCH_X86_64",  "SCMP_ARCH_X32",    "SCMP_ARCH_ARM",     "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",        "SCMP_ARCH_MIPS64",  "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",     "SCMP_ARCH_PPC64",  "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",       "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64"};

constexpr const char* kFlags[] = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};

// The spec's action name (and errnoRet) as a libseccomp action. EPERM is the default errno, as in runc.
Result<uint32_t> action_of(const std::string& name, std::optional<uint32_t> errno_ret, bool& notify,
                           std::string_view path) {
    uint32_t ret = errno_ret.value_or(EPERM);
    if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
    if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
    if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
    if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(ret);
    if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret);
    if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
    if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
    if (name == "SCMP_ACT_NOTIFY") {
        notify = true;
        return SCMP_ACT_NOTIFY;
    }
    return fail("{}: unknown seccomp action \"{}\"", path, name);
}

}  // namespace

SeccompFilter::SeccompFilter() = default;
SeccompFilter::~SeccompFilter() {
    if (ctx_) seccomp_release(ctx_);
}
SeccompFilter::SeccompFilter(SeccompFilter&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)), notify_(o.notify_) {}
SeccompFilter& SeccompFilter::operator=(SeccompFilter&& o) noexcept {
    if (this != &o) {
        if (ctx_) seccomp_release(ctx_);
        ctx_ = std::exchange(o.ctx_, nullptr);
        notify_ = o.notify_;
    }
    return *this;
}

Result<SeccompFilter> compile_seccomp(const spec::Seccomp& s) {
    const std::string base = "linux.seccomp";
    SeccompFilter f;
    BERTH_ASSIGN(uint32_t def, action_of(s.default_action, s.default_errno_ret, f.notify_, base + ".defaultAction"));
    if (f.notify_) return fail("{}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action", base);
    f.ctx_ = seccomp_init(def);
    if (!f.ctx_) return fail("{}: seccomp_init failed", base);

    for (size_t i = 0; i < s.architectures.size(); ++i) {
        std::string name = s.architectures[i];
        if (!name.starts_with("SCMP_ARCH_")) return fail("{}.architectures[{}]: unknown architecture \"{}\"", base, i, name);
        std::string lower = name.substr(10);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        uint32_t arch = seccomp_arch_resolve_name(lower.c_str());
        if (arch == 0) return fail("{}.architectures[{}]: unknown architecture \"{}\"", base, i, name);
        int r = seccomp_arch_add(f.ctx_, arch);
        if (r < 0 && r != -EEXIST) return fail_errno(-r, "{}.architectures[{}]: add {}", base, i, name);
    }
    for (size_t i = 0; i < s.flags.size(); ++i) {
        const std::string& flag = s.flags[i];
        int r = 0;
        if (flag == "SECCOMP_FILTER_FLAG_TSYNC")
            r = seccomp_attr_set(f.ctx_, SCMP_FLTATR_CTL_TSYNC, 1);
        else if (flag == "SECCOMP_FILTER_FLAG_LOG")
            r = seccomp_attr_set(f.ctx_, SCMP_FLTATR_CTL_LOG, 1);
        else if (flag == "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
            r = seccomp_attr_set(f.ctx_, SCMP_FLTATR_CTL_SSB, 1);
        else
            return fail("{}.flags[{}]: unsupported seccomp flag \"{}\"", base, i, flag);
        if (r < 0) return fail_errno(-r, "{}.flags[{}]: {}", base, i, flag);
    }

    for (size_t i = 0; i < s.syscalls.size(); ++i) {
        const auto& sc = s.syscalls[i];
        std::string path = fmt::format("{}.syscalls[{}]", base, i);
        BERTH_ASSIGN(uint32_t action, action_of(sc.action, sc.errno_ret, f.notify_, path + ".action"));
        std::vector<struct scmp_arg_cmp> args;
        for (size_t a = 0; a < sc.args.size(); ++a) {
            const auto& arg = sc.args[a];
            auto op = std::find_if(std::begin(kOperators), std::end(kOperators),
                                   [&](const NamedValue& nv) { return arg.op == nv.name; });
            if (op == std::end(kOperators)) return fail("{}.args[{}].op: unknown operator \"{}\"", path, a, arg.op);
            if (arg.index > 5) return fail("{}.args[{}].index: {} is not a syscall argument (0-5)", path, a, arg.index);
            args.push_back({arg.index, static_cast<enum scmp_compare>(op->value), arg.value, arg.value_two});
        }
        // A rule whose action is the default one changes nothing; libseccomp refuses it, so skip it.
        if (action == def) continue;
        for (size_t n = 0; n < sc.names.size(); ++n) {
            int nr = seccomp_syscall_resolve_name(sc.names[n].c_str());
            if (nr == __NR_SCMP_ERROR) return fail("{}.names[{}]: unknown syscall \"{}\"", path, n, sc.names[n]);
            int r = seccomp_rule_add_array(f.ctx_, action, nr, static_cast<unsigned>(args.size()), args.data());
            if (r < 0) return fail_errno(-r, "{}.names[{}]: add rule for \"{}\"", path, n, sc.names[n]);
        }
    }
    return f;
}

Result<UniqueFd> SeccompFilter::load() {
    int r = seccomp_load(ctx_);
    if (r < 0) return fail_errno(-r, "load the seccomp filter");
    if (!notify_) return UniqueFd();
    int fd = seccomp_notify_fd(ctx_);
    if (fd < 0) return fail_errno(-fd, "get the seccomp listener fd");
    return UniqueFd(fd);
}

Result<void> send_seccomp_listener(const std::string& listener_path, int listener_fd,
                                   const std::string& process_state_json) {
    BERTH_ASSIGN(UniqueFd sock, connect_unix(listener_path));
    BERTH_TRY_CTX(send_fd(sock.get(), listener_fd, process_state_json), "seccomp listener {}", listener_path);
    return {};
}

std::vector<std::string> known_seccomp_actions() { return {std::begin(kActions), std::end(kActions)}; }
std::vector<std::string> known_seccomp_architectures() {
    return {std::begin(kArchitectures), std::end(kArchitectures)};
}
std::vector<std::string> known_seccomp_operators() {
    std::vector<std::string> out;
    for (const auto& o : kOperators) out.emplace_back(o.name);
    return out;
}
std::vector<std::string> known_seccomp_flags() { return {std::begin(kFlags), std::end(kFlags)}; }

}  // namespace berth::sys
