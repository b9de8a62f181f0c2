#include "linux/process_attrs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/ranges.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <charconv>

#include "common/fs.hpp"

namespace berth::sys {

namespace {

struct RlimitName {
    std::string_view name;
    int resource;
};

constexpr std::array kRlimits = {
    RlimitName{"RLIMIT_AS", RLIMIT_AS},
    RlimitName{"RLIMIT_CORE", RLIMIT_CORE},
    RlimitName{"RLIMIT_CPU", RLIMIT_CPU},
    RlimitName{"RLIMIT_DATA", RLIMIT_DATA},
    RlimitName{"RLIMIT_FSIZE", RLIMIT_FSIZE},
    RlimitName{"RLIMIT_LOCKS", RLIMIT_LOCKS},
    RlimitName{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    RlimitName{"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    RlimitName{"RLIMIT_NICE", RLIMIT_NICE},
    RlimitName{"RLIMIT_NOFILE", RLIMIT_NOFILE},
    RlimitName{"RLIMIT_NPROC", RLIMIT_NPROC},
    RlimitName{"RLIMIT_RSS", RLIMIT_RSS},
    RlimitName{"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    RlimitName{"RLIMIT_RTTIME", RLIMIT_RTTIME},
    RlimitName{"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    RlimitName{"RLIMIT_STACK", RLIMIT_STACK},
};

// "what: strerror (hint)": the hint after the errno text, where a reader looks for the reason.
std::unexpected<Error> fail_hint(int err, std::string_view what, std::string_view hint) {
    return std::unexpected(Error(err, fmt::format("{}: {} ({})", what, std::system_category().message(err), hint)));
}

std::string limit_text(rlim_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : fmt::format("{}", v);
}

// Where CAP_SYS_RESOURCE is missing: not in the bounding set means nothing on this host will grant it to the
// container; missing only from the effective set means this process dropped it.
std::string_view sys_resource_missing() {
    int in_bounding = ::prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0);
    if (in_bounding == 0) return "which this host does not grant";
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    std::array<__user_cap_data_struct, 2> data{};
    if (::syscall(SYS_capget, &header, data.data()) == 0) {
        constexpr unsigned word = CAP_SYS_RESOURCE / 32, bit = CAP_SYS_RESOURCE % 32;
        if ((data[word].effective & (1U << bit)) == 0) return "which this process lacks";
    }
    return {};
}

// Applies `fn(fd)` to every open fd >= first, found through /proc/self/fd.
template <typename Fn>
Result<void> for_each_fd_from(int first, Fn fn) {
    int dfd = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return fail_sys("open /proc/self/fd");
    DIR* dir = ::fdopendir(dfd);
    if (!dir) {
        int err = errno;
        ::close(dfd);
        return fail_errno(err, "opendir /proc/self/fd");
    }
    std::vector<int> fds;
    while (struct dirent* de = ::readdir(dir)) {
        int fd = -1;
        std::string_view n = de->d_name;
        auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), fd);
        if (ec != std::errc() || p != n.data() + n.size()) continue;
        if (fd >= first && fd != dfd) fds.push_back(fd);
    }
    ::closedir(dir);
    for (int fd : fds) BERTH_TRY(fn(fd));
    return {};
}

}  // namespace

Result<int> rlimit_resource(std::string_view name) {
    for (const auto& r : kRlimits)
        if (r.name == name) return r.resource;
    return fail("unknown rlimit \"{}\"", name);
}

Result<void> set_rlimits(const std::vector<spec::Rlimit>& rlimits) {
    for (const auto& rl : rlimits) {
        int resource = rl.resource;
        if (resource < 0) {
            BERTH_ASSIGN(resource, rlimit_resource(rl.type));
        }
        struct rlimit want {};
        want.rlim_cur = static_cast<rlim_t>(rl.soft);
        want.rlim_max = static_cast<rlim_t>(rl.hard);
        std::string what = fmt::format("setrlimit {} soft={} hard={}", rl.type.empty() ? "?" : rl.type,
                                       limit_text(want.rlim_cur), limit_text(want.rlim_max));
        if (want.rlim_cur > want.rlim_max) return fail_hint(EINVAL, what, "the soft limit is above the hard limit");
        if (::setrlimit(static_cast<__rlimit_resource_t>(resource), &want) == 0) continue;
        int err = errno;
        struct rlimit now {};
        if (err == EPERM && ::getrlimit(static_cast<__rlimit_resource_t>(resource), &now) == 0 &&
            want.rlim_max > now.rlim_max) {
            std::string_view missing = sys_resource_missing();
            if (!missing.empty())
                return fail_hint(err, what,
                                 fmt::format("raising a hard limit needs CAP_SYS_RESOURCE, {}; the current hard "
                                             "limit is {}",
                                             missing, limit_text(now.rlim_max)));
            return fail_hint(err, what, fmt::format("the current hard limit is {}", limit_text(now.rlim_max)));
        }
        if (err == EPERM && resource == RLIMIT_NOFILE) return fail_hint(err, what, "above the kernel's fs.nr_open");
        return fail_errno(err, "{}", what);
    }
    return {};
}

Result<void> set_oom_score_adj(int value) {
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail_sys("oom_score_adj {}: open /proc/self/oom_score_adj", value);
    UniqueFd guard(fd);
    std::string text = fmt::format("{}", value);
    auto r = write_all(fd, text);
    if (r) return {};
    int err = r.error().code();
    if (err == EACCES || err == EPERM) {
        std::string what = fmt::format("oom_score_adj {}", value);
        if (value < 0) return fail_hint(err, what, "a negative oom_score_adj needs CAP_SYS_RESOURCE");
        return fail_hint(err, what, "lowering oom_score_adj below its earlier minimum needs CAP_SYS_RESOURCE");
    }
    return fail_errno(err, "oom_score_adj {}", value);
}

Result<void> apply_sysctl(const std::map<std::string, std::string>& sysctl) {
    for (const auto& [key, value] : sysctl) {
        std::string rel = key;
        for (char& c : rel)
            if (c == '.') c = '/';
        bool bad = key.empty() || key.find("..") != std::string::npos || rel.front() == '/' || rel.back() == '/' ||
                   rel.find("//") != std::string::npos;
        if (bad) return fail("sysctl \"{}\": not a valid sysctl name", key);
        std::string path = "/proc/sys/" + rel;
        int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return fail_sys("sysctl {}={}: open {}", key, value, path);
        UniqueFd guard(fd);
        auto r = write_all(fd, value);
        if (!r) return fail_errno(r.error().code(), "sysctl {}={}: write {}", key, value, path);
    }
    return {};
}

Result<void> set_hostname(std::string_view name) {
    if (::sethostname(name.data(), name.size()) < 0) return fail_sys("sethostname \"{}\"", name);
    return {};
}

Result<void> set_domainname(std::string_view name) {
    if (::setdomainname(name.data(), name.size()) < 0) return fail_sys("setdomainname \"{}\"", name);
    return {};
}

Result<void> apply_user(const spec::User& user, bool in_user_namespace) {
    if (!user.additional_gids.empty()) {
        std::vector<gid_t> gids(user.additional_gids.begin(), user.additional_gids.end());
        if (::setgroups(gids.size(), gids.data()) < 0) {
            int err = errno;
            if (err == EPERM && in_user_namespace)
                return fail_hint(err, fmt::format("setgroups {}", fmt::join(gids, ",")),
                                 "setgroups may be denied in this user namespace, or a gid is not mapped");
            return fail_errno(err, "setgroups {}", fmt::join(gids, ","));
        }
    } else if (::setgroups(0, nullptr) < 0) {
        // A user namespace with /proc/<pid>/setgroups "deny" refuses even an empty list; with no groups asked
        // for, leaving the (already mapped-away) supplementary groups is the only thing possible.
        if (!(errno == EPERM && in_user_namespace)) return fail_sys("setgroups to an empty list");
    }
    if (::setresgid(user.gid, user.gid, user.gid) < 0) {
        int err = errno;
        if (err == EINVAL)
            return fail_hint(err, fmt::format("setresgid {}", user.gid), "the gid is not mapped in the user namespace");
        return fail_errno(err, "setresgid {}", user.gid);
    }
    if (::setresuid(user.uid, user.uid, user.uid) < 0) {
        int err = errno;
        if (err == EINVAL)
            return fail_hint(err, fmt::format("setresuid {}", user.uid), "the uid is not mapped in the user namespace");
        return fail_errno(err, "setresuid {}", user.uid);
    }
    if (user.umask) ::umask(static_cast<mode_t>(*user.umask & 07777));
    return {};
}

Result<void> set_no_new_privs() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail_sys("prctl PR_SET_NO_NEW_PRIVS");
    return {};
}

Result<void> close_fds_above(int keep_max) {
    unsigned first = keep_max < 0 ? 0U : static_cast<unsigned>(keep_max) + 1;
    if (::close_range(first, ~0U, 0) == 0) return {};
    if (errno != ENOSYS && errno != EINVAL) return fail_sys("close_range {}..", first);
    return for_each_fd_from(static_cast<int>(first), [](int fd) -> Result<void> {
        ::close(fd);  // EBADF for an fd that went away meanwhile is fine
        return {};
    });
}

Result<void> set_cloexec_from(int first_fd) {
    unsigned first = first_fd < 0 ? 0U : static_cast<unsigned>(first_fd);
    if (::close_range(first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return {};
    if (errno != ENOSYS && errno != EINVAL) return fail_sys("close_range {}.. CLOSE_RANGE_CLOEXEC", first);
    return for_each_fd_from(static_cast<int>(first), [](int fd) -> Result<void> {
        int flags = ::fcntl(fd, F_GETFD);
        if (flags < 0) {
            if (errno == EBADF) return {};
            return fail_sys("fcntl F_GETFD fd {}", fd);
        }
        if (!(flags & FD_CLOEXEC) && ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
            return fail_sys("fcntl F_SETFD FD_CLOEXEC fd {}", fd);
        return {};
    });
}

}  // namespace berth::sys
