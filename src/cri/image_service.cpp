#include "cri/image_service.hpp"

#include "cri/grpc_status.hpp"

namespace berth::cri {

grpc::Status ImageService::ListImages(grpc::ServerContext*, const v1::ListImagesRequest*, v1::ListImagesResponse*) {
    return not_implemented("ListImages");
}

grpc::Status ImageService::StreamImages(grpc::ServerContext*, const v1::StreamImagesRequest*,
                                        grpc::ServerWriter<v1::StreamImagesResponse>*) {
    return not_implemented("StreamImages");
}

grpc::Status ImageService::ImageStatus(grpc::ServerContext*, const v1::ImageStatusRequest*, v1::ImageStatusResponse*) {
    return not_implemented("ImageStatus");
}

grpc::Status ImageService::PullImage(grpc::ServerContext*, const v1::PullImageRequest*, v1::PullImageResponse*) {
    return not_implemented("PullImage");
}

grpc::Status ImageService::RemoveImage(grpc::ServerContext*, const v1::RemoveImageRequest*, v1::RemoveImageResponse*) {
    return not_implemented("RemoveImage");
}

grpc::Status ImageService::ImageFsInfo(grpc::ServerContext*, const v1::ImageFsInfoRequest*, v1::ImageFsInfoResponse*) {
    return not_implemented("ImageFsInfo");
}

}  // namespace berth::cri
