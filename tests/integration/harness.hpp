// Test harness for integration tests: a busybox bundle, a private --root, and a way to run the built berth.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace berth::test {

struct CommandResult {
    int exit_code = -1;  // 128+signal when killed
    std::string out, err;
};

// Runs argv with stdin from /dev/null (or `input`), capturing stdout and stderr. extra_fds are dup'ed onto 3, 4, ...
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = {},
                          const std::vector<int>& extra_fds = {});

// The default config of a berth container running `args` in the busybox rootfs (terminal off).
nlohmann::json base_config(const std::vector<std::string>& args);

// `s` without trailing newlines, spaces and carriage returns.
std::string trim(std::string s);

// readlink() or "" on failure.
std::string read_link(const std::string& path);
std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text, int mode = 0644);

// A fixture with a fresh busybox rootfs in a temp bundle and a private state root. TearDown force-deletes every
// container left under the root and removes the temp dirs, also when the test failed.
class BerthTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    // Writes config.json into the bundle.
    void write_config(const nlohmann::json& config);
    // berth --root <root> <args...>
    CommandResult berth(const std::vector<std::string>& args, const std::string& input = {},
                        const std::vector<int>& extra_fds = {});
    // Writes `config`, then `berth run` in the foreground with a generated id.
    CommandResult run_config(const nlohmann::json& config);
    // Shorthand: run `sh -c script` in a default container, with `tweak` applied to the config first.
    CommandResult run_sh(const std::string& script, const std::function<void(nlohmann::json&)>& tweak = {});
    // Entries under the state root (expected empty after failed creates).
    std::vector<std::string> root_entries() const;
    std::string next_id();

    std::string dir_;     // temp dir holding everything
    std::string bundle_;  // dir_/bundle
    std::string rootfs_;  // bundle_/rootfs
    std::string root_;    // dir_/state
    int counter_ = 0;
};

}  // namespace berth::test
