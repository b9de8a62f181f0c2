// The pull helper's request and event encoding (store/pull_request.hpp).
#include <gtest/gtest.h>

#include "store/pull_request.hpp"

namespace berth::store {
namespace {

TEST(PullRequest, RoundTripsEveryField) {
    PullRequest r;
    r.reference = "127.0.0.1:5000/x/y:1";
    r.platform = {.os = "linux", .architecture = "arm64", .variant = "v8"};
    r.credentials.username = "u";
    r.credentials.password = "p";
    r.credentials.identity_token = "id";
    image::RegistryHost h;
    h.host = "127.0.0.1:5000";
    h.mirrors = {"http://127.0.0.1:5001"};
    h.insecure = true;
    h.ca_file = "/ca.pem";
    h.cert_file = "/c.pem";
    h.key_file = "/k.pem";
    h.credentials.auth = "dTpw";
    h.credentials.registry_token = "tok";
    r.registries.hosts.push_back(h);
    r.max_parallel_layers = 7;

    auto back = pull_request_from_json(nlohmann::json::parse(to_json(r).dump()));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->reference, r.reference);
    EXPECT_EQ(back->platform.architecture, "arm64");
    EXPECT_EQ(back->platform.variant, "v8");
    EXPECT_EQ(back->credentials.username, "u");
    EXPECT_EQ(back->credentials.password, "p");
    EXPECT_EQ(back->credentials.identity_token, "id");
    ASSERT_EQ(back->registries.hosts.size(), 1u);
    const auto& bh = back->registries.hosts[0];
    EXPECT_EQ(bh.host, h.host);
    EXPECT_EQ(bh.mirrors, h.mirrors);
    EXPECT_TRUE(bh.insecure);
    EXPECT_EQ(bh.ca_file, "/ca.pem");
    EXPECT_EQ(bh.cert_file, "/c.pem");
    EXPECT_EQ(bh.key_file, "/k.pem");
    EXPECT_EQ(bh.credentials.auth, "dTpw");
    EXPECT_EQ(bh.credentials.registry_token, "tok");
    EXPECT_EQ(back->max_parallel_layers, 7u);
}

TEST(PullRequest, ErrorsNameTheField) {
    auto missing = pull_request_from_json({{"platform", {{"os", "linux"}}}});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("reference"), std::string::npos) << missing.error().message();

    auto bad = pull_request_from_json({{"reference", "busybox"}, {"registries", {{{"host", "h"}, {"insecure", "yes"}}}}});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("registries[0].insecure"), std::string::npos) << bad.error().message();

    auto zero = pull_request_from_json({{"reference", "busybox"}, {"max_parallel_layers", 0}});
    ASSERT_FALSE(zero);
    EXPECT_NE(zero.error().message().find("max_parallel_layers"), std::string::npos);

    EXPECT_FALSE(pull_request_from_json(nlohmann::json::array()));
}

TEST(PullRequest, EventsCarryTheirFields) {
    PullEvent e;
    e.kind = PullEvent::Kind::layer_bytes;
    e.digest = image::Sha256::of("x");
    e.done = 5;
    e.total = 10;
    auto j = to_json(e);
    EXPECT_EQ(j["event"], "layer_bytes");
    EXPECT_EQ(j["digest"], e.digest.string());
    EXPECT_EQ(j["done"], 5);
    EXPECT_EQ(j["total"], 10);
    e.kind = PullEvent::Kind::layer_done;
    e.cached = true;
    EXPECT_EQ(to_json(e)["cached"], true);
}

}  // namespace
}  // namespace berth::store
