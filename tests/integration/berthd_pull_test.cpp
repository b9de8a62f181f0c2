// berthd's PullImage against Debian's docker-registry on loopback (127.0.0.1, ports 15200-15299), fed by skopeo
// with the busybox OCI layout: plain HTTP allowed by berth.toml's insecure flag, and TLS (CA from berth.toml) with
// htpasswd, credentials from the CRI AuthConfig.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "berthd_process.hpp"
#include "harness.hpp"
#include "local_registry.hpp"

namespace berth::test {
namespace {

namespace v1 = ::runtime::v1;

// docker-registry in this suite's port range (15200-15299).
class Registry : public LocalRegistry {
public:
    Registry() : LocalRegistry(15200) {}
};

class BerthdPull : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::make_unique<TempDir>(std::string("criimg-") +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
        socket_ = dir_->path() + "/run/berth.sock";
        layout_ = dir_->path() + "/layout";
        auto made =
            run_command({"/bin/bash", BERTH_SOURCE_DIR "/scripts/make-oci-busybox.sh", "--name", "v1", layout_});
        ASSERT_EQ(made.exit_code, 0) << made.err;
    }
    void TearDown() override {
        daemon_.reset();
        dir_.reset();
    }

    void push(const std::string& dest, std::vector<std::string> flags = {}) {
        std::vector<std::string> argv = {"/usr/bin/skopeo", "--insecure-policy", "copy", "--quiet",
                                         "--dest-tls-verify=false"};
        argv.insert(argv.end(), flags.begin(), flags.end());
        argv.push_back("oci:" + layout_ + ":v1");
        argv.push_back("docker://" + dest);
        auto r = run_command(argv);
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }

    void start_daemon(const std::string& config) {
        std::ofstream(dir_->path() + "/berth.toml") << config;
        daemon_ = std::make_unique<BerthdProcess>();
        ASSERT_TRUE(daemon_->start(socket_, {"--config", dir_->path() + "/berth.toml", "--root", dir_->path() + "/root",
                                             "--state-dir", dir_->path() + "/state"}))
            << daemon_->output();
    }

    std::unique_ptr<v1::ImageService::Stub> images() {
        return v1::ImageService::NewStub(grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
    }

    grpc::Status pull(const std::string& image, v1::PullImageResponse* resp, const v1::AuthConfig* auth = nullptr) {
        grpc::ClientContext ctx;
        v1::PullImageRequest req;
        req.mutable_image()->set_image(image);
        if (auth) *req.mutable_auth() = *auth;
        return images()->PullImage(&ctx, req, resp);
    }

    v1::ImageStatusResponse status(const std::string& image) {
        grpc::ClientContext ctx;
        v1::ImageStatusRequest req;
        req.mutable_image()->set_image(image);
        v1::ImageStatusResponse resp;
        grpc::Status st = images()->ImageStatus(&ctx, req, &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        return resp;
    }

    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<BerthdProcess> daemon_;
    std::string socket_, layout_;
};

TEST_F(BerthdPull, PullsFromAnInsecureRegistryNamedInTheConfig) {
    Registry reg;
    ASSERT_TRUE(reg.start(dir_->path() + "/reg")) << read_text(reg.log());
    const std::string ref = reg.host() + "/criimg/busybox:v1";
    push(ref);
    start_daemon("[registries.\"" + reg.host() + "\"]\ninsecure = true\n");

    v1::PullImageResponse resp;
    grpc::Status st = pull(ref, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << daemon_->output();
    // image_ref is the image id, as containerd answers and as Image.id says.
    EXPECT_TRUE(resp.image_ref().starts_with("sha256:")) << resp.image_ref();
    EXPECT_EQ(resp.image_ref().size(), 71u);

    auto s = status(ref);
    ASSERT_TRUE(s.has_image());
    EXPECT_EQ(s.image().id(), resp.image_ref());
    ASSERT_EQ(s.image().repo_tags_size(), 1);
    EXPECT_EQ(s.image().repo_tags(0), ref);
    ASSERT_EQ(s.image().repo_digests_size(), 1);
    EXPECT_TRUE(s.image().repo_digests(0).starts_with(reg.host() + "/criimg/busybox@sha256:"))
        << s.image().repo_digests(0);
    EXPECT_GT(s.image().size(), 100u * 1024);
    // The id kubelet will hand back finds it, and so does the repo digest.
    EXPECT_TRUE(status(resp.image_ref()).has_image());
    EXPECT_TRUE(status(s.image().repo_digests(0)).has_image());

    // The pull ran in the berth-pull helper: the daemon never mapped the registry client or the layer unpacker.
    const std::string maps = read_text("/proc/" + std::to_string(daemon_->pid()) + "/maps");
    ASSERT_FALSE(maps.empty());
    EXPECT_EQ(maps.find("libcurl"), std::string::npos);
    EXPECT_EQ(maps.find("libarchive"), std::string::npos);

    // A second pull of the same image answers the same id.
    v1::PullImageResponse again;
    st = pull(ref, &again);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(again.image_ref(), resp.image_ref());

    // A tag the registry does not have: an error naming the reference, and nothing recorded.
    v1::PullImageResponse missing;
    st = pull(reg.host() + "/criimg/busybox:nope", &missing);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.error_message().find(reg.host() + "/criimg/busybox:nope"), std::string::npos) << st.error_message();
    EXPECT_FALSE(status(reg.host() + "/criimg/busybox:nope").has_image());

    // A malformed reference is the caller's mistake.
    st = pull("UPPER/Case::x", &missing);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    st = pull("", &missing);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

TEST_F(BerthdPull, PlainHttpIsRefusedUnlessTheConfigAllowsIt) {
    Registry reg;
    ASSERT_TRUE(reg.start(dir_->path() + "/reg")) << read_text(reg.log());
    const std::string ref = reg.host() + "/criimg/busybox:v1";
    push(ref);
    start_daemon("");
    v1::PullImageResponse resp;
    grpc::Status st = pull(ref, &resp);
    EXPECT_FALSE(st.ok());
    EXPECT_FALSE(status(ref).has_image());
}

TEST_F(BerthdPull, AuthConfigCredentialsAgainstTlsAndHtpasswd) {
    const std::string pki = dir_->path() + "/pki";
    std::filesystem::create_directories(pki);
    auto ossl = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "/usr/bin/openssl");
        auto r = run_command(args);
        ASSERT_EQ(r.exit_code, 0) << r.err;
    };
    ossl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=criimg test CA", "-keyout",
          pki + "/ca.key", "-out", pki + "/ca.pem"});
    ossl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", pki + "/server.key", "-out",
          pki + "/server.csr"});
    std::ofstream(pki + "/ext.cnf") << "subjectAltName=IP:127.0.0.1\n";
    ossl({"x509", "-req", "-in", pki + "/server.csr", "-CA", pki + "/ca.pem", "-CAkey", pki + "/ca.key",
          "-CAcreateserial", "-days", "2", "-extfile", pki + "/ext.cnf", "-out", pki + "/server.pem"});
    auto hp = run_command({"/usr/bin/htpasswd", "-Bbc", pki + "/htpasswd", "criimg", "s3cret"});
    ASSERT_EQ(hp.exit_code, 0) << hp.err;

    Registry reg;
    ASSERT_TRUE(reg.start(dir_->path() + "/reg", pki + "/server.pem", pki + "/server.key", pki + "/htpasswd"))
        << read_text(reg.log());
    const std::string ref = reg.host() + "/criimg/secret:v1";
    push(ref, {"--dest-creds", "criimg:s3cret"});
    start_daemon("[registries.\"" + reg.host() + "\"]\nca_file = \"" + pki + "/ca.pem\"\n");

    // Anonymous and wrong credentials: refused with the registry's 401.
    v1::PullImageResponse resp;
    grpc::Status st = pull(ref, &resp);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.error_message().find("401"), std::string::npos) << st.error_message();
    v1::AuthConfig wrong;
    wrong.set_username("criimg");
    wrong.set_password("wrong");
    st = pull(ref, &resp, &wrong);
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(st.error_message().find("wrong"), std::string::npos) << "a password must never be echoed";
    EXPECT_FALSE(status(ref).has_image());

    // username + password.
    v1::AuthConfig basic;
    basic.set_username("criimg");
    basic.set_password("s3cret");
    basic.set_server_address(reg.host());
    st = pull(ref, &resp, &basic);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_TRUE(status(ref).has_image());

    // The auth form (base64 "user:password") after a removal.
    {
        grpc::ClientContext ctx;
        v1::RemoveImageRequest req;
        req.mutable_image()->set_image(ref);
        v1::RemoveImageResponse rm;
        ASSERT_TRUE(images()->RemoveImage(&ctx, req, &rm).ok());
    }
    ASSERT_FALSE(status(ref).has_image());
    v1::AuthConfig encoded;
    encoded.set_auth("Y3JpaW1nOnMzY3JldA==");  // base64("criimg:s3cret")
    st = pull(ref, &resp, &encoded);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(status(ref).has_image());
}

}  // namespace
}  // namespace berth::test
