// What berthd's streaming server reaches (src/cri/stream_targets): exec sessions with pipes and a terminal, attach
// through berth-monitor's attach socket, and dial into a pod's network namespace. The managers are built in
// process as berthd builds them, over a private root, state dir and cgroup parent, with busybox imported.
// clang-format off
#include "cri/api.hpp"  // before anything that includes <signal.h>: see src/cri/api.hpp
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/fs.hpp"
#include "cri/container_manager.hpp"
#include "cri/cri_context.hpp"
#include "cri/pod_manager.hpp"
#include "cri/stream_targets.hpp"
#include "cri_fixture.hpp"
#include "harness.hpp"
#include "store/images.hpp"

namespace berth::test {
namespace {

using cri::AttachOptions;
using cri::ExecOptions;
using cri::ExecSession;
using cri::OutputChunk;

struct Output {
    std::string out, err;
};

// Reads a session to its end-of-output marker (a hang guard of 60 s fails the test).
template <typename Session>
Output read_all(Session& s) {
    Output o;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
        auto c = s.read();
        if (!c) {
            ADD_FAILURE() << c.error().message();
            return o;
        }
        if (c->data.empty()) return o;
        (c->stream == 2 ? o.err : o.out) += c->data;
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "no end of output";
            return o;
        }
    }
}

// Reads until `want` is in what stream 1 delivered; false at the end of output.
template <typename Session>
bool read_until(Session& s, const std::string& want, std::string* seen) {
    while (seen->find(want) == std::string::npos) {
        auto c = s.read();
        if (!c || c->data.empty()) return false;
        if (c->stream == 1) *seen += c->data;
    }
    return true;
}

// Pids of processes whose argv is exactly `argv`.
std::vector<pid_t> processes_with_argv(const std::vector<std::string>& argv) {
    std::string want;
    for (const auto& a : argv) want += a + '\0';
    std::vector<pid_t> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string cmdline = read_text(e.path().string() + "/cmdline");
        if (cmdline == want) out.push_back(std::stoi(name));
    }
    return out;
}

size_t entries_of(const std::string& dir) {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
    return n;
}
size_t open_fds() {
    return entries_of("/proc/self/fd");
}
size_t threads() {
    return entries_of("/proc/self/task");
}

class CriTargetsTest : public ::testing::Test {
protected:
    // Exec through the handler `name` running the external runtime at `path` (below).
    void exec_through_external_runtime(const std::string& name, const std::string& path);
    // The terminal's EOF (VEOF) ends `cat` in container `id`, also after a partial line.
    void expect_terminal_eof_ends_cat(const std::string& id);

    void SetUp() override {
        char tmpl[] = "/tmp/targets-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        cgroup_parent_ = "/targets-test/" + std::to_string(::getpid());
        ctx_ = std::make_unique<cri::CriContext>();
        ctx_->config.root_dir = dir_ + "/root";
        ctx_->config.state_dir = dir_ + "/s";  // short: monitor sockets live under it
        ctx_->config.monitor_path = BERTH_MONITOR_BIN;
        ctx_->config.cgroup_parent = cgroup_parent_;
        ctx_->config.handlers["berth"] = cri::RuntimeHandler{.name = "berth"};
        {
            auto images = store::Images::open(ctx_->config.root_dir);
            ASSERT_TRUE(images) << images.error().message();
            auto imported = images->import_oci_layout(busybox_layout());
            ASSERT_TRUE(imported) << imported.error().message();
            ctx_->images = std::make_unique<store::Images>(std::move(*images));
        }
        auto records = store::CriRecords::open(ctx_->config.root_dir);
        ASSERT_TRUE(records) << records.error().message();
        ctx_->records = std::move(*records);
        pods_ = std::make_unique<cri::PodManager>(*ctx_);
        containers_ = std::make_unique<cri::ContainerManager>(*ctx_, *pods_);
        pods_->set_containers(containers_.get());
        auto w = containers_->start_watcher();
        ASSERT_TRUE(w) << w.error().message();
        targets_ = std::make_unique<cri::StreamTargets>(*ctx_, *containers_, *pods_);
    }

    void TearDown() override {
        if (pods_) {
            for (const auto& id : pod_ids_)
                if (auto r = pods_->remove(id); !r) ADD_FAILURE() << r.error().message();
        }
        targets_.reset();
        containers_.reset();
        pods_.reset();
        ctx_.reset();
        const std::string state = dir_ + "/s";
        run_command({"/bin/sh", "-c",
                     "for p in $(pgrep -f '[b]erth-monitor --id .* --dir " + state +
                         "'); do kill -9 $p; done; for p in $(cat $(find /sys/fs/cgroup/pids" + cgroup_parent_ +
                         " -name cgroup.procs 2>/dev/null) 2>/dev/null); do kill -9 $p; done; sleep 0.2; grep -o ' " +
                         dir_ +
                         "[^ ]*' /proc/self/mountinfo | sort -r | while read m; do umount -l $m; done; "
                         "find /sys/fs/cgroup/*" +
                         cgroup_parent_ +
                         " -depth -type d -exec rmdir {} + 2>/dev/null; rmdir /sys/fs/cgroup/*/targets-test "
                         "2>/dev/null; rm -rf " +
                         dir_});
    }

    std::string run_pod(const std::string& name, bool host_network = false, const std::string& handler = "") {
        v1::RunPodSandboxRequest req;
        req.set_runtime_handler(handler);
        auto* c = req.mutable_config();
        c->mutable_metadata()->set_name(name);
        c->mutable_metadata()->set_namespace_("targets");
        c->mutable_metadata()->set_uid("targets-" + name);
        c->set_hostname(name);
        c->set_log_directory(dir_ + "/logs/" + name);
        auto* ns = c->mutable_linux()->mutable_security_context()->mutable_namespace_options();
        ns->set_pid(v1::CONTAINER);
        if (host_network) ns->set_network(v1::NODE);
        pod_config_ = *c;
        auto id = pods_->run(req);
        EXPECT_TRUE(id) << id.error().message();
        if (!id) return "";
        pod_ids_.push_back(*id);
        return *id;
    }

    v1::ContainerConfig container_config(const std::string& name, const std::string& script) {
        v1::ContainerConfig c;
        c.mutable_metadata()->set_name(name);
        c.mutable_image()->set_image(kBusybox);
        c.add_command("/bin/sh");
        c.add_args("-c");
        c.add_args(script);
        c.set_log_path(name + ".log");
        return c;
    }

    std::string start_container(const std::string& pod, const v1::ContainerConfig& cfg) {
        v1::CreateContainerRequest req;
        req.set_pod_sandbox_id(pod);
        *req.mutable_config() = cfg;
        *req.mutable_sandbox_config() = pod_config_;
        auto id = containers_->create(req);
        EXPECT_TRUE(id) << id.error().message();
        if (!id) return "";
        auto st = containers_->start(*id);
        EXPECT_TRUE(st) << st.error().message();
        return *id;
    }

    // A pod with one running container sleeping (exec's target).
    std::string sleeper() {
        std::string pod = run_pod("exec");
        return start_container(pod, container_config("sleeper", "exec sleep 1000"));
    }

    std::unique_ptr<ExecSession> exec(const ExecOptions& o) {
        auto s = targets_->exec(o);
        EXPECT_TRUE(s) << s.error().message();
        return s ? std::move(*s) : nullptr;
    }

    std::string dir_, cgroup_parent_;
    std::vector<std::string> pod_ids_;
    v1::PodSandboxConfig pod_config_;
    std::unique_ptr<cri::CriContext> ctx_;
    std::unique_ptr<cri::PodManager> pods_;
    std::unique_ptr<cri::ContainerManager> containers_;
    std::unique_ptr<cri::StreamTargets> targets_;
};

TEST_F(CriTargetsTest, ExecOutputAndExitCode) {
    std::string id = sleeper();
    ASSERT_FALSE(id.empty());
    auto s = exec({.container_id = id, .cmd = {"echo", "hello"}});
    ASSERT_TRUE(s);
    Output o = read_all(*s);
    EXPECT_EQ(o.out, "hello\n");
    EXPECT_EQ(o.err, "");
    auto code = s->wait();
    ASSERT_TRUE(code) << code.error().message();
    EXPECT_EQ(*code, 0);

    auto s3 = exec({.container_id = id, .cmd = {"sh", "-c", "echo out; echo err >&2; exit 3"}});
    ASSERT_TRUE(s3);
    o = read_all(*s3);
    EXPECT_EQ(o.out, "out\n");
    EXPECT_EQ(o.err, "err\n");
    code = s3->wait();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 3);

    // Killed by a signal: 128 + signal.
    auto sk = exec({.container_id = id, .cmd = {"sh", "-c", "kill -9 $$"}});
    ASSERT_TRUE(sk);
    read_all(*sk);
    code = sk->wait();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 128 + SIGKILL);
}

// A command the runtime cannot run: its message reaches the client (stderr, or the terminal), the code is not 0.
TEST_F(CriTargetsTest, ExecOfAMissingCommandReportsTheRuntimesError) {
    std::string id = sleeper();
    ASSERT_FALSE(id.empty());
    auto s = exec({.container_id = id, .cmd = {"/no/such/cmd"}});
    ASSERT_TRUE(s);
    Output o = read_all(*s);
    EXPECT_NE(o.err.find("/no/such/cmd"), std::string::npos) << o.err;
    EXPECT_NE(*s->wait(), 0);

    auto t = targets_->exec({.container_id = id, .cmd = {"/no/such/cmd"}, .tty = true, .stderr = false});
    if (!t) {
        EXPECT_NE(t.error().message().find("/no/such/cmd"), std::string::npos) << t.error().message();
        return;
    }
    o = read_all(**t);
    EXPECT_NE(o.out.find("/no/such/cmd"), std::string::npos) << o.out;
    EXPECT_NE(*(*t)->wait(), 0);
}

// Through an external handler's runtime: the same exec with pipes and with a terminal. A terminal exec runs the
// runtime detached under berth-monitor's exec reaper (runc takes --console-socket only with --detach), which
// stands in for the foreground runtime: exit codes, resize, EOF and the kill on the client's going away.
void CriTargetsTest::expect_terminal_eof_ends_cat(const std::string& id) {
    auto c = exec({.container_id = id, .cmd = {"cat"}, .tty = true, .stdin = true, .stderr = false});
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->write_stdin(std::string("partial")));
    c->close_stdin();
    Output o = read_all(*c);
    EXPECT_NE(o.out.find("partial"), std::string::npos) << o.out;
    EXPECT_EQ(*c->wait(), 0);
}

void CriTargetsTest::exec_through_external_runtime(const std::string& name, const std::string& path) {
    if (::access(path.c_str(), X_OK) != 0) GTEST_SKIP() << name << " is not installed";
    ctx_->config.handlers[name] = cri::RuntimeHandler{.name = name, .path = path};
    std::string pod = run_pod(name, false, name);
    ASSERT_FALSE(pod.empty());
    std::string id = start_container(pod, container_config("sleeper", "exec sleep 1000"));
    ASSERT_FALSE(id.empty());
    auto s = exec({.container_id = id, .cmd = {"sh", "-c", "cat; echo err >&2; exit 5"}, .stdin = true});
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->write_stdin(std::string("through " + name + "\n")));
    s->close_stdin();
    Output o = read_all(*s);
    EXPECT_EQ(o.out, "through " + name + "\n");
    EXPECT_EQ(o.err, "err\n");
    EXPECT_EQ(*s->wait(), 5);

    auto tty = exec({.container_id = id,
                     .cmd = {"sh", "-c", "read x; tty; stty size; exit 6"},
                     .tty = true,
                     .stdin = true,
                     .stderr = false});
    ASSERT_TRUE(tty);
    ASSERT_TRUE(tty->resize(101, 33));
    ASSERT_TRUE(tty->write_stdin(std::string("go\n")));
    o = read_all(*tty);
    EXPECT_NE(o.out.find("/dev/pts/"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("33 101"), std::string::npos) << o.out;
    EXPECT_EQ(*tty->wait(), 6);

    // The terminal's EOF ends `cat`; a command the runtime cannot run is its error, not a terminal.
    expect_terminal_eof_ends_cat(id);
    auto bad = targets_->exec({.container_id = id, .cmd = {"/no/such/cmd"}, .tty = true, .stderr = false});
    if (bad) {
        o = read_all(**bad);
        EXPECT_NE(*(*bad)->wait(), 0) << o.out;
    } else {
        EXPECT_NE(bad.error().message().find("/no/such/cmd"), std::string::npos) << bad.error().message();
    }

    // A session that goes away kills its process, with or without a terminal, and leaves no reaper behind.
    for (bool with_tty : {false, true}) {
        SCOPED_TRACE(with_tty ? "tty" : "pipes");
        const std::vector<std::string> argv = {"sleep", with_tty ? "7773" : "7772"};
        auto k = exec({.container_id = id, .cmd = argv, .tty = with_tty, .stdin = true, .stderr = !with_tty});
        ASSERT_TRUE(k);
        for (int i = 0; i < 200 && processes_with_argv(argv).empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ASSERT_EQ(processes_with_argv(argv).size(), 1u);
        k.reset();
        EXPECT_TRUE(processes_with_argv(argv).empty());
        EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
        EXPECT_EQ(errno, ECHILD);
    }
}

TEST_F(CriTargetsTest, ExecThroughTheRuncHandler) {
    exec_through_external_runtime("runc", "/usr/bin/runc");
}

TEST_F(CriTargetsTest, ExecThroughTheCrunHandler) {
    // crun 1.8 refuses a hybrid cgroup host whose unified tree has controllers (this one's has some).
    auto controllers = read_file("/sys/fs/cgroup/unified/cgroup.controllers");
    if (controllers && controllers->find_first_not_of(" \n") != std::string::npos)
        GTEST_SKIP() << "crun does not run containers on a hybrid cgroup host with controllers in cgroup2";
    exec_through_external_runtime("crun", "/usr/bin/crun");
}

TEST_F(CriTargetsTest, ExecChecks) {
    std::string id = sleeper();
    ASSERT_FALSE(id.empty());
    auto r = targets_->check_exec({.container_id = "nope", .cmd = {"true"}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ENOENT);
    EXPECT_NE(r.error().message().find("nope"), std::string::npos);
    r = targets_->check_exec({.container_id = id, .cmd = {}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), EINVAL);
    r = targets_->check_exec({.container_id = id, .cmd = {"true"}, .tty = true, .stderr = true});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), EINVAL);
    EXPECT_TRUE(targets_->check_exec({.container_id = id, .cmd = {"true"}}));

    // An exited container: EBUSY.
    std::string pod = pod_ids_.back();
    std::string done = start_container(pod, container_config("done", "exit 0"));
    for (int i = 0; i < 200 && targets_->check_exec({.container_id = done, .cmd = {"true"}}); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = targets_->check_exec({.container_id = done, .cmd = {"true"}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), EBUSY);
    auto s = targets_->exec({.container_id = done, .cmd = {"true"}});
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), EBUSY);
}

TEST_F(CriTargetsTest, ExecStdinEofReachesCat) {
    std::string id = sleeper();
    ASSERT_FALSE(id.empty());
    auto s = exec({.container_id = id, .cmd = {"cat"}, .stdin = true});
    ASSERT_TRUE(s);
    std::string in = "line one\nline two without newline";
    ASSERT_TRUE(s->write_stdin(in));
    s->close_stdin();
    Output o = read_all(*s);
    EXPECT_EQ(o.out, in);
    auto code = s->wait();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
    EXPECT_FALSE(s->write_stdin(std::string("late")));
}

TEST_F(CriTargetsTest, ExecBinaryDataIsIntact) {
    std::string id = sleeper();
    ASSERT_FALSE(id.empty());
    std::string in;
    for (int i = 0; i < 4096; ++i)
        for (int b = 0; b < 256; ++b) in.push_back(static_cast<char>((b * 7 + i) & 0xff));
    auto s = exec({.container_id = id, .cmd = {"cat"}, .stdin = true, .stderr = false});
    ASSERT_TRUE(s);
    // Written from another thread while this one reads: neither side may wait for the other.
    std::thread writer([&] {
        EXPECT_TRUE(s->write_stdin(in));
        s->close_stdin();
    });
    Output o = read_all(*s);
    writer.join();
    EXPECT_EQ(o.out.size(), in.size());
    EXPECT_TRUE(o.out == in) << "output differs from input";
    EXPECT_EQ(*s->wait(), 0);
}

TEST_F(CriTargetsTest, ExecTtySeesATerminalAndItsSize) {
    std::string id = sleeper();
    ASSERT_FALSE(id.empty());
    auto s = exec({.container_id = id,
                   .cmd = {"sh", "-c", "read x; tty; stty size"},
                   .tty = true,
                   .stdin = true,
                   .stderr = false});
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->resize(123, 45));
    ASSERT_TRUE(s->write_stdin(std::string("go\n")));
    Output o = read_all(*s);
    EXPECT_NE(o.out.find("/dev/pts/"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("45 123"), std::string::npos) << o.out;
    EXPECT_EQ(o.err, "");
    EXPECT_EQ(*s->wait(), 0);

    expect_terminal_eof_ends_cat(id);

    // resize without a terminal is EINVAL.
    auto p = exec({.container_id = id, .cmd = {"true"}});
    ASSERT_TRUE(p);
    auto r = p->resize(10, 10);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), EINVAL);
}

TEST_F(CriTargetsTest, DestroyingAnExecKillsItsProcess) {
    std::string id = sleeper();
    ASSERT_FALSE(id.empty());
    const std::vector<std::string> argv = {"sleep", "7771"};
    for (bool tty : {false, true}) {
        SCOPED_TRACE(tty ? "tty" : "pipes");
        const size_t fds = open_fds(), tasks = threads();
        auto s = exec({.container_id = id, .cmd = argv, .tty = tty, .stdin = true, .stderr = !tty});
        ASSERT_TRUE(s);
        // The pid file is written just before the exec: wait for the command line to change.
        for (int i = 0; i < 200 && processes_with_argv(argv).empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ASSERT_EQ(processes_with_argv(argv).size(), 1u);
        std::string x = ctx_->config.state_dir + "/x";
        s.reset();
        EXPECT_TRUE(processes_with_argv(argv).empty());
        // Nothing of the session stays: its directory, and no child of ours is left to reap.
        EXPECT_TRUE(std::filesystem::is_empty(x));
        EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
        EXPECT_EQ(errno, ECHILD);
        EXPECT_EQ(open_fds(), fds);
        EXPECT_EQ(threads(), tasks);
    }
    // kill() while a reader waits: the output ends, the exit code is SIGKILL's.
    auto s = exec({.container_id = id, .cmd = argv});
    ASSERT_TRUE(s);
    std::thread killer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        s->kill();
    });
    read_all(*s);
    killer.join();
    EXPECT_EQ(*s->wait(), 128 + SIGKILL);
    EXPECT_TRUE(processes_with_argv(argv).empty());
}

TEST_F(CriTargetsTest, TwoAttachersSeeALoopingContainer) {
    std::string pod = run_pod("attach");
    std::string id = start_container(pod, container_config("loop",
                                                           "i=0; while true; do echo tick $i; echo tock $i >&2; "
                                                           "i=$((i+1)); sleep 0.1; done"));
    ASSERT_FALSE(id.empty());
    const size_t fds = open_fds();
    auto a = targets_->attach({.container_id = id});
    ASSERT_TRUE(a) << a.error().message();
    auto b = targets_->attach({.container_id = id, .stderr = false});
    ASSERT_TRUE(b) << b.error().message();
    std::string seen_a, seen_b, err_a;
    for (int i = 0; i < 40 && (seen_a.find("tick") == std::string::npos || err_a.find("tock") == std::string::npos);
         ++i) {
        auto c = (*a)->read();
        ASSERT_TRUE(c);
        ASSERT_FALSE(c->data.empty());
        (c->stream == 2 ? err_a : seen_a) += c->data;
    }
    EXPECT_NE(seen_a.find("tick"), std::string::npos);
    EXPECT_NE(err_a.find("tock"), std::string::npos);
    EXPECT_EQ(seen_a.find("tock"), std::string::npos);
    for (int i = 0; i < 10; ++i) {
        auto c = (*b)->read();
        ASSERT_TRUE(c);
        EXPECT_EQ(c->stream, 1);  // stderr was not asked for
        seen_b += c->data;
    }
    EXPECT_NE(seen_b.find("tick"), std::string::npos);
    // Detaching one leaves the container and the other attacher alone.
    a->reset();
    std::string more;
    ASSERT_TRUE(read_until(**b, "tick", &more));
    // A stop ends the output.
    ASSERT_TRUE(containers_->stop(id, 0));
    read_all(**b);
    b->reset();
    EXPECT_EQ(open_fds(), fds);

    auto r = targets_->attach({.container_id = id});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), EBUSY);
}

TEST_F(CriTargetsTest, AttachStdinReachesTheContainer) {
    std::string pod = run_pod("stdin");
    auto cfg = container_config("reader", "while read l; do echo got $l; done; echo stdin closed");
    cfg.set_stdin(true);
    cfg.set_stdin_once(true);
    std::string id = start_container(pod, cfg);
    ASSERT_FALSE(id.empty());
    auto a = targets_->attach({.container_id = id, .stdin = true});
    ASSERT_TRUE(a) << a.error().message();
    ASSERT_TRUE((*a)->write_stdin(std::string("one\ntwo\n")));
    std::string seen;
    ASSERT_TRUE(read_until(**a, "got two\n", &seen)) << seen;
    EXPECT_EQ(seen, "got one\ngot two\n");
    // stdin_once: this session's end of input closes the container's stdin.
    (*a)->close_stdin();
    ASSERT_TRUE(read_until(**a, "stdin closed\n", &seen)) << seen;
    read_all(**a);

    // stdin and tty must match what the container was created with.
    std::string plain = start_container(pod, container_config("plain", "sleep 1000"));
    auto r = targets_->attach({.container_id = plain, .stdin = true});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), EINVAL);
    r = targets_->attach({.container_id = plain, .tty = true, .stderr = false});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), EINVAL);
    ASSERT_TRUE(targets_->attach({.container_id = plain}));
}

TEST_F(CriTargetsTest, AttachWithoutStdinOnceKeepsStdinOpen) {
    std::string pod = run_pod("stdin2");
    auto cfg = container_config("reader", "while read l; do echo got $l; done; echo stdin closed");
    cfg.set_stdin(true);
    std::string id = start_container(pod, cfg);
    ASSERT_FALSE(id.empty());
    {
        auto a = targets_->attach({.container_id = id, .stdin = true});
        ASSERT_TRUE(a) << a.error().message();
        ASSERT_TRUE((*a)->write_stdin(std::string("one\n")));
        std::string seen;
        ASSERT_TRUE(read_until(**a, "got one\n", &seen)) << seen;
        (*a)->close_stdin();
    }
    auto b = targets_->attach({.container_id = id, .stdin = true});
    ASSERT_TRUE(b) << b.error().message();
    ASSERT_TRUE((*b)->write_stdin(std::string("two\n")));
    std::string seen;
    ASSERT_TRUE(read_until(**b, "got two\n", &seen)) << seen;
    EXPECT_EQ(seen.find("stdin closed"), std::string::npos);
}

TEST_F(CriTargetsTest, AttachTtyResizeIsSeenByStty) {
    std::string pod = run_pod("tty");
    auto cfg = container_config("term", "while read l; do stty size; done");
    cfg.set_tty(true);
    cfg.set_stdin(true);
    std::string id = start_container(pod, cfg);
    ASSERT_FALSE(id.empty());
    auto a = targets_->attach({.container_id = id, .tty = true, .stdin = true, .stderr = false});
    ASSERT_TRUE(a) << a.error().message();
    ASSERT_TRUE((*a)->resize(77, 33));
    ASSERT_TRUE((*a)->write_stdin(std::string("\n")));
    std::string seen;
    ASSERT_TRUE(read_until(**a, "33 77", &seen)) << seen;
    ASSERT_TRUE((*a)->resize(88, 22));
    ASSERT_TRUE((*a)->write_stdin(std::string("\n")));
    ASSERT_TRUE(read_until(**a, "22 88", &seen)) << seen;
}

TEST_F(CriTargetsTest, AttachToAnOlderMonitorIsNotSupported) {
    std::string pod = run_pod("old");
    std::string id = start_container(pod, container_config("old", "sleep 1000"));
    ASSERT_FALSE(id.empty());
    // What a monitor of an older berthd has: a ctl socket and no attach socket.
    ASSERT_EQ(::unlink((ctx_->monitor_dir(id) + "/attach").c_str()), 0);
    auto r = targets_->attach({.container_id = id});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ENOTSUP);
    EXPECT_NE(r.error().message().find("not supported"), std::string::npos) << r.error().message();
}

TEST_F(CriTargetsTest, DialReachesAPortInsideThePod) {
    std::string pod = run_pod("web");
    ASSERT_FALSE(pod.empty());
    std::string id = start_container(pod, container_config("httpd",
                                                           "mkdir -p /www && echo hello-from-pod > /www/index.html && "
                                                           "exec httpd -f -p 15401 -h /www"));
    ASSERT_FALSE(id.empty());
    const size_t tasks = threads();
    Result<UniqueFd> fd = fail("not dialed");
    for (int i = 0; i < 100; ++i) {
        fd = targets_->dial(pod, 15401);
        if (fd) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(threads(), tasks);
    ASSERT_TRUE(write_all(fd->get(), "GET /index.html HTTP/1.0\r\n\r\n"));
    auto resp = read_fd(fd->get());
    ASSERT_TRUE(resp) << resp.error().message();
    EXPECT_NE(resp->find("200 OK"), std::string::npos) << *resp;
    EXPECT_NE(resp->find("hello-from-pod"), std::string::npos) << *resp;

    // The port is the pod's, not the host's: nothing listens on it here.
    UniqueFd host(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a {};
    a.sin_family = AF_INET;
    a.sin_port = htons(15401);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_NE(::connect(host.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);

    // Nothing listening in the pod: refused, naming the port and the pod.
    auto refused = targets_->dial(pod, 15402);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), ECONNREFUSED);
    EXPECT_NE(refused.error().message().find(pod), std::string::npos);

    auto missing = targets_->check_port_forward("nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    ASSERT_TRUE(pods_->stop(pod));
    auto stopped = targets_->check_port_forward(pod);
    ASSERT_FALSE(stopped);
    EXPECT_EQ(stopped.error().code(), EBUSY);
}

TEST_F(CriTargetsTest, DialInAHostNetworkPodUsesTheHostLoopback) {
    std::string pod = run_pod("hostnet", true);
    ASSERT_FALSE(pod.empty());
    UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(l.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a {};
    a.sin_family = AF_INET;
    a.sin_port = htons(15403);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(l.get(), 1), 0);
    auto fd = targets_->dial(pod, 15403);
    ASSERT_TRUE(fd) << fd.error().message();
    UniqueFd c(::accept(l.get(), nullptr, nullptr));
    ASSERT_TRUE(c.valid());
    ASSERT_TRUE(write_all(fd->get(), "ping"));
    char buf[4];
    ASSERT_EQ(::read(c.get(), buf, 4), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
}

}  // namespace
}  // namespace berth::test
