// Pulls from real registries: Debian's docker-registry (plain HTTP, and TLS + htpasswd), fed by skopeo from OCI
// layouts built here, and a small in-test HTTP server for what a real registry will not do on demand (corrupt a
// blob, drop a connection midway, count downloads, hand out bearer tokens, go slowly). Everything listens on
// 127.0.0.1 ports 15000-15099 and lives under /tmp/registry-*.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <filesystem>
#include <functional>
#include <thread>

#include "../unit/image_tar_builder.hpp"
#include "../unit/image_test_util.hpp"
#include "harness.hpp"
#include "local_registry.hpp"
#include "image/registry.hpp"
#include "store/pull.hpp"

namespace berth::test {
namespace {

using image::LayerCompression;
using image::testing::TarMember;
using Json = nlohmann::json;

// gmock's HasSubstr without linking gmock into the integration binary.
#define EXPECT_HAS(text, part)                                                                  \
    do {                                                                                        \
        const std::string has_text_ = (text), has_part_ = (part);                              \
        EXPECT_TRUE(has_text_.find(has_part_) != std::string::npos)                            \
            << "\"" << has_text_ << "\" does not contain \"" << has_part_ << "\"";           \
    } while (0)

std::string trim_ws(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t b = s.find_first_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b);
}

// ---- plumbing ----

struct TempRoot {
    std::string path;
    TempRoot() {
        char tmpl[] = "/tmp/registry-XXXXXX";
        if (::mkdtemp(tmpl)) path = tmpl;
    }
    ~TempRoot() {
        if (!path.empty()) (void)remove_all(path);
    }
};

// A free loopback port in 15000-15099 (this suite's range).
int free_port() { return free_loopback_port(15000); }

// A child process killed (by its PID) and reaped when the object goes.
struct Child {
    pid_t pid = -1;
    ~Child() { stop(); }
    void stop() {
        if (pid <= 0) return;
        ::kill(pid, SIGTERM);
        int st = 0;
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (::waitpid(pid, &st, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > end) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &st, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        pid = -1;
    }
};

// docker-registry in this suite's port range (15000-15099).
class Registry : public LocalRegistry {
public:
    Registry() : LocalRegistry(15000) {}
};

// ---- OCI layouts ----

Json descriptor(std::string_view media_type, const std::string& data) {
    return {{"mediaType", media_type}, {"digest", image::Sha256::of(data).string()}, {"size", data.size()}};
}

std::string_view layer_type(LayerCompression c) {
    switch (c) {
    case LayerCompression::gzip: return "application/vnd.oci.image.layer.v1.tar+gzip";
    case LayerCompression::zstd: return "application/vnd.oci.image.layer.v1.tar+zstd";
    default: return "application/vnd.oci.image.layer.v1.tar";
    }
}

// Writes an OCI layout: blobs, and index.json naming images by ref.name (what skopeo's oci:DIR:REF selects).
class Layout {
public:
    explicit Layout(std::string dir) : dir_(std::move(dir)) {
        EXPECT_EQ(run_command({"/bin/mkdir", "-p", dir_ + "/blobs/sha256"}).exit_code, 0);
        write_text(dir_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    }
    Json put(std::string_view media_type, const std::string& data) {
        Json d = descriptor(media_type, data);
        blobs_[d["digest"].get<std::string>()] = data;
        write_text(dir_ + "/blobs/sha256/" + image::Sha256::of(data).hex(), data);
        return d;
    }
    // An image of `layers` (bottom first, each with its compression) for `arch`; returns the manifest descriptor
    // with its platform.
    Json image(const std::vector<std::pair<std::vector<TarMember>, LayerCompression>>& layers,
               const std::string& arch = image::host_platform().architecture,
               const std::function<void(Json&)>& tweak_config = {}) {
        Json diff_ids = Json::array(), descs = Json::array();
        for (const auto& [members, comp] : layers) {
            std::string tar = image::testing::build_layer(members);
            std::string blob = comp == LayerCompression::none ? tar : image::testing::build_layer(members, comp);
            EXPECT_FALSE(tar.empty());
            diff_ids.push_back(image::Sha256::of(tar).string());
            descs.push_back(put(layer_type(comp), blob));
        }
        Json config = {{"architecture", arch},
                       {"os", "linux"},
                       {"config", Json::object()},
                       {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
        if (tweak_config) tweak_config(config);
        Json manifest = {{"schemaVersion", 2},
                         {"mediaType", image::media_type::kOciManifest},
                         {"config", put(image::media_type::kOciConfig, config.dump())},
                         {"layers", descs}};
        Json d = put(image::media_type::kOciManifest, manifest.dump());
        d["platform"] = {{"architecture", arch}, {"os", "linux"}};
        return d;
    }
    Json index(const std::vector<Json>& manifests) {
        Json idx = {{"schemaVersion", 2}, {"mediaType", image::media_type::kOciIndex}, {"manifests", manifests}};
        return put(image::media_type::kOciIndex, idx.dump());
    }
    // index.json with `d` named `ref`.
    void name(Json d, const std::string& ref) {
        d["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
        d.erase("platform");
        named_.push_back(d);
        Json idx = {{"schemaVersion", 2}, {"manifests", named_}};
        write_text(dir_ + "/index.json", idx.dump());
    }
    const std::string& dir() const { return dir_; }
    const std::map<std::string, std::string>& blobs() const { return blobs_; }

private:
    std::string dir_;
    std::map<std::string, std::string> blobs_;
    std::vector<Json> named_;
};

TarMember whiteout(std::string path) { return image::testing::file(std::move(path), ""); }

// Three layers that delete and replace each other's files.
std::vector<std::pair<std::vector<TarMember>, LayerCompression>> stacked_layers(
    LayerCompression top = LayerCompression::gzip) {
    using namespace image::testing;
    return {
        {{dir("etc"), file("etc/hostname", "one\n"), dir("a"), file("a/keep", "keep\n"), file("a/gone", "gone\n"),
          dir("a/sub"), file("a/sub/x", "x\n"), file("b", "b1\n"), symlink("link", "a/keep")},
         LayerCompression::gzip},
        {{dir("a"), whiteout("a/.wh.gone"), file("b", "b2\n"), file("c", "c2\n"), dir("a/sub"),
          whiteout("a/sub/.wh..wh..opq"), file("a/sub/y", "y\n")},
         LayerCompression::none},
        {{whiteout(".wh.c"), dir("etc"), file("etc/hostname", "three\n"), dir("d"), file("d/f", "f\n", 0755)}, top},
    };
}

// ---- an in-test registry over plain sockets ----

// Serves the blobs and manifests of a Layout under /v2/<repo>/..., one request per connection (Connection:
// close). Knobs: corrupt a blob, drop a blob's first response after `drop_after` bytes, go slowly, require a
// bearer token from its own /token endpoint. Counts blob GETs.
class TestServer {
public:
    struct Knobs {
        std::string corrupt_blob;     // digest whose body has one byte flipped
        std::string drop_blob;        // digest whose first GET is cut after drop_after bytes
        size_t drop_after = 0;
        bool honour_range = true;
        int slow_ms = 0;              // sleep per 4 KiB chunk of a blob
        std::string bearer_token;     // when set: /v2/ requests need "Authorization: Bearer <it>"
        std::string token_user, token_password;  // /token needs these as basic auth
        bool redirect_blobs = false;  // blobs answered with 307 to http://localhost:<port>/storage/<digest>
        std::string refresh_token;    // POST /token with grant_type=refresh_token needs this refresh_token
    };

    TestServer(const Layout& layout, std::map<std::string, std::pair<std::string, std::string>> manifests, Knobs k)
        : blobs_(layout.blobs()), manifests_(std::move(manifests)), knobs_(std::move(k)) {}
    ~TestServer() { stop(); }

    bool start() {
        port_ = free_port();
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port_));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(fd_, 64) < 0) return false;
        thread_ = std::thread([this] { loop(); });
        return true;
    }
    void stop() {
        if (fd_ < 0) return;
        stopping_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        if (thread_.joinable()) thread_.join();
        ::close(fd_);
        fd_ = -1;
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return active_ == 0; });
    }
    std::string host() const { return fmt::format("127.0.0.1:{}", port_); }
    int blob_gets(const std::string& digest) {
        std::lock_guard l(mu_);
        return gets_[digest];
    }
    int range_requests() {
        std::lock_guard l(mu_);
        return ranges_;
    }
    int token_requests() {
        std::lock_guard l(mu_);
        return tokens_;
    }
    // The Authorization headers blob storage (/storage/...) was sent.
    std::vector<std::string> storage_auth() {
        std::lock_guard l(mu_);
        return storage_auth_;
    }

private:
    void loop() {
        for (;;) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) {
                if (stopping_) return;
                continue;
            }
            {
                std::lock_guard l(mu_);
                ++active_;
            }
            std::thread([this, c] {
                serve(c);
                ::close(c);
                std::lock_guard l(mu_);
                --active_;
                cv_.notify_all();
            }).detach();
        }
    }

    static bool send_all(int fd, std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }
    static void respond(int fd, int status, const std::string& headers, std::string_view body) {
        send_all(fd, fmt::format("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n", status,
                                 body.size(), headers));
        send_all(fd, body);
    }

    void serve(int fd) {
        std::string req;
        char buf[4096];
        while (!req.contains("\r\n\r\n")) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return;
            req.append(buf, static_cast<size_t>(n));
            // A TLS ClientHello (an insecure client tries https first): hang up, as a plain HTTP server does.
            if (!std::isupper(static_cast<unsigned char>(req[0]))) return;
        }
        const size_t head_end = req.find("\r\n\r\n") + 4;
        std::string line = req.substr(0, req.find("\r\n"));
        std::string method = line.substr(0, line.find(' '));
        std::string path = line.substr(method.size() + 1);
        path = path.substr(0, path.find(' '));
        auto header = [&](std::string name) -> std::string {
            std::string lower_req = req;
            for (auto& ch : lower_req) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            auto p = lower_req.find("\r\n" + name + ":");
            if (p == std::string::npos) return "";
            auto b = p + name.size() + 3;
            auto e = req.find("\r\n", b);
            return trim_ws(req.substr(b, e - b));
        };

        if (path.starts_with("/token")) {
            {
                std::lock_guard l(mu_);
                ++tokens_;
            }
            if (method == "POST") {
                // OAuth2 refresh_token grant: the form in the body.
                size_t len = std::stoul(header("content-length").empty() ? "0" : header("content-length"));
                while (req.size() < head_end + len) {
                    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                    if (n <= 0) return;
                    req.append(buf, static_cast<size_t>(n));
                }
                std::string form = "&" + req.substr(head_end, len) + "&";
                if (!form.contains("&grant_type=refresh_token&") ||
                    !form.contains("&refresh_token=" + knobs_.refresh_token + "&") || !form.contains("&scope="))
                    return respond(fd, 401, "", R"({"details":"bad refresh token"})");
                return respond(fd, 200, "Content-Type: application/json\r\n",
                               Json{{"access_token", knobs_.bearer_token}}.dump());
            }
            std::string want = "Basic " + base64(knobs_.token_user + ":" + knobs_.token_password);
            if (!knobs_.token_user.empty() && header("authorization") != want)
                return respond(fd, 401, "", R"({"details":"bad credentials"})");
            return respond(fd, 200, "Content-Type: application/json\r\n",
                           Json{{"token", knobs_.bearer_token}}.dump());
        }
        if (!knobs_.bearer_token.empty() && path.starts_with("/v2/") &&
            header("authorization") != "Bearer " + knobs_.bearer_token) {
            return respond(fd, 401,
                           fmt::format("WWW-Authenticate: Bearer realm=\"http://{}/token\",service=\"test\","
                                       "scope=\"repository:x:pull\"\r\nContent-Type: application/json\r\n",
                                       host()),
                           R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})");
        }
        if (path == "/v2/") return respond(fd, 200, "", "{}");
        if (auto p = path.find("/manifests/"); p != std::string::npos) {
            auto it = manifests_.find(path.substr(p + 11));
            if (it == manifests_.end())
                return respond(fd, 404, "Content-Type: application/json\r\n",
                               R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
            return respond(fd, 200, "Content-Type: " + it->second.first + "\r\n", it->second.second);
        }
        std::string digest;
        bool from_storage = false;
        if (auto p = path.find("/blobs/"); p != std::string::npos) {
            digest = path.substr(p + 7);
            if (knobs_.redirect_blobs)
                return respond(fd, 307, fmt::format("Location: http://localhost:{}/storage/{}\r\n", port_, digest),
                               "");
        } else if (path.starts_with("/storage/")) {
            digest = path.substr(9);
            from_storage = true;
        }
        if (from_storage) {
            std::lock_guard l(mu_);
            storage_auth_.push_back(header("authorization"));
        }
        auto it = blobs_.find(digest);
        if (digest.empty() || it == blobs_.end())
            return respond(fd, 404, "Content-Type: application/json\r\n",
                           R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})");
        std::string body = it->second;
        if (digest == knobs_.corrupt_blob) body[body.size() / 2] ^= 0x01;
        int n_get;
        {
            std::lock_guard l(mu_);
            n_get = ++gets_[digest];
            last_auth_ = header("authorization");
        }
        size_t from = 0;
        std::string range = header("range");
        std::string headers = "Content-Type: application/octet-stream\r\n";
        int status = 200;
        if (!range.empty() && knobs_.honour_range) {
            from = std::stoull(range.substr(range.find('=') + 1));
            status = 206;
            headers += fmt::format("Content-Range: bytes {}-{}/{}\r\n", from, body.size() - 1, body.size());
            std::lock_guard l(mu_);
            ++ranges_;
        }
        std::string_view rest = std::string_view(body).substr(std::min(from, body.size()));
        send_all(fd, fmt::format("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n", status,
                                 rest.size(), headers));
        const bool drop = digest == knobs_.drop_blob && n_get == 1;
        size_t sent = 0;
        while (sent < rest.size()) {
            size_t n = std::min<size_t>(4096, rest.size() - sent);
            if (drop && sent + n > knobs_.drop_after) n = knobs_.drop_after - sent;
            if (n == 0 || !send_all(fd, rest.substr(sent, n))) break;
            sent += n;
            if (drop && sent >= knobs_.drop_after) break;
            if (knobs_.slow_ms) std::this_thread::sleep_for(std::chrono::milliseconds(knobs_.slow_ms));
        }
        if (drop) ::shutdown(fd, SHUT_RDWR);
    }

    static std::string base64(const std::string& s) {
        static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string out;
        size_t i = 0;
        for (; i + 2 < s.size(); i += 3) {
            unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
            for (int k = 18; k >= 0; k -= 6) out += t[(v >> k) & 63];
        }
        if (i < s.size()) {
            unsigned v = (unsigned char)s[i] << 16 | (i + 1 < s.size() ? (unsigned char)s[i + 1] << 8 : 0);
            out += t[(v >> 18) & 63];
            out += t[(v >> 12) & 63];
            out += i + 1 < s.size() ? t[(v >> 6) & 63] : '=';
            out += '=';
        }
        return out;
    }

    std::map<std::string, std::string> blobs_;
    std::map<std::string, std::pair<std::string, std::string>> manifests_;  // reference -> (type, body)
    Knobs knobs_;
    int port_ = -1;
    int fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    int active_ = 0;
    std::map<std::string, int> gets_;
    int ranges_ = 0;
    int tokens_ = 0;
    std::string last_auth_;
    std::vector<std::string> storage_auth_;
};

// ---- fixture ----

class RegistryPull : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(tmp_.path.empty());
        auto images = store::Images::open(tmp_.path + "/store");
        ASSERT_TRUE(images) << images.error().message();
        images_.emplace(std::move(*images));
    }
    void TearDown() override {
        for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it)
            if (image::testing::is_mounted(*it)) ::umount2(it->c_str(), MNT_DETACH);
    }

    // skopeo copy oci:<layout>:<ref> docker://<host>/<repo>, with extra flags.
    void push(const Layout& layout, const std::string& ref, const std::string& dest,
              std::vector<std::string> flags = {}) {
        std::vector<std::string> argv = {"/usr/bin/skopeo", "--insecure-policy", "copy", "--quiet",
                                         "--dest-tls-verify=false"};
        argv.insert(argv.end(), flags.begin(), flags.end());
        argv.push_back("oci:" + layout.dir() + ":" + ref);
        argv.push_back("docker://" + dest);
        auto r = run_command(argv);
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }

    store::PullOptions insecure(const std::string& host) {
        store::PullOptions o;
        image::RegistryHost h;
        h.host = host;
        h.insecure = true;
        o.registries.hosts.push_back(h);
        return o;
    }

    // Mounts the image's rootfs (an overlay of its snapshots) and returns the mount point.
    std::string mount_rootfs(const store::ImageRecord& rec) {
        auto lowers = images_->snapshots().lowerdirs(rec.chain_ids.back());
        EXPECT_TRUE(lowers) << lowers.error().message();
        if (!lowers) return "";
        const std::string cdir = tmp_.path + fmt::format("/ctr{}", mounts_.size()), target = cdir + "/rootfs";
        EXPECT_TRUE(mkdir_all(target));
        auto m = image::mount_overlay(*lowers, cdir, target);
        EXPECT_TRUE(m) << m.error().message();
        mounts_.push_back(target);
        return target;
    }

    void expect_stacked_rootfs(const store::ImageRecord& rec) {
        ASSERT_EQ(rec.chain_ids.size(), 3u);
        std::string root = mount_rootfs(rec);
        ASSERT_FALSE(root.empty());
        EXPECT_EQ(read_text(root + "/etc/hostname"), "three\n");
        EXPECT_EQ(read_text(root + "/a/keep"), "keep\n");
        EXPECT_FALSE(path_exists(root + "/a/gone"));
        EXPECT_FALSE(path_exists(root + "/a/sub/x"));  // the opaque directory hides layer 1's content
        EXPECT_EQ(read_text(root + "/a/sub/y"), "y\n");
        EXPECT_EQ(read_text(root + "/b"), "b2\n");
        EXPECT_FALSE(path_exists(root + "/c"));
        EXPECT_EQ(read_link(root + "/link"), "a/keep");
        EXPECT_EQ(read_text(root + "/d/f"), "f\n");
        struct stat st {};
        ASSERT_EQ(::stat((root + "/d/f").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0755u);
    }

    // Nothing but the records' content is left: prune finds no blob or snapshot to collect.
    void expect_nothing_to_prune() {
        auto reopened = store::Images::open(tmp_.path + "/store");
        ASSERT_TRUE(reopened) << reopened.error().message();
        auto stats = reopened->prune();
        ASSERT_TRUE(stats) << stats.error().message();
        EXPECT_TRUE(stats->blobs_removed.empty());
        EXPECT_TRUE(stats->snapshots_removed.empty());
    }

    TempRoot tmp_;
    std::optional<store::Images> images_;
    std::vector<std::string> mounts_;
};

std::map<std::string, std::pair<std::string, std::string>> manifests_of(const Layout& layout, const Json& desc,
                                                                        const std::string& tag) {
    std::string d = desc["digest"].get<std::string>();
    std::string type = desc["mediaType"].get<std::string>();
    const std::string& body = layout.blobs().at(d);
    return {{tag, {type, body}}, {d, {type, body}}};
}

// ---- docker-registry, plain HTTP ----

TEST_F(RegistryPull, MultiLayerImageWithWhiteoutsFromPlainHttpRegistry) {
    Layout layout(tmp_.path + "/layout");
    layout.name(layout.image(stacked_layers()), "v1");
    Registry reg;
    ASSERT_TRUE(reg.start(tmp_.path + "/reg")) << read_text(tmp_.path + "/reg/registry.log");
    push(layout, "v1", reg.host() + "/berth/stacked:v1");

    std::vector<store::PullEvent> events;
    auto opts = insecure(reg.host());
    opts.progress = [&](const store::PullEvent& e) { events.push_back(e); };
    auto rec = store::pull_image(*images_, reg.host() + "/berth/stacked:v1", opts);
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(rec->names, std::vector<std::string>{reg.host() + "/berth/stacked:v1"});
    expect_stacked_rootfs(*rec);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front().kind, store::PullEvent::Kind::resolved);
    EXPECT_EQ(events.back().kind, store::PullEvent::Kind::done);
    EXPECT_EQ(events.back().digest, rec->id);
    int done = 0;
    for (const auto& e : events) done += e.kind == store::PullEvent::Kind::layer_done && !e.cached;
    EXPECT_EQ(done, 3);

    // Found by name; a second pull downloads nothing (every layer cached).
    auto got = images_->records().get(reg.host() + "/berth/stacked:v1");
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(got->id, rec->id);
    events.clear();
    auto again = store::pull_image(*images_, reg.host() + "/berth/stacked:v1", opts);
    ASSERT_TRUE(again) << again.error().message();
    int cached = 0;
    for (const auto& e : events) cached += e.kind == store::PullEvent::Kind::layer_done && e.cached;
    EXPECT_EQ(cached, 3);
    expect_nothing_to_prune();
}

TEST_F(RegistryPull, PullByDigestNamesTheImageByDigest) {
    Layout layout(tmp_.path + "/layout");
    Json m = layout.image(stacked_layers());
    layout.name(m, "v1");
    Registry reg;
    ASSERT_TRUE(reg.start(tmp_.path + "/reg"));
    // skopeo rewrites the manifest (it compresses the uncompressed layer): the digest is what it pushed.
    push(layout, "v1", reg.host() + "/berth/bydigest:v1", {"--digestfile", tmp_.path + "/pushed"});
    const std::string pushed = trim(read_text(tmp_.path + "/pushed"));
    ASSERT_TRUE(pushed.starts_with("sha256:")) << pushed;
    const std::string ref = reg.host() + "/berth/bydigest@" + pushed;
    auto rec = store::pull_image(*images_, ref, insecure(reg.host()));
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(rec->names, std::vector<std::string>{ref});
    EXPECT_EQ(rec->manifest_digest.string(), pushed);
    expect_stacked_rootfs(*rec);

    // A digest the registry does not have: the error names the URL, the status and the registry's code.
    const std::string missing = reg.host() + "/berth/bydigest@sha256:" + std::string(64, 'a');
    auto bad = store::pull_image(*images_, missing, insecure(reg.host()));
    ASSERT_FALSE(bad);
    EXPECT_HAS(bad.error().message(), ("/v2/berth/bydigest/manifests/sha256:aaaa"));
    EXPECT_HAS(bad.error().message(), ("HTTP 404"));
    EXPECT_HAS(bad.error().message(), ("MANIFEST_UNKNOWN"));
}

TEST_F(RegistryPull, MultiPlatformIndexPicksHostOrAskedPlatform) {
    using namespace image::testing;
    const std::string host_arch = image::host_platform().architecture;
    const std::string other_arch = host_arch == "arm64" ? "amd64" : "arm64";
    Layout layout(tmp_.path + "/layout");
    Json mine = layout.image({{{dir("etc"), file("etc/arch", host_arch + "\n")}, LayerCompression::gzip}}, host_arch);
    Json other = layout.image({{{dir("etc"), file("etc/arch", other_arch + "\n")}, LayerCompression::gzip}}, other_arch);
    Json idx = layout.index({other, mine});
    layout.name(idx, "multi");
    Registry reg;
    ASSERT_TRUE(reg.start(tmp_.path + "/reg"));
    push(layout, "multi", reg.host() + "/berth/multi:v1", {"--all"});

    auto rec = store::pull_image(*images_, reg.host() + "/berth/multi:v1", insecure(reg.host()));
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(rec->manifest_digest.string(), mine["digest"].get<std::string>());
    EXPECT_EQ(read_text(mount_rootfs(*rec) + "/etc/arch"), host_arch + "\n");

    auto opts = insecure(reg.host());
    opts.platform = {"linux", other_arch, ""};
    auto rec2 = store::pull_image(*images_, reg.host() + "/berth/multi:other", opts);
    ASSERT_FALSE(rec2);  // no such tag
    rec2 = store::pull_image(*images_, reg.host() + "/berth/multi:v1", opts);
    ASSERT_TRUE(rec2) << rec2.error().message();
    EXPECT_EQ(rec2->manifest_digest.string(), other["digest"].get<std::string>());
    EXPECT_EQ(read_text(mount_rootfs(*rec2) + "/etc/arch"), other_arch + "\n");

    opts.platform = {"linux", "s390x", ""};
    auto none = store::pull_image(*images_, reg.host() + "/berth/multi:v1", opts);
    ASSERT_FALSE(none);
    EXPECT_HAS(none.error().message(), ("no manifest for platform linux/s390x"));
}

TEST_F(RegistryPull, ZstdLayer) {
    Layout layout(tmp_.path + "/layout");
    layout.name(layout.image(stacked_layers(LayerCompression::zstd)), "v1");
    Registry reg;
    ASSERT_TRUE(reg.start(tmp_.path + "/reg"));
    push(layout, "v1", reg.host() + "/berth/zstd:v1");
    auto rec = store::pull_image(*images_, reg.host() + "/berth/zstd:v1", insecure(reg.host()));
    ASSERT_TRUE(rec) << rec.error().message();
    auto m = images_->content().read(rec->manifest_digest);
    ASSERT_TRUE(m);
    EXPECT_HAS(*m, ("tar+zstd"));
    expect_stacked_rootfs(*rec);
}

TEST_F(RegistryPull, DockerSchema2Image) {
    Layout layout(tmp_.path + "/layout");
    layout.name(layout.image(stacked_layers()), "v1");
    Registry reg;
    ASSERT_TRUE(reg.start(tmp_.path + "/reg"));
    push(layout, "v1", reg.host() + "/berth/docker:v1", {"--format", "v2s2"});
    auto rec = store::pull_image(*images_, reg.host() + "/berth/docker:v1", insecure(reg.host()));
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(rec->manifest_media_type, image::media_type::kDockerManifest);
    expect_stacked_rootfs(*rec);
}

TEST_F(RegistryPull, PlainHttpRegistryNeedsInsecure) {
    Layout layout(tmp_.path + "/layout");
    layout.name(layout.image(stacked_layers()), "v1");
    Registry reg;
    ASSERT_TRUE(reg.start(tmp_.path + "/reg"));
    push(layout, "v1", reg.host() + "/berth/plain:v1");
    store::PullOptions opts;  // https only
    auto rec = store::pull_image(*images_, reg.host() + "/berth/plain:v1", opts);
    ASSERT_FALSE(rec);
    EXPECT_HAS(rec.error().message(), ("https://" + reg.host() + "/v2/berth/plain/manifests/v1"));
    auto records = images_->records().list();
    ASSERT_TRUE(records);
    EXPECT_TRUE(records->empty());
}

TEST_F(RegistryPull, DeadMirrorThenWorkingMirrorBeforeUpstream) {
    Layout layout(tmp_.path + "/layout");
    layout.name(layout.image(stacked_layers()), "v1");
    Registry mirror;
    ASSERT_TRUE(mirror.start(tmp_.path + "/mirror"));
    push(layout, "v1", mirror.host() + "/berth/mirrored:v1");
    // The upstream name is a registry that does not exist: only the mirrors can serve the pull.
    const int dead_port = free_port();
    store::PullOptions opts;
    image::RegistryHost h;
    h.host = "upstream.invalid:5000";
    h.mirrors = {fmt::format("http://127.0.0.1:{}", dead_port), "http://" + mirror.host()};
    opts.registries.hosts.push_back(h);
    auto rec = store::pull_image(*images_, "upstream.invalid:5000/berth/mirrored:v1", opts);
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(rec->names, std::vector<std::string>{"upstream.invalid:5000/berth/mirrored:v1"});
    expect_stacked_rootfs(*rec);
}

// ---- docker-registry with TLS and htpasswd ----

class TlsRegistry : public RegistryPull {
protected:
    void SetUp() override {
        RegistryPull::SetUp();
        const std::string d = tmp_.path + "/pki";
        ASSERT_TRUE(mkdir_all(d));
        auto ossl = [&](std::vector<std::string> args) {
            args.insert(args.begin(), "/usr/bin/openssl");
            auto r = run_command(args);
            ASSERT_EQ(r.exit_code, 0) << r.err;
        };
        ossl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth test CA", "-keyout",
              d + "/ca.key", "-out", d + "/ca.pem"});
        ossl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", d + "/server.key", "-out",
              d + "/server.csr"});
        write_text(d + "/ext.cnf", "subjectAltName=IP:127.0.0.1\n");
        ossl({"x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
              "-CAcreateserial", "-days", "2", "-extfile", d + "/ext.cnf", "-out", d + "/server.pem"});
        auto hp = run_command({"/usr/bin/htpasswd", "-Bbc", d + "/htpasswd", "berth", "s3cret"});
        ASSERT_EQ(hp.exit_code, 0) << hp.err;
        ca_ = d + "/ca.pem";
        // A client certificate from the same CA, for the mutual TLS case.
        ossl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=berth client", "-keyout", d + "/client.key",
              "-out", d + "/client.csr"});
        ossl({"x509", "-req", "-in", d + "/client.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
              "-CAcreateserial", "-days", "2", "-out", d + "/client.pem"});
        ASSERT_TRUE(reg_.start(tmp_.path + "/reg", d + "/server.pem", d + "/server.key", d + "/htpasswd"))
            << read_text(tmp_.path + "/reg/registry.log");
        Layout layout(tmp_.path + "/layout");
        layout.name(layout.image(stacked_layers()), "v1");
        push(layout, "v1", reg_.host() + "/berth/secret:v1", {"--dest-creds", "berth:s3cret"});
    }
    store::PullOptions tls(image::Credentials creds) {
        store::PullOptions o;
        image::RegistryHost h;
        h.host = reg_.host();
        h.ca_file = ca_;
        o.registries.hosts.push_back(h);
        o.credentials = std::move(creds);
        return o;
    }
    Registry reg_;
    std::string ca_;
};

TEST_F(TlsRegistry, BasicAuthOverTlsWithCaFile) {
    image::Credentials c;
    c.username = "berth";
    c.password = "s3cret";
    auto rec = store::pull_image(*images_, reg_.host() + "/berth/secret:v1", tls(c));
    ASSERT_TRUE(rec) << rec.error().message();
    expect_stacked_rootfs(*rec);
}

TEST_F(TlsRegistry, AuthFormIsDecoded) {
    image::Credentials c;
    c.auth = "YmVydGg6czNjcmV0";  // base64("berth:s3cret")
    auto rec = store::pull_image(*images_, reg_.host() + "/berth/secret:v1", tls(c));
    ASSERT_TRUE(rec) << rec.error().message();
}

TEST_F(TlsRegistry, BadCredentialsAreAClear401) {
    image::Credentials c;
    c.username = "berth";
    c.password = "wrong";
    auto rec = store::pull_image(*images_, reg_.host() + "/berth/secret:v1", tls(c));
    ASSERT_FALSE(rec);
    EXPECT_HAS(rec.error().message(), ("HTTP 401"));
    EXPECT_HAS(rec.error().message(), ("UNAUTHORIZED"));
    EXPECT_HAS(rec.error().message(), ("https://" + reg_.host() + "/v2/berth/secret/manifests/v1"));
    // Anonymous: the same 401.
    auto anon = store::pull_image(*images_, reg_.host() + "/berth/secret:v1", tls({}));
    ASSERT_FALSE(anon);
    EXPECT_HAS(anon.error().message(), ("HTTP 401"));
}

TEST_F(TlsRegistry, ClientCertificateForMutualTls) {
    // A second registry over the same storage that wants a client certificate (and no htpasswd).
    const std::string d = tmp_.path + "/pki";
    Registry mtls;
    ASSERT_TRUE(mtls.start(tmp_.path + "/mtls", d + "/server.pem", d + "/server.key", "", d + "/ca.pem",
                           tmp_.path + "/reg/data"))
        << read_text(tmp_.path + "/mtls/registry.log");
    store::PullOptions opts;
    image::RegistryHost h;
    h.host = mtls.host();
    h.ca_file = ca_;
    opts.registries.hosts.push_back(h);
    auto without = store::pull_image(*images_, mtls.host() + "/berth/secret:v1", opts);
    ASSERT_FALSE(without);
    EXPECT_HAS(without.error().message(), "https://" + mtls.host() + "/v2/berth/secret/manifests/v1");

    opts.registries.hosts[0].cert_file = d + "/client.pem";
    opts.registries.hosts[0].key_file = d + "/client.key";
    auto with = store::pull_image(*images_, mtls.host() + "/berth/secret:v1", opts);
    ASSERT_TRUE(with) << with.error().message();
    expect_stacked_rootfs(*with);
}

TEST_F(TlsRegistry, UnknownCaIsRefused) {
    image::Credentials c;
    c.username = "berth";
    c.password = "s3cret";
    auto opts = tls(c);
    opts.registries.hosts[0].ca_file.clear();
    auto rec = store::pull_image(*images_, reg_.host() + "/berth/secret:v1", opts);
    ASSERT_FALSE(rec);
    EXPECT_HAS(rec.error().message(), ("https://" + reg_.host()));
    EXPECT_HAS(rec.error().message(), ("certificate"));
}

// ---- the in-test server ----

class ServerPull : public RegistryPull {
protected:
    // The stacked image in a layout, served by a TestServer with `knobs` as repository "x", tag "v1".
    void serve(TestServer::Knobs knobs) {
        layout_.emplace(tmp_.path + "/layout");
        manifest_ = layout_->image(stacked_layers());
        layout_->name(manifest_, "v1");
        auto m = Json::parse(layout_->blobs().at(manifest_["digest"].get<std::string>()));
        for (const auto& l : m["layers"]) layers_.push_back(l["digest"].get<std::string>());
        config_ = m["config"]["digest"].get<std::string>();
        server_.emplace(*layout_, manifests_of(*layout_, manifest_, "v1"), std::move(knobs));
        ASSERT_TRUE(server_->start());
    }
    std::string ref() const { return server_->host() + "/x:v1"; }

    // Like serve(), with the config changed by `tweak`.
    void serve_tweaked(TestServer::Knobs knobs, const std::function<void(Json&)>& tweak) {
        layout_.emplace(tmp_.path + "/layout");
        manifest_ = layout_->image(stacked_layers(), image::host_platform().architecture, tweak);
        layout_->name(manifest_, "v1");
        auto m = Json::parse(layout_->blobs().at(manifest_["digest"].get<std::string>()));
        for (const auto& l : m["layers"]) layers_.push_back(l["digest"].get<std::string>());
        server_.emplace(*layout_, manifests_of(*layout_, manifest_, "v1"), std::move(knobs));
        ASSERT_TRUE(server_->start());
    }

    // Like serve(), with a 1 MiB incompressible file in the bottom layer.
    void serve_big(TestServer::Knobs knobs) {
        layout_.emplace(tmp_.path + "/layout");
        auto layers = stacked_layers();
        std::string big(1 << 20, '\0');
        uint64_t x = 88172645463325252ull;
        for (auto& ch : big) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ch = static_cast<char>(x);
        }
        layers[0].first.push_back(image::testing::file("big", big));
        manifest_ = layout_->image(layers);
        layout_->name(manifest_, "v1");
        auto m = Json::parse(layout_->blobs().at(manifest_["digest"].get<std::string>()));
        for (const auto& l : m["layers"]) layers_.push_back(l["digest"].get<std::string>());
        config_ = m["config"]["digest"].get<std::string>();
        server_.emplace(*layout_, manifests_of(*layout_, manifest_, "v1"), std::move(knobs));
        ASSERT_TRUE(server_->start());
    }

    std::optional<Layout> layout_;
    Json manifest_;
    std::vector<std::string> layers_;
    std::string config_;
    std::optional<TestServer> server_;
};

TEST_F(ServerPull, CorruptedBlobIsRefusedAndLeavesNothing) {
    TestServer::Knobs k;
    serve(k);
    server_->stop();
    k.corrupt_blob = layers_[1];
    server_.emplace(*layout_, manifests_of(*layout_, manifest_, "v1"), k);
    ASSERT_TRUE(server_->start());
    auto opts = insecure(server_->host());
    opts.max_parallel_layers = 1;
    auto rec = store::pull_image(*images_, ref(), opts);
    ASSERT_FALSE(rec);
    EXPECT_HAS(rec.error().message(), (layers_[1]));
    EXPECT_HAS(rec.error().message(), ("/v2/x/blobs/" + layers_[1]));
    EXPECT_FALSE(images_->content().exists(*image::Digest::parse(layers_[1])));
    // Layer 2's snapshot (chain id of layers 1+2) does not exist; layer 1's (complete and verified) may.
    auto snaps = images_->snapshots().list();
    ASSERT_TRUE(snaps);
    EXPECT_LE(snaps->size(), 1u);
    auto records = images_->records().list();
    ASSERT_TRUE(records);
    EXPECT_TRUE(records->empty());
    EXPECT_EQ(server_->blob_gets(layers_[1]), 1);  // a wrong digest is not retried
}

TEST_F(ServerPull, WrongDiffIdIsRefusedNamingBothDigests) {
    const std::string wrong = image::Sha256::of("not the layer").string();
    serve_tweaked({}, [&](Json& config) { config["rootfs"]["diff_ids"][0] = wrong; });
    auto rec = store::pull_image(*images_, ref(), insecure(server_->host()));
    ASSERT_FALSE(rec);
    EXPECT_HAS(rec.error().message(), layers_[0]);
    EXPECT_HAS(rec.error().message(), "not the diff_id " + wrong);
    auto snaps = images_->snapshots().list();
    ASSERT_TRUE(snaps);
    EXPECT_TRUE(snaps->empty());
    auto records = images_->records().list();
    ASSERT_TRUE(records);
    EXPECT_TRUE(records->empty());
}

TEST_F(ServerPull, DroppedConnectionResumesWithRange) {
    TestServer::Knobs k;
    serve(k);
    server_->stop();
    // Layer 1 is a few KiB of gzip; cut it after 100 bytes.
    k.drop_blob = layers_[0];
    k.drop_after = 100;
    server_.emplace(*layout_, manifests_of(*layout_, manifest_, "v1"), k);
    ASSERT_TRUE(server_->start());
    auto rec = store::pull_image(*images_, ref(), insecure(server_->host()));
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(server_->blob_gets(layers_[0]), 2);
    EXPECT_EQ(server_->range_requests(), 1);
    expect_stacked_rootfs(*rec);
}

TEST_F(ServerPull, DroppedConnectionWithoutRangeSupportStartsOver) {
    TestServer::Knobs k;
    serve(k);
    server_->stop();
    k.drop_blob = layers_[0];
    k.drop_after = 100;
    k.honour_range = false;
    server_.emplace(*layout_, manifests_of(*layout_, manifest_, "v1"), k);
    ASSERT_TRUE(server_->start());
    auto rec = store::pull_image(*images_, ref(), insecure(server_->host()));
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(server_->blob_gets(layers_[0]), 2);
    expect_stacked_rootfs(*rec);
}

TEST_F(ServerPull, ConcurrentPullsDownloadEachBlobOnce) {
    TestServer::Knobs k;
    k.slow_ms = 2;
    serve(k);
    auto opts = insecure(server_->host());
    std::vector<Result<store::ImageRecord>> results(3, fail("not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i)
        threads.emplace_back([&, i] {
            // One Images (one SQLite connection) per thread.
            auto images = store::Images::open(tmp_.path + "/store");
            if (!images) {
                results[i] = std::unexpected(images.error());
                return;
            }
            results[i] = store::pull_image(*images, ref(), opts);
        });
    for (auto& t : threads) t.join();
    for (const auto& r : results) ASSERT_TRUE(r) << r.error().message();
    for (const auto& l : layers_) EXPECT_EQ(server_->blob_gets(l), 1) << l;
    EXPECT_EQ(server_->blob_gets(config_), 1);
    expect_stacked_rootfs(*results[0]);
}

TEST_F(ServerPull, BearerTokenFromTokenServer) {
    TestServer::Knobs k;
    k.bearer_token = "tok-123";
    k.token_user = "alice";
    k.token_password = "pw";
    serve(k);
    image::Credentials c;
    c.username = "alice";
    c.password = "pw";
    auto opts = insecure(server_->host());
    opts.credentials = c;
    auto rec = store::pull_image(*images_, ref(), opts);
    ASSERT_TRUE(rec) << rec.error().message();
    // One token for the whole pull (cached per host and scope).
    EXPECT_EQ(server_->token_requests(), 1);
    expect_stacked_rootfs(*rec);

    c.password = "nope";
    opts.credentials = c;
    auto bad = store::pull_image(*images_, ref(), opts);
    ASSERT_FALSE(bad);
    EXPECT_HAS(bad.error().message(), ("token request GET http://" + server_->host() + "/token"));
    EXPECT_HAS(bad.error().message(), ("HTTP 401"));
}

TEST_F(ServerPull, RegistryTokenIsSentAsBearer) {
    TestServer::Knobs k;
    k.bearer_token = "given-token";
    serve(k);
    image::Credentials c;
    c.registry_token = "given-token";
    auto opts = insecure(server_->host());
    opts.credentials = c;
    auto rec = store::pull_image(*images_, ref(), opts);
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(server_->token_requests(), 0);
}

TEST_F(ServerPull, RedirectedBlobsGetNoAuthorizationOnAnotherHost) {
    TestServer::Knobs k;
    k.redirect_blobs = true;  // to localhost:<port>, another authority than 127.0.0.1:<port>
    k.bearer_token = "secret-token";
    serve(k);
    auto rec = store::pull_image(*images_, ref(), insecure(server_->host()));
    ASSERT_TRUE(rec) << rec.error().message();
    expect_stacked_rootfs(*rec);
    auto auths = server_->storage_auth();
    EXPECT_EQ(auths.size(), 4u);  // config + 3 layers, all through the redirect
    for (const auto& a : auths) EXPECT_EQ(a, "");
}

TEST_F(ServerPull, IdentityTokenIsExchangedWithRefreshTokenGrant) {
    TestServer::Knobs k;
    k.bearer_token = "access-1";
    k.refresh_token = "refresh-xyz";
    serve(k);
    image::Credentials c;
    c.identity_token = "refresh-xyz";
    auto opts = insecure(server_->host());
    opts.credentials = c;
    auto rec = store::pull_image(*images_, ref(), opts);
    ASSERT_TRUE(rec) << rec.error().message();
    EXPECT_EQ(server_->token_requests(), 1);

    c.identity_token = "stale";
    opts.credentials = c;
    auto bad = store::pull_image(*images_, ref(), opts);
    ASSERT_FALSE(bad);
    EXPECT_HAS(bad.error().message(), "token request POST http://" + server_->host() + "/token");
    EXPECT_HAS(bad.error().message(), "bad refresh token");
}

TEST_F(ServerPull, KilledPullRunsAgainAndLeavesNoOrphans) {
    TestServer::Knobs k;
    k.slow_ms = 4;  // 256 chunks of 4 KiB: about a second for the big layer
    serve_big(k);
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const std::string root = tmp_.path + "/store";
    const std::string reference = ref();
    auto opts = insecure(server_->host());
    Child child;
    child.pid = ::fork();
    ASSERT_GE(child.pid, 0);
    if (child.pid == 0) {
        ::close(p[0]);
        auto images = store::Images::open(root);
        if (!images) ::_exit(1);
        auto o = opts;
        bool told = false;
        o.progress = [&](const store::PullEvent& e) {
            if (e.kind == store::PullEvent::Kind::layer_bytes && !told) {
                told = true;
                (void)!::write(p[1], "x", 1);
            }
        };
        auto r = store::pull_image(*images, reference, o);
        ::_exit(r ? 0 : 2);
    }
    ::close(p[1]);
    char c;
    ASSERT_EQ(::read(p[0], &c, 1), 1);
    ::close(p[0]);
    ::kill(child.pid, SIGKILL);
    int status = 0;
    ::waitpid(child.pid, &status, 0);
    child.pid = -1;
    ASSERT_TRUE(WIFSIGNALED(status)) << "the pull ended before it was killed";
    // Killed midway: the big layer is not in the store.
    EXPECT_FALSE(images_->content().exists(*image::Digest::parse(layers_[0])));

    auto again = store::Images::open(root);
    ASSERT_TRUE(again) << again.error().message();
    auto rec = store::pull_image(*again, reference, opts);
    ASSERT_TRUE(rec) << rec.error().message();
    expect_stacked_rootfs(*rec);
    expect_nothing_to_prune();
    // No temp entries left visible: the snapshot temp dir is empty after an open, ingest holds only lock files.
    auto reopened = store::Images::open(root);
    ASSERT_TRUE(reopened);
    for (const auto& e : std::filesystem::directory_iterator(root + "/snapshots/tmp"))
        ADD_FAILURE() << "left in snapshots/tmp: " << e.path();
    for (const auto& e : std::filesystem::directory_iterator(root + "/ingest"))
        EXPECT_TRUE(e.path().string().ends_with(".lock")) << e.path();
}

TEST_F(ServerPull, Schema1IsRefused) {
    TestServer::Knobs k;
    layout_.emplace(tmp_.path + "/layout");
    std::map<std::string, std::pair<std::string, std::string>> manifests = {
        {"v1",
         {"application/vnd.docker.distribution.manifest.v1+prettyjws",
          R"({"schemaVersion":1,"name":"x","tag":"v1","fsLayers":[],"history":[]})"}}};
    server_.emplace(*layout_, manifests, k);
    ASSERT_TRUE(server_->start());
    auto rec = store::pull_image(*images_, server_->host() + "/x:v1", insecure(server_->host()));
    ASSERT_FALSE(rec);
    EXPECT_HAS(rec.error().message(), ("schema 1"));
    EXPECT_HAS(rec.error().message(), ("not supported"));
}

}  // namespace
}  // namespace berth::test
