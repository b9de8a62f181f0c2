#include "image/manifest.hpp"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

namespace berth::image {

namespace {

using Json = nlohmann::json;

// A JSON path built eagerly: these documents are small and parsed once per import.
struct Ctx {
    std::string_view what;
    std::string path;
    Ctx at(std::string_view member) const {
        return Ctx{what, path.empty() ? std::string(member) : path + "." + std::string(member)};
    }
    Ctx at(size_t i) const { return Ctx{what, fmt::format("{}[{}]", path, i)}; }
    template <typename... Args>
    std::unexpected<Error> error(fmt::format_string<Args...> f, Args&&... args) const {
        return fail("{}: {}: {}", what, path.empty() ? "(root)" : path, fmt::format(f, std::forward<Args>(args)...));
    }
};

Result<Json> parse(std::string_view text, std::string_view what) {
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded()) return fail("{}: not valid JSON", what);
    if (!j.is_object()) return fail("{}: not a JSON object", what);
    return j;
}

// An optional string member ("" when absent or null).
Result<std::string> opt_string(const Json& j, const Ctx& c, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::string();
    if (!it->is_string()) return c.at(key).error("must be a string");
    return it->get<std::string>();
}

Result<Digest> req_digest(const Json& j, const Ctx& c, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return c.at(key).error("must be a digest string");
    auto d = Digest::parse(it->get<std::string>());
    if (!d) return c.at(key).error("{}", d.error().message());
    return *d;
}

Result<void> check_schema_version(const Json& j, const Ctx& c) {
    auto it = j.find("schemaVersion");
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() != 2)
        return c.at("schemaVersion").error("must be 2 (schema1 images are not supported)");
    return {};
}

Result<Platform> parse_platform(const Json& j, const Ctx& c) {
    if (!j.is_object()) return c.error("must be an object");
    Platform p;
    BERTH_ASSIGN(p.os, opt_string(j, c, "os"));
    BERTH_ASSIGN(p.architecture, opt_string(j, c, "architecture"));
    BERTH_ASSIGN(p.variant, opt_string(j, c, "variant"));
    return p;
}

Result<Descriptor> parse_descriptor(const Json& j, const Ctx& c) {
    if (!j.is_object()) return c.error("must be an object");
    Descriptor d;
    BERTH_ASSIGN(d.media_type, opt_string(j, c, "mediaType"));
    if (d.media_type.empty()) return c.at("mediaType").error("missing");
    BERTH_ASSIGN(d.digest, req_digest(j, c, "digest"));
    auto size = j.find("size");
    if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0)
        return c.at("size").error("must be a non-negative integer");
    d.size = size->get<uint64_t>();
    if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
        BERTH_ASSIGN(d.platform, parse_platform(*p, c.at("platform")));
    }
    if (auto a = j.find("annotations"); a != j.end() && !a->is_null()) {
        if (!a->is_object()) return c.at("annotations").error("must be an object");
        for (const auto& [k, v] : a->items()) {
            if (!v.is_string()) return c.at("annotations").error("value of \"{}\" must be a string", k);
            d.annotations[k] = v.get<std::string>();
        }
    }
    return d;
}

Result<std::vector<Descriptor>> parse_descriptors(const Json& j, const Ctx& c, const char* key, bool required) {
    std::vector<Descriptor> out;
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        if (required) return c.at(key).error("missing");
        return out;
    }
    if (!it->is_array()) return c.at(key).error("must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
        BERTH_ASSIGN(Descriptor d, parse_descriptor((*it)[i], c.at(key).at(i)));
        out.push_back(std::move(d));
    }
    return out;
}

}  // namespace

bool is_index_media_type(std::string_view mt) {
    return mt == media_type::kOciIndex || mt == media_type::kDockerManifestList;
}
bool is_manifest_media_type(std::string_view mt) {
    return mt == media_type::kOciManifest || mt == media_type::kDockerManifest;
}
bool is_layer_media_type(std::string_view mt) {
    for (std::string_view base :
         {"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.nondistributable.v1.tar"}) {
        if (mt == base) return true;
        if (mt.starts_with(base) && (mt.substr(base.size()) == "+gzip" || mt.substr(base.size()) == "+zstd"))
            return true;
    }
    return mt == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
           mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

Platform host_platform() {
    struct utsname u {};
    ::uname(&u);
    std::string_view m = u.machine;
    Platform p{"linux", std::string(m), ""};
    if (m == "x86_64")
        p.architecture = "amd64";
    else if (m == "aarch64")
        p.architecture = "arm64", p.variant = "v8";
    else if (m == "i686" || m == "i386")
        p.architecture = "386";
    else if (m.starts_with("armv7"))
        p.architecture = "arm", p.variant = "v7";
    else if (m == "ppc64le")
        p.architecture = "ppc64le";
    else if (m == "s390x")
        p.architecture = "s390x";
    else if (m == "riscv64")
        p.architecture = "riscv64";
    return p;
}

// The variant is compared only when both sides name one (arm64 images often leave "v8" out).
bool platform_matches(const Platform& wanted, const Platform& have) {
    if (wanted.os != have.os || wanted.architecture != have.architecture) return false;
    return wanted.variant.empty() || have.variant.empty() || wanted.variant == have.variant;
}

Result<ImageIndex> parse_index(std::string_view json, std::string_view what) {
    BERTH_ASSIGN(Json j, parse(json, what));
    Ctx c{what, ""};
    BERTH_TRY(check_schema_version(j, c));
    ImageIndex idx;
    BERTH_ASSIGN(idx.media_type, opt_string(j, c, "mediaType"));
    if (!idx.media_type.empty() && !is_index_media_type(idx.media_type))
        return c.at("mediaType").error("\"{}\" is not an image index", idx.media_type);
    BERTH_ASSIGN(idx.manifests, parse_descriptors(j, c, "manifests", true));
    return idx;
}

Result<ImageManifest> parse_manifest(std::string_view json, std::string_view what) {
    BERTH_ASSIGN(Json j, parse(json, what));
    Ctx c{what, ""};
    BERTH_TRY(check_schema_version(j, c));
    ImageManifest m;
    BERTH_ASSIGN(m.media_type, opt_string(j, c, "mediaType"));
    if (!m.media_type.empty() && !is_manifest_media_type(m.media_type))
        return c.at("mediaType").error("\"{}\" is not an image manifest", m.media_type);
    auto config = j.find("config");
    if (config == j.end()) return c.at("config").error("missing");
    BERTH_ASSIGN(m.config, parse_descriptor(*config, c.at("config")));
    if (m.config.media_type != media_type::kOciConfig && m.config.media_type != media_type::kDockerConfig)
        return c.at("config").at("mediaType").error("\"{}\" is not an image config", m.config.media_type);
    BERTH_ASSIGN(m.layers, parse_descriptors(j, c, "layers", true));
    for (size_t i = 0; i < m.layers.size(); ++i)
        if (!is_layer_media_type(m.layers[i].media_type))
            return c.at("layers")
                .at(i)
                .at("mediaType")
                .error("\"{}\" is not a supported layer type", m.layers[i].media_type);
    return m;
}

Result<ImageConfig> parse_image_config(std::string_view json, std::string_view what) {
    BERTH_ASSIGN(Json j, parse(json, what));
    Ctx c{what, ""};
    ImageConfig cfg;
    BERTH_ASSIGN(cfg.platform.os, opt_string(j, c, "os"));
    BERTH_ASSIGN(cfg.platform.architecture, opt_string(j, c, "architecture"));
    BERTH_ASSIGN(cfg.platform.variant, opt_string(j, c, "variant"));
    auto rootfs = j.find("rootfs");
    if (rootfs == j.end() || !rootfs->is_object()) return c.at("rootfs").error("missing or not an object");
    Ctx rc = c.at("rootfs");
    auto type = rootfs->find("type");
    if (type == rootfs->end() || !type->is_string() || type->get<std::string>() != "layers")
        return rc.at("type").error("must be \"layers\"");
    auto ids = rootfs->find("diff_ids");
    if (ids == rootfs->end() || !ids->is_array()) return rc.at("diff_ids").error("must be an array");
    for (size_t i = 0; i < ids->size(); ++i) {
        const Json& v = (*ids)[i];
        if (!v.is_string()) return rc.at("diff_ids").at(i).error("must be a digest string");
        auto d = Digest::parse(v.get<std::string>());
        if (!d) return rc.at("diff_ids").at(i).error("{}", d.error().message());
        cfg.diff_ids.push_back(std::move(*d));
    }
    return cfg;
}

}  // namespace berth::image
