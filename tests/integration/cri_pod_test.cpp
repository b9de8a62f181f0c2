// berthd's pod sandboxes over gRPC: pinned namespaces, pod files, /dev/shm, stop/remove idempotence, uniqueness,
// list filters, concurrency and recovery of half-made pods.
#include "cri_fixture.hpp"
// (cri_fixture.hpp includes the CRI headers first.)
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/mount.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness.hpp"
#include "store/cri_records.hpp"

namespace berth::test {
namespace {

bool mounted(const std::string& path) {
    std::string info = read_text("/proc/self/mountinfo");
    return info.find(" " + path + " ") != std::string::npos;
}

using CriPodTest = CriTest;

TEST_F(CriPodTest, RunPinsNamespacesAndWritesThePodFiles) {
    start_daemon();
    auto cfg = pod_config("web");
    cfg.mutable_dns_config()->add_servers("10.0.0.10");
    cfg.mutable_dns_config()->add_searches("cricore.svc");
    cfg.mutable_dns_config()->add_options("ndots:5");
    std::string id = run_pod(cfg);
    ASSERT_EQ(id.size(), 64u);

    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    req.set_verbose(true);
    v1::PodSandboxStatusResponse resp;
    grpc::Status st = runtime()->PodSandboxStatus(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.status().state(), v1::SANDBOX_READY);
    EXPECT_EQ(resp.status().metadata().name(), "web");
    EXPECT_EQ(resp.status().labels().at("app"), "web");
    EXPECT_EQ(resp.status().network().ip(), "");
    EXPECT_GT(resp.status().created_at(), 0);
    ASSERT_TRUE(resp.info().contains("info"));
    auto info = nlohmann::json::parse(resp.info().at("info"));
    const std::string netns = info.at("netns"), utsns = info.at("utsns"), ipcns = info.at("ipcns"),
                      shm = info.at("shm");
    EXPECT_TRUE(mounted(netns)) << netns;
    EXPECT_TRUE(mounted(utsns)) << utsns;
    EXPECT_TRUE(mounted(ipcns)) << ipcns;
    EXPECT_TRUE(mounted(shm)) << shm;
    struct statfs sfs {};
    ASSERT_EQ(::statfs(shm.c_str(), &sfs), 0);
    EXPECT_EQ(static_cast<unsigned long long>(sfs.f_blocks) * sfs.f_bsize, 64ULL << 20);

    // The pinned namespaces are real and set up: hostname in the UTS one, loopback up in the network one.
    auto host = run_command({"/usr/bin/nsenter", "--uts=" + utsns, "/bin/hostname"});
    EXPECT_EQ(trim(host.out), "web") << host.err;
    auto lo = run_command({"/usr/bin/nsenter", "--net=" + netns, "/bin/cat", "/proc/net/dev"});
    EXPECT_NE(lo.out.find("lo:"), std::string::npos) << lo.err;
    auto flags = run_command({"/usr/bin/nsenter", "--net=" + netns, "/bin/sh", "-c",
                              "ip -o link show lo 2>/dev/null || cat /proc/net/if_inet6"});
    EXPECT_NE(flags.out.find("UP"), std::string::npos) << flags.out << flags.err;

    EXPECT_EQ(read_text(info.at("resolvConf")), "nameserver 10.0.0.10\nsearch cricore.svc\noptions ndots:5\n");
    EXPECT_EQ(read_text(info.at("hostname")), "web\n");
    EXPECT_NE(read_text(info.at("hosts")).find("localhost"), std::string::npos);
}

TEST_F(CriPodTest, StopAndRemoveAreIdempotentAndReleaseEverything) {
    start_daemon();
    std::string id = run_pod(pod_config("idem"));
    const std::string dir = state_ + "/pods/" + id;
    ASSERT_TRUE(mounted(dir + "/ns/net"));
    for (int i = 0; i < 2; ++i) {
        grpc::Status st = stop_pod(id);
        ASSERT_TRUE(st.ok()) << st.error_message();
    }
    EXPECT_EQ(pod_status(id).state(), v1::SANDBOX_NOTREADY);
    EXPECT_FALSE(mounted(dir + "/ns/net"));
    EXPECT_FALSE(mounted(dir + "/shm"));
    for (int i = 0; i < 2; ++i) {
        grpc::Status st = remove_pod(id);
        ASSERT_TRUE(st.ok()) << st.error_message();
    }
    EXPECT_FALSE(std::filesystem::exists(dir));
    grpc::Status st;
    pod_status(id, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(st.error_message().find(id), std::string::npos) << st.error_message();
    EXPECT_TRUE(stop_pod(std::string(64, 'a')).ok());
    EXPECT_TRUE(remove_pod(std::string(64, 'a')).ok());
}

TEST_F(CriPodTest, SameMetadataIsAlreadyExistsNamingTheHolderButARetryGetsItsId) {
    start_daemon();
    auto cfg = pod_config("dup");
    std::string id = run_pod(cfg);
    // kubelet retrying the same request (its RunPodSandbox timed out): the pod it asked for.
    std::string again;
    grpc::Status st = run_pod_status(cfg, &again);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(again, id);
    // Another config under the same name, uid, namespace and attempt: taken.
    cfg.set_hostname("other");
    st = run_pod_status(cfg, &again);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_NE(st.error_message().find(id), std::string::npos) << st.error_message();
    // The next attempt is another pod.
    cfg.mutable_metadata()->set_attempt(1);
    std::string second = run_pod(cfg);
    EXPECT_NE(second, id);
}

TEST_F(CriPodTest, BadRequestsNameTheField) {
    start_daemon();
    auto cfg = pod_config("bad");
    cfg.mutable_metadata()->clear_name();
    grpc::Status st = run_pod_status(cfg, nullptr);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("config.metadata.name"), std::string::npos) << st.error_message();

    st = run_pod_status(pod_config("handler"), nullptr, "no-such-handler");
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("runtime_handler"), std::string::npos) << st.error_message();

    auto shared_pid = pod_config("sharedpid");
    shared_pid.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
    st = run_pod_status(shared_pid, nullptr);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_NE(st.error_message().find("namespace_options.pid"), std::string::npos) << st.error_message();

    // Nothing of the refused pods is left.
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse list;
    ASSERT_TRUE(runtime()->ListPodSandbox(&ctx, v1::ListPodSandboxRequest(), &list).ok());
    EXPECT_EQ(list.items_size(), 0);
    EXPECT_TRUE(!std::filesystem::exists(state_ + "/pods") || std::filesystem::is_empty(state_ + "/pods"));
}

TEST_F(CriPodTest, HostNetworkAndIpcPinNothing) {
    start_daemon();
    auto cfg = pod_config("host");
    auto* nso = cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    nso->set_network(v1::NODE);
    nso->set_ipc(v1::NODE);
    std::string id = run_pod(cfg);
    const std::string dir = state_ + "/pods/" + id;
    EXPECT_FALSE(std::filesystem::exists(dir + "/ns/net"));
    EXPECT_FALSE(std::filesystem::exists(dir + "/ns/ipc"));
    EXPECT_FALSE(mounted(dir + "/shm"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/resolv.conf"));
    EXPECT_EQ(pod_status(id).linux().namespaces().options().network(), v1::NODE);
}

TEST_F(CriPodTest, ListFiltersByIdStateAndLabels) {
    start_daemon();
    std::string a = run_pod(pod_config("a"));
    std::string b = run_pod(pod_config("b"));
    std::string c = run_pod(pod_config("c"));
    ASSERT_TRUE(stop_pod(c).ok());
    auto list = [&](const v1::PodSandboxFilter& f) {
        grpc::ClientContext ctx;
        v1::ListPodSandboxRequest req;
        *req.mutable_filter() = f;
        v1::ListPodSandboxResponse resp;
        EXPECT_TRUE(runtime()->ListPodSandbox(&ctx, req, &resp).ok());
        std::set<std::string> ids;
        for (const auto& p : resp.items()) ids.insert(p.id());
        return ids;
    };
    EXPECT_EQ(list({}), (std::set<std::string>{a, b, c}));
    v1::PodSandboxFilter f;
    f.set_id(b.substr(0, 12));
    EXPECT_EQ(list(f), std::set<std::string>{b});
    f.Clear();
    f.mutable_state()->set_state(v1::SANDBOX_NOTREADY);
    EXPECT_EQ(list(f), std::set<std::string>{c});
    f.Clear();
    (*f.mutable_label_selector())["app"] = "a";
    EXPECT_EQ(list(f), std::set<std::string>{a});
    (*f.mutable_label_selector())["other"] = "x";
    EXPECT_TRUE(list(f).empty());
}

TEST_F(CriPodTest, FiftyPodsConcurrently) {
    start_daemon();
    constexpr int kPods = 50;
    std::vector<std::string> ids(kPods);
    std::vector<grpc::Status> sts(kPods);
    std::vector<std::thread> threads;
    for (int i = 0; i < kPods; ++i)
        threads.emplace_back([&, i] { sts[i] = run_pod_status(pod_config("many-" + std::to_string(i)), &ids[i]); });
    for (auto& t : threads) t.join();
    std::set<std::string> distinct;
    for (int i = 0; i < kPods; ++i) {
        EXPECT_TRUE(sts[i].ok()) << i << ": " << sts[i].error_message();
        distinct.insert(ids[i]);
    }
    EXPECT_EQ(distinct.size(), static_cast<size_t>(kPods));
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse list;
    ASSERT_TRUE(runtime()->ListPodSandbox(&ctx, v1::ListPodSandboxRequest(), &list).ok());
    EXPECT_EQ(list.items_size(), kPods);
    threads.clear();
    for (int i = 0; i < kPods; ++i) threads.emplace_back([&, i] { sts[i] = remove_pod(ids[i]); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < kPods; ++i) EXPECT_TRUE(sts[i].ok()) << sts[i].error_message();
}

TEST_F(CriPodTest, RestartUndoesAPodLeftHalfMadeAndKeepsReadyOnes) {
    start_daemon();
    std::string ready = run_pod(pod_config("survivor"));
    ASSERT_EQ(daemon_->kill_hard(), 128 + 9);
    // What a crash in the middle of RunPodSandbox leaves: a "creating" record and a mounted /dev/shm.
    const std::string half = std::string(64, 'e');
    {
        auto db = store::CriRecords::open(root_);
        ASSERT_TRUE(db) << db.error().message();
        store::PodRecord p;
        p.id = half;
        p.name = "half";
        p.namespace_ = "cricore";
        p.uid = "cricore-half";
        p.config = "";
        ASSERT_TRUE((*db)->put_pod(p, true));
    }
    const std::string shm = state_ + "/pods/" + half + "/shm";
    std::filesystem::create_directories(shm);
    ASSERT_EQ(::mount("shm", shm.c_str(), "tmpfs", 0, "size=1m"), 0);
    start_daemon();
    EXPECT_FALSE(mounted(shm));
    EXPECT_FALSE(std::filesystem::exists(state_ + "/pods/" + half));
    grpc::Status st;
    pod_status(half, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(pod_status(ready, &st).state(), v1::SANDBOX_READY);
    EXPECT_TRUE(mounted(state_ + "/pods/" + ready + "/ns/net"));
    // The name of the half-made pod is free again.
    auto cfg = pod_config("half");
    EXPECT_EQ(run_pod(cfg).size(), 64u);
}

}  // namespace
}  // namespace berth::test
