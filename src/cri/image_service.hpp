// ImageService: the CRI runtime.v1 ImageService of berthd, over the image store at the daemon's root directory
// (store::Images: blobs, snapshots, metadata.db). It only translates between the wire messages and the store.
//
// CRI semantics kept here: an image is named by an ImageSpec's `image`, which may be a reference ("busybox",
// "host:5000/x:1"), an id ("sha256:<config digest>"), a manifest digest or a unique id prefix (store::ImageStore::get
// decides). ImageStatus of an unknown image is an empty response, not an error; RemoveImage of an unknown image
// succeeds. PullImage answers the image id as image_ref, as containerd does (and as Image.id says).
//
// Thread-safety: gRPC calls every method from its worker threads concurrently. A store::Images holds one SQLite
// connection, which must stay on one thread at a time, so each call borrows one from a small pool (opening a new
// one when all are in use) and gives it back afterwards.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "common/error.hpp"
#include "cri/api.hpp"
#include "cri/config.hpp"
#include "cri/cri_metrics.hpp"
#include "cri/pull_helper.hpp"
#include "store/images.hpp"

namespace berth::cri {

class ImageService final : public v1::ImageService::Service {
public:
    // Opens the store at config.root_dir once (creating it when missing), so a root berthd cannot use fails the
    // start instead of every call.
    [[nodiscard]] static Result<std::unique_ptr<ImageService>> create(const DaemonConfig& config);

    // Pull counters go to `metrics` from now on (it must outlive the service); none until then.
    void set_metrics(CriMetrics* metrics) { metrics_ = metrics; }

    grpc::Status ListImages(grpc::ServerContext* ctx, const v1::ListImagesRequest* req,
                            v1::ListImagesResponse* resp) override;
    grpc::Status StreamImages(grpc::ServerContext* ctx, const v1::StreamImagesRequest* req,
                              grpc::ServerWriter<v1::StreamImagesResponse>* writer) override;
    grpc::Status ImageStatus(grpc::ServerContext* ctx, const v1::ImageStatusRequest* req,
                             v1::ImageStatusResponse* resp) override;
    grpc::Status PullImage(grpc::ServerContext* ctx, const v1::PullImageRequest* req,
                           v1::PullImageResponse* resp) override;
    grpc::Status RemoveImage(grpc::ServerContext* ctx, const v1::RemoveImageRequest* req,
                             v1::RemoveImageResponse* resp) override;
    grpc::Status ImageFsInfo(grpc::ServerContext* ctx, const v1::ImageFsInfoRequest* req,
                             v1::ImageFsInfoResponse* resp) override;

private:
    explicit ImageService(const DaemonConfig& config)
        : root_(config.root_dir), registries_(config.registries), pull_helper_(default_pull_helper_path()) {}

    // A store borrowed from the pool; goes back on destruction.
    class Lease {
    public:
        Lease(ImageService& owner, std::unique_ptr<store::Images> images) : owner_(owner), images_(std::move(images)) {}
        ~Lease() { owner_.give_back(std::move(images_)); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        store::Images& operator*() { return *images_; }
        store::Images* operator->() { return images_.get(); }

    private:
        ImageService& owner_;
        std::unique_ptr<store::Images> images_;
    };
    [[nodiscard]] Result<std::unique_ptr<Lease>> borrow();
    void give_back(std::unique_ptr<store::Images> images);
    // Every image matching `filter` (all when it names none).
    [[nodiscard]] Result<std::vector<store::ImageRecord>> list(const v1::ImageFilter& filter);

    const std::string root_;
    const image::RegistryConfig registries_;
    const std::string pull_helper_;  // berth-pull, beside berthd
    std::mutex mu_;
    std::vector<std::unique_ptr<store::Images>> idle_;  // guarded by mu_
    CriMetrics* metrics_ = nullptr;                    // set before serving
};

// The CRI Image of a record: id, repo_tags (names with a tag), repo_digests ("repository@<manifest digest>" of
// each repository it is named in), size, uid or username from the config's User, spec.image = the id.
void fill_image(const store::ImageRecord& rec, v1::Image* out);

}  // namespace berth::cri
