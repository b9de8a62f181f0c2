// The registry client's pure parts: WWW-Authenticate parsing, manifest media-type handling, URL building, the
// CRI `auth` form, and client configuration errors.
#include <gtest/gtest.h>

#include "image/registry.hpp"

namespace berth::image {
namespace {

TEST(WwwAuthenticate, BearerWithQuotedParams) {
    auto chs = parse_www_authenticate(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
    ASSERT_EQ(chs.size(), 1u);
    EXPECT_EQ(chs[0].scheme, "bearer");
    EXPECT_EQ(chs[0].params["realm"], "https://auth.docker.io/token");
    EXPECT_EQ(chs[0].params["service"], "registry.docker.io");
    EXPECT_EQ(chs[0].params["scope"], "repository:library/busybox:pull");
}

TEST(WwwAuthenticate, SchemeAndNamesAreCaseInsensitiveValuesAreNot) {
    auto chs = parse_www_authenticate(R"(BASIC Realm="Berth Test")");
    ASSERT_EQ(chs.size(), 1u);
    EXPECT_EQ(chs[0].scheme, "basic");
    EXPECT_EQ(chs[0].params["realm"], "Berth Test");
}

TEST(WwwAuthenticate, SeveralChallengesTokensAndEscapes) {
    auto chs = parse_www_authenticate(
        R"(Basic realm="a, \"quoted\" realm", Bearer realm=https://r.example/t , service=svc,error="invalid_token")");
    ASSERT_EQ(chs.size(), 2u);
    EXPECT_EQ(chs[0].scheme, "basic");
    EXPECT_EQ(chs[0].params["realm"], R"(a, "quoted" realm)");
    EXPECT_EQ(chs[1].scheme, "bearer");
    EXPECT_EQ(chs[1].params["realm"], "https://r.example/t");
    EXPECT_EQ(chs[1].params["service"], "svc");
    EXPECT_EQ(chs[1].params["error"], "invalid_token");
}

TEST(WwwAuthenticate, SchemeWithoutParamsAndGarbage) {
    auto chs = parse_www_authenticate("Negotiate, Basic");
    ASSERT_EQ(chs.size(), 2u);
    EXPECT_EQ(chs[0].scheme, "negotiate");
    EXPECT_TRUE(chs[0].params.empty());
    EXPECT_EQ(chs[1].scheme, "basic");
    EXPECT_TRUE(parse_www_authenticate("").empty());
    EXPECT_TRUE(parse_www_authenticate(" , ,").empty());
    // An unterminated quote ends the value at the end of the header rather than failing.
    auto open = parse_www_authenticate(R"(Bearer realm="https://x)");
    ASSERT_EQ(open.size(), 1u);
    EXPECT_EQ(open[0].params["realm"], "https://x");
}

TEST(ManifestMediaTypes, AcceptListsTheFourSupportedTypes) {
    const std::string a = manifest_accept();
    for (auto t : {media_type::kOciIndex, media_type::kOciManifest, media_type::kDockerManifestList,
                   media_type::kDockerManifest})
        EXPECT_NE(a.find(t), std::string::npos) << t;
    EXPECT_EQ(a.find("distribution.manifest.v1+"), std::string::npos);  // schema1 is not asked for
}

TEST(ManifestMediaTypes, ClassifiedByContentType) {
    EXPECT_EQ(classify_manifest(media_type::kOciIndex, ""), ManifestKind::index);
    EXPECT_EQ(classify_manifest(media_type::kDockerManifestList, ""), ManifestKind::index);
    EXPECT_EQ(classify_manifest(media_type::kOciManifest, ""), ManifestKind::manifest);
    EXPECT_EQ(classify_manifest("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", ""),
              ManifestKind::manifest);
    EXPECT_EQ(classify_manifest("Application/VND.OCI.image.index.v1+json", ""), ManifestKind::index);
    EXPECT_EQ(classify_manifest("application/vnd.docker.distribution.manifest.v1+prettyjws", "{}"),
              ManifestKind::schema1);
    EXPECT_EQ(classify_manifest("application/vnd.docker.distribution.manifest.v1+json", "{}"),
              ManifestKind::schema1);
}

TEST(ManifestMediaTypes, GenericContentTypeFallsBackToTheBody) {
    EXPECT_EQ(classify_manifest("application/json", R"({"schemaVersion":2,"mediaType":")" +
                                                        std::string(media_type::kOciManifest) + R"("})"),
              ManifestKind::manifest);
    EXPECT_EQ(classify_manifest("", R"({"schemaVersion":2,"manifests":[]})"), ManifestKind::index);
    EXPECT_EQ(classify_manifest("text/plain", R"({"schemaVersion":2,"config":{},"layers":[]})"),
              ManifestKind::manifest);
    EXPECT_EQ(classify_manifest("application/json", R"({"schemaVersion":1,"fsLayers":[]})"), ManifestKind::schema1);
    EXPECT_EQ(classify_manifest("application/json", "not json"), ManifestKind::unknown);
    EXPECT_EQ(classify_manifest("application/vnd.example+json", R"({"schemaVersion":2})"), ManifestKind::unknown);
}

TEST(RegistryUrls, Building) {
    EXPECT_EQ(registry_api_host("docker.io"), "registry-1.docker.io");
    EXPECT_EQ(registry_api_host("quay.io"), "quay.io");
    EXPECT_EQ(registry_api_host("[::1]:5000"), "[::1]:5000");
    EXPECT_EQ(manifest_url("https://h:5000", "a/b", "latest"), "https://h:5000/v2/a/b/manifests/latest");
    auto d = Digest::parse("sha256:" + std::string(64, 'e'));
    ASSERT_TRUE(d);
    EXPECT_EQ(blob_url("http://127.0.0.1:1", "library/busybox", *d),
              "http://127.0.0.1:1/v2/library/busybox/blobs/sha256:" + std::string(64, 'e'));
}

TEST(RegistryUrls, Authority) {
    EXPECT_EQ(url_authority("https://Registry.Example:5000/v2/x"), "registry.example:5000");
    EXPECT_EQ(url_authority("http://user:pw@host/path?q"), "host");
    EXPECT_EQ(url_authority("http://[::1]:5000"), "[::1]:5000");
    EXPECT_EQ(url_authority("no-scheme/path"), "");
}

TEST(Credentials, AuthFormIsDecoded) {
    Credentials c;
    c.auth = "dXNlcjpwYTpzcw==";  // "user:pa:ss": the password may hold ':'
    auto d = decode_auth(c);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->username, "user");
    EXPECT_EQ(d->password, "pa:ss");
    // An explicit username wins over auth.
    c.username = "other";
    d = decode_auth(c);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->username, "other");
}

TEST(Credentials, BadAuthFormIsAnError) {
    Credentials c;
    c.auth = "!!notbase64";
    auto d = decode_auth(c);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("credentials: auth"), std::string::npos) << d.error().message();
    c.auth = "bm9jb2xvbg==";  // "nocolon"
    d = decode_auth(c);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("username:password"), std::string::npos) << d.error().message();
}

TEST(RegistryClientConfig, MissingCaFileAndBadMirrorAreErrors) {
    RegistryConfig cfg;
    RegistryHost h;
    h.host = "r.example";
    h.ca_file = "/nonexistent/berth-ca.pem";
    cfg.hosts.push_back(h);
    auto c = RegistryClient::create(cfg, "r.example", {});
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("/nonexistent/berth-ca.pem"), std::string::npos) << c.error().message();

    cfg.hosts[0].ca_file.clear();
    cfg.hosts[0].mirrors = {"ftp://m.example"};
    c = RegistryClient::create(cfg, "r.example", {});
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("ftp://m.example"), std::string::npos) << c.error().message();
}

}  // namespace
}  // namespace berth::image
