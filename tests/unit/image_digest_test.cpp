#include <gtest/gtest.h>

#include <string>

#include "image/digest.hpp"
#include "image/reference.hpp"

namespace berth::image {
namespace {

const std::string kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Digest, ParsesValidSha256) {
    auto d = Digest::parse("sha256:" + kEmptySha);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_TRUE(d->valid());
    EXPECT_EQ(d->hex(), kEmptySha);
    EXPECT_EQ(d->algorithm(), "sha256");
    EXPECT_EQ(d->string(), "sha256:" + kEmptySha);
    EXPECT_FALSE(Digest().valid());
}

TEST(Digest, RefusesMalformedNamingTheDigest) {
    struct Case {
        std::string text;
        std::string why;
    };
    const std::string upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    const Case cases[] = {
        {kEmptySha, "missing \"<algorithm>:\" prefix"},
        {"sha256:", "needs 64 hex characters, got 0"},
        {"sha256:" + kEmptySha.substr(1), "got 63"},
        {"sha256:" + kEmptySha + "0", "got 65"},
        {"sha256:" + upper, "must be lowercase"},
        {"sha256:" + kEmptySha.substr(0, 63) + "g", "character 63 of the hex is not a hex digit"},
        {"sha512:" + kEmptySha + kEmptySha, "algorithm \"sha512\" is not supported"},
        {"SHA256:" + kEmptySha, "malformed algorithm"},
        {":" + kEmptySha, "malformed algorithm"},
        {"sha256+:" + kEmptySha, "malformed algorithm"},
        {"", "missing"},
    };
    for (const auto& c : cases) {
        auto d = Digest::parse(c.text);
        ASSERT_FALSE(d) << c.text;
        EXPECT_NE(d.error().message().find("\"" + c.text + "\""), std::string::npos) << d.error().message();
        EXPECT_NE(d.error().message().find(c.why), std::string::npos) << d.error().message();
    }
}

TEST(Sha256, KnownVectorsAndStreaming) {
    EXPECT_EQ(Sha256::of("").hex(), kEmptySha);
    EXPECT_EQ(Sha256::of("abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // Streamed in uneven pieces gives the same sum as one shot.
    std::string big;
    for (int i = 0; i < 100000; ++i) big += static_cast<char>(i * 7 + 3);
    Sha256 h;
    size_t pos = 0;
    size_t step = 1;
    while (pos < big.size()) {
        size_t n = std::min(step, big.size() - pos);
        h.update(std::string_view(big).substr(pos, n));
        pos += n;
        step = step * 3 + 1;
    }
    EXPECT_EQ(h.size(), big.size());
    EXPECT_EQ(h.finish(), Sha256::of(big));
    h.reset();
    EXPECT_EQ(h.size(), 0u);
    EXPECT_EQ(h.finish().hex(), kEmptySha);
}

TEST(ImageReference, NormalizesLikeTheEcosystem) {
    const std::string dg = "sha256:" + kEmptySha;
    struct Case {
        std::string in, domain, repository, tag, out;
    };
    const Case cases[] = {
        {"busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest"},
        {"busybox:1.36", "docker.io", "library/busybox", "1.36", "docker.io/library/busybox:1.36"},
        {"library/busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest"},
        {"docker.io/busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest"},
        {"index.docker.io/busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest"},
        {"user/app", "docker.io", "user/app", "latest", "docker.io/user/app:latest"},
        {"quay.io/org/app:v1.2-rc_3", "quay.io", "org/app", "v1.2-rc_3", "quay.io/org/app:v1.2-rc_3"},
        {"host:5000/x/y:tag", "host:5000", "x/y", "tag", "host:5000/x/y:tag"},
        {"host:5000/x/y", "host:5000", "x/y", "latest", "host:5000/x/y:latest"},
        {"localhost/app", "localhost", "app", "latest", "localhost/app:latest"},
        {"localhost:5000/app", "localhost:5000", "app", "latest", "localhost:5000/app:latest"},
        {"127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", "latest", "127.0.0.1:5000/a/b/c:latest"},
        {"[::1]:5000/app:1", "[::1]:5000", "app", "1", "[::1]:5000/app:1"},
        {"Registry/app", "Registry", "app", "latest", "Registry/app:latest"},
        {"my-registry.example.com/a__b/c.d/e-f--g", "my-registry.example.com", "a__b/c.d/e-f--g", "latest",
         "my-registry.example.com/a__b/c.d/e-f--g:latest"},
        {"busybox@" + dg, "docker.io", "library/busybox", "", "docker.io/library/busybox@" + dg},
        {"busybox:1@" + dg, "docker.io", "library/busybox", "1", "docker.io/library/busybox:1@" + dg},
        {"host:5000/x@" + dg, "host:5000", "x", "", "host:5000/x@" + dg},
    };
    for (const auto& c : cases) {
        auto r = ImageReference::parse(c.in);
        ASSERT_TRUE(r) << c.in << ": " << r.error().message();
        EXPECT_EQ(r->domain, c.domain) << c.in;
        EXPECT_EQ(r->repository, c.repository) << c.in;
        EXPECT_EQ(r->tag, c.tag) << c.in;
        EXPECT_EQ(r->string(), c.out) << c.in;
        EXPECT_EQ(r->digest.valid(), c.in.find('@') != std::string::npos) << c.in;
        // Normalizing is idempotent.
        auto again = ImageReference::parse(r->string());
        ASSERT_TRUE(again) << r->string();
        EXPECT_EQ(*again, *r) << c.in;
    }
}

TEST(ImageReference, RefusesInvalidNamingTheReference) {
    struct Case {
        std::string in, why;
    };
    const Case cases[] = {
        {"", "empty"},
        {"BusyBox", "must be lowercase"},
        {"docker.io/Library/busybox", "must be lowercase"},
        {"busybox:", "invalid tag \"\""},
        {"busybox:-bad", "invalid tag"},
        {"busybox:" + std::string(129, 'a'), "invalid tag"},
        {"busybox:a b", "invalid tag"},
        {"busybox@sha256:abc", "got 3"},
        {"busybox@md5:abc", "algorithm \"md5\" is not supported"},
        {"busybox@SHA256:abc", "malformed algorithm"},
        {"busybox@", "missing \"<algorithm>:\""},
        {"-busybox", "invalid repository path component \"-busybox\""},
        {"a//b", "invalid repository path component \"\""},
        {"a/b/", "invalid repository path component \"\""},
        {"a..b", "invalid repository path component"},
        {"a___b", "invalid repository path component"},
        {"host:5000/", "missing repository name"},
        {":tag", "missing repository name"},
        {"-host.io/app", "invalid registry host \"-host.io\""},
        {"host:port/app", "invalid registry host \"host:port\""},
        {"[zz]:5000/app", "invalid registry host"},
        {kEmptySha, "image ID"},
        {"a/" + std::string(260, 'b'), "longer than 255"},
    };
    for (const auto& c : cases) {
        auto r = ImageReference::parse(c.in);
        ASSERT_FALSE(r) << c.in << " parsed as " << r->string();
        EXPECT_NE(r.error().message().find("invalid image reference \"" + c.in + "\""), std::string::npos)
            << r.error().message();
        EXPECT_NE(r.error().message().find(c.why), std::string::npos) << c.in << ": " << r.error().message();
    }
}

}  // namespace
}  // namespace berth::image
