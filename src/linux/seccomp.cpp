#include "linux/seccomp.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "linux/terminal.hpp"

namespace berth::sys {

namespace {

struct NamedValue {
    const char* name;
    uint32_t value;
};

constexpr NamedValue kOperators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

constexpr const char* kActions[] = {"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
                                    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};

// The spec's architecture list and the later ones libseccomp added; features lists those this libseccomp resolves.
constexpr const char* kArchitectures[] = {
    "SCMP_ARCH_X86",         "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",       "SCMP_ARCH_ARM",     "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",        "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",    "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",       "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",  "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",        "SCMP_ARCH_SH",     "SCMP_ARCH_SHEB"};

struct FlagName {
    const char* name;
    unsigned value;
};

// The filter flags of config-linux.md. WAIT_KILLABLE_RECV only means something together with a listener.
constexpr FlagName kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

long seccomp_syscall(unsigned op, unsigned flags, void* args) {
    return ::syscall(SYS_seccomp, op, flags, args);
}

// Whether the running kernel knows `flag`: with a null program a known flag set fails EFAULT, an unknown EINVAL.
bool kernel_has_flag(unsigned flag) {
    if (flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) flag |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    return seccomp_syscall(SECCOMP_SET_MODE_FILTER, flag, nullptr) < 0 && errno == EFAULT;
}

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

// "SCMP_ARCH_X86_64" -> libseccomp's token, or 0 when this libseccomp does not know it.
uint32_t resolve_arch(const std::string& name) {
    if (!name.starts_with("SCMP_ARCH_")) return 0;
    std::string lower = name.substr(10);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return seccomp_arch_resolve_name(lower.c_str());
}

// Linux syscalls newer than the oldest libseccomp berth builds with (Debian bookworm's 2.5.4 knows the kernel's
// table up to 6.7). A profile may name them (container engines ship profiles for newer kernels): when this
// libseccomp cannot resolve one, the rule is skipped, as runc does. A name that is neither resolvable nor here is
// no Linux syscall at all (a typo, most likely) and is refused. Extend this list as kernels add syscalls.
constexpr const char* kSyscallsNewerThanLibseccomp[] = {
    "statmount",     "listmount",      "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
    "mseal",         "uretprobe",      "setxattrat",        "getxattrat",        "listxattrat",
    "removexattrat", "open_tree_attr", "file_getattr",      "file_setattr",
};

bool is_newer_syscall(const std::string& name) {
    return std::any_of(std::begin(kSyscallsNewerThanLibseccomp), std::end(kSyscallsNewerThanLibseccomp),
                       [&](const char* n) { return name == n; });
}

using Ctx = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

// The compiled program, exported through a memfd (libseccomp 2.5 exports only to an fd).
Result<std::vector<struct sock_filter>> export_program(scmp_filter_ctx ctx) {
    int raw = ::memfd_create("berth-seccomp", MFD_CLOEXEC);
    if (raw < 0) return fail_sys("memfd_create for the seccomp program");
    UniqueFd fd(raw);
    if (int r = seccomp_export_bpf(ctx, fd.get()); r < 0) return fail_errno(-r, "linux.seccomp: export the filter");
    if (::lseek(fd.get(), 0, SEEK_SET) < 0) return fail_sys("lseek the seccomp program");
    BERTH_ASSIGN(std::string bytes, read_fd(fd.get()));
    if (bytes.empty() || bytes.size() % sizeof(struct sock_filter) != 0)
        return fail("linux.seccomp: libseccomp exported a malformed program ({} bytes)", bytes.size());
    std::vector<struct sock_filter> prog(bytes.size() / sizeof(struct sock_filter));
    std::memcpy(prog.data(), bytes.data(), bytes.size());
    return prog;
}

}  // namespace

Result<SeccompFilter> compile_seccomp(const spec::Seccomp& s) {
    const std::string base = "linux.seccomp";
    SeccompFilter f;
    BERTH_ASSIGN(uint32_t def, action_of(s.default_action, s.default_errno_ret, f.notify_, base + ".defaultAction"));
    if (f.notify_) return fail("{}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action", base);
    Ctx ctx(seccomp_init(def), seccomp_release);
    if (!ctx) return fail("{}: seccomp_init failed", base);

    for (size_t i = 0; i < s.architectures.size(); ++i) {
        const std::string& name = s.architectures[i];
        uint32_t arch = resolve_arch(name);
        if (arch == 0) return fail("{}.architectures[{}]: unknown architecture \"{}\"", base, i, name);
        int r = seccomp_arch_add(ctx.get(), arch);
        if (r == -EDOM)
            return fail(
                "{}.architectures[{}]: {} has another byte order than this host's architecture; one filter "
                "cannot hold both",
                base, i, name);
        if (r < 0 && r != -EEXIST) return fail_errno(-r, "{}.architectures[{}]: add {}", base, i, name);
    }
    for (size_t i = 0; i < s.flags.size(); ++i) {
        const std::string& flag = s.flags[i];
        auto known =
            std::find_if(std::begin(kFlags), std::end(kFlags), [&](const FlagName& n) { return flag == n.name; });
        if (known == std::end(kFlags)) return fail("{}.flags[{}]: unknown seccomp flag \"{}\"", base, i, flag);
        if (!kernel_has_flag(known->value))
            return fail("{}.flags[{}]: seccomp flag \"{}\" is not supported by this kernel", base, i, flag);
        f.flags_ |= known->value;
    }

    for (size_t i = 0; i < s.syscalls.size(); ++i) {
        const auto& sc = s.syscalls[i];
        std::string path = fmt::format("{}.syscalls[{}]", base, i);
        BERTH_ASSIGN(uint32_t action, action_of(sc.action, sc.errno_ret, f.notify_, path + ".action"));
        std::vector<struct scmp_arg_cmp> args;
        bool repeated_index = false;
        for (size_t a = 0; a < sc.args.size(); ++a) {
            const auto& arg = sc.args[a];
            auto op = std::find_if(std::begin(kOperators), std::end(kOperators),
                                   [&](const NamedValue& nv) { return arg.op == nv.name; });
            if (op == std::end(kOperators)) return fail("{}.args[{}].op: unknown operator \"{}\"", path, a, arg.op);
            if (arg.index > 5) return fail("{}.args[{}].index: {} is not a syscall argument (0-5)", path, a, arg.index);
            for (const auto& prev : args)
                if (prev.arg == arg.index) repeated_index = true;
            args.push_back({arg.index, static_cast<enum scmp_compare>(op->value), arg.value, arg.value_two});
        }
        // A rule whose action is the default one changes nothing; libseccomp refuses it, so skip it (as runc).
        if (action == def) continue;
        for (size_t n = 0; n < sc.names.size(); ++n) {
            int nr = seccomp_syscall_resolve_name(sc.names[n].c_str());
            if (nr == __NR_SCMP_ERROR) {
                if (!is_newer_syscall(sc.names[n]))
                    return fail("{}.names[{}]: unknown syscall \"{}\"", path, n, sc.names[n]);
                log::debug("{}.names[{}]: syscall \"{}\" is newer than this libseccomp, skipped", path, n, sc.names[n]);
                continue;
            }
            // Conditions on distinct arguments must all match (one rule). libseccomp cannot AND two conditions on
            // the same argument; like runc, such a list becomes one rule per condition, any of which matches.
            auto add = [&](unsigned count, const struct scmp_arg_cmp* cmp) -> Result<void> {
                int r = seccomp_rule_add_array(ctx.get(), action, nr, count, cmp);
                if (r < 0) return fail_errno(-r, "{}.names[{}]: add rule for \"{}\"", path, n, sc.names[n]);
                return {};
            };
            if (!repeated_index) {
                BERTH_TRY(add(static_cast<unsigned>(args.size()), args.data()));
            } else {
                for (const auto& cmp : args) BERTH_TRY(add(1, &cmp));
            }
        }
    }
    if (f.notify_) {
        f.flags_ |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // TSYNC reports a thread id on failure, which collides with the listener fd return unless ESRCH is asked.
        if (f.flags_ & SECCOMP_FILTER_FLAG_TSYNC) f.flags_ |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    } else if (f.flags_ & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
        return fail("{}.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with SCMP_ACT_NOTIFY", base);
    }
    BERTH_ASSIGN(f.program_, export_program(ctx.get()));
    // The kernel's limit for one classic BPF program (BPF_MAXINSNS); seccomp(2) would only say EINVAL.
    if (f.program_.size() > BPF_MAXINSNS)
        return fail("{}: the compiled filter has {} instructions; the kernel allows at most {}", base,
                    f.program_.size(), BPF_MAXINSNS);
    return f;
}

namespace {

// Every input of compile_seccomp, in one unambiguous text (lengths before strings), and what else decides the
// program: the libseccomp version (names it resolves, code it emits) and the kernel (flags it accepts).
std::string canonical_profile(const spec::Seccomp& s) {
    std::string out = "berth-seccomp-1\n";
    auto str = [&](std::string_view v) { out += fmt::format("{}:{};", v.size(), v); };
    auto num = [&](uint64_t v) { out += fmt::format("{};", v); };
    auto opt = [&](const std::optional<uint32_t>& v) { v ? num(*v) : str("-"); };
    const struct scmp_version* lv = seccomp_version();
    num(lv->major), num(lv->minor), num(lv->micro);
    struct utsname u {};
    ::uname(&u);
    str(u.release), str(u.machine);
    str(s.default_action), opt(s.default_errno_ret);
    num(s.architectures.size());
    for (const auto& a : s.architectures) str(a);
    num(s.flags.size());
    for (const auto& f : s.flags) str(f);
    num(s.syscalls.size());
    for (const auto& sc : s.syscalls) {
        num(sc.names.size());
        for (const auto& n : sc.names) str(n);
        str(sc.action), opt(sc.errno_ret);
        num(sc.args.size());
        for (const auto& a : sc.args) num(a.index), num(a.value), num(a.value_two), str(a.op);
    }
    return out;
}

// FNV-1a: only picks the file; the full text decides a hit.
uint64_t fnv1a(std::string_view text) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

// Entry layout: "BSC1" | u32 key length | key | u32 flags | u8 notify | u32 instruction count | instructions.
template <typename T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
bool take(std::string_view& in, T& v) {
    if (in.size() < sizeof v) return false;
    std::memcpy(&v, in.data(), sizeof v);
    in.remove_prefix(sizeof v);
    return true;
}

}  // namespace

Result<SeccompFilter> compile_seccomp_cached(const spec::Seccomp& s, const std::string& cache_dir) {
    std::string key = canonical_profile(s);
    std::string path = fmt::format("{}/{:016x}", cache_dir, fnv1a(key));
    if (auto entry = read_file(path)) {
        std::string_view in = *entry;
        uint32_t key_len = 0, flags = 0, count = 0;
        uint8_t notify = 0;
        if (in.starts_with("BSC1") && (in.remove_prefix(4), take(in, key_len)) && in.size() >= key_len &&
            in.substr(0, key_len) == key && (in.remove_prefix(key_len), take(in, flags)) && take(in, notify) &&
            take(in, count) && count > 0 && count <= BPF_MAXINSNS && in.size() == count * sizeof(struct sock_filter)) {
            SeccompFilter f;
            f.program_.resize(count);
            std::memcpy(f.program_.data(), in.data(), in.size());
            f.flags_ = flags;
            f.notify_ = notify != 0;
            return f;
        }
        log::debug("seccomp cache {}: stale or foreign entry, recompiling", path);
    }
    BERTH_ASSIGN(SeccompFilter f, compile_seccomp(s));
    std::string entry = "BSC1";
    put(entry, static_cast<uint32_t>(key.size()));
    entry += key;
    put(entry, static_cast<uint32_t>(f.flags_));
    put(entry, static_cast<uint8_t>(f.notify_));
    put(entry, static_cast<uint32_t>(f.program_.size()));
    entry.append(reinterpret_cast<const char*>(f.program_.data()), f.program_.size() * sizeof(struct sock_filter));
    auto stored = mkdir_all(cache_dir, 0700);
    if (stored) stored = write_file_atomic(path, entry, 0600);
    if (!stored) log::debug("seccomp cache: {}", stored.error().message());
    return f;
}

Result<UniqueFd> SeccompFilter::load() const {
    struct sock_fprog prog {};
    prog.len = static_cast<unsigned short>(program_.size());
    prog.filter = const_cast<struct sock_filter*>(program_.data());
    long r = seccomp_syscall(SECCOMP_SET_MODE_FILTER, flags_, &prog);
    if (r < 0) return fail_sys("load the seccomp filter (flags {:#x})", flags_);
    if (!notify_) return UniqueFd();
    return UniqueFd(static_cast<int>(r));
}

Result<void> send_seccomp_listener(const std::string& listener_path, int listener_fd,
                                   const std::string& process_state_json) {
    BERTH_ASSIGN(UniqueFd sock, connect_unix(listener_path));
    BERTH_TRY_CTX(send_fd(sock.get(), listener_fd, process_state_json), "seccomp listener {}", listener_path);
    return {};
}

std::vector<std::string> known_seccomp_actions() {
    return {std::begin(kActions), std::end(kActions)};
}
std::vector<std::string> known_seccomp_architectures() {
    // Those libseccomp knows and can put in one filter with the native architecture (same byte order).
    std::vector<std::string> out;
    Ctx ctx(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
    for (const char* name : kArchitectures) {
        uint32_t arch = resolve_arch(name);
        if (arch == 0 || !ctx) continue;
        int r = seccomp_arch_add(ctx.get(), arch);
        if (r == 0 || r == -EEXIST) out.emplace_back(name);
    }
    return out;
}
std::vector<std::string> known_seccomp_operators() {
    std::vector<std::string> out;
    for (const auto& o : kOperators) out.emplace_back(o.name);
    return out;
}
std::vector<std::string> known_seccomp_flags() {
    std::vector<std::string> out;
    for (const auto& f : kFlags) out.emplace_back(f.name);
    return out;
}
std::vector<std::string> supported_seccomp_flags() {
    std::vector<std::string> out;
    for (const auto& f : kFlags)
        if (kernel_has_flag(f.value)) out.emplace_back(f.name);
    return out;
}

}  // namespace berth::sys
