// berthd's containers over gRPC: create/start/stop/remove, exits (Completed, Error, OOMKilled), the CRI log and its
// reopen, ExecSync, resource updates, events, and what survives berthd being killed.
#include "cri_fixture.hpp"
// (cri_fixture.hpp includes the CRI headers first.)
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "harness.hpp"
#include "store/cri_records.hpp"
#include "store/images.hpp"

namespace berth::test {
namespace {

bool mounted(const std::string& path) {
    return read_text("/proc/self/mountinfo").find(" " + path + " ") != std::string::npos;
}

class CriContainerTest : public CriTest {
protected:
    void SetUp() override {
        CriTest::SetUp();
        if (HasFatalFailure()) return;
        start_daemon();
        if (HasFatalFailure()) return;
        pod_cfg_ = pod_config("ctrpod");
        pod_ = run_pod(pod_cfg_);
    }
    std::string log_of(const std::string& name) { return dir_ + "/logs/ctrpod/" + name + ".log"; }
    nlohmann::json verbose_info(const std::string& id) {
        grpc::ClientContext ctx;
        v1::ContainerStatusRequest req;
        req.set_container_id(id);
        req.set_verbose(true);
        v1::ContainerStatusResponse resp;
        grpc::Status st = runtime()->ContainerStatus(&ctx, req, &resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
        if (!resp.info().contains("info")) return {};
        return nlohmann::json::parse(resp.info().at("info"));
    }
    grpc::Status exec_sync(const std::string& id, const std::vector<std::string>& cmd, int64_t timeout,
                           v1::ExecSyncResponse* resp) {
        grpc::ClientContext ctx;
        v1::ExecSyncRequest req;
        req.set_container_id(id);
        for (const auto& c : cmd) req.add_cmd(c);
        req.set_timeout(timeout);
        return runtime()->ExecSync(&ctx, req, resp);
    }
    v1::PodSandboxConfig pod_cfg_;
    std::string pod_;
};

TEST_F(CriContainerTest, ExitZeroIsCompletedWithACriLog) {
    auto cfg = container_config("hello", "echo hello; echo oops >&2; exit 0");
    std::string id;
    grpc::Status st = create_container(pod_, cfg, pod_cfg_, &id);
    ASSERT_TRUE(st.ok()) << st.error_message();
    auto created = container_status(id);
    EXPECT_EQ(created.state(), v1::CONTAINER_CREATED);
    EXPECT_EQ(created.started_at(), 0);
    EXPECT_EQ(created.log_path(), log_of("hello"));
    EXPECT_EQ(created.image().image(), kBusybox);
    EXPECT_TRUE(created.image_ref().starts_with("sha256:")) << created.image_ref();
    ASSERT_TRUE(start_container(id).ok());
    auto s = wait_exited(id);
    EXPECT_EQ(s.exit_code(), 0);
    EXPECT_EQ(s.reason(), "Completed");
    EXPECT_GT(s.started_at(), 0);
    EXPECT_GE(s.finished_at(), s.started_at());
    std::string log = read_text(log_of("hello"));
    std::regex out_line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) stdout F hello\n)");
    std::regex err_line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) stderr F oops\n)");
    EXPECT_TRUE(std::regex_search(log, out_line)) << log;
    EXPECT_TRUE(std::regex_search(log, err_line)) << log;
    // Start of an exited container is refused; stop and remove are idempotent.
    EXPECT_EQ(start_container(id).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_TRUE(stop_container(id, 0).ok());
    EXPECT_TRUE(remove_container(id).ok());
    EXPECT_TRUE(remove_container(id).ok());
    EXPECT_TRUE(stop_container(id, 0).ok());
    grpc::Status gone;
    container_status(id, &gone);
    EXPECT_EQ(gone.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_FALSE(std::filesystem::exists(root_ + "/containers/" + id));
    EXPECT_FALSE(std::filesystem::exists(state_ + "/containers/" + id));
}

TEST_F(CriContainerTest, NonZeroExitIsError) {
    std::string id = create_and_start(pod_, container_config("fail", "exit 3"), pod_cfg_);
    auto s = wait_exited(id);
    EXPECT_EQ(s.exit_code(), 3);
    EXPECT_EQ(s.reason(), "Error");
}

TEST_F(CriContainerTest, GuaranteedOomScoreIsClampedWhereTheHostCannotLowerIt) {
    // kubelet gives Guaranteed pods' containers oom_score_adj -997. Without CAP_SYS_RESOURCE (this kind of host)
    // berthd clamps it to its own score and logs that, instead of failing the container.
    std::string status = read_text("/proc/self/status");
    auto pos = status.find("CapEff:");
    ASSERT_NE(pos, std::string::npos);
    const bool can_lower = (std::strtoull(status.c_str() + pos + 7, nullptr, 16) >> 24) & 1;
    auto cfg = container_config("guaranteed", "cat /proc/self/oom_score_adj");
    cfg.mutable_linux()->mutable_resources()->set_oom_score_adj(-997);
    std::string id = create_and_start(pod_, cfg, pod_cfg_);
    auto s = wait_exited(id);
    ASSERT_EQ(s.exit_code(), 0) << s.message();
    const std::string log = read_text(log_of("guaranteed"));
    if (can_lower) {
        EXPECT_NE(log.find(" F -997"), std::string::npos) << log;
    } else {
        const std::string daemon_score = trim(read_text("/proc/" + std::to_string(daemon_->pid()) + "/oom_score_adj"));
        EXPECT_NE(log.find(" F " + daemon_score + "\n"), std::string::npos) << log << " daemon: " << daemon_score;
        // The daemon's log is complete once it has stopped; the fixture's teardown wants it running again.
        daemon_->terminate();
        EXPECT_NE(daemon_->output().find("oom_score_adj -997 clamped to " + daemon_score), std::string::npos)
            << daemon_->output();
        start_daemon(extra_);
    }
}

TEST_F(CriContainerTest, StopSendsTheStopSignalThenKillsAfterTheTimeout) {
    std::string polite = create_and_start(
        pod_, container_config("polite", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done"), pod_cfg_);
    std::string stubborn = create_and_start(
        pod_, container_config("stubborn", "trap '' TERM; echo ready; while true; do sleep 0.1; done"), pod_cfg_);
    // Both have set their traps once they logged.
    for (const auto& n : {"polite", "stubborn"}) {
        for (int i = 0; i < 200 && read_text(log_of(n)).find("ready") == std::string::npos; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    grpc::Status st = stop_container(polite, 10);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(container_status(polite).exit_code(), 7);
    auto t0 = std::chrono::steady_clock::now();
    st = stop_container(stubborn, 1);
    ASSERT_TRUE(st.ok()) << st.error_message();
    auto took = std::chrono::steady_clock::now() - t0;
    auto s = container_status(stubborn);
    EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
    EXPECT_EQ(s.exit_code(), 137);
    EXPECT_GE(took, std::chrono::milliseconds(900));
}

TEST_F(CriContainerTest, ErrorsNameWhatIsWrong) {
    auto cfg = container_config("x", "true");
    std::string id;
    grpc::Status st = create_container(std::string(64, 'b'), cfg, pod_cfg_, &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
    auto no_image = cfg;
    no_image.mutable_image()->set_image("");
    st = create_container(pod_, no_image, pod_cfg_, &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("config.image.image"), std::string::npos) << st.error_message();
    auto missing = cfg;
    missing.mutable_image()->set_image("localhost/cricore/none:1");
    st = create_container(pod_, missing, pod_cfg_, &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
    EXPECT_NE(st.error_message().find("localhost/cricore/none:1"), std::string::npos) << st.error_message();
    auto no_name = cfg;
    no_name.mutable_metadata()->clear_name();
    st = create_container(pod_, no_name, pod_cfg_, &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("config.metadata.name"), std::string::npos) << st.error_message();

    std::string first;
    ASSERT_TRUE(create_container(pod_, cfg, pod_cfg_, &first).ok());
    st = create_container(pod_, cfg, pod_cfg_, &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_NE(st.error_message().find(first), std::string::npos) << st.error_message();

    EXPECT_EQ(start_container(std::string(64, 'c')).error_code(), grpc::StatusCode::NOT_FOUND);
    grpc::Status s;
    container_status(std::string(64, 'c'), &s);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    // Nothing of the refused creates is left: one container directory (the created one).
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(root_ + "/containers"),
                            std::filesystem::directory_iterator()),
              1);
}

TEST_F(CriContainerTest, ListFilters) {
    std::string a = create_and_start(pod_, container_config("a", "sleep 100"), pod_cfg_);
    std::string b;
    ASSERT_TRUE(create_container(pod_, container_config("b", "true"), pod_cfg_, &b).ok());
    auto other_cfg = pod_config("other");
    std::string other_pod = run_pod(other_cfg);
    std::string c;
    ASSERT_TRUE(create_container(other_pod, container_config("c", "true"), other_cfg, &c).ok());
    auto list = [&](const v1::ContainerFilter& f) {
        grpc::ClientContext ctx;
        v1::ListContainersRequest req;
        *req.mutable_filter() = f;
        v1::ListContainersResponse resp;
        EXPECT_TRUE(runtime()->ListContainers(&ctx, req, &resp).ok());
        std::set<std::string> ids;
        for (const auto& x : resp.containers()) ids.insert(x.id());
        return ids;
    };
    EXPECT_EQ(list({}), (std::set<std::string>{a, b, c}));
    v1::ContainerFilter f;
    f.set_pod_sandbox_id(pod_);
    EXPECT_EQ(list(f), (std::set<std::string>{a, b}));
    f.Clear();
    f.mutable_state()->set_state(v1::CONTAINER_RUNNING);
    EXPECT_EQ(list(f), std::set<std::string>{a});
    f.Clear();
    (*f.mutable_label_selector())["ctr"] = "c";
    EXPECT_EQ(list(f), std::set<std::string>{c});
    f.Clear();
    f.set_id(b);
    EXPECT_EQ(list(f), std::set<std::string>{b});

    // Removing a pod stops and removes its containers, rootfs included.
    ASSERT_TRUE(stop_pod(pod_).ok());
    EXPECT_EQ(container_status(a).state(), v1::CONTAINER_EXITED);
    ASSERT_TRUE(remove_pod(pod_).ok());
    EXPECT_EQ(list({}), std::set<std::string>{c});
    EXPECT_FALSE(mounted(root_ + "/containers/" + a + "/rootfs"));
}

TEST_F(CriContainerTest, MemoryLimitExceededIsOOMKilled) {
    auto cfg = container_config("oom", "exec dd if=/dev/zero of=/dev/null bs=128M count=1");
    cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
    std::string id = create_and_start(pod_, cfg, pod_cfg_);
    auto s = wait_exited(id);
    EXPECT_EQ(s.reason(), "OOMKilled");
    EXPECT_EQ(s.exit_code(), 137);
}

TEST_F(CriContainerTest, ReopenContainerLogStartsANewFile) {
    std::string id =
        create_and_start(pod_, container_config("ticker", "while true; do echo tick; sleep 0.1; done"), pod_cfg_);
    const std::string log = log_of("ticker");
    for (int i = 0; i < 200 && read_text(log).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    ASSERT_FALSE(read_text(log).empty());
    std::filesystem::rename(log, log + ".1");
    grpc::ClientContext ctx;
    v1::ReopenContainerLogRequest req;
    req.set_container_id(id);
    v1::ReopenContainerLogResponse resp;
    grpc::Status st = runtime()->ReopenContainerLog(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    for (int i = 0; i < 200 && read_text(log).find("stdout F tick") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    EXPECT_NE(read_text(log).find("stdout F tick"), std::string::npos);
    ASSERT_TRUE(stop_container(id, 0).ok());
    grpc::ClientContext ctx2;
    st = runtime()->ReopenContainerLog(&ctx2, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(CriContainerTest, ExecSyncOutputExitCodeAndTimeout) {
    std::string id = create_and_start(pod_, container_config("exec", "sleep 1000"), pod_cfg_);
    v1::ExecSyncResponse resp;
    grpc::Status st = exec_sync(id, {"/bin/sh", "-c", "echo out; echo err >&2; hostname; exit 5"}, 10, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.stdout(), "out\nctrpod\n");
    EXPECT_EQ(resp.stderr(), "err\n");
    EXPECT_EQ(resp.exit_code(), 5);

    auto t0 = std::chrono::steady_clock::now();
    v1::ExecSyncResponse slow;
    st = exec_sync(id, {"/bin/sleep", "30"}, 1, &slow);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    // The timed-out process is gone from the container.
    v1::ExecSyncResponse ps;
    ASSERT_TRUE(exec_sync(id, {"/bin/ps"}, 10, &ps).ok());
    EXPECT_EQ(ps.stdout().find("sleep 30"), std::string::npos) << ps.stdout();

    v1::ExecSyncResponse none;
    st = exec_sync(id, {}, 1, &none);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CriContainerTest, UpdateContainerResourcesChangesTheCgroup) {
    auto cfg = container_config("upd", "sleep 1000");
    cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
    std::string id = create_and_start(pod_, cfg, pod_cfg_);
    int pid = verbose_info(id).value("pid", 0);
    ASSERT_GT(pid, 0);
    std::string memcg;
    for (const auto& line : std::vector<std::string>{}) (void)line;
    {
        std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
        std::string line;
        while (std::getline(in, line)) {
            auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
            if (line.substr(c1 + 1, c2 - c1 - 1) == "memory") memcg = line.substr(c2 + 1);
        }
    }
    ASSERT_FALSE(memcg.empty());
    const std::string limit_file = "/sys/fs/cgroup/memory" + memcg + "/memory.limit_in_bytes";
    EXPECT_EQ(trim(read_text(limit_file)), std::to_string(64 << 20));
    grpc::ClientContext ctx;
    v1::UpdateContainerResourcesRequest req;
    req.set_container_id(id);
    req.mutable_linux()->set_memory_limit_in_bytes(96 << 20);
    v1::UpdateContainerResourcesResponse resp;
    grpc::Status st = runtime()->UpdateContainerResources(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(trim(read_text(limit_file)), std::to_string(96 << 20));
    EXPECT_EQ(container_status(id).resources().linux().memory_limit_in_bytes(), 96 << 20);
}

TEST_F(CriContainerTest, ContainerEventsStreamTheLifecycle) {
    grpc::ClientContext ctx;
    auto stub = runtime();
    auto reader = stub->GetContainerEvents(&ctx, v1::GetEventsRequest());
    std::vector<v1::ContainerEventResponse> events;
    std::thread t([&] {
        v1::ContainerEventResponse ev;
        while (reader->Read(&ev)) {
            events.push_back(ev);
            if (ev.container_event_type() == v1::CONTAINER_DELETED_EVENT) break;
        }
    });
    // The subscription exists once the call is in; give the server a moment to have taken it.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::string id = create_and_start(pod_, container_config("ev", "sleep 100"), pod_cfg_);
    ASSERT_TRUE(stop_container(id, 0).ok());
    ASSERT_TRUE(remove_container(id).ok());
    t.join();
    ctx.TryCancel();
    std::vector<v1::ContainerEventType> types;
    for (const auto& e : events) {
        EXPECT_EQ(e.container_id(), id);
        EXPECT_EQ(e.pod_sandbox_status().id(), pod_);
        types.push_back(e.container_event_type());
    }
    EXPECT_EQ(types, (std::vector<v1::ContainerEventType>{v1::CONTAINER_CREATED_EVENT, v1::CONTAINER_STARTED_EVENT,
                                                          v1::CONTAINER_STOPPED_EVENT, v1::CONTAINER_DELETED_EVENT}));
}

TEST_F(CriContainerTest, ImageRemovedUnderAContainerKeepsItsLayers) {
    std::string id = create_and_start(pod_, container_config("keep", "sleep 1000"), pod_cfg_);
    {
        auto images = store::Images::open(root_);
        ASSERT_TRUE(images) << images.error().message();
        auto removed = images->remove(kBusybox);
        ASSERT_TRUE(removed) << removed.error().message();
        EXPECT_TRUE(removed->snapshots_removed.empty());
        auto pruned = images->prune();
        ASSERT_TRUE(pruned);
        EXPECT_TRUE(pruned->snapshots_removed.empty());
    }
    v1::ExecSyncResponse resp;
    ASSERT_TRUE(exec_sync(id, {"/bin/cat", "/etc/hostname"}, 10, &resp).ok());
    EXPECT_EQ(resp.exit_code(), 0);
    ASSERT_TRUE(remove_container(id).ok());
    auto images = store::Images::open(root_);
    ASSERT_TRUE(images);
    auto pruned = images->prune();
    ASSERT_TRUE(pruned);
    EXPECT_EQ(pruned->snapshots_removed.size(), 2u);
}

TEST_F(CriContainerTest, KillNineAndRestartKeepsRunningContainersAndReadsExitsOfTheDowntime) {
    std::string runner = create_and_start(pod_, container_config("runner", "sleep 1000"), pod_cfg_);
    std::string quitter = create_and_start(pod_, container_config("quitter", "sleep 1000"), pod_cfg_);
    std::string created;
    ASSERT_TRUE(create_container(pod_, container_config("later", "echo later"), pod_cfg_, &created).ok());
    int runner_pid = verbose_info(runner).value("pid", 0);
    int quitter_pid = verbose_info(quitter).value("pid", 0);
    ASSERT_GT(runner_pid, 0);
    ASSERT_GT(quitter_pid, 0);

    ASSERT_EQ(daemon_->kill_hard(), 128 + SIGKILL);
    // While berthd is down, one container ends.
    ASSERT_EQ(::kill(quitter_pid, SIGKILL), 0);
    for (int i = 0; i < 200 && !std::filesystem::exists(state_ + "/m/" + quitter + "/exit"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    start_daemon(extra_);

    auto q = container_status(quitter);
    EXPECT_EQ(q.state(), v1::CONTAINER_EXITED);
    EXPECT_EQ(q.exit_code(), 137);
    EXPECT_GT(q.finished_at(), 0);
    auto r = container_status(runner);
    EXPECT_EQ(r.state(), v1::CONTAINER_RUNNING);
    EXPECT_EQ(verbose_info(runner).value("pid", 0), runner_pid);

    // A second restart in a row; then the containers are still fully usable.
    ASSERT_EQ(daemon_->kill_hard(), 128 + SIGKILL);
    start_daemon(extra_);
    EXPECT_EQ(container_status(runner).state(), v1::CONTAINER_RUNNING);
    EXPECT_EQ(container_status(created).state(), v1::CONTAINER_CREATED);
    ASSERT_TRUE(start_container(created).ok());
    EXPECT_EQ(wait_exited(created).exit_code(), 0);
    // An exit after the restart is seen by the new daemon's watcher.
    ASSERT_EQ(::kill(runner_pid, SIGKILL), 0);
    EXPECT_EQ(wait_exited(runner).exit_code(), 137);
    ASSERT_TRUE(remove_pod(pod_).ok());
}

TEST_F(CriContainerTest, SharedPidNamespaceOfThePod) {
    auto pc = pod_config("sharedpid");
    pc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
    std::string pod = run_pod(pc);
    ASSERT_FALSE(pod.empty());
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod);
    req.set_verbose(true);
    v1::PodSandboxStatusResponse resp;
    ASSERT_TRUE(runtime()->PodSandboxStatus(&ctx, req, &resp).ok());
    int holder = nlohmann::json::parse(resp.info().at("info")).value("pidnsHolder", 0);
    ASSERT_GT(holder, 0);
    std::string a = create_and_start(pod, container_config("a", "sleep 1000"), pc);
    std::string b = create_and_start(pod, container_config("b", "sleep 2000"), pc);
    v1::ExecSyncResponse ps;
    ASSERT_TRUE(exec_sync(b, {"/bin/ps", "-o", "pid,args"}, 10, &ps).ok());
    // Both containers and the holder (PID 1) are in one PID namespace.
    EXPECT_NE(ps.stdout().find("sleep 1000"), std::string::npos) << ps.stdout();
    EXPECT_NE(ps.stdout().find("sleep 2000"), std::string::npos) << ps.stdout();
    EXPECT_NE(ps.stdout().find("    1 berth-monitor --pause"), std::string::npos) << ps.stdout();
    ASSERT_TRUE(stop_pod(pod).ok());
    EXPECT_EQ(container_status(a).state(), v1::CONTAINER_EXITED);
    auto gone = [&] {
        std::string stat = read_text("/proc/" + std::to_string(holder) + "/stat");
        return stat.empty() || stat.find(") Z") != std::string::npos;
    };
    for (int i = 0; i < 100 && !gone(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(gone()) << "the PID namespace holder outlived its pod";
    ASSERT_TRUE(remove_pod(pod).ok());
}

TEST_F(CriContainerTest, StatsOfRunningContainersAndTheirPod) {
    std::string id = create_and_start(
        pod_, container_config("busy", "head -c 4000000 /dev/zero > /tmp/blob; echo ready; sleep 1000"), pod_cfg_);
    for (int i = 0; i < 200 && read_text(log_of("busy")).find("ready") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    {
        grpc::ClientContext ctx;
        v1::ContainerStatsRequest req;
        req.set_container_id(id);
        v1::ContainerStatsResponse resp;
        grpc::Status st = runtime()->ContainerStats(&ctx, req, &resp);
        ASSERT_TRUE(st.ok()) << st.error_message();
        EXPECT_EQ(resp.stats().attributes().id(), id);
        EXPECT_EQ(resp.stats().attributes().metadata().name(), "busy");
        EXPECT_GT(resp.stats().memory().working_set_bytes().value(), 0u);
        EXPECT_GT(resp.stats().cpu().usage_core_nano_seconds().value(), 0u);
        EXPECT_GE(resp.stats().writable_layer().used_bytes().value(), 4000000u);
    }
    {
        grpc::ClientContext ctx;
        v1::ListContainerStatsRequest req;
        req.mutable_filter()->set_pod_sandbox_id(pod_);
        v1::ListContainerStatsResponse resp;
        ASSERT_TRUE(runtime()->ListContainerStats(&ctx, req, &resp).ok());
        ASSERT_EQ(resp.stats_size(), 1);
        EXPECT_EQ(resp.stats(0).attributes().id(), id);
    }
    {
        grpc::ClientContext ctx;
        v1::PodSandboxStatsRequest req;
        req.set_pod_sandbox_id(pod_);
        v1::PodSandboxStatsResponse resp;
        grpc::Status st = runtime()->PodSandboxStats(&ctx, req, &resp);
        ASSERT_TRUE(st.ok()) << st.error_message();
        EXPECT_EQ(resp.stats().attributes().id(), pod_);
        ASSERT_EQ(resp.stats().linux().containers_size(), 1);
        EXPECT_EQ(resp.stats().linux().containers(0).attributes().id(), id);
        EXPECT_GT(resp.stats().linux().memory().working_set_bytes().value(), 0u);
    }
    {
        grpc::ClientContext ctx;
        v1::ListPodSandboxStatsResponse resp;
        ASSERT_TRUE(runtime()->ListPodSandboxStats(&ctx, v1::ListPodSandboxStatsRequest(), &resp).ok());
        EXPECT_EQ(resp.stats_size(), 1);
    }
    {
        // The Stream* forms answer the same lists, in one message each.
        grpc::ClientContext ctx;
        v1::StreamContainerStatsRequest req;
        req.mutable_filter()->set_pod_sandbox_id(pod_);
        auto reader = runtime()->StreamContainerStats(&ctx, req);
        v1::StreamContainerStatsResponse msg;
        int seen = 0;
        while (reader->Read(&msg))
            for (const auto& s : msg.container_stats()) {
                EXPECT_EQ(s.attributes().id(), id);
                EXPECT_GT(s.memory().working_set_bytes().value(), 0u);
                ++seen;
            }
        ASSERT_TRUE(reader->Finish().ok());
        EXPECT_EQ(seen, 1);
    }
    {
        grpc::ClientContext ctx;
        auto reader = runtime()->StreamPodSandboxStats(&ctx, v1::StreamPodSandboxStatsRequest());
        v1::StreamPodSandboxStatsResponse msg;
        int seen = 0;
        while (reader->Read(&msg))
            for (const auto& s : msg.pod_sandbox_stats()) {
                EXPECT_EQ(s.attributes().id(), pod_);
                ++seen;
            }
        ASSERT_TRUE(reader->Finish().ok());
        EXPECT_EQ(seen, 1);
    }
    grpc::ClientContext ctx;
    v1::ContainerStatsRequest req;
    req.set_container_id(std::string(64, 'f'));
    v1::ContainerStatsResponse resp;
    EXPECT_EQ(runtime()->ContainerStats(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(CriContainerTest, RestartUndoesAContainerLeftHalfMade) {
    ASSERT_EQ(daemon_->kill_hard(), 128 + SIGKILL);
    // What a crash in the middle of CreateContainer leaves: a "creating" record, an image hold, a mounted rootfs.
    const std::string half = std::string(64, 'd');
    {
        auto db = store::CriRecords::open(root_);
        ASSERT_TRUE(db) << db.error().message();
        store::ContainerRecord c;
        c.id = half;
        c.pod_id = pod_;
        c.name = "half";
        ASSERT_TRUE((*db)->put_container(c, true));
        auto images = store::Images::open(root_);
        ASSERT_TRUE(images);
        ASSERT_TRUE(images->hold(half, kBusybox));
    }
    const std::string rootfs = root_ + "/containers/" + half + "/rootfs";
    std::filesystem::create_directories(rootfs);
    ASSERT_EQ(::mount("half", rootfs.c_str(), "tmpfs", 0, "size=1m"), 0);
    start_daemon(extra_);
    EXPECT_FALSE(mounted(rootfs));
    EXPECT_FALSE(std::filesystem::exists(root_ + "/containers/" + half));
    grpc::Status st;
    container_status(half, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    // Its hold is gone: with the image removed, its layers are collected.
    auto images = store::Images::open(root_);
    ASSERT_TRUE(images);
    auto removed = images->remove(kBusybox);
    ASSERT_TRUE(removed) << removed.error().message();
    EXPECT_EQ(removed->snapshots_removed.size(), 2u);
    // The name is free again.
    std::string id;
    EXPECT_EQ(create_container(pod_, container_config("half", "true"), pod_cfg_, &id).error_code(),
              grpc::StatusCode::NOT_FOUND);  // (the image is gone now: NotFound, not AlreadyExists)
}

}  // namespace
}  // namespace berth::test

namespace berth::test {
namespace {

// Pods of a RuntimeClass handler whose containers run through an external OCI runtime binary.
class CriHandlerTest : public CriTest {
protected:
    void run_through(const std::string& handler) {
        auto pc = pod_config("h-" + handler);
        std::string pod = run_pod(pc, handler);
        ASSERT_FALSE(pod.empty());
        std::string id = create_and_start(pod, container_config("echo", "echo via-handler; exit 6"), pc);
        ASSERT_FALSE(id.empty());
        auto s = wait_exited(id);
        EXPECT_EQ(s.exit_code(), 6);
        EXPECT_EQ(s.reason(), "Error");
        EXPECT_NE(read_text(dir_ + "/logs/h-" + handler + "/echo.log").find("stdout F via-handler"), std::string::npos);
        std::string sleeper = create_and_start(pod, container_config("sleeper", "sleep 1000"), pc);
        v1::ExecSyncResponse resp;
        grpc::ClientContext ctx;
        v1::ExecSyncRequest req;
        req.set_container_id(sleeper);
        req.add_cmd("/bin/hostname");
        req.set_timeout(10);
        grpc::Status st = runtime()->ExecSync(&ctx, req, &resp);
        ASSERT_TRUE(st.ok()) << st.error_message();
        EXPECT_EQ(resp.stdout(), "h-" + handler + "\n");
        ASSERT_TRUE(stop_container(sleeper, 0).ok());
        EXPECT_EQ(container_status(sleeper).exit_code(), 137);
        grpc::Status removed = remove_pod(pod);
        EXPECT_TRUE(removed.ok()) << removed.error_message();
    }
};

TEST_F(CriHandlerTest, Runc) {
    if (::access("/usr/bin/runc", X_OK) != 0) GTEST_SKIP() << "runc is not installed";
    start_daemon({"--runtime", "runc=/usr/bin/runc"});
    grpc::ClientContext ctx;
    v1::StatusResponse status;
    ASSERT_TRUE(runtime()->Status(&ctx, v1::StatusRequest(), &status).ok());
    std::set<std::string> names;
    for (const auto& h : status.runtime_handlers()) names.insert(h.name());
    EXPECT_TRUE(names.contains("")) << "the default handler";
    EXPECT_TRUE(names.contains("runc"));
    run_through("runc");
}

TEST_F(CriHandlerTest, Crun) {
    if (::access("/usr/bin/crun", X_OK) != 0) GTEST_SKIP() << "crun is not installed";
    // crun refuses this hybrid host (controllers in the unified tree): it runs in a private mount namespace where
    // the unified tree lists none, as in the monitor tests.
    const std::string empty = dir_ + "/empty-controllers", wrapper = dir_ + "/crun-wrapper";
    write_text(empty, "");
    write_text(wrapper,
               "#!/bin/sh\nexec /usr/bin/unshare -m --propagation slave /bin/sh -c 'mount --bind " + empty +
                   " /sys/fs/cgroup/unified/cgroup.controllers && exec /usr/bin/crun \"$@\"' crun \"$@\"\n",
               0755);
    start_daemon({"--runtime", "crun=" + wrapper});
    run_through("crun");
}

// Whether runsc (gVisor) can run a container on this host at all, outside berthd: a busybox bundle run with the
// flags berth.toml gives it below. "" when it can, else what runsc said.
std::string runsc_host_problem(const std::string& dir, const std::vector<std::string>& flags) {
    const std::string bundle = dir + "/runsc-probe", root = dir + "/runsc-probe-root";
    auto made = run_command({"/bin/bash", BERTH_SOURCE_DIR "/scripts/make-bundle.sh", bundle, "echo", "gvisor-ok"});
    if (made.exit_code != 0) return "make-bundle.sh failed: " + made.err;
    const std::string id = "ops-runsc-probe-" + std::to_string(::getpid());
    std::vector<std::string> argv = {"/usr/bin/timeout", "120", "/usr/bin/runsc", "--root", root};
    argv.insert(argv.end(), flags.begin(), flags.end());
    // The bare bundle has no network namespace of its own, where runsc refuses its netstack; CRI containers join
    // their pod's.
    argv.insert(argv.end(), {"--network=none", "run", "--bundle", bundle, id});
    auto r = run_command(argv);
    run_command({"/usr/bin/runsc", "--root", root, "delete", "-force", id});
    if (r.exit_code == 0 && r.out.find("gvisor-ok") != std::string::npos) return "";
    return "runsc run exited " + std::to_string(r.exit_code) + ": " + trim(r.out + r.err);
}

TEST_F(CriHandlerTest, RunscGvisor) {
    if (::access("/usr/bin/runsc", X_OK) != 0) GTEST_SKIP() << "runsc (gVisor) is not installed (scripts/deps.sh)";
    // ptrace: the platform that needs nothing of the host (no /dev/kvm; this runsc predates systrap).
    // --ignore-cgroups: runsc stays out of the pod cgroup on this hybrid hierarchy (docs/runtimes.md).
    const std::vector<std::string> flags = {"--platform=ptrace", "--ignore-cgroups"};
    if (std::string why = runsc_host_problem(dir_, flags); !why.empty())
        GTEST_SKIP() << "runsc cannot run containers on this host: " << why;
    write_text(dir_ + "/berth.toml",
               "[runtimes.runsc]\npath = \"/usr/bin/runsc\"\nruntime_args = [\"--platform=ptrace\", "
               "\"--ignore-cgroups\", \"--network=host\"]\nsandboxed = true\n");
    start_daemon();
    run_through("runsc");
}

}  // namespace
}  // namespace berth::test
