// Builds layer tar streams for the src/image tests with libarchive's writer (pax format, optionally gzip or zstd),
// and hand-made ustar blocks for inputs libarchive would not write.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "image/layer_unpack.hpp"

namespace berth::image::testing {

struct TarMember {
    std::string path;
    mode_t type = S_IFREG;  // S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK
    mode_t perm = 0644;
    int64_t uid = 0, gid = 0;
    std::string data;  // regular files
    std::string link;  // symlink target, or hardlink target when `hardlink`
    bool hardlink = false;
    unsigned dev_major = 0, dev_minor = 0;
    time_t mtime = 1700000000;
    long mtime_nsec = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
};

inline TarMember file(std::string path, std::string data, mode_t perm = 0644) {
    TarMember m;
    m.path = std::move(path);
    m.data = std::move(data);
    m.perm = perm;
    return m;
}
inline TarMember dir(std::string path, mode_t perm = 0755) {
    TarMember m;
    m.path = std::move(path);
    m.type = S_IFDIR;
    m.perm = perm;
    return m;
}
inline TarMember symlink(std::string path, std::string target) {
    TarMember m;
    m.path = std::move(path);
    m.type = S_IFLNK;
    m.perm = 0777;
    m.link = std::move(target);
    return m;
}
inline TarMember hardlink(std::string path, std::string target) {
    TarMember m;
    m.path = std::move(path);
    m.link = std::move(target);
    m.hardlink = true;
    return m;
}

// The tar stream of `members`, compressed as asked. Returns "" if libarchive fails (the test then fails on it).
inline std::string build_layer(const std::vector<TarMember>& members,
                               LayerCompression compression = LayerCompression::none) {
    std::string out;
    struct archive* a = archive_write_new();
    archive_write_set_format_pax(a);
    if (compression == LayerCompression::gzip) archive_write_add_filter_gzip(a);
    if (compression == LayerCompression::zstd) archive_write_add_filter_zstd(a);
    archive_write_set_bytes_in_last_block(a, 1);
    auto write_cb = [](struct archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
    };
    bool ok = archive_write_open(a, &out, nullptr, write_cb, nullptr) == ARCHIVE_OK;
    for (const auto& m : members) {
        struct archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, m.path.c_str());
        archive_entry_set_uid(e, m.uid);
        archive_entry_set_gid(e, m.gid);
        archive_entry_set_mtime(e, m.mtime, m.mtime_nsec);
        if (m.hardlink) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, m.perm);
            archive_entry_set_hardlink(e, m.link.c_str());
            archive_entry_set_size(e, 0);
        } else {
            archive_entry_set_filetype(e, m.type);
            archive_entry_set_perm(e, m.perm);
            if (m.type == S_IFLNK) archive_entry_set_symlink(e, m.link.c_str());
            if (m.type == S_IFCHR || m.type == S_IFBLK) {
                archive_entry_set_rdevmajor(e, m.dev_major);
                archive_entry_set_rdevminor(e, m.dev_minor);
            }
            archive_entry_set_size(e, m.type == S_IFREG ? static_cast<la_int64_t>(m.data.size()) : 0);
        }
        for (const auto& [k, v] : m.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
        ok = ok && archive_write_header(a, e) == ARCHIVE_OK;
        if (ok && !m.hardlink && m.type == S_IFREG && !m.data.empty())
            ok = archive_write_data(a, m.data.data(), m.data.size()) == static_cast<la_ssize_t>(m.data.size());
        archive_entry_free(e);
    }
    ok = ok && archive_write_close(a) == ARCHIVE_OK;
    archive_write_free(a);
    return ok ? out : std::string();
}

// One hand-written ustar header block (512 bytes) with a correct checksum, for names libarchive's writer would
// not produce as-is.
inline std::string ustar_header(const std::string& name, char typeflag, size_t size, const std::string& linkname = "") {
    std::string h(512, '\0');
    std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
    std::snprintf(h.data() + 100, 8, "%07o", 0644);
    std::snprintf(h.data() + 108, 8, "%07o", 0);
    std::snprintf(h.data() + 116, 8, "%07o", 0);
    std::snprintf(h.data() + 124, 12, "%011zo", size);
    std::snprintf(h.data() + 136, 12, "%011o", 0);
    h[156] = typeflag;
    std::memcpy(h.data() + 157, linkname.data(), std::min<size_t>(linkname.size(), 100));
    std::memcpy(h.data() + 257, "ustar", 6);
    std::memcpy(h.data() + 263, "00", 2);
    std::memset(h.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h.data() + 148, 8, "%06o", sum);
    h[155] = ' ';
    return h;
}

}  // namespace berth::image::testing
