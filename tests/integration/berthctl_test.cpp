// berthctl against a real berthd: every CRI command's exit code and output (table, JSON, YAML), config files,
// logs from a real CRI log, exec exit codes, run --rm / -d. The daemon runs on a private root with the locally
// built busybox image imported (scripts/make-oci-busybox.sh, `berthctl image import`).
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "berthd_process.hpp"
#include "harness.hpp"

namespace berth::test {
namespace {

constexpr const char* kImage = "localhost/berth/busybox:latest";

// Mount points under `dir`, deepest first (a failed test may leave a container's rootfs or a pinned namespace).
void unmount_under(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::vector<std::string> points;
    for (std::string line; std::getline(in, line);) {
        std::istringstream ss(line);
        std::string id, parent, devs, root, point;
        ss >> id >> parent >> devs >> root >> point;
        if (point.starts_with(dir + "/")) points.push_back(point);
    }
    std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& p : points) ::umount2(p.c_str(), MNT_DETACH);
}

class BerthctlTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        // One image archive for the whole suite; each test imports it into its own root.
        image_dir_ = new TempDir("ctl-image");
        archive_ = image_dir_->path() + "/busybox.oci.tar";
        CommandResult r = run_command(
            {BERTH_SOURCE_DIR "/scripts/make-oci-busybox.sh", "--archive", archive_, image_dir_->path() + "/layout"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    static void TearDownTestSuite() {
        delete image_dir_;
        image_dir_ = nullptr;
    }

    void SetUp() override {
        // A short name: the monitors' socket paths under the state dir must fit in sun_path.
        dir_ = std::make_unique<TempDir>("ctl");
        socket_ = dir_->path() + "/berth.sock";
        root_ = dir_->path() + "/root";
        logs_ = dir_->path() + "/logs";
        CommandResult imp = run_command({BERTHCTL_BIN, "image", "import", "--root", root_, archive_});
        ASSERT_EQ(imp.exit_code, 0) << imp.err;
        daemon_ = std::make_unique<BerthdProcess>();
        // Pods with loopback only: none of the host's CNI networks.
        const std::string config = write_file("berth.toml", "[cni]\nenabled = false\n");
        ASSERT_TRUE(daemon_->start(socket_, {"--config", config, "--root", root_, "--state-dir", dir_->path() + "/state"}))
            << "berthd did not start (exit " << daemon_->exit_code() << "):\n"
            << daemon_->output();
    }
    // Pods (and their containers and monitors) go before the daemon, the daemon before its directory.
    void TearDown() override {
        if (daemon_ && daemon_->running()) berthctl({"rmp", "--all", "--force"});
        daemon_.reset();
        if (dir_) unmount_under(dir_->path());
        dir_.reset();
    }

    CommandResult berthctl(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {BERTHCTL_BIN, "--socket", socket_};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command(argv);
    }

    std::string write_file(const std::string& name, const std::string& text) {
        std::string path = dir_->path() + "/" + name;
        write_text(path, text);
        return path;
    }

    // A pod config (YAML) whose log directory is inside the test dir.
    std::string pod_yaml(const std::string& name) {
        std::string log_dir = logs_ + "/" + name;
        std::filesystem::create_directories(log_dir);
        return write_file(name + "-pod.yaml", "metadata:\n  name: " + name + "\n  namespace: ctl-test\n  uid: uid-" +
                                                  name + "\n  attempt: 0\nlog_directory: " + log_dir +
                                                  "\nlabels:\n  suite: berthctl\n  pod: " + name +
                                                  "\nlinux:\n  security_context:\n    namespace_options:\n"
                                                  "      pid: CONTAINER\n");
    }
    std::string container_json(const std::string& name, const std::vector<std::string>& args) {
        nlohmann::json c = {{"metadata", {{"name", name}}},
                            {"image", {{"image", kImage}}},
                            {"args", args},
                            {"logPath", name + ".log"},
                            {"labels", {{"ctr", name}}},
                            {"linux", {{"securityContext", {{"namespaceOptions", {{"pid", "CONTAINER"}}}}}}}};
        return write_file(name + "-ctr.json", c.dump());
    }

    // runp + create + start of `sh -c script`; returns {pod id, container id}.
    std::pair<std::string, std::string> start_container(const std::string& name, const std::string& script) {
        std::string pod_config = pod_yaml(name);
        CommandResult runp = berthctl({"runp", pod_config});
        EXPECT_EQ(runp.exit_code, 0) << runp.err;
        std::string pod = trim(runp.out);
        CommandResult create = berthctl({"create", pod, container_json(name, {"sh", "-c", script}), pod_config});
        EXPECT_EQ(create.exit_code, 0) << create.err;
        std::string ctr = trim(create.out);
        CommandResult start = berthctl({"start", ctr});
        EXPECT_EQ(start.exit_code, 0) << start.err;
        return {pod, ctr};
    }

    // Waits (up to 20 s) until the container's state is `state`.
    bool wait_state(const std::string& ctr, const std::string& state) {
        for (int i = 0; i < 200; ++i) {
            CommandResult r = berthctl({"inspect", ctr});
            if (r.exit_code == 0 && nlohmann::json::parse(r.out)["status"]["state"] == state) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return false;
    }

    static TempDir* image_dir_;
    static std::string archive_;
    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<BerthdProcess> daemon_;
    std::string socket_, root_, logs_;
};

TempDir* BerthctlTest::image_dir_ = nullptr;
std::string BerthctlTest::archive_;

// ---- images (CRI ImageService) ----

TEST_F(BerthctlTest, ImagesTableJsonYamlAndQuiet) {
    CommandResult table = berthctl({"images"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("IMAGE                     TAG      IMAGE ID        SIZE\n"), std::string::npos)
        << table.out;
    EXPECT_NE(table.out.find("localhost/berth/busybox   latest   "), std::string::npos) << table.out;

    CommandResult json = berthctl({"images", "-o", "json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    auto j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["images"].size(), 1u);
    const std::string id = j["images"][0]["id"];
    EXPECT_TRUE(id.starts_with("sha256:")) << id;
    EXPECT_EQ(j["images"][0]["repoTags"][0], kImage);
    // The short id in the table is the digest's first 13 hex digits.
    EXPECT_NE(table.out.find(id.substr(7, 13) + "   "), std::string::npos) << table.out;

    CommandResult yaml = berthctl({"-o", "yaml", "images"});
    ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
    EXPECT_NE(yaml.out.find("  - id: " + id + "\n"), std::string::npos) << yaml.out;

    CommandResult quiet = berthctl({"images", "-q"});
    ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
    EXPECT_EQ(quiet.out, id + "\n");
}

TEST_F(BerthctlTest, InspectiAndRmi) {
    CommandResult inspect = berthctl({"inspecti", kImage});
    ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
    auto j = nlohmann::json::parse(inspect.out);
    EXPECT_EQ(j["status"]["repoTags"][0], kImage);

    CommandResult missing = berthctl({"inspecti", "localhost/ctl/none:1"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("localhost/ctl/none:1: no such image"), std::string::npos) << missing.err;
    CommandResult rmi_missing = berthctl({"rmi", "localhost/ctl/none:1"});
    EXPECT_EQ(rmi_missing.exit_code, 1);

    CommandResult rmi = berthctl({"rmi", kImage});
    ASSERT_EQ(rmi.exit_code, 0) << rmi.err;
    EXPECT_TRUE(rmi.out.starts_with("Deleted: sha256:")) << rmi.out;
    CommandResult after = berthctl({"images", "-q"});
    ASSERT_EQ(after.exit_code, 0) << after.err;
    EXPECT_EQ(after.out, "");
}

// ---- argument and config errors (no state is made) ----

TEST_F(BerthctlTest, BadConfigFilesAndFlagsFailNamingTheCause) {
    std::string bad = write_file("bad.yaml", "metadata:\n  name: x\nbogus_field: 1\n");
    CommandResult r = berthctl({"runp", bad});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(bad + ": not a valid runtime.v1.PodSandboxConfig"), std::string::npos) << r.err;
    CommandResult missing = berthctl({"runp", dir_->path() + "/nope.json"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("open " + dir_->path() + "/nope.json"), std::string::npos) << missing.err;
    CommandResult flag = berthctl({"ps", "--bogus"});
    EXPECT_EQ(flag.exit_code, 1);
    EXPECT_NE(flag.err.find("ps: unknown flag --bogus"), std::string::npos) << flag.err;
    CommandResult it = berthctl({"exec", "-it", "someid", "sh"});
    EXPECT_EQ(it.exit_code, 1);
    // exec -it streams now: a missing container is named by the Exec rpc's answer.
    EXPECT_NE(it.err.find("container someid not found"), std::string::npos) << it.err;
}

// ---- pods ----

TEST_F(BerthctlTest, PodLifecycleWithFiltersAndOutputs) {
    std::string pod_config = pod_yaml("web");
    CommandResult runp = berthctl({"runp", pod_config});
    ASSERT_EQ(runp.exit_code, 0) << runp.err;
    const std::string id = trim(runp.out);
    ASSERT_FALSE(id.empty());

    CommandResult table = berthctl({"pods"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_TRUE(table.out.starts_with("POD ID          CREATED")) << table.out;
    EXPECT_NE(table.out.find(id.substr(0, 13) + "   "), std::string::npos) << table.out;
    EXPECT_EQ(table.out.find(id), std::string::npos) << "ids are truncated in tables: " << table.out;
    EXPECT_NE(table.out.find("Ready   web    ctl-test    0         "), std::string::npos) << table.out;
    CommandResult full = berthctl({"pods", "--no-trunc"});
    EXPECT_NE(full.out.find(id), std::string::npos) << full.out;

    EXPECT_EQ(berthctl({"pods", "-q", "--name", "we"}).out, id + "\n");
    EXPECT_EQ(berthctl({"pods", "-q", "--name", "other"}).out, "");
    EXPECT_EQ(berthctl({"pods", "-q", "--namespace", "ctl-test"}).out, id + "\n");
    EXPECT_EQ(berthctl({"pods", "-q", "--label", "pod=web"}).out, id + "\n");
    EXPECT_EQ(berthctl({"pods", "-q", "--label", "pod=nope"}).out, "");
    EXPECT_EQ(berthctl({"pods", "-q", "--state", "ready"}).out, id + "\n");
    EXPECT_EQ(berthctl({"pods", "-q", "--state", "notready"}).out, "");

    CommandResult json = berthctl({"pods", "-o", "json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    auto j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["items"].size(), 1u);
    EXPECT_EQ(j["items"][0]["id"], id);
    EXPECT_EQ(j["items"][0]["metadata"]["name"], "web");
    EXPECT_EQ(j["items"][0]["state"], "SANDBOX_READY");

    CommandResult inspect = berthctl({"inspectp", id});
    ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
    auto ij = nlohmann::json::parse(inspect.out);
    EXPECT_EQ(ij["status"]["id"], id);
    EXPECT_EQ(ij["status"]["labels"]["suite"], "berthctl");

    // A ready pod is not removed without --force.
    CommandResult rmp_ready = berthctl({"rmp", id});
    EXPECT_EQ(rmp_ready.exit_code, 1);
    EXPECT_NE(rmp_ready.err.find("is ready"), std::string::npos) << rmp_ready.err;

    CommandResult stopp = berthctl({"stopp", id});
    ASSERT_EQ(stopp.exit_code, 0) << stopp.err;
    EXPECT_EQ(stopp.out, "Stopped sandbox " + id + "\n");
    EXPECT_EQ(berthctl({"pods", "-q", "--state", "notready"}).out, id + "\n");
    CommandResult rmp = berthctl({"rmp", id});
    ASSERT_EQ(rmp.exit_code, 0) << rmp.err;
    EXPECT_EQ(rmp.out, "Removed sandbox " + id + "\n");
    EXPECT_EQ(berthctl({"pods", "-q"}).out, "");
    CommandResult gone = berthctl({"inspectp", id});
    EXPECT_EQ(gone.exit_code, 1);
}

// ---- containers ----

TEST_F(BerthctlTest, ContainerLifecyclePsInspectStopRm) {
    auto [pod, ctr] = start_container("sleeper", "echo started; exec sleep 300");
    ASSERT_TRUE(wait_state(ctr, "CONTAINER_RUNNING"));

    CommandResult ps = berthctl({"ps"});
    ASSERT_EQ(ps.exit_code, 0) << ps.err;
    EXPECT_TRUE(ps.out.starts_with("CONTAINER       IMAGE")) << ps.out;
    EXPECT_NE(ps.out.find(ctr.substr(0, 13)), std::string::npos) << ps.out;
    EXPECT_NE(ps.out.find("Running   sleeper   0         " + pod.substr(0, 13) + "   sleeper"), std::string::npos)
        << ps.out;
    EXPECT_EQ(berthctl({"ps", "-q", "--pod", pod}).out, ctr + "\n");
    EXPECT_EQ(berthctl({"ps", "-q", "--name", "sleep"}).out, ctr + "\n");
    EXPECT_EQ(berthctl({"ps", "-q", "--label", "ctr=sleeper"}).out, ctr + "\n");
    EXPECT_EQ(berthctl({"ps", "-q", "--state", "exited"}).out, "");

    CommandResult json = berthctl({"ps", "-o", "json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    auto j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["containers"].size(), 1u);
    EXPECT_EQ(j["containers"][0]["id"], ctr);
    EXPECT_EQ(j["containers"][0]["podSandboxId"], pod);

    CommandResult inspect = berthctl({"inspect", ctr});
    ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
    auto ij = nlohmann::json::parse(inspect.out);
    EXPECT_EQ(ij["status"]["state"], "CONTAINER_RUNNING");
    EXPECT_EQ(ij["status"]["logPath"], logs_ + "/sleeper/sleeper.log");
    CommandResult yaml = berthctl({"inspect", ctr, "-o", "yaml"});
    EXPECT_NE(yaml.out.find("  state: CONTAINER_RUNNING\n"), std::string::npos) << yaml.out;

    CommandResult rm_running = berthctl({"rm", ctr});
    EXPECT_EQ(rm_running.exit_code, 1);
    EXPECT_NE(rm_running.err.find("container is running"), std::string::npos) << rm_running.err;

    CommandResult stop = berthctl({"stop", "-t", "1", ctr});
    ASSERT_EQ(stop.exit_code, 0) << stop.err;
    EXPECT_EQ(stop.out, ctr + "\n");
    EXPECT_EQ(berthctl({"ps", "-q"}).out, "");
    EXPECT_EQ(berthctl({"ps", "-a", "-q"}).out, ctr + "\n");
    EXPECT_EQ(berthctl({"ps", "-q", "--state", "exited"}).out, ctr + "\n");

    CommandResult rm = berthctl({"rm", ctr});
    ASSERT_EQ(rm.exit_code, 0) << rm.err;
    EXPECT_EQ(berthctl({"ps", "-a", "-q"}).out, "");
    EXPECT_EQ(berthctl({"inspect", ctr}).exit_code, 1);
}

TEST_F(BerthctlTest, LogsTailSinceTimestampsAndFollow) {
    // Five stdout lines and one stderr line, then a 40000-byte line (written as partial records), then exit after
    // a pause that a follower must wait through.
    auto [pod, ctr] = start_container("logger",
                                      "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; "
                                      "head -c 40000 /dev/zero | tr '\\0' x; echo; sleep 2; echo last");
    CommandResult follow = berthctl({"logs", "-f", ctr});
    ASSERT_EQ(follow.exit_code, 0) << follow.err;
    EXPECT_EQ(follow.out, "line1\nline2\nline3\nline4\nline5\n" + std::string(40000, 'x') + "\nlast\n");
    EXPECT_EQ(follow.err, "oops\n");
    ASSERT_TRUE(wait_state(ctr, "CONTAINER_EXITED"));

    // The raw file really has partial records; logs joined them.
    std::string raw = read_text(logs_ + "/logger/logger.log");
    EXPECT_NE(raw.find(" stdout P "), std::string::npos);

    CommandResult tail = berthctl({"logs", "--tail", "2", ctr});
    ASSERT_EQ(tail.exit_code, 0) << tail.err;
    EXPECT_EQ(tail.out, std::string(40000, 'x') + "\nlast\n");
    CommandResult tail0 = berthctl({"logs", "--tail", "0", ctr});
    EXPECT_EQ(tail0.out, "");
    CommandResult ts = berthctl({"logs", "--timestamps", "--tail", "1", ctr});
    ASSERT_EQ(ts.exit_code, 0) << ts.err;
    EXPECT_TRUE(ts.out.ends_with("Z last\n")) << ts.out;
    EXPECT_EQ(ts.out[4], '-') << ts.out;
    CommandResult future = berthctl({"logs", "--since", "2099-01-01T00:00:00Z", ctr});
    EXPECT_EQ(future.out, "");
    CommandResult recent = berthctl({"logs", "--since", "1h", ctr});
    EXPECT_NE(recent.out.find("line1\n"), std::string::npos);
    CommandResult bad = berthctl({"logs", "--since", "yesterday", ctr});
    EXPECT_EQ(bad.exit_code, 1);
}

TEST_F(BerthctlTest, ExecPrintsOutputAndExitsWithTheCommandsCode) {
    auto [pod, ctr] = start_container("execd", "exec sleep 300");
    ASSERT_TRUE(wait_state(ctr, "CONTAINER_RUNNING"));
    CommandResult ok = berthctl({"exec", ctr, "cat", "/etc/hostname"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    CommandResult code = berthctl({"exec", ctr, "--", "sh", "-c", "echo out; echo err >&2; exit 7"});
    EXPECT_EQ(code.exit_code, 7);
    EXPECT_EQ(code.out, "out\n");
    EXPECT_EQ(code.err, "err\n");
    CommandResult flags = berthctl({"exec", "--timeout", "10", ctr, "ls", "-d", "/etc"});
    EXPECT_EQ(flags.exit_code, 0) << flags.err;
    EXPECT_EQ(flags.out, "/etc\n");
}

TEST_F(BerthctlTest, StatsListsRunningContainers) {
    auto [pod, ctr] = start_container("statsd", "exec sleep 300");
    ASSERT_TRUE(wait_state(ctr, "CONTAINER_RUNNING"));
    CommandResult table = berthctl({"stats"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    // Columns are as wide as their widest cell: compare the header's words, and the row's first two cells.
    std::istringstream header(table.out.substr(0, table.out.find('\n')));
    std::vector<std::string> words{std::istream_iterator<std::string>(header), {}};
    EXPECT_EQ(words, (std::vector<std::string>{"CONTAINER", "NAME", "CPU", "%", "MEM", "DISK", "INODES"})) << table.out;
    EXPECT_NE(table.out.find("\n" + ctr.substr(0, 13) + "   statsd   "), std::string::npos) << table.out;
    CommandResult json = berthctl({"stats", "-o", "json", "--id", ctr});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    auto j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["stats"].size(), 1u);
    EXPECT_EQ(j["stats"][0]["attributes"]["id"], ctr);
}

// ---- run ----

TEST_F(BerthctlTest, RunRmPrintsLogsExitsWithTheCodeAndLeavesNothing) {
    CommandResult r = berthctl({"run", "--rm", "--log-dir", logs_, "--name", "once", kImage, "--", "sh", "-c",
                                "echo hello from run; echo to-stderr >&2; exit 3"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.out, "hello from run\n");
    EXPECT_NE(r.err.find("to-stderr\n"), std::string::npos) << r.err;
    EXPECT_EQ(berthctl({"pods", "-q"}).out, "");
    EXPECT_EQ(berthctl({"ps", "-a", "-q"}).out, "");
    EXPECT_TRUE(std::filesystem::is_empty(logs_)) << "run --rm removes the log directory it made";
}

TEST_F(BerthctlTest, RunDetachPrintsIdsAndKeepsRunning) {
    CommandResult r = berthctl({"run", "-d", "--log-dir", logs_, kImage, "sleep", "300"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream ids(r.out);
    std::string pod, ctr;
    ids >> pod >> ctr;
    ASSERT_FALSE(ctr.empty()) << r.out;
    EXPECT_EQ(berthctl({"pods", "-q"}).out, pod + "\n");
    EXPECT_TRUE(wait_state(ctr, "CONTAINER_RUNNING"));
    CommandResult name = berthctl({"ps", "-o", "json"});
    auto j = nlohmann::json::parse(name.out);
    ASSERT_EQ(j["containers"].size(), 1u);
    EXPECT_TRUE(j["containers"][0]["metadata"]["name"].get<std::string>().starts_with("berthctl-"));
    CommandResult rmp = berthctl({"rmp", "-f", pod});
    ASSERT_EQ(rmp.exit_code, 0) << rmp.err;
    EXPECT_EQ(berthctl({"ps", "-a", "-q"}).out, "");
}

}  // namespace
}  // namespace berth::test
