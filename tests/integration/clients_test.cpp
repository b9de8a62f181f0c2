// Real clients drive the built berth the way they drive runc: podman (through its conmon), containerd's ctr
// (through containerd-shim-runc-v2) and conmon invoked directly as CRI-O does. A failure here is a runc
// compatibility bug in berth, not in the client.
//
// Every client runs on private state: podman on its own storage, run root, tmp dir and config files (it gives its
// runtime no --root, and --runtime-flag does not reach the cleanup it runs on exit, so berth's state for podman's
// containers is under berth's default root, by podman's unique ids, and TearDown deletes it); containerd
// started by the test on its own root, state and socket; conmon with its own dirs. TearDown stops what the test
// started (by pid), unmounts what is left under the test's dir and removes the cgroups made for it, also when the
// test failed. Cases that need cgroup support (memory limit, pause/resume, update) skip, printing why, while
// `berth update` / `berth pause` answer "not supported"; they run as soon as berth implements them.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "harness.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

// Polls `ready` every 50 ms until it holds or `max_ms` passed: waiting for a daemon or an exit file, not a timing
// assertion (the cap only keeps a broken run from hanging the suite).
bool wait_for(const std::function<bool()>& ready, int max_ms = 60000) {
    for (int waited = 0; waited < max_ms; waited += 50) {
        if (ready()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return ready();
}


bool exists(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0;
}

// /proc/<pid>/cmdline with its NULs as spaces.
std::string cmdline_of(pid_t pid) {
    std::string s = read_text("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(s.begin(), s.end(), '\0', ' ');
    return s;
}

bool alive(pid_t pid) {
    return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// The client binaries that `make deps` installs from Debian.
std::string program(const char* name) {
    for (const char* dir : {"/usr/bin/", "/usr/sbin/", "/usr/local/bin/"})
        if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return std::string(dir) + name;
    return {};
}

// Unmounts every mount point under `dir` (deepest first), lazily: a test that failed half-way may leave
// overlay, tmpfs or shm mounts of a client behind.
void unmount_under(const std::string& dir) {
    std::vector<std::string> points;
    std::istringstream in(read_text("/proc/self/mountinfo"));
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, point;
        fields >> id >> parent >> devno >> root >> point;
        if (point.rfind(dir + "/", 0) == 0) points.push_back(point);
    }
    std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& p : points) ::umount2(p.c_str(), MNT_DETACH);
}

// Removes a cgroup directory tree bottom-up in every v1 hierarchy (and the unified one): `relative` is a path
// below the hierarchy roots, made for this test only.
void remove_cgroup_tree(const std::string& relative) {
    std::function<void(const std::string&)> rm = [&](const std::string& d) {
        DIR* dir = ::opendir(d.c_str());
        if (!dir) return;
        std::vector<std::string> subs;
        while (struct dirent* de = ::readdir(dir))
            if (de->d_type == DT_DIR && std::string(de->d_name) != "." && std::string(de->d_name) != "..")
                subs.push_back(d + "/" + de->d_name);
        ::closedir(dir);
        for (const auto& s : subs) rm(s);
        ::rmdir(d.c_str());
    };
    DIR* top = ::opendir("/sys/fs/cgroup");
    if (!top) return;
    while (struct dirent* de = ::readdir(top)) {
        std::string name = de->d_name;
        if (name == "." || name == ".." || de->d_type != DT_DIR) continue;
        rm("/sys/fs/cgroup/" + name + "/" + relative);
    }
    ::closedir(top);
}

// The directory of `pid`'s cgroup in the v1 hierarchy of `controller`, read from the host's view.
std::string cgroup_dir_of(pid_t pid, const std::string& controller) {
    std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/cgroup"));
    for (std::string line; std::getline(in, line);) {
        auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
        if (c1 == std::string::npos || c2 == std::string::npos) continue;
        std::string controllers = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
        if (controllers.find("," + controller + ",") != std::string::npos)
            return "/sys/fs/cgroup/" + controller + line.substr(c2 + 1);
    }
    return {};
}

// The runtime podman and containerd are given: the built berth, or BERTH_TEST_RUNTIME (e.g. /usr/sbin/runc) to
// check that a failing case fails because of berth and not of the test.
std::string runtime_bin() {
    const char* other = ::getenv("BERTH_TEST_RUNTIME");
    return other && *other ? other : BERTH_BIN;
}

// Empty when `berth <command>` is implemented; otherwise berth's answer, the reason for skipping. berth is asked
// about a container that does not exist: an implemented command says so, an unimplemented one "not supported".
std::string missing_support(const std::vector<std::string>& command) {
    std::string root = "/tmp/berth-clients-probe-" + std::to_string(::getpid());
    std::vector<std::string> argv = {runtime_bin(), "--root", root};
    argv.insert(argv.end(), command.begin(), command.end());
    argv.push_back("no-such-container");
    CommandResult r = run_command(argv);
    ::rmdir(root.c_str());
    if (r.exit_code != 0 && r.err.find("not supported") != std::string::npos)
        return "berth " + command.front() + ": " + trim(r.err);
    return {};
}

// The busybox OCI archive (scripts/make-oci-image.sh), built once per test binary and removed at exit.
class ImageArchive : public ::testing::Environment {
public:
    static const std::string& path() {
        static std::string built = [] {
            std::string p = "/tmp/berth-clients-image-" + std::to_string(::getpid()) + ".tar";
            CommandResult r =
                run_command({"/bin/bash", std::string(BERTH_SOURCE_DIR) + "/scripts/make-oci-image.sh", p});
            EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
            return p;
        }();
        return built;
    }
    void TearDown() override { ::unlink(("/tmp/berth-clients-image-" + std::to_string(::getpid()) + ".tar").c_str()); }
};
[[maybe_unused]] ::testing::Environment* const image_env = ::testing::AddGlobalTestEnvironment(new ImageArchive);

// A temp dir per test, with unmount + removal at the end.
class ClientTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-cl-XXXXXX";  // short: containerd's sockets live in here
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        ::chmod(dir_.c_str(), 0755);
        tag_ = "berth-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_);
    }
    void TearDown() override {
        if (dir_.empty()) return;
        unmount_under(dir_);
        run_command({"/bin/rm", "-rf", "--one-file-system", dir_});
    }
    // A unique name for this test's containers, namespaces and cgroups.
    std::string tag_;
    std::string dir_;
    static inline int counter_ = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// podman --runtime <berth>

class Podman : public ClientTest {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(ClientTest::SetUp());
        podman_ = program("podman");
        ASSERT_FALSE(podman_.empty()) << "podman is not installed: run make deps";
        struct rlimit nofile {};
        ::getrlimit(RLIMIT_NOFILE, &nofile);
        // Raising a hard limit needs CAP_SYS_RESOURCE, which this kind of host lacks: stay at the host's limits.
        std::string nofile_limit = std::to_string(nofile.rlim_max);
        write_text(dir_ + "/containers.conf",
                   "[containers]\n"
                   "netns = \"none\"\n"
                   "pids_limit = 0\n"
                   "default_ulimits = [\"nofile=" +
                       nofile_limit + ":" + nofile_limit +
                       "\", \"nproc=32768:32768\"]\n"
                       "log_driver = \"k8s-file\"\n"
                       "[engine]\n"
                       "cgroup_manager = \"cgroupfs\"\n"
                       "events_logger = \"file\"\n"
                       "tmp_dir = \"" +
                       dir_ + "/tmp\"\n");
        write_text(dir_ + "/storage.conf", "[storage]\ndriver = \"vfs\"\nrunroot = \"" + dir_ +
                                               "/runroot\"\ngraphroot = \"" + dir_ + "/graph\"\n");
        ::setenv("CONTAINERS_CONF", (dir_ + "/containers.conf").c_str(), 1);
        ::setenv("CONTAINERS_STORAGE_CONF", (dir_ + "/storage.conf").c_str(), 1);
        CommandResult load = podman({"load", "-i", ImageArchive::path()});
        ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
    }
    void TearDown() override {
        if (!podman_.empty() && !dir_.empty()) {
            // Containers podman may have lost track of (a failed test): their state is under berth's default root.
            CommandResult ids = podman({"ps", "--all", "--no-trunc", "--format", "{{.ID}}"});
            std::istringstream in(ids.out);
            for (std::string id; std::getline(in, id);)
                if (!id.empty()) run_command({BERTH_BIN, "delete", "--force", id});
            podman({"rm", "--all", "--force", "--time", "0"});
            podman({"rmi", "--all", "--force"});
        }
        ::unsetenv("CONTAINERS_CONF");
        ::unsetenv("CONTAINERS_STORAGE_CONF");
        ClientTest::TearDown();
        remove_cgroup_tree(tag_);
    }
    CommandResult podman(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {podman_,     "--root",          dir_ + "/graph",
                                         "--runroot", dir_ + "/runroot", "--storage-driver",
                                         "vfs",       "--runtime",       runtime_bin()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command(argv);
    }
    // `podman run` with this test's cgroup parent, so every cgroup podman makes is under one removable tree.
    CommandResult podman_run(const std::vector<std::string>& opts, const std::vector<std::string>& command) {
        std::vector<std::string> args = {"run", "--cgroup-parent", "/" + tag_};
        args.insert(args.end(), opts.begin(), opts.end());
        args.push_back(kImage);
        args.insert(args.end(), command.begin(), command.end());
        return podman(args);
    }
    std::string inspect(const std::string& name, const std::string& format) {
        CommandResult r = podman({"inspect", "--format", format, name});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return trim(r.out);
    }
    static constexpr const char* kImage = "localhost/berth-busybox:latest";
    std::string podman_;
};

TEST_F(Podman, RunsInTheForegroundWithOutputAndExitCode) {
    CommandResult r = podman_run({"--rm"}, {"sh", "-c", "echo hello from $(hostname); cat /proc/1/cmdline; exit 3"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.out.find("hello from "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("sh"), std::string::npos) << r.out;
}

TEST_F(Podman, RunExecStopRm) {
    std::string name = tag_ + "-sleeper";
    // pid 1 of a pid namespace ignores SIGTERM unless it handles it: this one exits 0 on it.
    std::string script = "trap 'exit 0' TERM; while :; do sleep 1; done";
    CommandResult run = podman_run({"-d", "--name", name}, {"sh", "-c", script});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(inspect(name, "{{.State.Status}}"), "running");
    pid_t pid = std::stoi(inspect(name, "{{.State.Pid}}"));
    ASSERT_GT(pid, 0);
    EXPECT_EQ(cmdline_of(pid), "sh -c " + script + " ");
    // podman passes no --root: berth keeps the container's state under its default root, by podman's id.
    std::string state_dir = "/run/berth/" + inspect(name, "{{.Id}}");
    if (runtime_bin() == BERTH_BIN) {
        EXPECT_TRUE(exists(state_dir + "/state.json")) << state_dir;
    }

    // exec joins the container: it sees init as pid 1 and its own exit code comes back.
    CommandResult exec =
        podman({"exec", name, "sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo; echo in-exec; exit 4"});
    EXPECT_EQ(exec.exit_code, 4) << exec.err;
    EXPECT_EQ(exec.out, "sh -c " + script + " \nin-exec\n");
    EXPECT_EQ(podman({"exec", name, "no-such-command"}).exit_code, 127);
    EXPECT_EQ(podman({"exec", name, "/etc/passwd"}).exit_code, 126);
    CommandResult exec_ok = podman({"exec", name, "readlink", "/proc/1/ns/mnt"});
    EXPECT_EQ(exec_ok.exit_code, 0) << exec_ok.err;
    EXPECT_EQ(trim(exec_ok.out), read_link("/proc/" + std::to_string(pid) + "/ns/mnt"));

    // stop sends SIGTERM through `berth kill`: the trap makes the exit code 0 (SIGKILL would give 137).
    CommandResult stop = podman({"stop", "--time", "60", name});
    EXPECT_EQ(stop.exit_code, 0) << stop.err;
    EXPECT_EQ(inspect(name, "{{.State.Status}}"), "exited");
    EXPECT_EQ(inspect(name, "{{.State.ExitCode}}"), "0");
    EXPECT_FALSE(alive(pid));

    CommandResult rm = podman({"rm", name});
    EXPECT_EQ(rm.exit_code, 0) << rm.err;
    EXPECT_FALSE(exists(state_dir)) << "podman rm left berth's state behind";
    CommandResult ps = podman({"ps", "--all", "--format", "{{.Names}}"});
    EXPECT_EQ(ps.exit_code, 0) << ps.err;
    EXPECT_EQ(ps.out.find(name), std::string::npos) << ps.out;
}

// podman maps the runtime's create error to its exit code by its text, as it does for runc: 127 when the command
// does not exist, 126 when it cannot be executed.
TEST_F(Podman, ExitCodesOfACommandThatCannotRun) {
    CommandResult missing = podman_run({"--rm"}, {"no-such-command"});
    EXPECT_EQ(missing.exit_code, 127) << missing.err;
    EXPECT_NE(missing.err.find("no-such-command"), std::string::npos) << missing.err;
    CommandResult absent = podman_run({"--rm"}, {"/no/such/file"});
    EXPECT_EQ(absent.exit_code, 127) << absent.err;
    CommandResult not_executable = podman_run({"--rm"}, {"/etc/passwd"});
    EXPECT_EQ(not_executable.exit_code, 126) << not_executable.err;
    EXPECT_NE(not_executable.err.find("/etc/passwd"), std::string::npos) << not_executable.err;
    CommandResult ps = podman({"ps", "--all", "--quiet"});
    EXPECT_EQ(ps.out, "");
}

TEST_F(Podman, ReadOnlyRootfs) {
    CommandResult r = podman_run({"--rm", "--read-only"},
                                 {"sh", "-c", "touch /tmp/ok && echo tmp-writable; touch /etc/x 2>&1; echo rc=$?"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("tmp-writable"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Read-only file system"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
}

TEST_F(Podman, MemoryLimit) {
    if (auto why = missing_support({"update"}); !why.empty()) GTEST_SKIP() << "no cgroup support yet: " << why;
    std::string name = tag_ + "-mem";
    CommandResult run = podman_run({"-d", "--name", name, "--memory", "64m"}, {"sleep", "600"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    pid_t pid = std::stoi(inspect(name, "{{.State.Pid}}"));
    std::string cg = cgroup_dir_of(pid, "memory");
    ASSERT_FALSE(cg.empty());
    EXPECT_NE(cg.find(tag_), std::string::npos) << cg << " is not under the cgroup parent /" << tag_;
    EXPECT_EQ(trim(read_text(cg + "/memory.limit_in_bytes")), "67108864");
    EXPECT_EQ(podman({"rm", "--force", "--time", "0", name}).exit_code, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// containerd's ctr --runc-binary <berth>, through containerd-shim-runc-v2

class Containerd : public ClientTest {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(ClientTest::SetUp());
        ctr_ = program("ctr");
        std::string containerd = program("containerd");
        ASSERT_FALSE(ctr_.empty() || containerd.empty()) << "containerd is not installed: run make deps";
        ASSERT_FALSE(program("containerd-shim-runc-v2").empty()) << "containerd-shim-runc-v2 is not installed";
        ASSERT_FALSE(program("curl").empty()) << "curl is not installed: run make deps";
        socket_ = dir_ + "/containerd.sock";
        write_text(dir_ + "/config.toml",
                   "version = 2\n"
                   "root = \"" +
                       dir_ +
                       "/root\"\n"
                       "state = \"" +
                       dir_ +
                       "/state\"\n"
                       "disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.btrfs\", "
                       "\"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", "
                       "\"io.containerd.snapshotter.v1.aufs\", \"io.containerd.tracing.processor.v1.otlp\", "
                       "\"io.containerd.internal.v1.tracing\"]\n"
                       "[grpc]\n  address = \"" +
                       socket_ +
                       "\"\n"
                       "[ttrpc]\n  address = \"" +
                       socket_ +
                       ".ttrpc\"\n"
                       "[debug]\n  address = \"\"\n"
                       "[metrics]\n  address = \"\"\n");
        daemon_ = ::fork();
        ASSERT_GE(daemon_, 0);
        if (daemon_ == 0) {
            int log = ::open((dir_ + "/containerd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(log, 1);
            ::dup2(log, 2);
            ::setpgid(0, 0);
            ::execl(containerd.c_str(), containerd.c_str(), "--config", (dir_ + "/config.toml").c_str(), nullptr);
            ::_exit(127);
        }
        ASSERT_TRUE(wait_for([&] { return exists(socket_) && ctr({"version"}).exit_code == 0; }))
            << read_text(dir_ + "/containerd.log");
        CommandResult import = ctr({"image", "import", ImageArchive::path()});
        ASSERT_EQ(import.exit_code, 0) << import.out << import.err;
    }
    void TearDown() override {
        if (daemon_ > 0) {
            // Tasks first (their shims go away with them), then containers, then the daemon.
            CommandResult tasks = ctr({"task", "ls", "--quiet"});
            std::istringstream ids(tasks.out);
            for (std::string id; std::getline(ids, id);) {
                ctr({"task", "kill", "--signal", "SIGKILL", id});
                ctr({"task", "delete", "--force", id});
            }
            CommandResult containers = ctr({"container", "ls", "--quiet"});
            std::istringstream cids(containers.out);
            for (std::string id; std::getline(cids, id);) ctr({"container", "delete", id});
            kill_shims();
            ::kill(daemon_, SIGTERM);
            int status = 0;
            ::waitpid(daemon_, &status, 0);
        }
        ClientTest::TearDown();
        remove_cgroup_tree(tag_);
    }
    // Shims that outlived their task (a test failed half-way) are recognised by this test's socket address.
    void kill_shims() {
        DIR* proc = ::opendir("/proc");
        if (!proc) return;
        while (struct dirent* de = ::readdir(proc)) {
            pid_t pid = std::atoi(de->d_name);
            if (pid <= 0) continue;
            std::string cmdline = read_text("/proc/" + std::string(de->d_name) + "/cmdline");
            if (cmdline.find("containerd-shim") != std::string::npos && cmdline.find(socket_) != std::string::npos)
                ::kill(pid, SIGKILL);
        }
        ::closedir(proc);
    }
    CommandResult ctr(const std::vector<std::string>& args) {
        // The test's tag is the containerd namespace: the default cgroup path of a task is /<namespace>/<id>.
        std::vector<std::string> argv = {ctr_, "--address", socket_, "--namespace", tag_};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command(argv);
    }
    CommandResult ctr_run(const std::vector<std::string>& opts, const std::string& id,
                          const std::vector<std::string>& command) {
        std::vector<std::string> args = {"run", "--runc-binary", runtime_bin(), "--runc-root", dir_ + "/berth"};
        args.insert(args.end(), opts.begin(), opts.end());
        args.push_back(kImage);
        args.push_back(id);
        args.insert(args.end(), command.begin(), command.end());
        return ctr(args);
    }
    // `ctr task ls` columns: TASK PID STATUS.
    std::pair<pid_t, std::string> task(const std::string& id) {
        CommandResult r = ctr({"task", "ls"});
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);) {
            std::istringstream f(line);
            std::string name, pid, status;
            f >> name >> pid >> status;
            if (name == id) return {std::atoi(pid.c_str()), status};
        }
        return {0, ""};
    }
    // containerd's Tasks.Update, the call `ctr` (1.6, which has no update command) and the CRI plugin make for a
    // new memory limit: a hand-encoded gRPC request over the test's socket with curl (HTTP/2). The shim turns it
    // into `berth update --resources - <id>` with the LinuxResources JSON on stdin. Returns the response headers
    // and trailers (grpc-status, grpc-message).
    std::string update_memory_limit(const std::string& id, int64_t limit) {
        auto varint = [](size_t n) {
            std::string out;
            for (; n >= 0x80; n >>= 7) out += static_cast<char>((n & 0x7f) | 0x80);
            return out + static_cast<char>(n);
        };
        auto field = [&](int number, const std::string& bytes) {  // a length-delimited protobuf field
            return std::string(1, static_cast<char>(number << 3 | 2)) + varint(bytes.size()) + bytes;
        };
        std::string any = field(1, "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources") +
                          field(2, json{{"memory", {{"limit", limit}}}}.dump());
        std::string message = field(1, id) + field(2, any);  // UpdateTaskRequest{container_id, resources}
        std::string frame(1, '\0');                          // gRPC: uncompressed, 4-byte big-endian length
        for (int shift = 24; shift >= 0; shift -= 8) frame += static_cast<char>((message.size() >> shift) & 0xff);
        write_text(dir_ + "/update.bin", frame + message);
        CommandResult r =
            run_command({program("curl"), "--silent", "--unix-socket", socket_, "--http2-prior-knowledge", "--header",
                         "content-type: application/grpc", "--header", "te: trailers", "--header",
                         "containerd-namespace: " + tag_, "--data-binary", "@" + dir_ + "/update.bin", "--dump-header",
                         "-", "--output", "/dev/null", "http://localhost/containerd.services.tasks.v1.Tasks/Update"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    }
    std::vector<std::string> berth_containers() {
        std::vector<std::string> out;
        DIR* d = ::opendir((dir_ + "/berth/" + tag_).c_str());
        if (!d) return out;
        while (struct dirent* de = ::readdir(d))
            if (std::string(de->d_name) != "." && std::string(de->d_name) != "..") out.push_back(de->d_name);
        ::closedir(d);
        return out;
    }
    static constexpr const char* kImage = "localhost/berth-busybox:latest";
    std::string ctr_, socket_;
    pid_t daemon_ = -1;
};

TEST_F(Containerd, RunsInTheForegroundWithOutputAndExitCode) {
    CommandResult r = ctr_run({"--rm"}, "fg", {"sh", "-c", "echo hello from ctr; exit 5"});
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(r.out, "hello from ctr\n");
    EXPECT_TRUE(berth_containers().empty());
}

TEST_F(Containerd, RunExecKillDelete) {
    CommandResult run = ctr_run({"--detach"}, "sleeper", {"sleep", "600"});
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    auto [pid, status] = task("sleeper");
    EXPECT_EQ(status, "RUNNING");
    ASSERT_GT(pid, 0);
    EXPECT_EQ(cmdline_of(pid), "sleep 600 ");
    EXPECT_EQ(berth_containers(), std::vector<std::string>{"sleeper"});

    CommandResult exec = ctr({"task", "exec", "--exec-id", "e1", "sleeper", "sh", "-c",
                              "tr '\\0' ' ' </proc/1/cmdline; echo; echo in-exec; exit 6"});
    EXPECT_EQ(exec.exit_code, 6) << exec.err;
    EXPECT_EQ(exec.out, "sleep 600 \nin-exec\n");

    CommandResult kill = ctr({"task", "kill", "--signal", "SIGKILL", "sleeper"});
    EXPECT_EQ(kill.exit_code, 0) << kill.err;
    EXPECT_TRUE(wait_for([&] { return task("sleeper").second == "STOPPED"; })) << task("sleeper").second;
    EXPECT_FALSE(alive(pid));

    CommandResult del = ctr({"task", "delete", "sleeper"});
    EXPECT_EQ(del.exit_code, 0) << del.err;
    CommandResult rm = ctr({"container", "delete", "sleeper"});
    EXPECT_EQ(rm.exit_code, 0) << rm.err;
    EXPECT_TRUE(berth_containers().empty());
}

// `ctr run --tty`: the shim passes --console-socket and proxies the pty master berth sends it. ctr needs a terminal
// of its own, which script(1) provides.
TEST_F(Containerd, Terminal) {
    std::string command = ctr_ + " --address " + socket_ + " --namespace " + tag_ + " run --rm --tty --runc-binary " +
                          runtime_bin() + " --runc-root " + dir_ + "/berth " + kImage + " tty sh -c 'tty; exit 3'";
    CommandResult r = run_command({"/usr/bin/script", "--quiet", "--return", "--command", command, "/dev/null"});
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_NE(r.out.find("/dev/pts/0"), std::string::npos) << r.out;
    EXPECT_TRUE(berth_containers().empty());

    // exec --tty: `berth exec --tty --console-socket` from the shim, a pty of the exec's own.
    ASSERT_EQ(ctr_run({"--detach"}, "ttyexec", {"sleep", "600"}).exit_code, 0);
    std::string exec = ctr_ + " --address " + socket_ + " --namespace " + tag_ +
                       " task exec --tty --exec-id t1 ttyexec sh -c 'tty; exit 4'";
    CommandResult e = run_command({"/usr/bin/script", "--quiet", "--return", "--command", exec, "/dev/null"});
    EXPECT_EQ(e.exit_code, 4) << e.out << e.err;
    EXPECT_NE(e.out.find("/dev/pts/"), std::string::npos) << e.out;
}

TEST_F(Containerd, PauseResume) {
    if (auto why = missing_support({"pause"}); !why.empty()) GTEST_SKIP() << "no cgroup support yet: " << why;
    ASSERT_EQ(ctr_run({"--detach"}, "paused", {"sleep", "600"}).exit_code, 0);
    auto [pid, status] = task("paused");
    ASSERT_GT(pid, 0);
    std::string freezer = cgroup_dir_of(pid, "freezer");
    ASSERT_FALSE(freezer.empty());
    CommandResult pause = ctr({"task", "pause", "paused"});
    EXPECT_EQ(pause.exit_code, 0) << pause.err;
    EXPECT_EQ(task("paused").second, "PAUSED");
    EXPECT_EQ(trim(read_text(freezer + "/freezer.state")), "FROZEN");
    CommandResult resume = ctr({"task", "resume", "paused"});
    EXPECT_EQ(resume.exit_code, 0) << resume.err;
    EXPECT_EQ(task("paused").second, "RUNNING");
    EXPECT_EQ(trim(read_text(freezer + "/freezer.state")), "THAWED");
}

TEST_F(Containerd, UpdateMemoryLimit) {
    if (auto why = missing_support({"update"}); !why.empty()) GTEST_SKIP() << "no cgroup support yet: " << why;
    ASSERT_EQ(ctr_run({"--detach", "--memory-limit", "67108864"}, "updated", {"sleep", "600"}).exit_code, 0);
    auto [pid, status] = task("updated");
    ASSERT_GT(pid, 0);
    std::string memory = cgroup_dir_of(pid, "memory");
    ASSERT_FALSE(memory.empty());
    EXPECT_EQ(trim(read_text(memory + "/memory.limit_in_bytes")), "67108864");
    std::string update = update_memory_limit("updated", 33554432);
    EXPECT_NE(update.find("grpc-status: 0\r\n"), std::string::npos) << update;
    EXPECT_EQ(trim(read_text(memory + "/memory.limit_in_bytes")), "33554432");
}

// ---------------------------------------------------------------------------------------------------------------
// conmon, invoked as CRI-O invokes it

class Conmon : public BerthTest {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(BerthTest::SetUp());
        conmon_ = program("conmon");
        ASSERT_FALSE(conmon_.empty()) << "conmon is not installed: run make deps";
        for (const char* d : {"/exits", "/sockets", "/userdata"}) ::mkdir((dir_ + d).c_str(), 0755);
    }
    void TearDown() override {
        // conmon double-forks away from us; its pid file says which process to stop if a test left it running.
        std::string pid_text = read_text(dir_ + "/userdata/conmon.pid");
        if (pid_t pid = std::atoi(pid_text.c_str()); pid > 0 && alive(pid)) ::kill(pid, SIGKILL);
        BerthTest::TearDown();
    }
    // Runs conmon for container `id` the way CRI-O does: conmon runs `berth create` (or, with `-e`, `berth exec`),
    // reports the pid (or the runtime's error) as JSON on the sync pipe (fd 3, named by _OCI_SYNCPIPE), then stays
    // as the container's monitor, writing its CRI log to `log` and, at the end, its exit code. Returns conmon's
    // result; the sync pipe's messages go to `sync`, read until `messages` arrived (conmon keeps its end open while
    // it monitors, so there is no EOF to wait for).
    CommandResult conmon(const std::string& id, const std::vector<std::string>& extra, const std::string& log,
                         std::vector<json>* sync, size_t messages = 1) {
        int pipe_fds[2];
        EXPECT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
        std::vector<std::string> argv = {conmon_,
                                         "--api-version",
                                         "1",
                                         "-c",
                                         id,
                                         "-u",
                                         id,
                                         "-n",
                                         "k8s_" + id,
                                         "-r",
                                         BERTH_BIN,
                                         "-l",
                                         "k8s-file:" + log,
                                         "--exit-dir",
                                         dir_ + "/exits",
                                         "--socket-dir-path",
                                         dir_ + "/sockets",
                                         "--log-level",
                                         "debug",
                                         "--syslog=false",
                                         "--runtime-arg",
                                         "--root=" + root_,
                                         "--runtime-arg",
                                         "--log=" + dir_ + "/userdata/runtime.log",
                                         "--runtime-arg",
                                         "--log-format=json"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        ::setenv("_OCI_SYNCPIPE", "3", 1);
        CommandResult r = run_command(argv, {}, {pipe_fds[1]});
        ::unsetenv("_OCI_SYNCPIPE");
        ::close(pipe_fds[1]);
        std::string text;
        while (sync->size() < messages) {
            struct pollfd pfd = {pipe_fds[0], POLLIN, 0};
            if (::poll(&pfd, 1, 60000) != 1) break;
            char buf[4096];
            ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
            if (n <= 0) break;
            text.append(buf, static_cast<size_t>(n));
            // Messages are JSON objects written one per write; split on the closing brace of each.
            for (size_t end; (end = text.find('}')) != std::string::npos;) {
                sync->push_back(json::parse(text.substr(0, end + 1), nullptr, false));
                text.erase(0, end + 1);
            }
        }
        ::close(pipe_fds[0]);
        return r;
    }
    // conmon for a new container from the bundle, as CRI-O's CreateContainer runs it.
    CommandResult conmon_create(const std::string& id, const std::vector<std::string>& extra, json* sync) {
        std::vector<std::string> args = {
            "-b", bundle_, "-p", dir_ + "/userdata/pidfile", "-P", dir_ + "/userdata/conmon.pid"};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<json> messages;
        CommandResult r = conmon(id, args, dir_ + "/userdata/ctr.log", &messages);
        *sync = messages.empty() ? json() : messages.front();
        return r;
    }
    // The logical lines of a CRI log file as "<stream> <text>": every line must be "<RFC3339Nano> <stream> <P|F>
    // <text>", and partial (P) lines are joined with the rest of their line, as kubelet reads them (a line the
    // container wrote in two writes may arrive in two pieces).
    std::vector<std::string> cri_log_lines(const std::string& path) {
        static const std::regex line_re(
            R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) ([PF]) ([^\n]*)$)");
        std::vector<std::string> got;
        std::map<std::string, std::string> partial;
        std::istringstream in(read_text(path));
        for (std::string line; std::getline(in, line);) {
            std::smatch m;
            EXPECT_TRUE(std::regex_match(line, m, line_re)) << "not a CRI log line: " << line;
            if (m.empty()) continue;
            std::string stream = m[2].str();
            partial[stream] += m[4].str();
            if (m[3].str() == "F") {
                got.push_back(stream + " " + partial[stream]);
                partial[stream].clear();
            }
        }
        for (const auto& [stream, rest] : partial) EXPECT_TRUE(rest.empty()) << stream << " ends in a partial line";
        return got;
    }
    std::string conmon_;
};

TEST_F(Conmon, CreatesTheContainerWritesItsCriLogAndExitCode) {
    write_config(base_config({"sh", "-c", "echo line one; echo line two >&2; echo line three; exit 3"}));
    json sync;
    CommandResult r = conmon_create("cm", {}, &sync);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(sync.is_object()) << sync.dump();
    // The pid conmon reports is the container's init, as berth wrote it into --pid-file.
    int pid = std::atoi(read_text(dir_ + "/userdata/pidfile").c_str());
    ASSERT_GT(pid, 0);
    EXPECT_EQ(sync.value("data", 0), pid) << sync.dump();
    EXPECT_EQ(json::parse(berth({"state", "cm"}).out).value("status", ""), "created");

    CommandResult start = berth({"start", "cm"});
    ASSERT_EQ(start.exit_code, 0) << start.err;
    ASSERT_TRUE(wait_for([&] { return exists(dir_ + "/exits/cm"); })) << "conmon wrote no exit file";
    EXPECT_EQ(trim(read_text(dir_ + "/exits/cm")), "3");

    // stdout and stderr are separate pipes: their relative order is not fixed.
    std::vector<std::string> got = cri_log_lines(dir_ + "/userdata/ctr.log");
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"stderr line two", "stdout line one", "stdout line three"}));

    EXPECT_EQ(json::parse(berth({"state", "cm"}).out).value("status", ""), "stopped");
    EXPECT_EQ(berth({"delete", "cm"}).exit_code, 0);
}

TEST_F(Conmon, ReportsTheRuntimesErrorOnTheSyncPipe) {
    write_config(base_config({"/no/such/binary"}));
    json sync;
    // conmon's own exit code is not the verdict (its first process has forked away by then): the pipe is.
    conmon_create("bad", {}, &sync);
    ASSERT_TRUE(sync.is_object()) << sync.dump();
    EXPECT_EQ(sync.value("data", 0), -1) << sync.dump();
    // CRI-O shows this message to the user: it must say what failed, not just that berth exited 1.
    EXPECT_NE(sync.value("message", "").find("/no/such/binary"), std::string::npos) << sync.dump();
    EXPECT_TRUE(root_entries().empty());
}

// process.terminal: conmon passes --console-socket, berth sends the pty master there, conmon logs what the
// container writes on it.
TEST_F(Conmon, TerminalThroughTheConsoleSocket) {
    json cfg = base_config({"sh", "-c", "tty; echo on the pty; exit 2"});
    cfg["process"]["terminal"] = true;
    write_config(cfg);
    json sync;
    CommandResult r = conmon_create("tty", {"-t"}, &sync);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_GT(sync.value("data", 0), 0) << sync.dump() << read_text(dir_ + "/userdata/runtime.log");
    ASSERT_EQ(berth({"start", "tty"}).exit_code, 0);
    ASSERT_TRUE(wait_for([&] { return exists(dir_ + "/exits/tty"); })) << "conmon wrote no exit file";
    EXPECT_EQ(trim(read_text(dir_ + "/exits/tty")), "2");
    std::vector<std::string> got = cri_log_lines(dir_ + "/userdata/ctr.log");
    EXPECT_EQ(got, (std::vector<std::string>{"stdout /dev/pts/0\r", "stdout on the pty\r"}));
    EXPECT_EQ(berth({"delete", "tty"}).exit_code, 0);
}

// CRI-O's ExecSync: conmon -e runs `berth exec --process <spec> --detach --pid-file`, then reports the exec's pid
// and its exit code on the sync pipe and logs its output.
TEST_F(Conmon, ExecSync) {
    write_config(base_config({"sleep", "600"}));
    json sync;
    ASSERT_EQ(conmon_create("ex", {}, &sync).exit_code, 0);
    ASSERT_GT(sync.value("data", 0), 0) << sync.dump();
    ASSERT_EQ(berth({"start", "ex"}).exit_code, 0);

    json process = base_config({"sh", "-c", "echo from exec; tr '\\0' ' ' </proc/1/cmdline; echo; exit 7"})["process"];
    write_text(dir_ + "/userdata/exec-process.json", process.dump());
    std::vector<json> messages;
    CommandResult r = conmon("ex",
                             {"-e", "--exec-process-spec", dir_ + "/userdata/exec-process.json", "-p",
                              dir_ + "/userdata/exec.pid", "-T", "60"},
                             dir_ + "/userdata/exec.log", &messages, 2);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(messages.size(), 2u) << r.err;
    int exec_pid = std::atoi(read_text(dir_ + "/userdata/exec.pid").c_str());
    EXPECT_GT(exec_pid, 0);
    EXPECT_EQ(messages[0].value("data", 0), exec_pid) << messages[0].dump();
    EXPECT_EQ(messages[1].value("data", 0), 7) << messages[1].dump();
    std::vector<std::string> got = cri_log_lines(dir_ + "/userdata/exec.log");
    EXPECT_EQ(got, (std::vector<std::string>{"stdout from exec", "stdout sleep 600 "}));
    EXPECT_EQ(json::parse(berth({"state", "ex"}).out).value("status", ""), "running");
    EXPECT_EQ(berth({"delete", "--force", "ex"}).exit_code, 0);
}

}  // namespace
}  // namespace berth::test
