#include "cri/image_service.hpp"

#include <time.h>

#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "common/log.hpp"
#include "cri/grpc_status.hpp"
#include "cri/stats.hpp"
#include "image/reference.hpp"
#include "cri/pull_helper.hpp"

namespace berth::cri {
namespace {

// Idle store connections kept for reuse; more are opened while more calls run at once, then closed.
constexpr size_t kMaxIdleStores = 4;

grpc::Status error_status(grpc::StatusCode code, std::string_view rpc, const Error& e) {
    return grpc::Status(code, fmt::format("berthd: {}: {}", rpc, e.message()));
}

grpc::Status internal(std::string_view rpc, const Error& e) {
    return error_status(grpc::StatusCode::INTERNAL, rpc, e);
}

int64_t now_ns() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The image `key` names, or nullopt (not an error) when no image matches. Beyond what ImageStore::get finds, a
// "name@digest" reference finds the image with that manifest digest (or id): a digest names content exactly,
// whichever names the image was recorded under (pulled by tag, asked for by digest, as kubelet does).
Result<std::optional<store::ImageRecord>> find_image(store::Images& images, std::string_view key) {
    Result<store::ImageRecord> rec = images.records().get(key);
    if (rec) return std::optional(std::move(*rec));
    if (rec.error().code() != ENOENT) return std::unexpected(std::move(rec).error());
    if (auto ref = image::ImageReference::parse(key); ref && ref->digest.valid()) {
        Result<store::ImageRecord> by_digest = images.records().get(ref->digest.string());
        if (by_digest && (by_digest->manifest_digest == ref->digest || by_digest->id == ref->digest))
            return std::optional(std::move(*by_digest));
        if (!by_digest && by_digest.error().code() != ENOENT) return std::unexpected(std::move(by_digest).error());
    }
    return std::optional<store::ImageRecord>();
}

// The config's "User" (config.User in the image config JSON), or empty.
std::string image_user(const std::string& config_json) {
    auto j = nlohmann::json::parse(config_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return "";
    auto cfg = j.find("config");
    if (cfg == j.end() || !cfg->is_object()) return "";
    auto user = cfg->find("User");
    if (user == cfg->end() || !user->is_string()) return "";
    return user->get<std::string>();
}

}  // namespace

void fill_image(const store::ImageRecord& rec, v1::Image* out) {
    out->set_id(rec.id.string());
    std::set<std::string> repositories;
    for (const auto& name : rec.names) {
        auto ref = image::ImageReference::parse(name);
        if (!ref) continue;  // the store only holds normalized names; skip rather than fail a whole listing
        if (!ref->tag.empty()) out->add_repo_tags(ref->domain + "/" + ref->repository + ":" + ref->tag);
        repositories.insert(ref->name());
    }
    if (rec.manifest_digest.valid())
        for (const auto& repo : repositories) out->add_repo_digests(repo + "@" + rec.manifest_digest.string());
    out->set_size(rec.size);
    // User is "user[:group]"; a numeric user is a uid, anything else a name resolved in the container later.
    std::string user = image_user(rec.config_json);
    std::string_view u = user;
    u = u.substr(0, u.find(':'));
    if (!u.empty()) {
        int64_t uid = 0;
        auto [end, ec] = std::from_chars(u.data(), u.data() + u.size(), uid);
        if (ec == std::errc() && end == u.data() + u.size())
            out->mutable_uid()->set_value(uid);
        else
            out->set_username(std::string(u));
    }
    out->mutable_spec()->set_image(rec.id.string());
    out->set_pinned(false);
}

Result<std::unique_ptr<ImageService>> ImageService::create(const DaemonConfig& config) {
    std::unique_ptr<ImageService> svc(new ImageService(config));
    BERTH_ASSIGN(store::Images images, store::Images::open(config.root_dir));
    svc->idle_.push_back(std::make_unique<store::Images>(std::move(images)));
    return svc;
}

Result<std::unique_ptr<ImageService::Lease>> ImageService::borrow() {
    {
        std::lock_guard lock(mu_);
        if (!idle_.empty()) {
            auto images = std::move(idle_.back());
            idle_.pop_back();
            return std::make_unique<Lease>(*this, std::move(images));
        }
    }
    BERTH_ASSIGN(store::Images images, store::Images::open(root_));
    return std::make_unique<Lease>(*this, std::make_unique<store::Images>(std::move(images)));
}

void ImageService::give_back(std::unique_ptr<store::Images> images) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleStores) idle_.push_back(std::move(images));
}

Result<std::vector<store::ImageRecord>> ImageService::list(const v1::ImageFilter& filter) {
    BERTH_ASSIGN(auto lease, borrow());
    if (filter.has_image() && !filter.image().image().empty()) {
        BERTH_ASSIGN(auto rec, find_image(**lease, filter.image().image()));
        std::vector<store::ImageRecord> out;
        if (rec) out.push_back(std::move(*rec));
        return out;
    }
    return (*lease)->records().list();
}

grpc::Status ImageService::ListImages(grpc::ServerContext*, const v1::ListImagesRequest* req,
                                      v1::ListImagesResponse* resp) {
    auto records = list(req->filter());
    if (!records) return internal("ListImages", records.error());
    for (const auto& rec : *records) fill_image(rec, resp->add_images());
    return grpc::Status::OK;
}

grpc::Status ImageService::StreamImages(grpc::ServerContext*, const v1::StreamImagesRequest* req,
                                        grpc::ServerWriter<v1::StreamImagesResponse>* writer) {
    auto records = list(req->filter());
    if (!records) return internal("StreamImages", records.error());
    // Batches keep each message well below gRPC's default 4 MiB limit however many images there are.
    constexpr size_t kBatch = 256;
    for (size_t i = 0; i < records->size(); i += kBatch) {
        v1::StreamImagesResponse batch;
        for (size_t j = i; j < std::min(records->size(), i + kBatch); ++j)
            fill_image((*records)[j], batch.add_images());
        if (!writer->Write(batch))
            return grpc::Status(grpc::StatusCode::CANCELLED, "berthd: StreamImages: client gone");
    }
    return grpc::Status::OK;
}

grpc::Status ImageService::ImageStatus(grpc::ServerContext*, const v1::ImageStatusRequest* req,
                                       v1::ImageStatusResponse* resp) {
    if (req->image().image().empty())
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "berthd: ImageStatus: image.image is empty");
    auto lease = borrow();
    if (!lease) return internal("ImageStatus", lease.error());
    auto rec = find_image(***lease, req->image().image());
    if (!rec) return internal("ImageStatus", rec.error());
    if (!*rec) return grpc::Status::OK;  // CRI: an image that is not present is an empty response
    fill_image(**rec, resp->mutable_image());
    if (req->verbose()) {
        nlohmann::json info = {
            {"id", (*rec)->id.string()},
            {"manifestDigest", (*rec)->manifest_digest.string()},
            {"manifestMediaType", (*rec)->manifest_media_type},
            {"names", (*rec)->names},
            {"size", (*rec)->size},
            {"created", (*rec)->created},
        };
        nlohmann::json chain = nlohmann::json::array();
        for (const auto& c : (*rec)->chain_ids) chain.push_back(c.string());
        info["chainIDs"] = std::move(chain);
        auto config = nlohmann::json::parse((*rec)->config_json, nullptr, false);
        info["imageSpec"] = config.is_discarded() ? nlohmann::json((*rec)->config_json) : std::move(config);
        (*resp->mutable_info())["info"] = info.dump();
    }
    return grpc::Status::OK;
}

grpc::Status ImageService::PullImage(grpc::ServerContext* ctx, const v1::PullImageRequest* req,
                                     v1::PullImageResponse* resp) {
    const std::string& reference = req->image().image();
    if (reference.empty())
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "berthd: PullImage: image.image is empty");
    if (auto ref = image::ImageReference::parse(reference); !ref)
        return error_status(grpc::StatusCode::INVALID_ARGUMENT, "PullImage: image.image", ref.error());

    store::PullRequest request;
    request.reference = reference;
    request.platform = image::host_platform();
    request.registries = registries_;
    // kubelet's pull secret for this image, in whichever form it came; server_address only says which registry
    // it was meant for, which the reference already decides.
    const v1::AuthConfig& auth = req->auth();
    request.credentials.username = auth.username();
    request.credentials.password = auth.password();
    request.credentials.auth = auth.auth();
    request.credentials.identity_token = auth.identity_token();
    request.credentials.registry_token = auth.registry_token();

    // The pull runs in the berth-pull helper (see store/pull_request.hpp); a caller that gives up (kubelet's
    // timeout, a cancelled crictl) stops it.
    const auto started = std::chrono::steady_clock::now();
    uint64_t fetched = 0;
    Result<std::string> id =
        run_pull_helper(pull_helper_, root_, request, [ctx] { return ctx->IsCancelled(); }, &fetched);
    if (metrics_) {
        metrics_->image_pulls.inc();
        metrics_->image_pull_bytes.inc({}, static_cast<double>(fetched));
        if (id)
            metrics_->image_pull_seconds.observe(
                {}, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        else
            metrics_->image_pull_failures.inc();
    }
    if (!id) {
        log::warn("pull {}: {}", reference, id.error().message());
        if (id.error().code() == ECANCELED) return error_status(grpc::StatusCode::CANCELLED, "PullImage", id.error());
        return error_status(grpc::StatusCode::UNKNOWN, "PullImage", id.error());
    }
    log::info("pulled {} as {}", reference, *id);
    // The image id, as containerd answers (CRI-O answers a repo digest): the value Image.id and ContainerStatus's
    // image_id carry, which kubelet hands back as CreateContainer's image.
    resp->set_image_ref(*id);
    return grpc::Status::OK;
}

grpc::Status ImageService::RemoveImage(grpc::ServerContext*, const v1::RemoveImageRequest* req,
                                       v1::RemoveImageResponse*) {
    if (req->image().image().empty())
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "berthd: RemoveImage: image.image is empty");
    auto lease = borrow();
    if (!lease) return internal("RemoveImage", lease.error());
    auto rec = find_image(***lease, req->image().image());
    if (!rec) return internal("RemoveImage", rec.error());
    if (!*rec) return grpc::Status::OK;  // CRI: removing an image that is not there succeeds
    auto removed = (**lease)->remove((*rec)->id.string());
    // A concurrent RemoveImage of the same image may have won: that is success too.
    if (!removed && removed.error().code() != ENOENT) return internal("RemoveImage", removed.error());
    if (removed)
        log::info("removed image {} ({} blobs, {} snapshots freed)", (*rec)->id.string(), removed->blobs_removed.size(),
                  removed->snapshots_removed.size());
    return grpc::Status::OK;
}

grpc::Status ImageService::ImageFsInfo(grpc::ServerContext*, const v1::ImageFsInfoRequest*,
                                       v1::ImageFsInfoResponse* resp) {
    auto usage = disk_usage(root_);
    if (!usage) return internal("ImageFsInfo", usage.error());
    v1::FilesystemUsage fs;
    fs.set_timestamp(now_ns());
    fs.mutable_fs_id()->set_mountpoint(root_);
    fs.mutable_used_bytes()->set_value(usage->bytes);
    fs.mutable_inodes_used()->set_value(usage->inodes);
    *resp->add_image_filesystems() = fs;
    // Writable layers live under the same root: one file system serves images and containers (no split image
    // filesystem), which kubelet sees by the identical mountpoint.
    *resp->add_container_filesystems() = fs;
    return grpc::Status::OK;
}

}  // namespace berth::cri
