// berth.toml: every key read into DaemonConfig, the shipped example loads, and every kind of mistake is an error
// that names the file and the key.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/fs.hpp"
#include "cri/config.hpp"

namespace berth::cri {
namespace {

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/criimg-config-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/berth.toml";
    }
    void TearDown() override { (void)remove_all(dir_); }

    Result<DaemonConfig> load(const std::string& text) {
        EXPECT_TRUE(write_file(path_, text));
        return load_config(path_, true);
    }
    // The error of loading `text`; fails the test when it loads.
    std::string error_of(const std::string& text) {
        auto c = load(text);
        if (c) {
            ADD_FAILURE() << "loaded:\n" << text;
            return "";
        }
        return c.error().message();
    }

    std::string dir_, path_;
};

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST_F(ConfigTest, MissingDefaultFileIsTheDefaults) {
    auto c = load_config(dir_ + "/absent.toml", false);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->socket_path, "/run/berth/berth.sock");
    EXPECT_EQ(c->root_dir, "/var/lib/berth");
    EXPECT_EQ(c->state_dir, "/run/berth");
    EXPECT_EQ(c->log_level, "info");
    EXPECT_EQ(c->default_handler, "berth");
    ASSERT_EQ(c->handlers.size(), 1u);
    EXPECT_EQ(c->handlers.at("berth").name, "berth");
    EXPECT_TRUE(c->handlers.at("berth").path.empty());
    EXPECT_EQ(c->cgroup_driver, "cgroupfs");
    EXPECT_EQ(c->oom_clamp, OomClamp::automatic);
    EXPECT_EQ(c->cni_conf_dir, "/etc/cni/net.d");
    EXPECT_EQ(c->streaming_address, "127.0.0.1:0");
    EXPECT_EQ(c->streaming_token_lifetime, 60);
    EXPECT_EQ(c->streaming_idle_timeout, 14400);
    EXPECT_EQ(c->streaming_tls_cert, "");
    EXPECT_TRUE(c->registries.hosts.empty());
}

TEST_F(ConfigTest, MissingExplicitFileIsAnError) {
    auto c = load_config(dir_ + "/absent.toml", true);
    ASSERT_FALSE(c);
    EXPECT_CONTAINS(c.error().message(), dir_ + "/absent.toml");
    EXPECT_EQ(c.error().code(), ENOENT);
}

TEST_F(ConfigTest, EmptyFileIsTheDefaults) {
    auto c = load("");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->root_dir, "/var/lib/berth");
    EXPECT_EQ(c->handlers.size(), 1u);
}

TEST_F(ConfigTest, ReadsEveryKey) {
    auto c = load(R"(
socket = "/run/x/x.sock"
root = "/srv/berth"
state_dir = "/run/x"
log_level = "debug"
monitor_path = "/usr/libexec/berth-monitor"
default_runtime = "crun"
cgroup_driver = "cgroupfs"
cgroup_parent = "/kubepods"
oom_clamp = "never"
streaming_address = "[::1]:10010"
streaming_tls_cert = "/etc/berth/stream.crt"
streaming_tls_key = "/etc/berth/stream.key"
streaming_token_lifetime = 30
streaming_idle_timeout = 0
pod_infra_command = "/pause"

[cni]
bin_dirs = ["/a/bin", "/b/bin"]
conf_dir = "/a/net.d"
enabled = false
plugin_timeout = 5

[runtimes.crun]
path = "/usr/bin/crun"
root = "/run/crun-root"
sandboxed = true

[runtimes.berth]
root = "/run/berth-root"

[registries."docker.io"]
mirrors = ["https://m1.example", "http://127.0.0.1:5001"]

[registries."r.local:5000"]
insecure = true
ca_file = "/etc/ca.pem"
cert_file = "/etc/c.pem"
key_file = "/etc/k.pem"
username = "u"
password = "p"

[registries."tok.example"]
auth = "dTpw"
identity_token = "idt"
registry_token = "rt"
)");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->socket_path, "/run/x/x.sock");
    EXPECT_EQ(c->root_dir, "/srv/berth");
    EXPECT_EQ(c->state_dir, "/run/x");
    EXPECT_EQ(c->log_level, "debug");
    EXPECT_EQ(c->monitor_path, "/usr/libexec/berth-monitor");
    EXPECT_EQ(c->default_handler, "crun");
    EXPECT_EQ(c->cgroup_driver, "cgroupfs");
    EXPECT_EQ(c->cgroup_parent, "/kubepods");
    EXPECT_EQ(c->oom_clamp, OomClamp::never);
    EXPECT_EQ(c->streaming_address, "[::1]:10010");
    EXPECT_EQ(c->streaming_tls_cert, "/etc/berth/stream.crt");
    EXPECT_EQ(c->streaming_tls_key, "/etc/berth/stream.key");
    EXPECT_EQ(c->streaming_token_lifetime, 30);
    EXPECT_EQ(c->streaming_idle_timeout, 0);
    EXPECT_EQ(c->pod_infra_command, "/pause");
    EXPECT_EQ(c->cni_bin_dirs, (std::vector<std::string>{"/a/bin", "/b/bin"}));
    EXPECT_EQ(c->cni_conf_dir, "/a/net.d");
    EXPECT_FALSE(c->cni_enabled);
    EXPECT_EQ(c->cni_plugin_timeout_s, 5);
    ASSERT_EQ(c->handlers.size(), 2u);
    const auto& crun = c->handlers.at("crun");
    EXPECT_EQ(crun.name, "crun");
    EXPECT_EQ(crun.path, "/usr/bin/crun");
    EXPECT_EQ(crun.root, "/run/crun-root");
    EXPECT_TRUE(crun.sandboxed);
    EXPECT_EQ(c->handlers.at("berth").root, "/run/berth-root");
    EXPECT_TRUE(c->handlers.at("berth").path.empty());

    ASSERT_EQ(c->registries.hosts.size(), 3u);
    auto docker = c->registries.for_host("docker.io");
    EXPECT_EQ(docker.mirrors, (std::vector<std::string>{"https://m1.example", "http://127.0.0.1:5001"}));
    EXPECT_FALSE(docker.insecure);
    auto local = c->registries.for_host("r.local:5000");
    EXPECT_TRUE(local.insecure);
    EXPECT_EQ(local.ca_file, "/etc/ca.pem");
    EXPECT_EQ(local.cert_file, "/etc/c.pem");
    EXPECT_EQ(local.key_file, "/etc/k.pem");
    EXPECT_EQ(local.credentials.username, "u");
    EXPECT_EQ(local.credentials.password, "p");
    auto tok = c->registries.for_host("tok.example");
    EXPECT_EQ(tok.credentials.auth, "dTpw");
    EXPECT_EQ(tok.credentials.identity_token, "idt");
    EXPECT_EQ(tok.credentials.registry_token, "rt");
    // A host the file does not name gets the defaults.
    auto other = c->registries.for_host("quay.io");
    EXPECT_EQ(other.host, "quay.io");
    EXPECT_TRUE(other.mirrors.empty());
    EXPECT_TRUE(other.credentials.empty());
}

TEST_F(ConfigTest, SchemelessMirrorAndCertWithItsKeyAreAccepted) {
    auto c = load("[registries.\"r\"]\nmirrors = [\"mirror.local:5000\"]\ncert_file = \"/both.pem\"\n");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->registries.for_host("r").mirrors, std::vector<std::string>{"mirror.local:5000"});
    EXPECT_EQ(c->registries.for_host("r").cert_file, "/both.pem");
}

TEST_F(ConfigTest, OomClampValues) {
    EXPECT_EQ(load("oom_clamp = \"auto\"")->oom_clamp, OomClamp::automatic);
    EXPECT_EQ(load("oom_clamp = \"always\"")->oom_clamp, OomClamp::always);
    EXPECT_EQ(load("oom_clamp = \"never\"")->oom_clamp, OomClamp::never);
    EXPECT_CONTAINS(error_of("oom_clamp = \"sometimes\""),
                    "oom_clamp: \"sometimes\" is not one of auto, always, never");
}

TEST_F(ConfigTest, TheShippedExampleLoads) {
    auto c = load_config(std::string(BERTH_SOURCE_DIR) + "/docs/berth.toml.example", true);
    ASSERT_TRUE(c) << c.error().message();
    // The defaults it documents are the real ones.
    auto d = load_config(dir_ + "/absent.toml", false);
    ASSERT_TRUE(d);
    EXPECT_EQ(c->socket_path, d->socket_path);
    EXPECT_EQ(c->root_dir, d->root_dir);
    EXPECT_EQ(c->state_dir, d->state_dir);
    EXPECT_EQ(c->log_level, d->log_level);
    EXPECT_EQ(c->monitor_path, d->monitor_path);
    EXPECT_EQ(c->default_handler, d->default_handler);
    EXPECT_EQ(c->cgroup_driver, d->cgroup_driver);
    EXPECT_EQ(c->cgroup_parent, d->cgroup_parent);
    EXPECT_EQ(c->oom_clamp, d->oom_clamp);
    EXPECT_EQ(c->streaming_address, d->streaming_address);
    EXPECT_EQ(c->pod_infra_command, d->pod_infra_command);
    EXPECT_EQ(c->log_format, d->log_format);
    EXPECT_EQ(c->metrics_address, d->metrics_address);
    EXPECT_EQ(c->cni_bin_dirs, d->cni_bin_dirs);
    EXPECT_EQ(c->cni_conf_dir, d->cni_conf_dir);
    // Its examples.
    EXPECT_EQ(c->handlers.at("crun").path, "/usr/bin/crun");
    EXPECT_EQ(c->handlers.at("runc").path, "/usr/bin/runc");
    EXPECT_EQ(c->handlers.at("runsc").runtime_args,
              (std::vector<std::string>{"--platform=ptrace", "--ignore-cgroups", "--network=host"}));
    EXPECT_EQ(c->registries.for_host("registry.local:5000").credentials.username, "puller");
}

TEST_F(ConfigTest, TheInstalledDefaultIsTheDefaults) {
    auto c = load_config(std::string(BERTH_SOURCE_DIR) + "/packaging/berth.toml", true);
    ASSERT_TRUE(c) << c.error().message();
    auto d = load_config(dir_ + "/absent.toml", false);
    ASSERT_TRUE(d);
    EXPECT_EQ(config_json(*c), config_json(*d));
}

TEST_F(ConfigTest, UnknownKeysAreErrorsNamingTheKey) {
    EXPECT_CONTAINS(error_of("sockett = \"/x\""), path_ + ": sockett: unknown key");
    EXPECT_CONTAINS(error_of("[cni]\nbin_dir = [\"/x\"]"), "cni.bin_dir: unknown key");
    EXPECT_CONTAINS(error_of("[runtimes.crun]\npaht = \"/x\""), "runtimes.crun.paht: unknown key");
    EXPECT_CONTAINS(error_of("[registries.\"r.local:5000\"]\ninsecur = true"),
                    "registries.\"r.local:5000\".insecur: unknown key");
    EXPECT_CONTAINS(error_of("[network]\nx = 1"), "network: unknown key");
}

TEST_F(ConfigTest, TypesAreChecked) {
    EXPECT_CONTAINS(error_of("log_level = 3"), "log_level: expected a string, got an integer");
    EXPECT_CONTAINS(error_of("cni = \"x\""), "cni: expected a table, got a string");
    EXPECT_CONTAINS(error_of("[cni]\nbin_dirs = \"/opt/cni/bin\""), "cni.bin_dirs: expected an array of strings");
    EXPECT_CONTAINS(error_of("[cni]\nbin_dirs = [\"/a\", 2]"), "cni.bin_dirs[1]: expected a string, got an integer");
    EXPECT_CONTAINS(error_of("[cni]\nenabled = \"no\""), "cni.enabled: expected a boolean, got a string");
    EXPECT_CONTAINS(error_of("[cni]\nplugin_timeout = 0"), "cni.plugin_timeout: expected seconds, 1 to 3600");
    EXPECT_CONTAINS(error_of("[cni]\nplugin_timeout = \"5s\""), "cni.plugin_timeout: expected seconds, 1 to 3600");
    EXPECT_CONTAINS(error_of("[runtimes.crun]\nsandboxed = \"yes\""),
                    "runtimes.crun.sandboxed: expected a boolean, got a string");
    EXPECT_CONTAINS(error_of("runtimes = { crun = 1 }"), "runtimes.crun: expected a table, got an integer");
    EXPECT_CONTAINS(error_of("[registries.\"r\"]\nmirrors = \"https://m\""), "registries.r.mirrors: expected an array");
}

TEST_F(ConfigTest, PathsMustBeAbsolute) {
    EXPECT_CONTAINS(error_of("socket = \"berth.sock\""), "socket: \"berth.sock\" is not an absolute path");
    EXPECT_CONTAINS(error_of("root = \"\""), "root: \"\" is not an absolute path");
    EXPECT_CONTAINS(error_of("state_dir = \"run\""), "state_dir: \"run\" is not an absolute path");
    EXPECT_CONTAINS(error_of("monitor_path = \"bin/m\""), "monitor_path: \"bin/m\" is not an absolute path");
    EXPECT_CONTAINS(error_of("[runtimes.crun]\npath = \"crun\""),
                    path_ + ": runtimes.crun.path: \"crun\" is not an absolute path");
    EXPECT_CONTAINS(error_of("[runtimes.crun]\nroot = \"r\""), "runtimes.crun.root: \"r\" is not an absolute path");
    EXPECT_CONTAINS(error_of("[cni]\nbin_dirs = [\"/ok\", \"rel\"]"),
                    "cni.bin_dirs[1]: \"rel\" is not an absolute path");
    EXPECT_CONTAINS(error_of("[cni]\nconf_dir = \"net.d\""), "cni.conf_dir: \"net.d\" is not an absolute path");
    EXPECT_CONTAINS(error_of("[registries.\"r\"]\nca_file = \"ca.pem\""),
                    "registries.r.ca_file: \"ca.pem\" is not an absolute path");
}

TEST_F(ConfigTest, ValuesAreChecked) {
    EXPECT_CONTAINS(error_of("log_level = \"verbose\""),
                    "log_level: \"verbose\" is not one of error, warn, info, debug");
    EXPECT_CONTAINS(error_of("cgroup_driver = \"systemd\""), "cgroup_driver: \"systemd\" is not supported");
    EXPECT_CONTAINS(error_of("cgroup_driver = \"cgroupv2\""), "cgroup_driver: \"cgroupv2\" is not one of");
    EXPECT_CONTAINS(error_of("cgroup_parent = \"kubepods\""), "cgroup_parent: \"kubepods\" must be an absolute");
    EXPECT_CONTAINS(error_of("cgroup_parent = \"/\""), "cgroup_parent: \"/\"");
    EXPECT_CONTAINS(error_of("default_runtime = \"kata\""), "default_runtime: \"kata\" names no runtime");
    EXPECT_CONTAINS(error_of("[runtimes.berth]\npath = \"/usr/bin/runc\""), "runtimes.berth.path:");
    EXPECT_CONTAINS(error_of("streaming_address = \"localhost\""), "streaming_address: \"localhost\" is not host:port");
    EXPECT_CONTAINS(error_of("streaming_address = \"::1:10\""), "streaming_address:");
    EXPECT_CONTAINS(error_of("streaming_address = \"h:70000\""), "streaming_address:");
    EXPECT_CONTAINS(error_of("streaming_tls_cert = \"/c.pem\""), "streaming_tls_cert and streaming_tls_key: set both");
    EXPECT_CONTAINS(error_of("streaming_tls_key = \"k.pem\""), "streaming_tls_key: \"k.pem\" is not an absolute path");
    EXPECT_CONTAINS(error_of("streaming_token_lifetime = 0"), "streaming_token_lifetime: 0 is not a number of seconds");
    EXPECT_CONTAINS(error_of("streaming_token_lifetime = \"1m\""), "streaming_token_lifetime: expected an integer");
    EXPECT_CONTAINS(error_of("streaming_idle_timeout = -1"), "streaming_idle_timeout: -1 is not a number of seconds");
    EXPECT_CONTAINS(error_of("streaming_idle_timeout = \"4h\""), "streaming_idle_timeout: expected an integer");
    EXPECT_CONTAINS(error_of("[registries.\"r\"]\nmirrors = [\"ftp://m.example\"]"),
                    "registries.r.mirrors[0]: \"ftp://m.example\" is not an http:// or https:// URL");
    EXPECT_CONTAINS(error_of("[registries.\"r\"]\nmirrors = [\"\"]"), "registries.r.mirrors[0]: \"\"");
    EXPECT_CONTAINS(error_of("[registries.\"r\"]\nkey_file = \"/k.pem\""), "registries.r: key_file without cert_file");
    EXPECT_CONTAINS(error_of("[registries.\"r\"]\npassword = \"p\""), "registries.r.password: set without a username");
    EXPECT_CONTAINS(error_of("[registries.\"r\"]\nusername = \"u\"\nauth = \"dTpw\""),
                    "registries.r: auth and username");
    EXPECT_CONTAINS(error_of("[registries.\"r/x\"]\ninsecure = true"), "registries.\"r/x\": not a registry host");
    EXPECT_CONTAINS(error_of("[registries.\"index.docker.io\"]\ninsecure = false"),
                    "registries.\"index.docker.io\": references name Docker Hub \"docker.io\"");
}

TEST_F(ConfigTest, SyntaxErrorsGiveLineAndColumn) {
    std::string e = error_of("root = \"/x\"\nsocket = \n");
    EXPECT_CONTAINS(e, path_ + ":2:");
    e = error_of("root = \"/a\"\nroot = \"/b\"\n");  // a duplicate key is a TOML error
    EXPECT_CONTAINS(e, path_ + ":2:");
}

TEST_F(ConfigTest, ValidateChecksOverriddenValues) {
    auto c = load_config(dir_ + "/absent.toml", false);
    ASSERT_TRUE(c);
    c->root_dir = "relative/root";
    auto r = validate_config(*c, "flags");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "flags: root: \"relative/root\" is not an absolute path");
    c->root_dir = "/ok";
    c->log_level = "loud";
    EXPECT_FALSE(validate_config(*c, "flags"));
    c->log_level = "warn";
    EXPECT_TRUE(validate_config(*c, "flags"));
}

}  // namespace
}  // namespace berth::cri

namespace berth::cri {
namespace {

TEST_F(ConfigTest, LogFormatMetricsAddressAndRuntimeArgs) {
    auto c = load(R"(
log_format = "json"
metrics_address = "127.0.0.1:9323"
[runtimes.runsc]
path = "/usr/bin/runsc"
runtime_args = ["--platform=ptrace", "--network=none"]
)");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->log_format, "json");
    EXPECT_EQ(c->metrics_address, "127.0.0.1:9323");
    EXPECT_EQ(c->handlers.at("runsc").runtime_args, (std::vector<std::string>{"--platform=ptrace", "--network=none"}));
    auto j = nlohmann::json::parse(config_json(*c));
    EXPECT_EQ(j.at("log_format"), "json");
    EXPECT_EQ(j.at("metrics_address"), "127.0.0.1:9323");
    EXPECT_EQ(j.at("runtimes").at("runsc").at("runtime_args").size(), 2u);

    for (const char* ok : {"[::1]:9323", "10.1.2.3:0"}) {
        auto v = load(fmt::format("metrics_address = \"{}\"", ok));
        EXPECT_TRUE(v) << ok << ": " << v.error().message();
    }
    EXPECT_CONTAINS(error_of("log_format = \"xml\""), "log_format: \"xml\" is not one of text, json");
    EXPECT_CONTAINS(error_of("metrics_address = \"0.0.0.0:9323\""), "unspecified address");
    EXPECT_CONTAINS(error_of("metrics_address = \"[::]:9323\""), "unspecified address");
    EXPECT_CONTAINS(error_of("metrics_address = \"localhost:9323\""), "not an IPv4 address");
    EXPECT_CONTAINS(error_of("metrics_address = \"127.0.0.1\""), "not host:port");
    EXPECT_CONTAINS(error_of("metrics_address = \"127.0.0.1:99999\""), "not a port number");
    EXPECT_CONTAINS(error_of("[runtimes.berth]\nruntime_args = [\"--debug\"]"),
                    "runtimes.berth.runtime_args: only an external runtime");
    EXPECT_CONTAINS(error_of("[runtimes.x]\npath = \"/x\"\nruntime_args = [\"\"]"),
                    "runtimes.x.runtime_args[0]: an empty argument");
    EXPECT_CONTAINS(error_of("[runtimes.x]\npath = \"/x\"\nruntime_args = \"--a\""),
                    "runtimes.x.runtime_args: expected an array of strings");
}

TEST_F(ConfigTest, JsonShowsEveryKeyButNoSecrets) {
    auto c = load(R"(
root = "/srv/b"
oom_clamp = "always"
[runtimes.crun]
path = "/usr/bin/crun"
[registries."r.local"]
username = "u"
password = "hunter2"
[registries."t.local"]
registry_token = "tok-secret"
)");
    ASSERT_TRUE(c) << c.error().message();
    std::string text = config_json(*c);
    auto j = nlohmann::json::parse(text);
    EXPECT_EQ(j.at("root"), "/srv/b");
    EXPECT_EQ(j.at("oom_clamp"), "always");
    EXPECT_EQ(j.at("runtimes").at("crun").at("path"), "/usr/bin/crun");
    EXPECT_EQ(j.at("runtimes").at("berth").at("path"), "");
    EXPECT_EQ(j.at("registries").at("r.local").at("username"), "u");
    EXPECT_EQ(j.at("registries").at("r.local").at("credentials"), true);
    EXPECT_EQ(j.at("registries").at("t.local").at("credentials"), true);
    EXPECT_EQ(j.at("cni").at("conf_dir"), "/etc/cni/net.d");
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
    EXPECT_EQ(text.find("tok-secret"), std::string::npos) << text;
}

}  // namespace
}  // namespace berth::cri
