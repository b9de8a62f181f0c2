// src/cni/config: network configuration files, validation errors that name file and field, version negotiation,
// the lowest-named file of a dir, plugin lookup.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "cni/config.hpp"
#include "common/fs.hpp"

namespace berth::cni {
namespace {

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

std::string error_of(std::string_view text, bool as_list = true) {
    auto r = parse_network_config(text, "t.conflist", as_list);
    return r ? std::string("(parsed)") : r.error().message();
}

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/bcni-unit-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

TEST(CniConfig, ParsesAListWithItsPlugins) {
    auto n = parse_network_config(R"({"cniVersion":"1.0.0","name":"net1","disableCheck":true,
        "plugins":[{"type":"bridge","bridge":"b0","ipam":{"type":"host-local"}},
                   {"type":"portmap","capabilities":{"portMappings":true}}]})",
                                  "f.conflist", true);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->name, "net1");
    EXPECT_EQ(n->cni_version, "1.0.0");
    EXPECT_TRUE(n->disable_check);
    EXPECT_FALSE(n->disable_gc);
    ASSERT_EQ(n->plugins.size(), 2u);
    EXPECT_EQ(n->plugins[0].at("bridge"), "b0");
    EXPECT_EQ(plugin_binaries(*n), (std::vector<std::string>{"bridge", "host-local", "portmap"}));
    // What is cached per pod reads back the same.
    auto again = parse_network_config(n->to_json().dump(), "", true);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->to_json(), n->to_json());
}

TEST(CniConfig, ASingleConfBecomesAOnePluginList) {
    auto n = parse_network_config(
        R"({"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"b1","ipam":{"type":"host-local"}})",
        "x.conf", false);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->name, "single");
    EXPECT_EQ(n->cni_version, "0.4.0");
    ASSERT_EQ(n->plugins.size(), 1u);
    EXPECT_EQ(n->plugins[0].at("type"), "bridge");
    EXPECT_FALSE(n->plugins[0].contains("name"));
    EXPECT_FALSE(n->plugins[0].contains("cniVersion"));
    // A .conf with "plugins" is a list.
    auto list = parse_network_config(R"({"cniVersion":"1.0.0","name":"l","plugins":[{"type":"x"}]})", "y.conf", false);
    ASSERT_TRUE(list);
    EXPECT_EQ(list->plugins.size(), 1u);
}

TEST(CniConfig, ErrorsNameTheFileAndTheField) {
    EXPECT_CONTAINS(error_of("{"), "t.conflist: not valid JSON");
    EXPECT_CONTAINS(error_of("[]"), "t.conflist: not a JSON object");
    EXPECT_CONTAINS(error_of(R"({"name":"n","plugins":[{"type":"a"}]})"), "t.conflist: cniVersion: missing");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","plugins":[{"type":"a"}]})"), "t.conflist: name: missing");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"-bad","plugins":[{"type":"a"}]})"), "name: \"-bad\"");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n"})"), "t.conflist: plugins: missing");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n","plugins":[]})"), "plugins: empty");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"},{"x":1}]})"),
                    "t.conflist: plugins[1].type: missing");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../bin/sh"}]})"),
                    "plugins[0].type: \"../bin/sh\" is not a plugin name");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":7}]})"),
                    "plugins[0].type: not a string");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","capabilities":[1]}]})"),
                    "plugins[0].capabilities: not an object");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"9.0.0","name":"n","plugins":[{"type":"a"}]})"),
                    "cniVersion: \"9.0.0\" is not supported");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n","disableGC":"yes","plugins":[{"type":"a"}]})"),
                    "disableGC: not a boolean");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n","type":"bridge"})", false), "(parsed)");
    EXPECT_CONTAINS(error_of(R"({"cniVersion":"1.0.0","name":"n"})", false), "t.conflist: type: missing");
}

TEST(CniConfig, CniVersionsPicksTheHighestSupported) {
    auto n = parse_network_config(
        R"({"cniVersion":"1.0.0","cniVersions":["0.4.0","1.1.0","7.0.0"],"name":"v","plugins":[{"type":"a"}]})", "",
        true);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->cni_version, "1.1.0");
    // None of cniVersions supported: cniVersion decides.
    n = parse_network_config(R"({"cniVersion":"1.0.0","cniVersions":["8.0.0"],"name":"v","plugins":[{"type":"a"}]})",
                             "", true);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->cni_version, "1.0.0");
    EXPECT_EQ(compare_versions("0.3.1", "0.4.0"), -1);
    EXPECT_EQ(compare_versions("1.1.0", "1.0.0"), 1);
    EXPECT_EQ(compare_versions("1.0", "1.0.0"), 0);
    EXPECT_EQ(compare_versions("0.10.0", "0.9.0"), 1);
}

TEST(CniConfig, TheLowestNamedFileWinsAndOthersAreIgnored) {
    TempDir d;
    auto missing = load_default_network(d.path() + "/nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_CONTAINS(missing.error().message(), "no network configuration");

    ASSERT_TRUE(write_file(d.path() + "/cni.lock", ""));
    ASSERT_TRUE(
        write_file(d.path() + "/99-z.conflist", R"({"cniVersion":"1.0.0","name":"z","plugins":[{"type":"a"}]})"));
    ASSERT_TRUE(write_file(d.path() + "/20-b.conf", R"({"cniVersion":"0.3.1","name":"b","type":"bridge"})"));
    auto n = load_default_network(d.path());
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->name, "b");
    EXPECT_EQ(n->file, d.path() + "/20-b.conf");
    // A broken lowest file is the answer, with its error.
    ASSERT_TRUE(write_file(d.path() + "/10-a.conflist", R"({"cniVersion":"1.0.0","name":"a","plugins":[{}]})"));
    n = load_default_network(d.path());
    ASSERT_FALSE(n);
    EXPECT_CONTAINS(n.error().message(), d.path() + "/10-a.conflist: plugins[0].type: missing");
    // .conflist must be a list.
    ASSERT_TRUE(write_file(d.path() + "/10-a.conflist", R"({"cniVersion":"1.0.0","name":"a","type":"bridge"})"));
    n = load_default_network(d.path());
    ASSERT_FALSE(n);
    EXPECT_CONTAINS(n.error().message(), "10-a.conflist: plugins: missing");
}

TEST(CniConfig, FindPluginSearchesTheDirsInOrder) {
    TempDir a, b;
    ASSERT_TRUE(write_file(b.path() + "/bridge", "#!/bin/sh\n", 0755));
    ASSERT_TRUE(write_file(a.path() + "/notexec", "", 0644));
    auto found = find_plugin("bridge", {a.path(), b.path()});
    ASSERT_TRUE(found) << found.error().message();
    EXPECT_EQ(*found, b.path() + "/bridge");
    auto missing = find_plugin("notexec", {a.path(), b.path()});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message(), "plugin \"notexec\" not found in " + a.path() + ":" + b.path());
}

}  // namespace
}  // namespace berth::cni
