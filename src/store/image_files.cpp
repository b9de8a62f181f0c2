#include "store/image_files.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <memory>

#include "common/fs.hpp"
#include "image/oci_layout.hpp"

namespace berth::store {

namespace {

struct ArchiveFree {
    void operator()(archive* a) const { archive_read_free(a); }
};

// A member name without leading "./" and "/" (tar -C dir . writes "./index.json").
std::string_view member_name(std::string_view n) {
    for (;;) {
        if (n.starts_with("./")) n.remove_prefix(2);
        else if (n.starts_with("/")) n.remove_prefix(1);
        else return n;
    }
}

Result<ImportFormat> detect_tar(const std::string& path) {
    std::unique_ptr<archive, ArchiveFree> a(archive_read_new());
    if (!a) return fail("read {}: out of memory", path);
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    if (archive_read_open_filename(a.get(), path.c_str(), 64 << 10) != ARCHIVE_OK)
        return fail("import {}: not an OCI layout directory, oci-archive or docker-archive: {}", path,
                    archive_error_string(a.get()));
    bool docker_manifest = false;
    uint64_t members = 0;
    for (;;) {
        archive_entry* e = nullptr;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            if (members == 0)
                return fail("import {}: not an OCI layout directory, oci-archive or docker-archive: {}", path,
                            archive_error_string(a.get()));
            return fail("import {}: read: {}", path, archive_error_string(a.get()));
        }
        ++members;
        const char* raw = archive_entry_pathname(e);
        std::string_view name = member_name(raw ? raw : "");
        // An OCI index wins over manifest.json: `docker save` of docker 25+ writes both, and the index names the
        // images fully.
        if (name == "oci-layout" || name == "index.json") return ImportFormat::oci_archive;
        if (name == "manifest.json") docker_manifest = true;
        archive_read_data_skip(a.get());
    }
    if (docker_manifest) return ImportFormat::docker_archive;
    if (members == 0) return fail("import {}: empty archive: not an oci-archive or docker-archive", path);
    return fail("import {}: a tar without oci-layout, index.json or manifest.json: not an oci-archive or "
                "docker-archive",
                path);
}

}  // namespace

std::string_view to_string(ImportFormat f) {
    switch (f) {
    case ImportFormat::oci_layout: return "oci-layout";
    case ImportFormat::oci_archive: return "oci-archive";
    case ImportFormat::docker_archive: return "docker-archive";
    }
    return "unknown";
}

Result<ImportFormat> detect_import_format(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return fail_sys("import {}", path);
    if (S_ISDIR(st.st_mode)) {
        if (!path_exists(path_join(path, "oci-layout")))
            return fail("import {}: a directory without an oci-layout file: not an OCI image layout", path);
        return ImportFormat::oci_layout;
    }
    if (!S_ISREG(st.st_mode)) return fail("import {}: neither a regular file nor a directory", path);
    return detect_tar(path);
}

Result<ImportResult> import_path(Images& images, const std::string& path, const image::Platform& platform) {
    BERTH_ASSIGN(auto format, detect_import_format(path));
    ImportResult out{format, {}};
    Result<std::vector<ImageRecord>> imported;
    switch (format) {
    case ImportFormat::oci_layout: imported = images.import_oci_layout(path, platform); break;
    case ImportFormat::oci_archive: imported = images.import_oci_archive(path, platform); break;
    case ImportFormat::docker_archive: imported = images.import_docker_archive(path); break;
    }
    if (!imported) return std::unexpected(imported.error().wrap(fmt::format("import {} ({})", path, to_string(format))));
    out.images = std::move(*imported);
    if (out.images.empty())
        return fail("import {} ({}): no image for platform {}/{} in it", path, to_string(format), platform.os,
                    platform.architecture);
    return out;
}

Result<ImageRecord> export_image(Images& images, std::string_view key, const std::string& tar_path) {
    BERTH_ASSIGN(auto rec, images.records().get(key));
    image::Descriptor manifest;
    manifest.media_type = rec.manifest_media_type;
    manifest.digest = rec.manifest_digest;
    BERTH_ASSIGN(manifest.size, images.content().size(rec.manifest_digest));
    const std::string ref_name = rec.names.empty() ? std::string() : rec.names.front();
    BERTH_TRY_CTX(image::export_oci_archive(images.content(), manifest, ref_name, tar_path), "export image {} ({})",
                  key, rec.id.string());
    return rec;
}

Result<ImageMount> mount_image(Images& images, std::string_view key, const std::string& target,
                               const std::string& upper_dir) {
    BERTH_ASSIGN(auto rec, images.records().get(key));
    if (rec.chain_ids.empty()) return fail("mount image {}: it has no layers", key);
    BERTH_ASSIGN(auto lowers, images.snapshots().lowerdirs(rec.chain_ids.back()));
    struct stat st {};
    if (::stat(target.c_str(), &st) < 0) return fail_sys("mount image {} on {}", key, target);
    if (!S_ISDIR(st.st_mode)) return fail("mount image {} on {}: not a directory", key, target);
    ImageMount out{rec, lowers, target, upper_dir};
    if (!upper_dir.empty()) {
        BERTH_TRY(mkdir_all(upper_dir, 0700));
        BERTH_TRY_CTX(image::mount_overlay(lowers, upper_dir, target), "mount image {}", key);
        return out;
    }
    if (lowers.size() == 1) {
        // Overlay wants two lowerdirs when it has no upper dir; one layer is its own read-only view.
        if (::mount(lowers[0].c_str(), target.c_str(), nullptr, MS_BIND, nullptr) < 0)
            return fail_sys("mount image {}: bind {} on {}", key, lowers[0], target);
        if (::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) < 0) {
            int err = errno;
            ::umount2(target.c_str(), MNT_DETACH);
            return fail_errno(err, "mount image {}: remount {} read-only", key, target);
        }
        return out;
    }
    std::string opts = "lowerdir=";
    for (size_t i = 0; i < lowers.size(); ++i) {
        if (i) opts += ':';
        opts += lowers[i];
    }
    // The options must fit one page; mount_overlay's short links avoid that limit but need a writable dir.
    if (opts.size() >= 4000)
        return fail("mount image {} read-only: {} layers name too long a lowerdir list; give an upper dir", key,
                    lowers.size());
    if (::mount("overlay", target.c_str(), "overlay", MS_RDONLY, opts.c_str()) < 0)
        return fail_sys("mount image {}: overlay of {} layers on {}", key, lowers.size(), target);
    return out;
}

Result<void> unmount_image(const std::string& target) {
    if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) < 0) {
        if (errno == EINVAL) return fail("unmount {}: not a mount point", target);
        if (errno == EBUSY) return fail_sys("unmount {}: still in use", target);
        return fail_sys("unmount {}", target);
    }
    return {};
}

}  // namespace berth::store
