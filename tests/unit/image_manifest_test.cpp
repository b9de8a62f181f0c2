#include <gtest/gtest.h>

#include "image/manifest.hpp"

namespace berth::image {
namespace {

const std::string kD = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Manifest, ParsesOciManifest) {
    const std::string json = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
      "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                             kD + R"(","size":7},
      "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":")" +
                             kD + R"(","size":9,
                 "annotations":{"a":"b"}}]})";
    auto m = parse_manifest(json, "manifest x");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->config.size, 7u);
    ASSERT_EQ(m->layers.size(), 1u);
    EXPECT_EQ(m->layers[0].digest.string(), kD);
    EXPECT_EQ(m->layers[0].annotations.at("a"), "b");
}

TEST(Manifest, ErrorsNameDocumentAndPath) {
    struct Case {
        std::string json, want;
    };
    const std::string cfg =
        R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kD + R"(","size":7})";
    const Case cases[] = {
        {"not json", "m: not valid JSON"},
        {R"({"schemaVersion":1})", "m: schemaVersion: must be 2 (schema1 images are not supported)"},
        {R"({"schemaVersion":2,"mediaType":"text/plain"})", "m: mediaType: \"text/plain\" is not an image manifest"},
        {R"({"schemaVersion":2,"layers":[]})", "m: config: missing"},
        {R"({"schemaVersion":2,)" + cfg + R"(,"layers":[{"mediaType":"x/y","digest":")" + kD + R"(","size":1}]})",
         "m: layers[0].mediaType: \"x/y\" is not a supported layer type"},
        {R"({"schemaVersion":2,)" + cfg +
             R"(,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:AB","size":1}]})",
         "m: layers[0].digest: invalid digest \"sha256:AB\""},
        {R"({"schemaVersion":2,)" + cfg +
             R"(,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" + kD +
             R"(","size":-1}]})",
         "m: layers[0].size: must be a non-negative integer"},
    };
    for (const auto& c : cases) {
        auto m = parse_manifest(c.json, "m");
        ASSERT_FALSE(m) << c.json;
        EXPECT_NE(m.error().message().find(c.want), std::string::npos) << m.error().message();
    }
}

TEST(ImageConfig, DiffIdsAndPlatform) {
    auto c = parse_image_config(R"({"os":"linux","architecture":"arm64","variant":"v8",
        "rootfs":{"type":"layers","diff_ids":[")" +
                                    kD + R"("]}})",
                                "config c");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->platform.architecture, "arm64");
    ASSERT_EQ(c->diff_ids.size(), 1u);
    auto bad = parse_image_config(R"({"rootfs":{"type":"layers","diff_ids":["sha256:x"]}})", "config c");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("config c: rootfs.diff_ids[0]: invalid digest"), std::string::npos)
        << bad.error().message();
}

TEST(Index, PlatformsAndNestedTypes) {
    auto idx = parse_index(R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "digest":")" + kD + R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})",
                           "index.json");
    ASSERT_TRUE(idx) << idx.error().message();
    ASSERT_TRUE(idx->manifests[0].platform);
    EXPECT_TRUE(platform_matches(Platform{"linux", "amd64", ""}, *idx->manifests[0].platform));
    EXPECT_FALSE(platform_matches(Platform{"linux", "arm64", ""}, *idx->manifests[0].platform));
    EXPECT_TRUE(platform_matches(Platform{"linux", "arm", "v7"}, Platform{"linux", "arm", ""}));
    EXPECT_FALSE(platform_matches(Platform{"linux", "arm", "v7"}, Platform{"linux", "arm", "v6"}));
    EXPECT_TRUE(is_layer_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"));
    EXPECT_FALSE(is_layer_media_type("application/vnd.oci.image.layer.v1.tar+bzip2"));
    EXPECT_EQ(host_platform().os, "linux");
}

}  // namespace
}  // namespace berth::image
