#include "image/layer_unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "common/unique_fd.hpp"
#include "linux/safe_path.hpp"

namespace berth::image {

std::string_view to_string(LayerCompression c) {
    switch (c) {
        case LayerCompression::none:
            return "tar";
        case LayerCompression::gzip:
            return "gzip";
        case LayerCompression::zstd:
            return "zstd";
    }
    return "?";
}

namespace {

// libarchive's last error text; it can be null (some failures set no message) and fmt must not get a null.
const char* archive_message(struct archive* a) {
    const char* m = archive_error_string(a);
    return m ? m : "unknown libarchive error";
}

constexpr size_t kBufferSize = 128 * 1024;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
constexpr std::string_view kOverlayXattrPrefix = "trusted.overlay.";

struct ArchiveFree {
    void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// Shown in messages: member names are attacker-chosen and may be megabytes long.
std::string shown(std::string_view name) {
    constexpr size_t kMax = 200;
    if (name.size() <= kMax) return std::string(name);
    return std::string(name.substr(0, kMax)) + fmt::format("...({} bytes)", name.size());
}

// The blob as read from the source: the bytes peeked for the magic first, hashed once as they pass.
struct BlobStream {
    const LayerSource* source;
    std::vector<std::byte> buf = std::vector<std::byte>(kBufferSize);
    std::vector<std::byte> head;  // peeked, not yet handed out
    Sha256 hash;
    std::optional<Error> error;

    Result<size_t> read(std::span<std::byte> out) {
        if (!head.empty()) {
            size_t n = std::min(out.size(), head.size());
            std::copy_n(head.begin(), n, out.begin());
            head.erase(head.begin(), head.begin() + static_cast<ptrdiff_t>(n));
            return n;
        }
        BERTH_ASSIGN(size_t n, (*source)(out));
        if (n > out.size()) return fail("layer source returned more bytes than asked");
        hash.update(out.first(n));
        return n;
    }

    Result<void> peek(size_t want) {
        while (head.size() < want) {
            std::array<std::byte, 16> tmp{};
            BERTH_ASSIGN(size_t n, (*source)(std::span(tmp).first(want - head.size())));
            if (n == 0) break;
            hash.update(std::span(tmp).first(n));
            head.insert(head.end(), tmp.begin(), tmp.begin() + static_cast<ptrdiff_t>(n));
        }
        return {};
    }
};

la_ssize_t blob_read_cb(struct archive* a, void* data, const void** out) {
    auto* s = static_cast<BlobStream*>(data);
    auto n = s->read(s->buf);
    if (!n) {
        s->error = std::move(n).error();
        archive_set_error(a, EIO, "%s", s->error->message().c_str());
        return -1;
    }
    *out = s->buf.data();
    return static_cast<la_ssize_t>(*n);
}

// The uncompressed tar stream: straight from the blob, or through libarchive's decompressing "raw" reader. Every
// byte is hashed into the diff_id as it passes, and drain() hashes what the tar reader leaves after its end.
struct TarStream {
    BlobStream* blob;
    struct archive* decompressor = nullptr;  // null for an uncompressed layer
    LayerCompression compression = LayerCompression::none;
    std::vector<std::byte> buf = std::vector<std::byte>(kBufferSize);
    Sha256 hash;
    std::optional<Error> error;

    Result<size_t> read() {
        if (!decompressor) return blob->read(buf);
        la_ssize_t n = archive_read_data(decompressor, buf.data(), buf.size());
        if (n < 0) {
            if (blob->error) return std::unexpected(*blob->error);
            return fail("decompress {} layer: {}", to_string(compression), archive_message(decompressor));
        }
        return static_cast<size_t>(n);
    }

    Result<void> drain() {
        for (;;) {
            BERTH_ASSIGN(size_t n, read());
            if (n == 0) return {};
            hash.update(std::span(buf).first(n));
        }
    }
};

la_ssize_t tar_read_cb(struct archive* a, void* data, const void** out) {
    auto* s = static_cast<TarStream*>(data);
    auto n = s->read();
    if (!n) {
        s->error = std::move(n).error();
        archive_set_error(a, EIO, "%s", s->error->message().c_str());
        return -1;
    }
    s->hash.update(std::span(s->buf).first(*n));
    *out = s->buf.data();
    return static_cast<la_ssize_t>(*n);
}

// A member name split into clean components: leading '/' and "." dropped, ".." refused, limits checked.
Result<std::vector<std::string>> split_member_path(std::string_view path, std::string_view what) {
    if (path.size() > PATH_MAX) return fail("{} is longer than {} bytes", what, PATH_MAX);
    std::vector<std::string> parts;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view c = path.substr(i, j - i);
        if (c == "..") return fail("{} has a \"..\" component", what);
        if (c.size() > NAME_MAX) return fail("{} has a component longer than {} bytes", what, NAME_MAX);
        if (!c.empty() && c != ".") parts.emplace_back(c);
        i = j + 1;
    }
    return parts;
}

std::string join_parts(const std::vector<std::string>& parts, size_t n) {
    std::string out;
    for (size_t k = 0; k < n; ++k) {
        if (k) out += '/';
        out += parts[k];
    }
    return out.empty() ? "." : out;
}

// Removes `name` in `dirfd` whatever it is; a directory with everything below it (never following symlinks and
// never leaving the directory: children are reached through fds opened O_NOFOLLOW).
Result<void> remove_entry(int dirfd, const std::string& name) {
    if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno != EISDIR && errno != EPERM) return fail_sys("remove {}", name);
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_sys("open {} to remove it", name);
    DIR* dp = ::fdopendir(fd);
    if (!dp) {
        ::close(fd);
        return fail_sys("read {} to remove it", name);
    }
    std::vector<std::string> children;
    while (auto* e = ::readdir(dp)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") children.push_back(std::move(n));
    }
    Result<void> r;
    for (const auto& c : children) {
        r = remove_entry(::dirfd(dp), c);
        if (!r) break;
    }
    ::closedir(dp);
    if (!r) return std::unexpected(std::move(r).error().wrap(name));
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) return fail_sys("remove {}", name);
    return {};
}

class Unpacker {
public:
    explicit Unpacker(int root_fd) : root_fd_(root_fd) {}

    Result<void> entry(struct archive* a, struct archive_entry* e);
    Result<void> finish();

private:
    Result<UniqueFd> parent_dir(const std::vector<std::string>& parts);
    Result<void> apply_metadata(struct archive_entry* e, int fd, int parent, const std::string& name, bool is_link);
    Result<void> write_data(struct archive* a, int fd);

    struct DirTimes {
        std::string path;
        struct timespec times[2];
    };
    int root_fd_;
    std::vector<DirTimes> dir_times_;
};

struct timespec entry_time(time_t sec, long nsec) {
    struct timespec t {};
    t.tv_sec = sec;
    t.tv_nsec = nsec;
    return t;
}

// Opens (creating missing components 0755) the directory holding the entry, resolved inside the root.
Result<UniqueFd> Unpacker::parent_dir(const std::vector<std::string>& parts) {
    const size_t n = parts.size() - 1;
    const std::string path = join_parts(parts, n);
    auto fd = sys::open_in_root(root_fd_, path, O_RDONLY | O_DIRECTORY);
    if (fd || fd.error().code() != ENOENT) return fd;
    // Create what is missing, one component at a time, each resolved again from the root.
    UniqueFd cur;
    for (size_t k = 1; k <= n; ++k) {
        const std::string prefix = join_parts(parts, k);
        auto next = sys::open_in_root(root_fd_, prefix, O_RDONLY | O_DIRECTORY);
        if (!next && next.error().code() == ENOENT) {
            int pfd = k == 1 ? root_fd_ : cur.get();
            const char* c = parts[k - 1].c_str();
            if (::mkdirat(pfd, c, 0755) == 0) {
                // 0755 whatever the umask, as the ecosystem gives implied parents.
                if (::fchmodat(pfd, c, 0755, 0) < 0) return fail_sys("chmod parent directory {}", prefix);
            } else if (errno != EEXIST) {
                return fail_sys("create parent directory {}", prefix);
            }
            next = sys::open_in_root(root_fd_, prefix, O_RDONLY | O_DIRECTORY);
        }
        if (!next) return std::unexpected(std::move(next).error().wrap("parent directory"));
        cur = std::move(*next);
    }
    return cur;
}

Result<void> Unpacker::write_data(struct archive* a, int fd) {
    for (;;) {
        const void* buf = nullptr;
        size_t size = 0;
        la_int64_t offset = 0;
        int r = archive_read_data_block(a, &buf, &size, &offset);
        if (r == ARCHIVE_EOF) return {};
        if (r < ARCHIVE_WARN) return fail("read data: {}", archive_message(a));
        const char* p = static_cast<const char*>(buf);
        while (size > 0) {
            ssize_t n = ::pwrite(fd, p, size, offset);
            if (n < 0) {
                if (errno == EINTR) continue;
                return fail_sys("write data");
            }
            p += n;
            size -= static_cast<size_t>(n);
            offset += n;
        }
    }
}

// Owner, then mode (chown clears setuid/setgid), then xattrs, then times (directories: later, in finish()).
// `fd` is an open fd on the object, or -1 to work by `name` in `parent` (symlinks, devices, fifos).
Result<void> Unpacker::apply_metadata(struct archive_entry* e, int fd, int parent, const std::string& name,
                                      bool is_link) {
    const uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    const gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    if (archive_entry_uid(e) < 0 || archive_entry_gid(e) < 0 || archive_entry_uid(e) > UINT32_MAX - 1 ||
        archive_entry_gid(e) > UINT32_MAX - 1)
        return fail("owner {}:{} out of range", archive_entry_uid(e), archive_entry_gid(e));
    const mode_t mode = archive_entry_perm(e) & 07777;
    if (fd >= 0) {
        if (::fchown(fd, uid, gid) < 0) return fail_sys("chown {}:{}", uid, gid);
        if (::fchmod(fd, mode) < 0) return fail_sys("chmod {:o}", mode);
    } else {
        if (::fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            return fail_sys("chown {}:{}", uid, gid);
        // Symlinks have no mode of their own on Linux.
        if (!is_link && ::fchmodat(parent, name.c_str(), mode, 0) < 0) return fail_sys("chmod {:o}", mode);
    }

    archive_entry_xattr_reset(e);
    const char* xname = nullptr;
    const void* xvalue = nullptr;
    size_t xsize = 0;
    const std::string by_name = fmt::format("/proc/self/fd/{}/{}", parent, name);
    while (archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
        std::string_view xn = xname ? xname : "";
        if (xn.empty()) return fail("xattr with an empty name");
        if (xn.starts_with(kOverlayXattrPrefix))
            return fail("xattr {} is reserved: overlay metadata comes only from whiteout entries", shown(xn));
        int r =
            fd >= 0 ? ::fsetxattr(fd, xname, xvalue, xsize, 0) : ::lsetxattr(by_name.c_str(), xname, xvalue, xsize, 0);
        if (r < 0) return fail_sys("set xattr {}", shown(xn));
    }

    if (archive_entry_filetype(e) == AE_IFDIR) return {};
    struct timespec times[2];
    times[1] = entry_time(archive_entry_mtime(e), archive_entry_mtime_nsec(e));
    times[0] =
        archive_entry_atime_is_set(e) ? entry_time(archive_entry_atime(e), archive_entry_atime_nsec(e)) : times[1];
    if (fd >= 0 ? ::futimens(fd, times) < 0 : ::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0)
        return fail_sys("set times");
    return {};
}

Result<void> Unpacker::entry(struct archive* a, struct archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (!raw) return fail("layer entry without a name");
    const std::string_view path = raw;
    const std::string what = fmt::format("layer entry \"{}\"", shown(path));
    auto wrap = [&](Error err) { return std::unexpected(std::move(err).wrap(what)); };

    auto parts_r = split_member_path(path, "the path");
    if (!parts_r) return wrap(std::move(parts_r).error());
    std::vector<std::string> parts = std::move(*parts_r);
    const mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);

    if (parts.empty()) {  // the layer root itself ("./"): only its metadata
        if (type != AE_IFDIR || hardlink) return fail("{}: the layer root must be a directory", what);
        int fd = ::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return fail_sys("{}: open the layer root", what);
        UniqueFd root(fd);
        if (auto r = apply_metadata(e, root.get(), -1, ".", false); !r) return wrap(std::move(r).error());
        dir_times_.push_back({".", {}});
        dir_times_.back().times[1] = entry_time(archive_entry_mtime(e), archive_entry_mtime_nsec(e));
        dir_times_.back().times[0] = dir_times_.back().times[1];
        return {};
    }

    auto parent_r = parent_dir(parts);
    if (!parent_r) return wrap(std::move(parent_r).error());
    const int parent = parent_r->get();
    const std::string& base = parts.back();

    if (base.starts_with(kWhiteoutPrefix)) {
        if (base == kOpaqueMarker) {
            if (::fsetxattr(parent, kOpaqueXattr, "y", 1, 0) < 0)
                return fail_sys("{}: mark the directory opaque ({})", what, kOpaqueXattr);
            return {};
        }
        if (base.starts_with(kWhiteoutMetaPrefix)) return {};  // aufs bookkeeping: no content
        const std::string name = base.substr(kWhiteoutPrefix.size());
        if (name.empty() || name == "." || name == "..") return fail("{}: whiteout of an invalid name", what);
        if (auto r = remove_entry(parent, name); !r) return wrap(std::move(r).error());
        if (::mknodat(parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0)
            return fail_sys("{}: create whiteout {}", what, name);
        if (::fchownat(parent, name.c_str(), 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
            return fail_sys("{}: chown whiteout {}", what, name);
        return {};
    }

    // Make room: the last member of a name wins, except that a directory stays a directory (merged).
    struct stat st {};
    bool existing_dir = false;
    if (::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        existing_dir = S_ISDIR(st.st_mode);
        if (!(existing_dir && type == AE_IFDIR && !hardlink)) {
            if (auto r = remove_entry(parent, base); !r) return wrap(std::move(r).error());
            existing_dir = false;
        }
    } else if (errno != ENOENT) {
        return fail_sys("{}: stat", what);
    }

    if (hardlink) {
        auto target_parts = split_member_path(hardlink, fmt::format("the hardlink target \"{}\"", shown(hardlink)));
        if (!target_parts) return wrap(std::move(target_parts).error());
        if (target_parts->empty()) return fail("{}: hardlink to the layer root", what);
        auto target = sys::open_in_root(root_fd_, join_parts(*target_parts, target_parts->size()), O_PATH | O_NOFOLLOW);
        if (!target) return wrap(std::move(target).error().wrap("hardlink target"));
        struct stat tst {};
        if (::fstat(target->get(), &tst) < 0) return fail_sys("{}: stat hardlink target", what);
        if (S_ISDIR(tst.st_mode)) return fail("{}: hardlink to a directory ({})", what, shown(hardlink));
        if (::linkat(target->get(), "", parent, base.c_str(), AT_EMPTY_PATH) < 0) {
            // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the fd's /proc link does the same without it.
            if (errno != ENOENT && errno != EPERM) return fail_sys("{}: link to {}", what, shown(hardlink));
            const std::string proc = sys::fd_path(target->get());
            if (::linkat(AT_FDCWD, proc.c_str(), parent, base.c_str(), AT_SYMLINK_FOLLOW) < 0)
                return fail_sys("{}: link to {}", what, shown(hardlink));
        }
        return {};
    }

    Result<void> meta;
    switch (type) {
        case AE_IFREG: {
            int fd = ::openat(parent, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (fd < 0) return fail_sys("{}: create", what);
            UniqueFd file(fd);
            if (auto r = write_data(a, file.get()); !r) return wrap(std::move(r).error());
            if (archive_entry_size_is_set(e) && ::ftruncate(file.get(), archive_entry_size(e)) < 0)
                return fail_sys("{}: set size", what);
            meta = apply_metadata(e, file.get(), parent, base, false);
            break;
        }
        case AE_IFDIR: {
            if (!existing_dir && ::mkdirat(parent, base.c_str(), 0700) < 0) return fail_sys("{}: mkdir", what);
            int fd = ::openat(parent, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) return fail_sys("{}: open directory", what);
            UniqueFd dir(fd);
            meta = apply_metadata(e, dir.get(), parent, base, false);
            DirTimes t{join_parts(parts, parts.size()), {}};
            t.times[1] = entry_time(archive_entry_mtime(e), archive_entry_mtime_nsec(e));
            t.times[0] = archive_entry_atime_is_set(e) ? entry_time(archive_entry_atime(e), archive_entry_atime_nsec(e))
                                                       : t.times[1];
            dir_times_.push_back(std::move(t));
            break;
        }
        case AE_IFLNK: {
            const char* target = archive_entry_symlink(e);
            if (!target || !*target) return fail("{}: symlink without a target", what);
            if (std::string_view(target).size() > PATH_MAX)
                return fail("{}: symlink target longer than {} bytes", what, PATH_MAX);
            // Stored as given: it is only ever resolved inside the container's root.
            if (::symlinkat(target, parent, base.c_str()) < 0) return fail_sys("{}: symlink", what);
            meta = apply_metadata(e, -1, parent, base, true);
            break;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
            dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
            if (::mknodat(parent, base.c_str(), type | 0600, dev) < 0) return fail_sys("{}: mknod", what);
            meta = apply_metadata(e, -1, parent, base, false);
            break;
        }
        case AE_IFSOCK:
            return fail("{}: sockets cannot be unpacked", what);
        default:
            return fail("{}: unsupported entry type {:o}", what, static_cast<unsigned>(type));
    }
    if (!meta) return wrap(std::move(meta).error());
    return {};
}

// Directory times last: creating the children changed them. Deepest first, so fixing a child does not touch a
// parent already fixed. A directory replaced by a later member is skipped.
Result<void> Unpacker::finish() {
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
        auto fd = sys::open_in_root(root_fd_, it->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (!fd) {
            int err = fd.error().code();
            if (err == ENOENT || err == ENOTDIR || err == ELOOP) continue;
            return std::unexpected(std::move(fd).error().wrap(fmt::format("layer entry \"{}\"", shown(it->path))));
        }
        if (::futimens(fd->get(), it->times) < 0)
            return fail_sys("layer entry \"{}\": set directory times", shown(it->path));
    }
    return {};
}

Result<LayerCompression> detect(BlobStream& blob) {
    BERTH_TRY(blob.peek(6));
    auto at = [&](size_t i) { return i < blob.head.size() ? static_cast<unsigned char>(blob.head[i]) : 0x100u; };
    if (at(0) == 0x1f && at(1) == 0x8b) return LayerCompression::gzip;
    if (at(0) == 0x28 && at(1) == 0xb5 && at(2) == 0x2f && at(3) == 0xfd) return LayerCompression::zstd;
    if (at(0) == 'B' && at(1) == 'Z' && at(2) == 'h') return fail("bzip2-compressed layers are not supported");
    if (at(0) == 0xfd && at(1) == '7' && at(2) == 'z' && at(3) == 'X' && at(4) == 'Z' && at(5) == 0)
        return fail("xz-compressed layers are not supported");
    return LayerCompression::none;
}

}  // namespace

Result<UnpackStats> unpack_layer(const LayerSource& source, const std::string& dest) {
    int rfd = ::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) return fail_sys("unpack layer into {}", dest);
    UniqueFd root(rfd);
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("unpack layer into {}", dest))); };

    BlobStream blob{&source};
    auto compression = detect(blob);
    if (!compression) return ctx(std::move(compression).error());

    ArchivePtr decompressor;
    TarStream tar{&blob};
    if (*compression != LayerCompression::none) {
        decompressor.reset(archive_read_new());
        if (!decompressor) return ctx(Error(ENOMEM, "archive_read_new failed"));
        int r = *compression == LayerCompression::gzip ? archive_read_support_filter_gzip(decompressor.get())
                                                       : archive_read_support_filter_zstd(decompressor.get());
        if (r != ARCHIVE_OK || archive_read_support_format_raw(decompressor.get()) != ARCHIVE_OK)
            return ctx(Error(0, fmt::format("libarchive has no built-in {} support", to_string(*compression))));
        if (archive_read_open(decompressor.get(), &blob, nullptr, blob_read_cb, nullptr) != ARCHIVE_OK) {
            if (blob.error) return ctx(*blob.error);
            return ctx(Error(
                0, fmt::format("open {} stream: {}", to_string(*compression), archive_message(decompressor.get()))));
        }
        struct archive_entry* raw_entry = nullptr;
        if (archive_read_next_header(decompressor.get(), &raw_entry) != ARCHIVE_OK) {
            if (blob.error) return ctx(*blob.error);
            return ctx(Error(
                0, fmt::format("read {} stream: {}", to_string(*compression), archive_message(decompressor.get()))));
        }
        tar.decompressor = decompressor.get();
        tar.compression = *compression;
    }

    ArchivePtr reader(archive_read_new());
    if (!reader) return ctx(Error(ENOMEM, "archive_read_new failed"));
    archive_read_support_format_tar(reader.get());
    if (archive_read_open(reader.get(), &tar, nullptr, tar_read_cb, nullptr) != ARCHIVE_OK) {
        if (tar.error) return ctx(*tar.error);
        return ctx(Error(0, fmt::format("not a tar stream: {}", archive_message(reader.get()))));
    }

    Unpacker unpacker(root.get());
    UnpackStats stats;
    stats.compression = *compression;
    for (;;) {
        struct archive_entry* e = nullptr;
        int r = archive_read_next_header(reader.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            if (tar.error) return ctx(*tar.error);
            return ctx(Error(
                0, fmt::format("read tar header after {} entries: {}", stats.entries, archive_message(reader.get()))));
        }
        ++stats.entries;
        if (auto er = unpacker.entry(reader.get(), e); !er) return ctx(std::move(er).error());
    }
    if (auto r = unpacker.finish(); !r) return ctx(std::move(r).error());
    if (auto r = tar.drain(); !r) return ctx(std::move(r).error());
    // Whatever the decompressor did not need (padding after the last frame) is still part of the blob.
    for (;;) {
        auto n = blob.read(blob.buf);
        if (!n) return ctx(std::move(n).error());
        if (*n == 0) break;
    }
    stats.uncompressed_size = tar.hash.size();
    stats.diff_id = tar.hash.finish();
    stats.blob_size = blob.hash.size();
    stats.blob_digest = blob.hash.finish();
    return stats;
}

Result<UnpackStats> unpack_layer_fd(int fd, const std::string& dest) {
    LayerSource source = [fd](std::span<std::byte> buf) -> Result<size_t> {
        for (;;) {
            ssize_t n = ::read(fd, buf.data(), buf.size());
            if (n >= 0) return static_cast<size_t>(n);
            if (errno != EINTR) return fail_sys("read layer");
        }
    };
    return unpack_layer(source, dest);
}

Result<UnpackStats> unpack_layer_buffer(std::string_view blob, const std::string& dest) {
    size_t pos = 0;
    LayerSource source = [&](std::span<std::byte> buf) -> Result<size_t> {
        size_t n = std::min(buf.size(), blob.size() - pos);
        std::memcpy(buf.data(), blob.data() + pos, n);
        pos += n;
        return n;
    };
    return unpack_layer(source, dest);
}

}  // namespace berth::image
