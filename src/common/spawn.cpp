#include "common/spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>

#include "common/unique_fd.hpp"

extern char** environ;

namespace berth {
namespace {

class FileActions {
public:
    FileActions() { ok_ = ::posix_spawn_file_actions_init(&a_) == 0; }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
    ~FileActions() {
        if (ok_) ::posix_spawn_file_actions_destroy(&a_);
    }
    bool ok() const { return ok_; }
    posix_spawn_file_actions_t* get() { return &a_; }

private:
    posix_spawn_file_actions_t a_;
    bool ok_ = false;
};

class Attributes {
public:
    Attributes() { ok_ = ::posix_spawnattr_init(&a_) == 0; }
    Attributes(const Attributes&) = delete;
    Attributes& operator=(const Attributes&) = delete;
    ~Attributes() {
        if (ok_) ::posix_spawnattr_destroy(&a_);
    }
    bool ok() const { return ok_; }
    posix_spawnattr_t* get() { return &a_; }

private:
    posix_spawnattr_t a_;
    bool ok_ = false;
};

}  // namespace

Result<pid_t> spawn(const SpawnRequest& r) {
    if (r.path.empty()) return fail("spawn: no program");
    std::vector<char*> argv;
    if (r.argv.empty()) argv.push_back(const_cast<char*>(r.path.c_str()));
    for (const auto& a : r.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    if (r.env) {
        for (const auto& e : *r.env) envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
    }

    UniqueFd null;
    if (r.stdin_fd < 0 || r.stdout_fd < 0 || r.stderr_fd < 0) {
        null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
        if (!null) return fail_sys("spawn {}: open /dev/null", r.path);
    }
    // (source in the parent, number in the child)
    std::vector<std::pair<int, int>> moves = {{r.stdin_fd >= 0 ? r.stdin_fd : null.get(), 0},
                                              {r.stdout_fd >= 0 ? r.stdout_fd : null.get(), 1},
                                              {r.stderr_fd >= 0 ? r.stderr_fd : null.get(), 2}};
    for (const auto& [from, to] : r.extra_fds) {
        if (to <= 2) return fail("spawn {}: extra fd {} would replace stdio", r.path, to);
        moves.emplace_back(from, to);
    }

    FileActions fa;
    Attributes attr;
    if (!fa.ok() || !attr.ok()) return fail_errno(ENOMEM, "spawn {}: prepare", r.path);
    int rc = 0;
    auto dup2 = [&](int from, int to) {
        if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(fa.get(), from, to);
    };
    // The dup2s run in order in the child: one whose target is a later one's source would clobber it. Then every
    // source goes to a number above all of them first. (dup2 leaves the copy without FD_CLOEXEC; from == to
    // clears the flag.)
    bool clobbers = false;
    for (size_t i = 0; i < moves.size(); ++i)
        for (size_t j = i + 1; j < moves.size(); ++j) clobbers = clobbers || moves[j].first == moves[i].second;
    if (clobbers) {
        int above = 0;
        for (const auto& [from, to] : moves) above = std::max({above, from, to});
        ++above;
        for (size_t i = 0; i < moves.size(); ++i) dup2(moves[i].first, above + int(i));
        for (size_t i = 0; i < moves.size(); ++i) dup2(above + int(i), moves[i].second);
    } else {
        for (const auto& [from, to] : moves) dup2(from, to);
    }
    // Nothing else of the parent's: the numbers between stdio and the highest target that are no target, and
    // everything above it.
    int keep = 2;
    for (const auto& [from, to] : r.extra_fds) keep = std::max(keep, to);
    for (int fd = 3; fd <= keep && rc == 0; ++fd) {
        bool target = std::any_of(r.extra_fds.begin(), r.extra_fds.end(), [&](const auto& m) { return m.second == fd; });
        if (!target) rc = ::posix_spawn_file_actions_addclose(fa.get(), fd);
    }
    if (rc == 0) rc = ::posix_spawn_file_actions_addclosefrom_np(fa.get(), keep + 1);
    if (rc != 0) return fail_errno(rc, "spawn {}: prepare file actions", r.path);

    sigset_t none, defaults;
    sigemptyset(&none);
    if (r.default_signals) {
        sigfillset(&defaults);
        sigdelset(&defaults, SIGKILL);
        sigdelset(&defaults, SIGSTOP);
    } else {
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
    }
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (r.new_process_group) flags |= POSIX_SPAWN_SETPGROUP;
    if ((rc = ::posix_spawnattr_setflags(attr.get(), flags)) != 0 ||
        (rc = ::posix_spawnattr_setsigmask(attr.get(), &none)) != 0 ||
        (rc = ::posix_spawnattr_setsigdefault(attr.get(), &defaults)) != 0 ||
        (r.new_process_group && (rc = ::posix_spawnattr_setpgroup(attr.get(), 0)) != 0))
        return fail_errno(rc, "spawn {}: prepare attributes", r.path);

    pid_t pid = -1;
    rc = ::posix_spawn(&pid, r.path.c_str(), fa.get(), attr.get(), argv.data(), r.env ? envp.data() : environ);
    if (rc != 0) return fail_errno(rc, "start {}", r.path);
    return pid;
}

}  // namespace berth
