#include "linux/namespaces.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fs.hpp"

namespace berth::sys {

using spec::NamespaceType;

int clone_flag(NamespaceType t) {
    switch (t) {
        case NamespaceType::pid: return CLONE_NEWPID;
        case NamespaceType::network: return CLONE_NEWNET;
        case NamespaceType::mount: return CLONE_NEWNS;
        case NamespaceType::ipc: return CLONE_NEWIPC;
        case NamespaceType::uts: return CLONE_NEWUTS;
        case NamespaceType::user: return CLONE_NEWUSER;
        case NamespaceType::cgroup: return CLONE_NEWCGROUP;
        case NamespaceType::time: return CLONE_NEWTIME;
    }
    return 0;
}

const char* proc_ns_name(NamespaceType t) {
    switch (t) {
        case NamespaceType::pid: return "pid";
        case NamespaceType::network: return "net";
        case NamespaceType::mount: return "mnt";
        case NamespaceType::ipc: return "ipc";
        case NamespaceType::uts: return "uts";
        case NamespaceType::user: return "user";
        case NamespaceType::cgroup: return "cgroup";
        case NamespaceType::time: return "time";
    }
    return "?";
}

Result<pid_t> clone3_fork(uint64_t flags, int* pidfd_out, int cgroup_fd) {
    struct clone_args args{};
    int pidfd = -1;
    args.flags = flags;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = static_cast<uint64_t>(cgroup_fd);
    }
    if (pidfd_out) {
        args.flags |= CLONE_PIDFD;
        args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    }
    args.exit_signal = SIGCHLD;
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r < 0) return fail_sys("clone3 with flags {:#x}", flags);
    if (r > 0 && pidfd_out) *pidfd_out = pidfd;
    return static_cast<pid_t>(r);
}

Result<UniqueFd> open_namespace(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_sys("open namespace {}", path);
    return UniqueFd(fd);
}

Result<void> join_namespace(int fd, NamespaceType t, const std::string& path) {
    if (::setns(fd, clone_flag(t)) < 0) return fail_sys("join {} namespace {}", spec::to_string(t), path);
    return {};
}

Result<void> write_id_map(pid_t pid, const char* which, const std::vector<spec::IdMapping>& maps) {
    std::string text;
    for (const auto& m : maps) text += fmt::format("{} {} {}\n", m.container_id, m.host_id, m.size);
    std::string path = fmt::format("/proc/{}/{}", pid, which);
    // The kernel takes the whole map in one write(2).
    BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_WRONLY));
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0) return fail_sys("write {} ({})", path, text.substr(0, text.size() - 1));
    return {};
}

Result<void> write_time_offsets(const std::map<std::string, spec::TimeOffset>& offsets) {
    std::string text;
    for (const auto& [clock, off] : offsets) text += fmt::format("{} {} {}\n", clock, off.secs, off.nanosecs);
    BERTH_ASSIGN(UniqueFd fd, open_fd("/proc/self/timens_offsets", O_WRONLY));
    if (::write(fd.get(), text.data(), text.size()) < 0) return fail_sys("write /proc/self/timens_offsets");
    return {};
}

namespace {

// Returns the fields after "(comm)" of /proc/<pid>/stat; comm may hold spaces and parentheses.
std::string stat_tail(pid_t pid) {
    auto text = read_file(fmt::format("/proc/{}/stat", pid));
    if (!text) return {};
    auto close = text->rfind(')');
    if (close == std::string::npos || close + 2 >= text->size()) return {};
    return text->substr(close + 2);
}

}  // namespace

uint64_t process_stat_number(pid_t pid, int field) {
    std::string tail = stat_tail(pid);
    if (tail.empty() || field < 3) return 0;
    // tail starts at field 3 (state).
    size_t pos = 0;
    for (int f = 3; f < field; ++f) {
        pos = tail.find(' ', pos);
        if (pos == std::string::npos) return 0;
        ++pos;
    }
    return std::strtoull(tail.c_str() + pos, nullptr, 10);
}

uint64_t process_start_time(pid_t pid) { return process_stat_number(pid, 22); }

bool process_alive(pid_t pid, uint64_t expected_start_time) {
    if (pid <= 0) return false;
    std::string tail = stat_tail(pid);
    if (tail.empty()) return false;
    if (tail[0] == 'Z' || tail[0] == 'X') return false;
    return expected_start_time == 0 || process_start_time(pid) == expected_start_time;
}

}  // namespace berth::sys
