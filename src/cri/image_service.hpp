// ImageService: the CRI runtime.v1 ImageService of berthd. Images come with the image store (src/image); until
// then every rpc answers UNIMPLEMENTED.
#pragma once

#include "cri/api.hpp"

namespace berth::cri {

class ImageService final : public v1::ImageService::Service {
public:
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
};

}  // namespace berth::cri
