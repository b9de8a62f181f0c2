// CgroupManager: directories, membership, freezing, removal, OOM notification.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <set>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"

namespace berth::cgroups {

namespace {

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::optional<std::string> read_ctl(const std::string& dir, std::string_view file) {
    auto r = read_file(path_join(dir, file));
    if (!r) return std::nullopt;
    return trimmed(std::move(*r));
}

std::set<std::string> word_set(const std::string& text) {
    std::set<std::string> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find_first_of(" \n", pos);
        if (end == std::string::npos) end = text.size();
        if (end > pos) out.insert(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (::nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

Result<void> write_ctl(const std::string& dir, std::string_view file, std::string_view value) {
    std::string path = path_join(dir, file);
    int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return fail_sys("open {}", path);
    UniqueFd owned(fd);
    if (::write(fd, value.data(), value.size()) < 0) return fail_sys("write \"{}\" to {}", value, path);
    return {};
}

std::vector<pid_t> read_procs(const std::string& dir) {
    std::vector<pid_t> pids;
    auto text = read_file(path_join(dir, "cgroup.procs"));
    if (!text) return pids;
    size_t pos = 0;
    while (pos < text->size()) {
        size_t end = text->find('\n', pos);
        if (end == std::string::npos) end = text->size();
        if (end > pos) pids.push_back(static_cast<pid_t>(std::atoi(text->c_str() + pos)));
        pos = end + 1;
    }
    return pids;
}

// Removes `dir` (a cgroup: rmdir only, its control files go with it), killing its tasks first when `kill`,
// retrying while exiting tasks drain. Bounded to about five seconds.
Result<void> remove_cgroup_dir(const std::string& dir, bool kill) {
    for (int attempt = 0;; ++attempt) {
        if (kill)
            for (pid_t p : read_procs(dir))
                if (p > 0) ::kill(p, SIGKILL);
        if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return {};
        if (errno != EBUSY || attempt >= 500) return fail_sys("remove cgroup {}", dir);
        sleep_ms(10);
    }
}

// mkdir -p of `rel` below `mount`, recording each directory made (shallowest first). `on_new(parent, child)`
// runs after each new directory.
template <typename F>
Result<void> make_path(const std::string& mount, const std::string& rel, std::vector<std::string>& created, F on_new) {
    std::string cur = mount;
    std::string_view rest = rel;
    while (!rest.empty()) {
        size_t slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (part.empty()) continue;
        std::string parent = cur;
        cur = path_join(cur, part);
        BERTH_TRY(on_new(parent, cur, true));
        if (::mkdir(cur.c_str(), 0755) == 0) {
            created.push_back(cur);
            BERTH_TRY(on_new(parent, cur, false));
        } else if (errno != EEXIST) {
            return fail_sys("create cgroup {}", cur);
        }
    }
    return {};
}

}  // namespace

CgroupManager::CgroupManager(CgroupManager&& o) noexcept
    : paths_(std::move(o.paths_)),
      unified_controllers_(std::move(o.unified_controllers_)),
      created_(std::exchange(o.created_, {})) {}

CgroupManager& CgroupManager::operator=(CgroupManager&& o) noexcept {
    if (this != &o) {
        remove_created();
        paths_ = std::move(o.paths_);
        unified_controllers_ = std::move(o.unified_controllers_);
        created_ = std::exchange(o.created_, {});
    }
    return *this;
}

CgroupManager::~CgroupManager() {
    remove_created();
}

void CgroupManager::remove_created() {
    for (auto it = created_.rbegin(); it != created_.rend(); ++it)
        if (auto r = remove_cgroup_dir(*it, true); !r) log::warn("cleanup: {}", r.error().message());
    created_.clear();
}

Result<CgroupManager> CgroupManager::create(const CgroupLayout& layout, const std::string& path,
                                            const spec::Resources* resources) {
    CgroupManager mgr({});
    std::map<std::string, std::string> dir_of_mount;
    for (const auto& [controller, mount] : layout.v1) {
        auto known = dir_of_mount.find(mount);
        if (known != dir_of_mount.end()) {
            mgr.paths_[controller] = known->second;
            continue;
        }
        bool cpuset = controller == "cpuset";
        // A new v1 cpuset cgroup starts with no cpus and no mems, and no task may join it then: inherit the parent's.
        auto inherit = [&](const std::string& parent, const std::string& child, bool before) -> Result<void> {
            if (!cpuset || before) return {};
            for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
                auto mine = read_ctl(child, f);
                if (mine && mine->empty()) {
                    auto theirs = read_ctl(parent, f);
                    if (theirs && !theirs->empty()) BERTH_TRY(write_ctl(child, f, *theirs));
                }
            }
            return {};
        };
        BERTH_TRY(make_path(mount, path, mgr.created_, inherit));
        std::string dir = clean_path(path_join(mount, path));
        dir_of_mount[mount] = dir;
        mgr.paths_[controller] = dir;
    }
    if (!layout.unified.empty()) {
        // Every controller a level offers is enabled for its children on the way down, so the leaf gets all the
        // controllers the host has in this tree. A level with processes of its own refuses (EBUSY): what it
        // does not pass down is simply absent below.
        auto enable = [&](const std::string& parent, const std::string&, bool before) -> Result<void> {
            if (!before) return {};
            auto offered = read_ctl(parent, "cgroup.controllers");
            auto enabled = read_ctl(parent, "cgroup.subtree_control");
            if (!offered || !enabled) return {};
            std::set<std::string> have = word_set(*enabled);
            std::vector<std::string> want;
            for (const auto& c : word_set(*offered))
                if (!have.contains(c)) want.push_back(c);
            if (want.empty()) return {};
            std::string all;
            for (const auto& c : want) all += (all.empty() ? "+" : " +") + c;
            if (write_ctl(parent, "cgroup.subtree_control", all)) return {};
            for (const auto& c : want)
                if (auto r = write_ctl(parent, "cgroup.subtree_control", "+" + c); !r)
                    log::debug("cgroup: {}", r.error().message());
            return {};
        };
        BERTH_TRY(make_path(layout.unified, path, mgr.created_, enable));
        std::string dir = clean_path(path_join(layout.unified, path));
        mgr.paths_["unified"] = dir;
        if (auto c = read_ctl(dir, "cgroup.controllers")) mgr.unified_controllers_ = word_set(*c);
    }
    if (resources) BERTH_TRY(mgr.apply(*resources));
    return mgr;
}

CgroupManager CgroupManager::load(std::map<std::string, std::string> paths) {
    CgroupManager mgr(std::move(paths));
    auto it = mgr.paths_.find("unified");
    if (it != mgr.paths_.end())
        if (auto c = read_ctl(it->second, "cgroup.controllers")) mgr.unified_controllers_ = word_set(*c);
    return mgr;
}

std::optional<CgroupManager::Target> CgroupManager::target(const std::string& controller) const {
    if (controller != "unified") {
        auto it = paths_.find(controller);
        if (it != paths_.end()) return Target{it->second, false};
    }
    auto u = paths_.find("unified");
    if (u == paths_.end()) return std::nullopt;
    // v2 names: blkio is io, cpuacct's accounting is part of cpu.
    std::string v2 = controller == "blkio" ? "io" : controller == "cpuacct" ? "cpu" : controller;
    if (unified_controllers_.contains(v2)) return Target{u->second, true};
    return std::nullopt;
}

Result<CgroupManager::EntryFds> CgroupManager::entry_fds() const {
    EntryFds out;
    std::set<std::string> done;
    for (const auto& [controller, dir] : paths_) {
        if (!done.insert(dir).second) continue;
        if (controller == "unified") {
            int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) return fail_sys("open cgroup {}", dir);
            out.unified = UniqueFd(fd);
            continue;
        }
        std::string tasks = path_join(dir, "tasks");
        int fd = ::open(tasks.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return fail_sys("open {}", tasks);
        out.v1_tasks.emplace_back(fd);
    }
    return out;
}

Result<std::vector<pid_t>> CgroupManager::pids() const {
    for (const auto& [controller, dir] : paths_)
        if (controller != "unified") return read_procs(dir);
    auto u = paths_.find("unified");
    if (u != paths_.end()) return read_procs(u->second);
    return fail("no cgroup is recorded for this container");
}

Result<void> CgroupManager::freeze() const {
    auto f = paths_.find("freezer");
    if (f != paths_.end()) {
        // FREEZING until every task stopped; writing FROZEN again retries tasks that were busy.
        for (int attempt = 0; attempt < 1000; ++attempt) {
            BERTH_TRY(write_ctl(f->second, "freezer.state", "FROZEN"));
            auto s = read_ctl(f->second, "freezer.state");
            if (s && *s == "FROZEN") return {};
            sleep_ms(attempt < 10 ? 1 : 10);
        }
        (void)write_ctl(f->second, "freezer.state", "THAWED");
        return fail("freeze {}: tasks did not stop (state stayed FREEZING); thawed again", f->second);
    }
    auto u = paths_.find("unified");
    if (u == paths_.end()) return fail("no freezer: neither a v1 freezer nor a unified cgroup is recorded");
    BERTH_TRY(write_ctl(u->second, "cgroup.freeze", "1"));
    for (int attempt = 0; attempt < 1000; ++attempt) {
        auto ev = read_ctl(u->second, "cgroup.events");
        if (ev && ev->find("frozen 1") != std::string::npos) return {};
        sleep_ms(attempt < 10 ? 1 : 10);
    }
    (void)write_ctl(u->second, "cgroup.freeze", "0");
    return fail("freeze {}: cgroup.events never reported frozen; thawed again", u->second);
}

Result<void> CgroupManager::thaw() const {
    auto f = paths_.find("freezer");
    if (f != paths_.end()) return write_ctl(f->second, "freezer.state", "THAWED");
    auto u = paths_.find("unified");
    if (u == paths_.end()) return fail("no freezer: neither a v1 freezer nor a unified cgroup is recorded");
    return write_ctl(u->second, "cgroup.freeze", "0");
}

bool CgroupManager::frozen() const {
    auto f = paths_.find("freezer");
    if (f != paths_.end()) {
        auto s = read_ctl(f->second, "freezer.state");
        return s && (*s == "FROZEN" || *s == "FREEZING");
    }
    auto u = paths_.find("unified");
    if (u == paths_.end()) return false;
    auto s = read_ctl(u->second, "cgroup.freeze");
    return s && *s == "1";
}

Result<void> CgroupManager::destroy(bool kill) const {
    std::set<std::string> dirs;
    for (const auto& [controller, dir] : paths_) dirs.insert(dir);
    if (kill)
        for (const auto& dir : dirs)
            for (pid_t p : read_procs(dir))
                if (p > 0) ::kill(p, SIGKILL);
    // Frozen tasks cannot run their exit: thaw after the kill.
    if (frozen()) (void)thaw();
    std::optional<Error> first;
    for (const auto& dir : dirs)
        if (auto r = remove_cgroup_dir(dir, kill); !r && !first) first = r.error();
    if (first) return std::unexpected(*first);
    return {};
}

Result<UniqueFd> CgroupManager::oom_notifier() const {
    auto t = target("memory");
    if (!t) return fail("no memory cgroup: OOM events cannot be watched");
    if (!t->v2) {
        UniqueFd efd(::eventfd(0, EFD_CLOEXEC));
        if (!efd) return fail_sys("eventfd");
        BERTH_ASSIGN(UniqueFd ctl, open_fd(path_join(t->dir, "memory.oom_control"), O_RDONLY | O_CLOEXEC));
        BERTH_TRY(write_ctl(t->dir, "cgroup.event_control", fmt::format("{} {}", efd.get(), ctl.get())));
        return efd;
    }
    UniqueFd ifd(::inotify_init1(IN_CLOEXEC));
    if (!ifd) return fail_sys("inotify_init1");
    std::string events = path_join(t->dir, "memory.events");
    if (::inotify_add_watch(ifd.get(), events.c_str(), IN_MODIFY) < 0) return fail_sys("inotify watch {}", events);
    return ifd;
}

uint64_t CgroupManager::oom_kill_count() const {
    auto t = target("memory");
    if (!t) return 0;
    auto text = read_ctl(t->dir, t->v2 ? "memory.events" : "memory.oom_control");
    if (!text) return 0;
    size_t pos = text->find("oom_kill ");
    if (pos == std::string::npos) return 0;
    return std::strtoull(text->c_str() + pos + 9, nullptr, 10);
}

}  // namespace berth::cgroups
