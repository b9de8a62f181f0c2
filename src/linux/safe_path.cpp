#include "linux/safe_path.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <deque>
#include <vector>

namespace berth::sys {

namespace {

// The kernel's own limit on symlinks followed in one lookup.
constexpr int kMaxSymlinks = 40;
// Bound on re-examining a component that changed under us (created, removed or swapped concurrently).
constexpr int kMaxRetries = 64;

void split_into(std::string_view path, std::deque<std::string>& out, bool front) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        if (j > i) parts.emplace_back(path.substr(i, j - i));
        i = j + 1;
    }
    if (front)
        out.insert(out.begin(), parts.begin(), parts.end());
    else
        out.insert(out.end(), parts.begin(), parts.end());
}

enum class LastKind { directory, file };

struct Dir {
    UniqueFd fd;
    std::string shown;  // path of this directory relative to the root, for messages
};

std::string child_shown(const std::string& parent, const std::string& name) {
    return parent == "/" ? "/" + name : parent + "/" + name;
}

// The component-by-component walk behind mkdir_all_in_root and create_file_in_root. `stack` holds the chain of
// directories from the root to the current one, so ".." is the physical parent and never goes above the root.
Result<UniqueFd> walk_creating(int root_fd, std::string_view path, LastKind last, mode_t mode) {
    const char* what = last == LastKind::directory ? "mkdir" : "create";
    const mode_t parent_mode = last == LastKind::directory ? mode : 0755;
    std::vector<Dir> stack;
    int rfd = ::openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) return fail_sys("{} {} inside the root: open the root", what, path);
    stack.push_back(Dir{UniqueFd(rfd), "/"});

    std::deque<std::string> todo;
    split_into(path, todo, false);
    int links = 0;
    int retries = 0;
    auto retry = [&](const std::string& name, int err) -> Result<void> {
        if (++retries > kMaxRetries)
            return fail_errno(err, "{} {} inside the root: {} keeps changing", what, path,
                              child_shown(stack.back().shown, name));
        todo.push_front(name);
        return {};
    };

    while (!todo.empty()) {
        std::string name = std::move(todo.front());
        todo.pop_front();
        const bool is_last = todo.empty();
        if (name == ".") continue;
        if (name == "..") {
            if (stack.size() > 1) stack.pop_back();
            continue;
        }
        const Dir& cur = stack.back();
        const std::string shown = child_shown(cur.shown, name);

        struct stat st {};
        if (::fstatat(cur.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) return fail_sys("{} {} inside the root: stat {}", what, path, shown);
            if (is_last && last == LastKind::file) {
                int fd =
                    ::openat(cur.fd.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
                if (fd < 0 && errno != EEXIST) return fail_sys("{} {} inside the root: create {}", what, path, shown);
                if (fd >= 0) ::close(fd);
            } else if (::mkdirat(cur.fd.get(), name.c_str(), is_last ? mode : parent_mode) < 0 && errno != EEXIST) {
                return fail_sys("{} {} inside the root: mkdir {}", what, path, shown);
            }
            // Look at what is there now through the same checks as an existing component.
            BERTH_TRY(retry(name, EAGAIN));
            continue;
        }

        if (S_ISLNK(st.st_mode)) {
            if (++links > kMaxSymlinks) return fail_errno(ELOOP, "{} {} inside the root: at {}", what, path, shown);
            std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
            ssize_t n = ::readlinkat(cur.fd.get(), name.c_str(), target.data(), target.size());
            if (n < 0) {
                if (errno == ENOENT || errno == EINVAL) {  // removed or replaced since the stat
                    BERTH_TRY(retry(name, errno));
                    continue;
                }
                return fail_sys("{} {} inside the root: readlink {}", what, path, shown);
            }
            if (static_cast<size_t>(n) >= target.size()) {  // grew since the stat
                BERTH_TRY(retry(name, EAGAIN));
                --links;
                continue;
            }
            target.resize(static_cast<size_t>(n));
            if (target.empty()) return fail_errno(ENOENT, "{} {} inside the root: empty symlink {}", what, path, shown);
            if (target.front() == '/') stack.resize(1);
            split_into(target, todo, true);
            continue;
        }

        if (S_ISDIR(st.st_mode)) {
            int fd = ::openat(cur.fd.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {  // swapped since the stat
                    BERTH_TRY(retry(name, errno));
                    continue;
                }
                return fail_sys("{} {} inside the root: open {}", what, path, shown);
            }
            stack.push_back(Dir{UniqueFd(fd), shown});
            retries = 0;  // progress: the budget is per component
            continue;
        }

        if (!is_last || last == LastKind::directory)
            return fail_errno(ENOTDIR, "{} {} inside the root: {}", what, path, shown);
        int fd = ::openat(cur.fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) {
                BERTH_TRY(retry(name, errno));
                continue;
            }
            return fail_sys("{} {} inside the root: open {}", what, path, shown);
        }
        UniqueFd file(fd);
        struct stat now {};
        if (::fstat(file.get(), &now) < 0) return fail_sys("{} {} inside the root: stat {}", what, path, shown);
        if (S_ISLNK(now.st_mode) || S_ISDIR(now.st_mode)) {  // swapped since the stat: walk it again
            BERTH_TRY(retry(name, EAGAIN));
            continue;
        }
        return file;
    }
    return std::move(stack.back().fd);
}

}  // namespace

Result<UniqueFd> open_in_root(int root_fd, std::string_view path, int flags, mode_t mode) {
    std::string p = path.empty() ? std::string(".") : std::string(path);
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    for (int attempt = 0;; ++attempt) {
        long fd = ::syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof how);
        if (fd >= 0) return UniqueFd(static_cast<int>(fd));
        if ((errno == EAGAIN || errno == EINTR) && attempt < kMaxRetries) continue;
        return fail_sys("open {} inside the root", p);
    }
}

Result<UniqueFd> mkdir_all_in_root(int root_fd, std::string_view path, mode_t mode) {
    return walk_creating(root_fd, path, LastKind::directory, mode);
}

Result<UniqueFd> create_file_in_root(int root_fd, std::string_view path, mode_t mode) {
    return walk_creating(root_fd, path, LastKind::file, mode);
}

std::string fd_path(int fd) {
    return fmt::format("/proc/self/fd/{}", fd);
}

}  // namespace berth::sys
