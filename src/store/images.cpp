#include "store/images.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/fs.hpp"
#include "image/oci_layout.hpp"
#include "image/reference.hpp"

namespace berth::store {

using image::Descriptor;
using image::Digest;
using image::ImportedImage;
using Json = nlohmann::json;

namespace {

constexpr uint64_t kMaxDocumentSize = 4 << 20;

Result<std::vector<std::string>> dir_entries(const std::string& dir) {
    DIR* dp = ::opendir(dir.c_str());
    if (!dp) {
        if (errno == ENOENT) return std::vector<std::string>{};
        return fail_sys("read directory {}", dir);
    }
    std::vector<std::string> out;
    while (auto* e = ::readdir(dp)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(std::move(n));
    }
    ::closedir(dp);
    return out;
}

Result<size_t> read_some(int fd, std::span<std::byte> buf) {
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) return fail_sys("read");
    }
}

// The name an OCI layout gives an image: containerd's io.containerd.image.name (always a full reference) when
// present, else the ref.name annotation if it is more than a bare tag (skopeo writes "latest" there, which would
// otherwise become docker.io/library/latest:latest).
std::vector<std::string> layout_names(const ImportedImage& img) {
    if (auto it = img.manifest.annotations.find("io.containerd.image.name");
        it != img.manifest.annotations.end() && image::ImageReference::parse(it->second))
        return {it->second};
    const std::string& ref = img.ref_name;
    if (ref.find_first_of("/:@") != std::string::npos && image::ImageReference::parse(ref)) return {ref};
    return {};
}

}  // namespace

Result<Images> Images::open(const std::string& root) {
    BERTH_ASSIGN(auto content, image::ContentStore::open(root));
    BERTH_ASSIGN(auto snapshots, image::SnapshotStore::open(root));
    BERTH_ASSIGN(auto records, ImageStore::open(root));
    return Images(root, std::move(content), std::move(snapshots), std::move(records));
}

Result<UniqueFd> Images::gc_lock(bool exclusive) const {
    const std::string path = root_ + "/gc.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail_sys("open {}", path);
    UniqueFd lock(fd);
    while (::flock(lock.get(), exclusive ? LOCK_EX : LOCK_SH) < 0)
        if (errno != EINTR) return fail_sys("lock {}", path);
    return lock;
}

Result<ImageRecord> Images::record(const ImportedImage& img, std::vector<std::string> names) {
    ImageRecord rec;
    rec.id = img.parsed.config.digest;
    rec.manifest_digest = img.manifest.digest;
    rec.manifest_media_type = img.parsed.media_type.empty() ? img.manifest.media_type : img.parsed.media_type;
    BERTH_ASSIGN(rec.config_json, content_.read(rec.id));
    rec.size = img.parsed.config.size;
    std::set<Digest> blobs{img.manifest.digest, img.parsed.config.digest};
    for (const auto& l : img.parsed.layers) {
        rec.size += l.size;
        blobs.insert(l.digest);
    }
    rec.blobs.assign(blobs.begin(), blobs.end());
    rec.chain_ids = image::chain_ids(img.config.diff_ids);
    rec.names = std::move(names);
    return records_.put(rec);
}

Result<std::vector<ImageRecord>> Images::import_oci_layout(const std::string& dir, const image::Platform& platform) {
    BERTH_ASSIGN(UniqueFd lock, gc_lock(false));
    BERTH_ASSIGN(auto imported, image::import_oci_layout(dir, content_, snapshots_, platform));
    std::vector<ImageRecord> out;
    for (const auto& img : imported) {
        BERTH_ASSIGN(auto rec, record(img, layout_names(img)));
        out.push_back(std::move(rec));
    }
    return out;
}

Result<std::vector<ImageRecord>> Images::import_oci_archive(const std::string& tar_path,
                                                            const image::Platform& platform) {
    BERTH_ASSIGN(UniqueFd lock, gc_lock(false));
    BERTH_ASSIGN(auto imported, image::import_oci_archive(tar_path, content_, snapshots_, platform));
    std::vector<ImageRecord> out;
    for (const auto& img : imported) {
        BERTH_ASSIGN(auto rec, record(img, layout_names(img)));
        out.push_back(std::move(rec));
    }
    return out;
}

Result<ImageRecord> Images::hold(std::string_view holder, std::string_view key) {
    // Shared lock: a collector cannot run between the lookup and the hold.
    BERTH_ASSIGN(UniqueFd lock, gc_lock(false));
    BERTH_ASSIGN(ImageRecord rec, records_.get(key));
    BERTH_TRY(records_.hold(holder, rec));
    return rec;
}

Result<void> Images::release(std::string_view holder) {
    return records_.release(holder);
}

Result<GcStats> Images::remove(std::string_view key) {
    BERTH_ASSIGN(UniqueFd lock, gc_lock(true));
    BERTH_ASSIGN(ImageRecord rec, records_.get(key));
    BERTH_TRY(records_.remove_image(rec.id));
    // Only what this image used can have become unreferenced.
    BERTH_ASSIGN(auto used_blobs, records_.referenced_blobs());
    BERTH_ASSIGN(auto used_snaps, records_.referenced_snapshots());
    GcStats stats;
    for (auto it = rec.chain_ids.rbegin(); it != rec.chain_ids.rend(); ++it) {
        if (used_snaps.contains(*it) || !snapshots_.exists(*it)) continue;
        BERTH_TRY_CTX(snapshots_.remove(*it), "remove image {}", rec.id.string());
        stats.snapshots_removed.push_back(*it);
    }
    for (const auto& b : rec.blobs) {
        if (used_blobs.contains(b) || !content_.exists(b)) continue;
        BERTH_TRY_CTX(content_.remove(b), "remove image {}", rec.id.string());
        stats.blobs_removed.push_back(b);
    }
    return stats;
}

Result<GcStats> Images::prune() {
    BERTH_ASSIGN(UniqueFd lock, gc_lock(true));
    GcStats stats;
    BERTH_TRY_CTX(collect(stats), "prune {}", root_);
    return stats;
}

Result<void> Images::collect(GcStats& stats) {
    BERTH_ASSIGN(auto used_blobs, records_.referenced_blobs());
    BERTH_ASSIGN(auto used_snaps, records_.referenced_snapshots());
    BERTH_ASSIGN(auto snaps, snapshots_.list());
    for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
        if (used_snaps.contains(*it)) continue;
        BERTH_TRY(snapshots_.remove(*it));
        stats.snapshots_removed.push_back(*it);
    }
    BERTH_ASSIGN(auto blobs, content_.list());
    for (const auto& b : blobs) {
        if (used_blobs.contains(b)) continue;
        BERTH_TRY(content_.remove(b));
        stats.blobs_removed.push_back(b);
    }
    BERTH_TRY(snapshots_.remove_abandoned_temps());
    // Under the exclusive lock no import is running (they hold it shared), so everything in ingest/ and tmp/
    // is a leftover: ingest lock files, named temp files, and half-extracted archives of a crashed import.
    for (const char* sub : {"/ingest", "/tmp"}) {
        BERTH_ASSIGN(auto names, dir_entries(root_ + sub));
        for (const auto& n : names) {
            BERTH_TRY(remove_all(root_ + sub + "/" + n));
            ++stats.temps_removed;
        }
    }
    return {};
}

namespace {

struct ArchiveFree {
    void operator()(struct archive* a) const { archive_read_free(a); }
};

const char* archive_message(struct archive* a) {
    const char* m = archive_error_string(a);
    return m ? m : "unknown libarchive error";
}

// Member names as manifest.json spells them: no leading "./" or "/".
std::string member_name(std::string_view n) {
    while (n.starts_with("./") || n.starts_with("/")) n.remove_prefix(n.starts_with("/") ? 1 : 2);
    return std::string(n);
}

// A temp directory removed when the guard goes.
struct TempDirGuard {
    std::string path;
    ~TempDirGuard() {
        if (!path.empty()) (void)remove_all(path);
    }
};

// The members of a docker-archive extracted to a temp dir: name -> file, symlinks kept as name -> target name.
struct Extracted {
    std::map<std::string, std::string> files;
    std::map<std::string, std::string> links;
    std::optional<std::string> manifest;

    // The temp file of member `name` (following links inside the archive).
    Result<std::string> file(const std::string& name) const {
        std::string n = name;
        for (int hops = 0; hops < 16; ++hops) {
            if (auto it = files.find(n); it != files.end()) return it->second;
            auto l = links.find(n);
            if (l == links.end()) break;
            n = l->second;
        }
        return fail_errno(ENOENT, "{}: not in the archive", name);
    }
};

Result<Extracted> extract_archive(const std::string& tar_path, const std::string& tmp) {
    std::unique_ptr<struct archive, ArchiveFree> a(archive_read_new());
    if (!a) return fail_errno(ENOMEM, "archive_read_new");
    archive_read_support_format_tar(a.get());
    archive_read_support_filter_gzip(a.get());
    if (archive_read_open_filename(a.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK)
        return std::unexpected(Error(archive_errno(a.get()), archive_message(a.get())));
    Extracted ex;
    std::array<std::byte, 1 << 16> buf{};
    for (size_t index = 0;; ++index) {
        struct archive_entry* e = nullptr;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) return fail("read: {}", archive_message(a.get()));
        const std::string name = member_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
        if (archive_entry_filetype(e) == AE_IFLNK && archive_entry_symlink(e)) {
            // Relative to the link's directory (docker save links duplicate layers as "../<id>/layer.tar").
            std::string dir = name.contains('/') ? name.substr(0, name.rfind('/')) : "";
            std::string target = archive_entry_symlink(e);
            ex.links[name] = member_name(clean_path("/" + path_join(dir, target)));
            continue;
        }
        if (const char* hl = archive_entry_hardlink(e)) {
            ex.links[name] = member_name(hl);
            continue;
        }
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        if (name == "manifest.json") {
            if (archive_entry_size(e) > static_cast<la_int64_t>(kMaxDocumentSize))
                return fail("manifest.json: larger than {} bytes", kMaxDocumentSize);
            std::string text;
            for (;;) {
                la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
                if (n < 0) return fail("manifest.json: read: {}", archive_message(a.get()));
                if (n == 0) break;
                text.append(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n));
            }
            ex.manifest = std::move(text);
            continue;
        }
        const std::string path = fmt::format("{}/{}", tmp, index);
        BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        for (;;) {
            la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
            if (n < 0) return fail("{}: read: {}", name, archive_message(a.get()));
            if (n == 0) break;
            BERTH_TRY_CTX(write_all(fd.get(), std::string_view(reinterpret_cast<const char*>(buf.data()),
                                                               static_cast<size_t>(n))),
                          "{}", name);
        }
        ex.files[name] = path;
    }
    return ex;
}

// The digest and size of a file.
Result<std::pair<Digest, uint64_t>> hash_file(const std::string& path) {
    BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_RDONLY | O_CLOEXEC));
    image::Sha256 h;
    std::array<std::byte, 1 << 16> buf{};
    for (;;) {
        BERTH_ASSIGN(size_t n, read_some(fd.get(), buf));
        if (n == 0) break;
        h.update(std::span<const std::byte>(buf.data(), n));
    }
    uint64_t size = h.size();
    return std::pair{h.finish(), size};
}

Result<void> store_file(const image::ContentStore& content, const std::string& path, const Digest& d, uint64_t size) {
    BERTH_ASSIGN(auto writer, content.begin_write(d, size));
    if (!writer) return {};
    BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_RDONLY | O_CLOEXEC));
    std::array<std::byte, 1 << 16> buf{};
    for (;;) {
        BERTH_ASSIGN(size_t n, read_some(fd.get(), buf));
        if (n == 0) break;
        BERTH_TRY(writer->write(std::span<const std::byte>(buf.data(), n)));
    }
    return writer->commit();
}

Result<bool> is_gzip(const std::string& path) {
    BERTH_ASSIGN(UniqueFd fd, open_fd(path, O_RDONLY | O_CLOEXEC));
    unsigned char magic[2] = {};
    ssize_t n = ::read(fd.get(), magic, 2);
    if (n < 0) return fail_sys("read {}", path);
    return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

}  // namespace

Result<std::vector<ImageRecord>> Images::import_docker_archive(const std::string& tar_path) {
    auto ctx = [&](Error e) {
        return std::unexpected(std::move(e).wrap(fmt::format("import docker-archive {}", tar_path)));
    };
    auto lock = gc_lock(false);
    if (!lock) return ctx(std::move(lock).error());
    if (auto r = mkdir_all(root_ + "/tmp", 0700); !r) return ctx(std::move(r).error());
    TempDirGuard tmp{root_ + "/tmp/docker-archive.XXXXXX"};
    if (!::mkdtemp(tmp.path.data())) {
        tmp.path.clear();
        return ctx(fail_sys("mkdtemp in {}/tmp", root_).error());
    }
    auto ex = extract_archive(tar_path, tmp.path);
    if (!ex) return ctx(std::move(ex).error());
    if (!ex->manifest) return ctx(Error(ENOENT, "no manifest.json member: not a docker-archive"));

    auto body = [&]() -> Result<std::vector<ImageRecord>> {
        Json doc = Json::parse(*ex->manifest, nullptr, false);
        if (doc.is_discarded() || !doc.is_array()) return fail("manifest.json: not a JSON array");
        if (doc.empty()) return fail("manifest.json: no images");
        // Parse all entries first: a malformed one refuses the archive before anything is stored.
        struct Entry {
            std::string config;
            std::vector<std::string> tags, layers;
        };
        std::vector<Entry> entries;
        for (size_t i = 0; i < doc.size(); ++i) {
            const Json& j = doc[i];
            const std::string where = fmt::format("manifest.json[{}]", i);
            if (!j.is_object()) return fail("{}: not an object", where);
            Entry en;
            if (!j.contains("Config") || !j["Config"].is_string())
                return fail("{}.Config: missing or not a string", where);
            en.config = member_name(j["Config"].get<std::string>());
            if (j.contains("RepoTags") && !j["RepoTags"].is_null()) {
                if (!j["RepoTags"].is_array()) return fail("{}.RepoTags: not an array", where);
                for (size_t t = 0; t < j["RepoTags"].size(); ++t) {
                    const Json& tag = j["RepoTags"][t];
                    if (!tag.is_string()) return fail("{}.RepoTags[{}]: not a string", where, t);
                    BERTH_TRY_CTX(image::ImageReference::parse(tag.get<std::string>()), "{}.RepoTags[{}]", where, t);
                    en.tags.push_back(tag.get<std::string>());
                }
            }
            if (!j.contains("Layers") || !j["Layers"].is_array())
                return fail("{}.Layers: missing or not an array", where);
            for (size_t l = 0; l < j["Layers"].size(); ++l) {
                if (!j["Layers"][l].is_string()) return fail("{}.Layers[{}]: not a string", where, l);
                en.layers.push_back(member_name(j["Layers"][l].get<std::string>()));
            }
            entries.push_back(std::move(en));
        }

        std::vector<ImageRecord> out;
        for (const auto& en : entries) {
            BERTH_ASSIGN(std::string config_file, ex->file(en.config));
            struct stat st {};
            if (::stat(config_file.c_str(), &st) < 0) return fail_sys("stat {}", en.config);
            if (static_cast<uint64_t>(st.st_size) > kMaxDocumentSize)
                return fail("{}: larger than {} bytes", en.config, kMaxDocumentSize);
            BERTH_ASSIGN(std::string config_text, read_file(config_file));
            BERTH_ASSIGN(image::ImageConfig config, image::parse_image_config(config_text, en.config));
            if (config.diff_ids.size() != en.layers.size())
                return fail("{}: {} rootfs.diff_ids, but manifest.json lists {} layers", en.config,
                            config.diff_ids.size(), en.layers.size());
            BERTH_ASSIGN(Digest config_digest, content_.put(config_text));

            Json manifest = {{"schemaVersion", 2},
                             {"mediaType", image::media_type::kOciManifest},
                             {"config",
                              {{"mediaType", image::media_type::kOciConfig},
                               {"digest", config_digest.string()},
                               {"size", config_text.size()}}},
                             {"layers", Json::array()}};
            Digest chain;
            for (size_t i = 0; i < en.layers.size(); ++i) {
                const std::string& name = en.layers[i];
                auto layer = [&]() -> Result<void> {
                    BERTH_ASSIGN(std::string file, ex->file(name));
                    BERTH_ASSIGN(auto hashed, hash_file(file));
                    BERTH_ASSIGN(bool gz, is_gzip(file));
                    BERTH_TRY(store_file(content_, file, hashed.first, hashed.second));
                    manifest["layers"].push_back({{"mediaType", gz ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                                                   : "application/vnd.oci.image.layer.v1.tar"},
                                                  {"digest", hashed.first.string()},
                                                  {"size", hashed.second}});
                    const Digest next = image::chain_id(chain, config.diff_ids[i]);
                    if (!snapshots_.exists(next)) {
                        BERTH_ASSIGN(UniqueFd fd, content_.open_blob(hashed.first));
                        const int raw = fd.get();
                        image::LayerSource source = [raw](std::span<std::byte> buf) { return read_some(raw, buf); };
                        BERTH_TRY(snapshots_.create(chain, config.diff_ids[i], source));
                    }
                    chain = next;
                    return {};
                };
                BERTH_TRY_CTX(layer(), "layer {} ({} of {})", name, i + 1, en.layers.size());
            }
            const std::string manifest_text = manifest.dump();
            BERTH_ASSIGN(Digest manifest_digest, content_.put(manifest_text));
            ImportedImage img;
            img.manifest = Descriptor{
                std::string(image::media_type::kOciManifest), manifest_digest, manifest_text.size(), std::nullopt, {}};
            BERTH_ASSIGN(img.parsed, image::parse_manifest(manifest_text, "generated manifest"));
            img.config = std::move(config);
            img.chain_id = chain;
            BERTH_ASSIGN(auto rec, record(img, en.tags));
            out.push_back(std::move(rec));
        }
        return out;
    };
    auto r = body();
    if (!r) return ctx(std::move(r).error());
    return r;
}

}  // namespace berth::store
