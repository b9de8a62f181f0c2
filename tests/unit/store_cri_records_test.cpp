// store::CriRecords: pod and container records in <root>/cri.db, their uniqueness and their survival of a reopen.
#include <gtest/gtest.h>

#include "image_test_util.hpp"
#include "store/cri_records.hpp"

namespace berth::store {
namespace {

using image::testing::TempDir;

PodRecord make_pod(const std::string& id, const std::string& name, uint32_t attempt = 0) {
    PodRecord p;
    p.id = id;
    p.name = name;
    p.namespace_ = "default";
    p.uid = "uid-" + name;
    p.attempt = attempt;
    p.config = std::string("\x0a\x00\x01binary", 9);
    p.created_at = 1234567890123456789;
    p.cgroup_parent = "/berth/" + id;
    p.owns_cgroup = true;
    return p;
}

ContainerRecord make_container(const std::string& id, const std::string& pod, const std::string& name) {
    ContainerRecord c;
    c.id = id;
    c.pod_id = pod;
    c.name = name;
    c.config = "cfg";
    c.image_id = "sha256:abc";
    c.log_path = "/var/log/pods/x/" + name + "/0.log";
    return c;
}

class CriRecordsTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(tmp_.ok());
        auto r = CriRecords::open(tmp_.path());
        ASSERT_TRUE(r) << r.error().message();
        db_ = std::move(*r);
    }
    TempDir tmp_{"cricore-records"};
    std::unique_ptr<CriRecords> db_;
};

TEST_F(CriRecordsTest, PodRoundTripAndReopen) {
    PodRecord p = make_pod("p1", "web");
    p.state = PodState::ready;
    p.host_network = true;
    ASSERT_TRUE(db_->put_pod(p, true));
    db_.reset();
    auto reopened = CriRecords::open(tmp_.path());
    ASSERT_TRUE(reopened) << reopened.error().message();
    auto got = (*reopened)->pod("p1");
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(got->name, "web");
    EXPECT_EQ(got->uid, "uid-web");
    EXPECT_EQ(got->config, p.config);
    EXPECT_EQ(got->state, PodState::ready);
    EXPECT_EQ(got->created_at, p.created_at);
    EXPECT_EQ(got->cgroup_parent, "/berth/p1");
    EXPECT_TRUE(got->owns_cgroup);
    EXPECT_TRUE(got->host_network);
    EXPECT_FALSE(got->host_ipc);
    EXPECT_EQ((*reopened)->pod("nope").error().code(), ENOENT);
}

TEST_F(CriRecordsTest, SameMetadataIsHeldByTheFirstPod) {
    ASSERT_TRUE(db_->put_pod(make_pod("p1", "web"), true));
    std::string holder;
    auto second = db_->put_pod(make_pod("p2", "web"), true, &holder);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code(), EEXIST);
    EXPECT_EQ(holder, "p1");
    EXPECT_TRUE(db_->put_pod(make_pod("p3", "web", 1), true));  // another attempt is another pod
    auto by = db_->pod_by_metadata("web", "default", "uid-web", 1);
    ASSERT_TRUE(by && *by);
    EXPECT_EQ((*by)->id, "p3");
    // An update of the same id replaces the record.
    PodRecord p = make_pod("p1", "web");
    p.state = PodState::notready;
    ASSERT_TRUE(db_->put_pod(p, false));
    EXPECT_EQ(db_->pod("p1")->state, PodState::notready);
    auto all = db_->pods();
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 2u);
}

TEST_F(CriRecordsTest, ContainersBelongToTheirPod) {
    ASSERT_TRUE(db_->put_pod(make_pod("p1", "web"), true));
    ASSERT_TRUE(db_->put_pod(make_pod("p2", "db"), true));
    ContainerRecord c = make_container("c1", "p1", "app");
    c.state = ContainerState::exited;
    c.exit_code = 137;
    c.reason = "OOMKilled";
    c.pid = 42;
    c.pid_start = 99;
    ASSERT_TRUE(db_->put_container(c, true));
    ASSERT_TRUE(db_->put_container(make_container("c2", "p1", "side"), true));
    ASSERT_TRUE(db_->put_container(make_container("c3", "p2", "app"), true));
    std::string holder;
    auto dup = db_->put_container(make_container("c4", "p1", "app"), true, &holder);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code(), EEXIST);
    EXPECT_EQ(holder, "c1");

    auto got = db_->container("c1");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->state, ContainerState::exited);
    EXPECT_EQ(got->exit_code, 137);
    EXPECT_EQ(got->reason, "OOMKilled");
    EXPECT_EQ(got->pid_start, 99u);
    EXPECT_EQ(got->log_path, c.log_path);
    EXPECT_EQ(db_->containers_of("p1")->size(), 2u);

    ASSERT_TRUE(db_->remove_container("c2"));
    ASSERT_TRUE(db_->remove_container("c2"));  // missing: success
    EXPECT_EQ(db_->container("c2").error().code(), ENOENT);
    ASSERT_TRUE(db_->remove_pod("p1"));
    EXPECT_EQ(db_->container("c1").error().code(), ENOENT);
    EXPECT_EQ(db_->containers()->size(), 1u);
    ASSERT_TRUE(db_->remove_pod("p1"));
}

}  // namespace
}  // namespace berth::store
