#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "image/digest.hpp"
#include "image_test_util.hpp"
#include "store/image_store.hpp"

namespace berth::store {
namespace {

using image::Digest;
using image::Sha256;
using image::testing::TempDir;

ImageRecord make_record(const std::string& seed, std::vector<std::string> names,
                        std::vector<std::string> layers = {"l1"}) {
    ImageRecord r;
    r.config_json = R"({"seed":")" + seed + R"("})";
    r.id = Sha256::of(r.config_json);
    r.manifest_digest = Sha256::of("manifest " + seed);
    r.manifest_media_type = "application/vnd.oci.image.manifest.v1+json";
    r.size = 1234;
    r.names = std::move(names);
    Digest chain;
    for (const auto& l : layers) {
        chain = chain.valid() ? Sha256::of(chain.string() + " " + Sha256::of(l).string()) : Sha256::of(l);
        r.chain_ids.push_back(chain);
        r.blobs.push_back(Sha256::of("blob " + l));
    }
    r.blobs.push_back(r.id);
    r.blobs.push_back(r.manifest_digest);
    std::sort(r.blobs.begin(), r.blobs.end());
    return r;
}

class ImageStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(tmp_.ok());
        auto s = ImageStore::open(tmp_.path());
        ASSERT_TRUE(s) << s.error().message();
        store_.emplace(std::move(*s));
    }
    TempDir tmp_{"store"};
    std::optional<ImageStore> store_;
};

TEST_F(ImageStoreTest, PutGetByNameIdPrefixAndManifestDigest) {
    ImageRecord in = make_record("a", {"busybox", "quay.io/x/y:1"}, {"l1", "l2"});
    auto put = store_->put(in);
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_GT(put->created, 0);
    EXPECT_EQ(put->names, (std::vector<std::string>{"docker.io/library/busybox:latest", "quay.io/x/y:1"}));
    for (std::string key : {std::string("busybox"), std::string("docker.io/library/busybox:latest"),
                            std::string("quay.io/x/y:1"), in.id.string(), in.id.hex().substr(0, 12),
                            "sha256:" + in.id.hex().substr(0, 5), in.manifest_digest.string()}) {
        auto got = store_->get(key);
        ASSERT_TRUE(got) << key << ": " << got.error().message();
        EXPECT_EQ(got->id, in.id) << key;
        EXPECT_EQ(got->manifest_digest, in.manifest_digest);
        EXPECT_EQ(got->config_json, in.config_json);
        EXPECT_EQ(got->size, 1234u);
        EXPECT_EQ(got->chain_ids, in.chain_ids);
        EXPECT_EQ(got->blobs, in.blobs);
    }
    auto missing = store_->get("alpine");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_NE(missing.error().message().find("alpine"), std::string::npos);
    EXPECT_FALSE(store_->put(make_record("bad", {"UPPER/Case:x"})));
}

TEST_F(ImageStoreTest, NameMovesLikeATagAndRemoveImageTakesAllNames) {
    ImageRecord a = make_record("a", {"app:v1", "app:latest"});
    ImageRecord b = make_record("b", {"app:latest"});
    ASSERT_TRUE(store_->put(a));
    ASSERT_TRUE(store_->put(b));
    EXPECT_EQ(store_->get("app")->id, b.id);
    EXPECT_EQ(store_->get("app:v1")->id, a.id);
    EXPECT_EQ(store_->get(a.id.string())->names, (std::vector<std::string>{"docker.io/library/app:v1"}));

    ASSERT_TRUE(store_->remove_name("app:v1"));
    auto nameless = store_->get(a.id.string());
    ASSERT_TRUE(nameless) << "an image without names stays, reachable by id";
    EXPECT_TRUE(nameless->names.empty());
    EXPECT_EQ(store_->remove_name("app:v1").error().code(), ENOENT);

    ASSERT_TRUE(store_->put(make_record("b", {"other:1"})));  // a second put adds names
    auto removed = store_->remove_image(b.id);
    ASSERT_TRUE(removed) << removed.error().message();
    EXPECT_EQ(removed->names.size(), 2u);
    EXPECT_FALSE(store_->get("app"));
    EXPECT_FALSE(store_->get("other:1"));
    EXPECT_EQ(store_->remove_image(b.id).error().code(), ENOENT);
    auto all = store_->list();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ(all->front().id, a.id);
}

TEST_F(ImageStoreTest, ReferencedSnapshotsAndBlobsAreTheUnionOfAllImages) {
    ImageRecord a = make_record("a", {"a"}, {"base", "mid", "top-a"});
    ImageRecord b = make_record("b", {"b"}, {"base", "mid", "top-b"});
    ASSERT_TRUE(store_->put(a));
    ASSERT_TRUE(store_->put(b));
    auto snaps = store_->referenced_snapshots();
    ASSERT_TRUE(snaps);
    EXPECT_EQ(snaps->size(), 4u);  // base and mid shared
    ASSERT_TRUE(store_->remove_image(b.id));
    snaps = store_->referenced_snapshots();
    ASSERT_TRUE(snaps);
    EXPECT_EQ(*snaps, std::set<Digest>(a.chain_ids.begin(), a.chain_ids.end()));
    auto blobs = store_->referenced_blobs();
    ASSERT_TRUE(blobs);
    EXPECT_EQ(*blobs, std::set<Digest>(a.blobs.begin(), a.blobs.end()));
}

TEST_F(ImageStoreTest, AmbiguousPrefixIsAnError) {
    // Find two seeds whose ids share a first hex digit.
    std::map<char, std::string> first;
    std::string s1, s2;
    for (int i = 0; s1.empty(); ++i) {
        std::string seed = "s" + std::to_string(i);
        char c = make_record(seed, {}).id.hex()[0];
        if (auto it = first.find(c); it != first.end()) {
            s1 = it->second;
            s2 = seed;
        } else {
            first[c] = seed;
        }
    }
    ASSERT_TRUE(store_->put(make_record(s1, {})));
    ASSERT_TRUE(store_->put(make_record(s2, {})));
    auto r = store_->get(make_record(s1, {}).id.hex().substr(0, 1));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("ambiguous"), std::string::npos) << r.error().message();
}

TEST_F(ImageStoreTest, NewerSchemaIsRefused) {
    store_.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmp_.path() + "/metadata.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    auto s = ImageStore::open(tmp_.path());
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("schema version 99"), std::string::npos) << s.error().message();
    EXPECT_NE(s.error().message().find("metadata.db"), std::string::npos);
}

TEST_F(ImageStoreTest, ReopenKeepsRecords) {
    ImageRecord a = make_record("a", {"keep:me"});
    ASSERT_TRUE(store_->put(a));
    store_.reset();
    auto s = ImageStore::open(tmp_.path());
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(s->get("keep:me")->id, a.id);
}

TEST_F(ImageStoreTest, TwoProcessesWritingAtOnce) {
    store_.reset();
    constexpr int kPerProcess = 40;
    // A fresh root, so both processes race to create the schema too.
    TempDir fresh{"store2"};
    ASSERT_TRUE(fresh.ok());
    const std::string root = fresh.path() + "/db";
    std::vector<pid_t> kids;
    for (int who = 0; who < 2; ++who) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            auto s = ImageStore::open(root);
            int rc = 0;
            if (!s) rc = 10;
            for (int i = 0; rc == 0 && i < kPerProcess; ++i)
                if (!s->put(make_record(fmt::format("p{}-{}", who, i), {fmt::format("p{}:{}", who, i), "shared:tag"})))
                    rc = 11;
            ::_exit(rc);
        }
        kids.push_back(pid);
    }
    for (pid_t pid : kids) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0) << "writer " << pid << " failed";
    }
    auto s = ImageStore::open(root);
    ASSERT_TRUE(s) << s.error().message();
    auto all = s->list();
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 2u * kPerProcess);
    int with_shared = 0;
    for (const auto& rec : *all) {
        EXPECT_FALSE(rec.names.empty()) << rec.id.string();
        for (const auto& n : rec.names) with_shared += n == "docker.io/library/shared:tag";
    }
    EXPECT_EQ(with_shared, 1) << "a name belongs to exactly one image";
    for (int who = 0; who < 2; ++who)
        for (int i = 0; i < kPerProcess; ++i) EXPECT_TRUE(s->get(fmt::format("p{}:{}", who, i))) << who << " " << i;
}

}  // namespace
}  // namespace berth::store
