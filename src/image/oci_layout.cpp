#include "image/oci_layout.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <functional>
#include <memory>

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

}  // namespace berth::image
