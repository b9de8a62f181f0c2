#include "image/oci_layout.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "linux/safe_path.hpp"

namespace berth::image {

namespace {

// libarchive's last error text; it can be null (some failures set no message) and fmt must not get a null.
const char* archive_message(struct archive* a) {
    const char* m = archive_error_string(a);
    return m ? m : "unknown libarchive error";
}

// index.json, manifests and configs are small; a larger one is hostile or broken.
constexpr uint64_t kMaxDocumentSize = 4 << 20;

// Makes sure a blob is in the content store (from wherever the layout keeps it).
using BlobFetcher = std::function<Result<void>(const Descriptor&)>;

Result<void> stream_fd_into(const ContentStore& content, const Descriptor& d, int fd, const std::string& what) {
    BERTH_ASSIGN(auto writer, content.begin_write(d.digest, d.size));
    if (!writer) return {};
    std::array<std::byte, 1 << 16> buf{};
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("read {}", what);
        }
        if (n == 0) break;
        BERTH_TRY(writer->write(std::span(buf.data(), static_cast<size_t>(n))));
    }
    return writer->commit();
}

Result<std::string> read_document(const ContentStore& content, const BlobFetcher& fetch, const Descriptor& d) {
    if (d.size > kMaxDocumentSize)
        return fail("{} ({}) is {} bytes, more than {}", d.digest.string(), d.media_type, d.size, kMaxDocumentSize);
    BERTH_TRY(fetch(d));
    BERTH_ASSIGN(std::string text, content.read(d.digest));
    if (text.size() != d.size)
        return fail("{}: {} bytes, its descriptor says {}", d.digest.string(), text.size(), d.size);
    return text;
}

Result<ImportedImage> import_manifest(const Descriptor& desc, std::string ref_name, const ContentStore& content,
                                      SnapshotStore& snapshots, const BlobFetcher& fetch, const Platform& platform) {
    ImportedImage img;
    img.ref_name = std::move(ref_name);
    img.manifest = desc;
    const std::string mwhat = "manifest " + desc.digest.string();
    BERTH_ASSIGN(std::string mtext, read_document(content, fetch, desc));
    BERTH_ASSIGN(img.parsed, parse_manifest(mtext, mwhat));
    const std::string cwhat = "config " + img.parsed.config.digest.string();
    BERTH_ASSIGN(std::string ctext, read_document(content, fetch, img.parsed.config));
    BERTH_ASSIGN(img.config, parse_image_config(ctext, cwhat));
    if (!img.config.platform.os.empty() && !platform_matches(platform, img.config.platform))
        return fail("{}: image is for {}/{}, not {}/{}", cwhat, img.config.platform.os,
                    img.config.platform.architecture, platform.os, platform.architecture);
    if (img.config.diff_ids.size() != img.parsed.layers.size())
        return fail("{}: {} layers, but {} has {} rootfs.diff_ids", mwhat, img.parsed.layers.size(), cwhat,
                    img.config.diff_ids.size());

    Digest chain;
    for (size_t i = 0; i < img.parsed.layers.size(); ++i) {
        const Descriptor& layer = img.parsed.layers[i];
        auto ctx = [&](Error e) {
            return std::unexpected(std::move(e).wrap(
                fmt::format("layer {} ({} of {})", layer.digest.string(), i + 1, img.parsed.layers.size())));
        };
        if (auto r = fetch(layer); !r) return ctx(std::move(r).error());
        const Digest next = chain_id(chain, img.config.diff_ids[i]);
        if (!snapshots.exists(next)) {
            auto fd = content.open_blob(layer.digest);
            if (!fd) return ctx(std::move(fd).error());
            const int raw = fd->get();
            LayerSource source = [raw](std::span<std::byte> buf) -> Result<size_t> {
                for (;;) {
                    ssize_t n = ::read(raw, buf.data(), buf.size());
                    if (n >= 0) return static_cast<size_t>(n);
                    if (errno != EINTR) return fail_sys("read layer blob");
                }
            };
            auto created = snapshots.create(chain, img.config.diff_ids[i], source);
            if (!created) return ctx(std::move(created).error());
        }
        chain = next;
    }
    img.chain_id = chain;
    return img;
}

Result<std::vector<ImportedImage>> import_index(std::string_view index_json, const ContentStore& content,
                                                SnapshotStore& snapshots, const BlobFetcher& fetch,
                                                const Platform& platform) {
    BERTH_ASSIGN(ImageIndex index, parse_index(index_json, "index.json"));
    std::vector<ImportedImage> out;
    std::vector<std::string> skipped;
    auto platform_name = [](const Platform& p) {
        return p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
    };
    for (size_t i = 0; i < index.manifests.size(); ++i) {
        const Descriptor& d = index.manifests[i];
        std::string ref;
        if (auto it = d.annotations.find(std::string(kRefNameAnnotation)); it != d.annotations.end()) ref = it->second;
        auto ctx = [&](Error e) {
            return std::unexpected(
                std::move(e).wrap(fmt::format("index.json manifests[{}] ({})", i, d.digest.string())));
        };
        if (is_manifest_media_type(d.media_type)) {
            if (d.platform && !platform_matches(platform, *d.platform)) {
                skipped.push_back(platform_name(*d.platform));
                continue;
            }
            auto img = import_manifest(d, ref, content, snapshots, fetch, platform);
            if (!img) return ctx(std::move(img).error());
            out.push_back(std::move(*img));
        } else if (is_index_media_type(d.media_type)) {
            auto text = read_document(content, fetch, d);
            if (!text) return ctx(std::move(text).error());
            auto nested = parse_index(*text, "index " + d.digest.string());
            if (!nested) return ctx(std::move(nested).error());
            const Descriptor* chosen = nullptr;
            for (const auto& m : nested->manifests) {
                if (!is_manifest_media_type(m.media_type)) continue;
                if (m.platform && platform_matches(platform, *m.platform)) {
                    chosen = &m;
                    break;
                }
                if (m.platform) skipped.push_back(platform_name(*m.platform));
            }
            if (!chosen) continue;
            auto img = import_manifest(*chosen, ref, content, snapshots, fetch, platform);
            if (!img) return ctx(std::move(img).error());
            out.push_back(std::move(*img));
        } else {
            return ctx(Error(0, fmt::format("unsupported media type \"{}\"", d.media_type)));
        }
    }
    if (out.empty()) {
        std::string found;
        for (const auto& s : skipped) found += (found.empty() ? "" : ", ") + s;
        return fail("index.json: no image for {} (found: {})", platform_name(platform),
                    found.empty() ? "no images" : found);
    }
    return out;
}

Result<void> check_layout_marker(std::string_view text) {
    // {"imageLayoutVersion": "1.0.0"}; any 1.x is accepted by the spec's versioning rules.
    auto pos = text.find("\"imageLayoutVersion\"");
    if (pos == std::string_view::npos) return fail("oci-layout: no imageLayoutVersion");
    auto q1 = text.find('"', text.find(':', pos));
    auto q2 = q1 == std::string_view::npos ? q1 : text.find('"', q1 + 1);
    if (q2 == std::string_view::npos) return fail("oci-layout: malformed imageLayoutVersion");
    std::string_view v = text.substr(q1 + 1, q2 - q1 - 1);
    if (!v.starts_with("1.")) return fail("oci-layout: imageLayoutVersion \"{}\" is not supported (only 1.x)", v);
    return {};
}

struct ArchiveFree {
    void operator()(struct archive* a) const { archive_read_free(a); }
};

}  // namespace

Result<std::vector<ImportedImage>> import_oci_layout(const std::string& dir, const ContentStore& content,
                                                     SnapshotStore& snapshots, const Platform& platform) {
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("import OCI layout {}", dir))); };
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ctx(Error(errno, fmt::format("open: {}", std::system_category().message(errno))));
    UniqueFd root(dfd);
    // The layout is outside input: its files are opened inside it, never through symlinks leading out.
    auto read_small = [&](const std::string& name) -> Result<std::string> {
        BERTH_ASSIGN(UniqueFd fd, sys::open_in_root(root.get(), name, O_RDONLY | O_NOFOLLOW));
        BERTH_ASSIGN(std::string text, read_fd(fd.get()));
        if (text.size() > kMaxDocumentSize) return fail("{} is larger than {} bytes", name, kMaxDocumentSize);
        return text;
    };
    auto marker = read_small("oci-layout");
    if (!marker) return ctx(std::move(marker).error());
    if (auto r = check_layout_marker(*marker); !r) return ctx(std::move(r).error());
    auto index = read_small("index.json");
    if (!index) return ctx(std::move(index).error());
    BlobFetcher fetch = [&](const Descriptor& d) -> Result<void> {
        if (content.exists(d.digest)) {
            BERTH_ASSIGN(uint64_t size, content.size(d.digest));
            if (size != d.size)
                return fail("blob {} is {} bytes, its descriptor says {}", d.digest.string(), size, d.size);
            return {};
        }
        const std::string name = "blobs/sha256/" + d.digest.hex();
        BERTH_ASSIGN(UniqueFd fd, sys::open_in_root(root.get(), name, O_RDONLY | O_NOFOLLOW));
        return stream_fd_into(content, d, fd.get(), name);
    };
    auto imported = import_index(*index, content, snapshots, fetch, platform);
    if (!imported) return ctx(std::move(imported).error());
    return imported;
}

Result<std::vector<ImportedImage>> import_oci_archive(const std::string& tar_path, const ContentStore& content,
                                                      SnapshotStore& snapshots, const Platform& platform) {
    auto ctx = [&](Error e) {
        return std::unexpected(std::move(e).wrap(fmt::format("import oci-archive {}", tar_path)));
    };
    std::unique_ptr<struct archive, ArchiveFree> a(archive_read_new());
    if (!a) return ctx(Error(ENOMEM, "archive_read_new failed"));
    archive_read_support_format_tar(a.get());
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    if (archive_read_open_filename(a.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK)
        return ctx(Error(archive_errno(a.get()), archive_message(a.get())));

    std::optional<std::string> marker, index;
    std::array<std::byte, 1 << 16> buf{};
    for (;;) {
        struct archive_entry* e = nullptr;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) return ctx(Error(0, fmt::format("read: {}", archive_message(a.get()))));
        std::string_view name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        while (name.starts_with("./")) name.remove_prefix(2);
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) continue;
        auto member_error = [&](Error err) { return ctx(std::move(err).wrap(fmt::format("member {}", name))); };
        auto read_member = [&]() -> Result<std::string> {
            if (archive_entry_size(e) > static_cast<la_int64_t>(kMaxDocumentSize))
                return fail("larger than {} bytes", kMaxDocumentSize);
            std::string text;
            for (;;) {
                la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
                if (n < 0) return fail("read: {}", archive_message(a.get()));
                if (n == 0) return text;
                text.append(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n));
            }
        };
        if (name == "oci-layout" || name == "index.json") {
            auto text = read_member();
            if (!text) return member_error(std::move(text).error());
            (name == "index.json" ? index : marker) = std::move(*text);
            continue;
        }
        if (!name.starts_with("blobs/sha256/")) continue;
        auto digest = Digest::parse("sha256:" + std::string(name.substr(13)));
        if (!digest) return member_error(std::move(digest).error());
        auto writer = content.begin_write(*digest, static_cast<uint64_t>(archive_entry_size(e)));
        if (!writer) return member_error(std::move(writer).error());
        if (!*writer) continue;  // present already
        for (;;) {
            la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
            if (n < 0) return member_error(Error(0, fmt::format("read: {}", archive_message(a.get()))));
            if (n == 0) break;
            if (auto w = (*writer)->write(std::span(buf.data(), static_cast<size_t>(n))); !w)
                return member_error(std::move(w).error());
        }
        if (auto c = (*writer)->commit(); !c) return member_error(std::move(c).error());
    }
    if (!marker) return ctx(Error(ENOENT, "no oci-layout member: not an OCI image layout"));
    if (auto r = check_layout_marker(*marker); !r) return ctx(std::move(r).error());
    if (!index) return ctx(Error(ENOENT, "no index.json member"));
    BlobFetcher fetch = [&](const Descriptor& d) -> Result<void> {
        auto size = content.size(d.digest);
        if (!size) return fail_errno(ENOENT, "blob {} is not in the archive", d.digest.string());
        if (*size != d.size)
            return fail("blob {} is {} bytes, its descriptor says {}", d.digest.string(), *size, d.size);
        return {};
    };
    auto imported = import_index(*index, content, snapshots, fetch, platform);
    if (!imported) return ctx(std::move(imported).error());
    return imported;
}

namespace {

// What an export writes: the documents of the layout and every blob the image needs, manifest first.
struct ExportPlan {
    std::string index_json;
    std::vector<Descriptor> blobs;
};

Result<ExportPlan> plan_export(const ContentStore& content, const Descriptor& manifest, const std::string& ref_name) {
    if (!is_manifest_media_type(manifest.media_type))
        return fail("export {}: \"{}\" is not an image manifest", manifest.digest.string(), manifest.media_type);
    BlobFetcher present = [&](const Descriptor& d) -> Result<void> {
        BERTH_ASSIGN(uint64_t size, content.size(d.digest));
        if (size != d.size) return fail("blob {} is {} bytes, its descriptor says {}", d.digest.string(), size, d.size);
        return {};
    };
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap("export " + manifest.digest.string())); };
    auto text = read_document(content, present, manifest);
    if (!text) return ctx(std::move(text).error());
    auto parsed = parse_manifest(*text, "manifest " + manifest.digest.string());
    if (!parsed) return ctx(std::move(parsed).error());
    ExportPlan plan;
    plan.blobs.push_back(manifest);
    plan.blobs.push_back(parsed->config);
    for (const auto& l : parsed->layers) plan.blobs.push_back(l);
    for (const auto& b : plan.blobs)
        if (auto r = present(b); !r) return ctx(std::move(r).error());

    nlohmann::json desc = {
        {"mediaType", manifest.media_type}, {"digest", manifest.digest.string()}, {"size", manifest.size}};
    if (manifest.platform) {
        desc["platform"] = {{"os", manifest.platform->os}, {"architecture", manifest.platform->architecture}};
        if (!manifest.platform->variant.empty()) desc["platform"]["variant"] = manifest.platform->variant;
    }
    if (!ref_name.empty()) desc["annotations"] = {{std::string(kRefNameAnnotation), ref_name}};
    nlohmann::json index = {{"schemaVersion", 2},
                            {"mediaType", std::string(media_type::kOciIndex)},
                            {"manifests", nlohmann::json::array({desc})}};
    plan.index_json = index.dump();
    return plan;
}

constexpr std::string_view kLayoutMarker = R"({"imageLayoutVersion":"1.0.0"})";

// Streams a stored blob to `sink`, re-hashing it: corruption on disk is not exported.
Result<void> copy_blob(const ContentStore& content, const Descriptor& d,
                       const std::function<Result<void>(std::span<const std::byte>)>& sink) {
    BERTH_ASSIGN(UniqueFd fd, content.open_blob(d.digest));
    Sha256 h;
    std::array<std::byte, 1 << 16> buf{};
    for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_sys("read blob {}", d.digest.string());
        }
        if (n == 0) break;
        auto chunk = std::span<const std::byte>(buf.data(), static_cast<size_t>(n));
        h.update(chunk);
        BERTH_TRY(sink(chunk));
    }
    if (h.size() != d.size || h.finish() != d.digest)
        return fail("blob {}: stored content no longer matches its digest", d.digest.string());
    return {};
}

struct ArchiveWriteFree {
    void operator()(struct archive* a) const { archive_write_free(a); }
};

}  // namespace

Result<void> export_oci_layout(const ContentStore& content, const Descriptor& manifest, const std::string& ref_name,
                               const std::string& dir) {
    BERTH_ASSIGN(ExportPlan plan, plan_export(content, manifest, ref_name));
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap("export OCI layout " + dir)); };
    const std::string blobs = dir + "/blobs/sha256";
    if (auto r = mkdir_all(blobs, 0755); !r) return ctx(std::move(r).error());
    for (const auto& b : plan.blobs) {
        const std::string final_path = blobs + "/" + b.digest.hex();
        const std::string tmp = final_path + ".tmp";
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) return ctx(Error(errno, fmt::format("create {}: {}", tmp, std::system_category().message(errno))));
        UniqueFd out(fd);
        auto copied = copy_blob(content, b, [&](std::span<const std::byte> chunk) -> Result<void> {
            return write_all(out.get(), std::string_view(reinterpret_cast<const char*>(chunk.data()), chunk.size()));
        });
        if (copied && ::fsync(out.get()) < 0) copied = fail_sys("fsync {}", tmp);
        if (copied && ::rename(tmp.c_str(), final_path.c_str()) < 0) copied = fail_sys("rename {}", tmp);
        if (!copied) {
            ::unlink(tmp.c_str());
            return ctx(std::move(copied).error());
        }
    }
    if (auto r = write_file_atomic(dir + "/oci-layout", kLayoutMarker); !r) return ctx(std::move(r).error());
    if (auto r = write_file_atomic(dir + "/index.json", plan.index_json); !r) return ctx(std::move(r).error());
    return {};
}

Result<void> export_oci_archive(const ContentStore& content, const Descriptor& manifest, const std::string& ref_name,
                                const std::string& tar_path) {
    BERTH_ASSIGN(ExportPlan plan, plan_export(content, manifest, ref_name));
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap("export oci-archive " + tar_path)); };
    std::string tmp = tar_path + ".tmp-XXXXXX";
    int fd = ::mkstemp(tmp.data());
    if (fd < 0)
        return ctx(
            Error(errno, fmt::format("create a temp file beside it: {}", std::system_category().message(errno))));
    UniqueFd out(fd);
    struct TempGuard {
        std::string path;
        ~TempGuard() {
            if (!path.empty()) ::unlink(path.c_str());
        }
    } guard{tmp};

    std::unique_ptr<struct archive, ArchiveWriteFree> a(archive_write_new());
    if (!a) return ctx(Error(ENOMEM, "archive_write_new failed"));
    archive_write_set_format_pax_restricted(a.get());
    archive_write_set_bytes_in_last_block(a.get(), 1);
    if (archive_write_open_fd(a.get(), out.get()) != ARCHIVE_OK)
        return ctx(Error(0, fmt::format("open: {}", archive_message(a.get()))));
    auto header = [&](const std::string& name, mode_t type, uint64_t size) -> Result<void> {
        std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> e(archive_entry_new(),
                                                                                 archive_entry_free);
        archive_entry_set_pathname(e.get(), name.c_str());
        archive_entry_set_filetype(e.get(), type);
        archive_entry_set_perm(e.get(), type == AE_IFDIR ? 0755 : 0644);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
        archive_entry_set_mtime(e.get(), 0, 0);
        if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK)
            return fail("write {}: {}", name, archive_message(a.get()));
        return {};
    };
    auto data = [&](const std::string& name, std::span<const std::byte> chunk) -> Result<void> {
        if (archive_write_data(a.get(), chunk.data(), chunk.size()) != static_cast<la_ssize_t>(chunk.size()))
            return fail("write {}: {}", name, archive_message(a.get()));
        return {};
    };
    auto small = [&](const std::string& name, std::string_view text) -> Result<void> {
        BERTH_TRY(header(name, AE_IFREG, text.size()));
        return data(name, std::as_bytes(std::span(text.data(), text.size())));
    };
    auto write_all_members = [&]() -> Result<void> {
        BERTH_TRY(small("oci-layout", kLayoutMarker));
        BERTH_TRY(small("index.json", plan.index_json));
        BERTH_TRY(header("blobs/", AE_IFDIR, 0));
        BERTH_TRY(header("blobs/sha256/", AE_IFDIR, 0));
        std::vector<Digest> written;
        for (const auto& b : plan.blobs) {
            if (std::find(written.begin(), written.end(), b.digest) != written.end()) continue;  // a repeated layer
            written.push_back(b.digest);
            const std::string name = "blobs/sha256/" + b.digest.hex();
            BERTH_TRY(header(name, AE_IFREG, b.size));
            BERTH_TRY(copy_blob(content, b, [&](std::span<const std::byte> chunk) { return data(name, chunk); }));
        }
        if (archive_write_close(a.get()) != ARCHIVE_OK) return fail("finish: {}", archive_message(a.get()));
        return {};
    };
    if (auto r = write_all_members(); !r) return ctx(std::move(r).error());
    if (::fsync(out.get()) < 0) return ctx(Error(errno, "fsync failed"));
    if (::rename(tmp.c_str(), tar_path.c_str()) < 0)
        return ctx(Error(errno, fmt::format("rename {}: {}", tmp, std::system_category().message(errno))));
    guard.path.clear();
    return {};
}

}  // namespace berth::image
