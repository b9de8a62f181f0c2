#include "common/fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace berth {

Result<UniqueFd> open_fd(const std::string& path, int flags, mode_t mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return fail_sys("open {}", path);
    return UniqueFd(fd);
}

Result<std::string> read_fd(int fd) {
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("read");
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

Result<std::string> read_file(const std::string& path) {
    BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_RDONLY));
    auto r = read_fd(fd.get());
    if (!r) return std::unexpected(std::move(r).error().wrap(path));
    return r;
}

Result<void> write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("write");
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

Result<void> write_file(const std::string& path, std::string_view data, mode_t mode) {
    BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_WRONLY | O_CREAT | O_TRUNC, mode));
    auto r = write_all(fd.get(), data);
    if (!r) return std::unexpected(std::move(r).error().wrap(fmt::format("write {}", path)));
    return {};
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
    std::string tmp = path + ".tmp";
    BERTH_TRY(write_file(tmp, data, mode));
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return fail_errno(err, "rename {} to {}", tmp, path);
    }
    return {};
}

Result<void> mkdir_all(const std::string& path, mode_t mode) {
    if (path.empty()) return {};
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return {};
        return fail_errno(ENOTDIR, "mkdir {}", path);
    }
    auto slash = path.find_last_of('/');
    if (slash != std::string::npos && slash > 0) BERTH_TRY(mkdir_all(path.substr(0, slash), mode));
    if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST) return fail_sys("mkdir {}", path);
    return {};
}

namespace {

Result<void> remove_at(int dirfd, const char* name, dev_t dev, const std::string& shown) {
    struct stat st{};
    if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return {};
        return fail_sys("stat {}", shown);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(dirfd, name, 0) < 0 && errno != ENOENT) return fail_sys("unlink {}", shown);
        return {};
    }
    if (st.st_dev != dev) return fail_errno(EBUSY, "remove {}: a mount point lies below", shown);
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_sys("open {}", shown);
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        ::close(fd);
        return fail_sys("opendir {}", shown);
    }
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(dir)) {
        std::string_view n = de->d_name;
        if (n == "." || n == "..") continue;
        names.emplace_back(n);
    }
    Result<void> result;
    for (const auto& n : names) {
        auto r = remove_at(::dirfd(dir), n.c_str(), dev, shown + "/" + n);
        if (!r && result) result = std::move(r);
    }
    ::closedir(dir);
    if (!result) return result;
    if (::unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) return fail_sys("rmdir {}", shown);
    return {};
}

}  // namespace

Result<void> remove_all(const std::string& path) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return {};
        return fail_sys("stat {}", path);
    }
    return remove_at(AT_FDCWD, path.c_str(), st.st_dev, path);
}

bool path_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string path_join(std::string_view a, std::string_view b) {
    std::string out(a);
    while (!out.empty() && out.back() == '/') out.pop_back();
    while (!b.empty() && b.front() == '/') b.remove_prefix(1);
    out += '/';
    out += b;
    return out;
}

std::string clean_path(std::string_view p) {
    bool absolute = !p.empty() && p.front() == '/';
    std::vector<std::string_view> parts;
    size_t i = 0;
    while (i <= p.size()) {
        size_t j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        std::string_view part = p.substr(i, j - i);
        if (part.empty() || part == ".") {
        } else if (part == "..") {
            if (!parts.empty() && parts.back() != "..")
                parts.pop_back();
            else if (!absolute)
                parts.push_back(part);
        } else {
            parts.push_back(part);
        }
        i = j + 1;
    }
    std::string out = absolute ? "/" : "";
    for (size_t k = 0; k < parts.size(); ++k) {
        if (k) out += '/';
        out += parts[k];
    }
    if (out.empty()) out = ".";
    return out;
}

}  // namespace berth
