#include "image/content_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "common/fs.hpp"

namespace berth::image {

namespace {

std::string blobs_dir(const std::string& root) {
    return root + "/blobs/sha256";
}
std::string ingest_dir(const std::string& root) {
    return root + "/ingest";
}

Result<void> fsync_dir(const std::string& dir) {
    BERTH_ASSIGN(UniqueFd fd, open_fd(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (::fsync(fd.get()) < 0) return fail_sys("fsync {}", dir);
    return {};
}

Result<void> hash_fd(int fd, Sha256& h, const std::string& what) {
    std::array<std::byte, 1 << 16> buf{};
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("read {}", what);
        }
        if (n == 0) return {};
        h.update(std::span(buf.data(), static_cast<size_t>(n)));
    }
}

}  // namespace

Result<void> BlobWriter::write(std::span<const std::byte> data) {
    if (failed_ || !tmp_) return fail("write blob {}: the writer has failed or finished", expected_.string());
    if (size_ && hasher_.size() + data.size() > *size_) {
        failed_ = true;
        return fail("write blob {}: more than the expected {} bytes", expected_.string(), *size_);
    }
    const std::byte* p = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(tmp_.get(), p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            failed_ = true;
            return fail_sys("write blob {} into {}", expected_.string(), ingest_dir(root_));
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    hasher_.update(data);
    return {};
}

Result<void> BlobWriter::commit() {
    if (failed_ || !tmp_) return fail("commit blob {}: the writer has failed or finished", expected_.string());
    // Whatever happens below, this writer is done: the temp file goes with tmp_, the lock with lock_.
    UniqueFd tmp = std::move(tmp_);
    UniqueFd lock = std::move(lock_);
    failed_ = true;
    const uint64_t got_size = hasher_.size();
    if (size_ && got_size != *size_)
        return fail("commit blob {}: got {} bytes, expected {}", expected_.string(), got_size, *size_);
    Digest actual = hasher_.finish();
    if (actual != expected_)
        return fail("commit blob {}: content has digest {} ({} bytes)", expected_.string(), actual.string(), got_size);
    if (::fchmod(tmp.get(), 0444) < 0) return fail_sys("commit blob {}: chmod", expected_.string());
    if (::fsync(tmp.get()) < 0) return fail_sys("commit blob {}: fsync", expected_.string());
    // An O_TMPFILE gets its name through its /proc/self/fd link (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
    const std::string final_path = blobs_dir(root_) + "/" + expected_.hex();
    const std::string proc = fmt::format("/proc/self/fd/{}", tmp.get());
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, final_path.c_str(), AT_SYMLINK_FOLLOW) < 0) {
        // Present already: only possible when someone wrote it without the ingest lock; it has the same digest.
        if (errno != EEXIST) return fail_sys("commit blob {}: link into {}", expected_.string(), final_path);
    }
    BERTH_TRY_CTX(fsync_dir(blobs_dir(root_)), "commit blob {}", expected_.string());
    return {};
}

Result<ContentStore> ContentStore::open(const std::string& root) {
    BERTH_TRY_CTX(mkdir_all(blobs_dir(root), 0700), "open content store {}", root);
    BERTH_TRY_CTX(mkdir_all(ingest_dir(root), 0700), "open content store {}", root);
    return ContentStore(root);
}

std::string ContentStore::blob_path(const Digest& d) const {
    return blobs_dir(root_) + "/" + d.hex();
}

Result<UniqueFd> ContentStore::lock_digest(const Digest& d) const {
    const std::string path = ingest_dir(root_) + "/" + d.hex() + ".lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail_sys("open ingest lock {}", path);
    UniqueFd lock(fd);
    while (::flock(lock.get(), LOCK_EX) < 0) {
        if (errno != EINTR) return fail_sys("lock {}", path);
    }
    return lock;
}

Result<std::optional<BlobWriter>> ContentStore::begin_write(const Digest& expected,
                                                            std::optional<uint64_t> size) const {
    if (!expected.valid()) return fail("write blob: no digest given");
    BERTH_ASSIGN(UniqueFd lock, lock_digest(expected));
    if (exists(expected)) return std::optional<BlobWriter>();
    const std::string dir = ingest_dir(root_);
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return fail_sys("write blob {}: create a temp file in {} (O_TMPFILE)", expected.string(), dir);
    return std::optional<BlobWriter>(BlobWriter(root_, expected, size, std::move(lock), UniqueFd(fd)));
}

Result<Digest> ContentStore::put(std::string_view data) const {
    Digest d = Sha256::of(data);
    BERTH_ASSIGN(auto writer, begin_write(d, data.size()));
    if (!writer) return d;
    BERTH_TRY(writer->write(data));
    BERTH_TRY(writer->commit());
    return d;
}

bool ContentStore::exists(const Digest& d) const {
    struct stat st {};
    return d.valid() && ::stat(blob_path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<uint64_t> ContentStore::size(const Digest& d) const {
    struct stat st {};
    if (::stat(blob_path(d).c_str(), &st) < 0) return fail_sys("blob {}", d.string());
    return static_cast<uint64_t>(st.st_size);
}

Result<UniqueFd> ContentStore::open_blob(const Digest& d) const {
    int fd = ::open(blob_path(d).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return fail_sys("open blob {}", d.string());
    return UniqueFd(fd);
}

Result<std::string> ContentStore::read(const Digest& d) const {
    BERTH_ASSIGN(UniqueFd fd, open_blob(d));
    BERTH_ASSIGN(std::string data, read_fd(fd.get()));
    Digest actual = Sha256::of(data);
    if (actual != d) return fail("read blob {}: stored content has digest {}", d.string(), actual.string());
    return data;
}

Result<void> ContentStore::verify(const Digest& d) const {
    BERTH_ASSIGN(UniqueFd fd, open_blob(d));
    Sha256 h;
    BERTH_TRY(hash_fd(fd.get(), h, "blob " + d.string()));
    Digest actual = h.finish();
    if (actual != d) return fail("verify blob {}: stored content has digest {}", d.string(), actual.string());
    return {};
}

Result<void> ContentStore::remove(const Digest& d) const {
    BERTH_ASSIGN(UniqueFd lock, lock_digest(d));
    if (::unlink(blob_path(d).c_str()) < 0) return fail_sys("remove blob {}", d.string());
    return fsync_dir(blobs_dir(root_));
}

Result<std::vector<Digest>> ContentStore::list() const {
    const std::string dir = blobs_dir(root_);
    DIR* dp = ::opendir(dir.c_str());
    if (!dp) return fail_sys("list blobs in {}", dir);
    std::vector<Digest> out;
    errno = 0;
    while (struct dirent* e = ::readdir(dp)) {
        auto d = Digest::parse(std::string("sha256:") + e->d_name);
        if (d) out.push_back(std::move(*d));
        errno = 0;
    }
    int err = errno;
    ::closedir(dp);
    if (err != 0) return fail_errno(err, "list blobs in {}", dir);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace berth::image
