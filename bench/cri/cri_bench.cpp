// cri_bench: berthd's cost through the CRI, measured over its real socket, with `crun run` of the same busybox
// rootfs in the same run as the baseline.
//
//   cri_bench --berthd PATH --berthctl PATH --source DIR [--pods N] [--concurrency N] [--running N] [--list N]
//
// Reports (median and p95, milliseconds): RunPodSandbox, CreateContainer, StartContainer, StopContainer,
// RemoveContainer, StopPodSandbox, RemovePodSandbox for N sequential pods (default 100) and for the same number
// spread over `concurrency` threads (default 10); berthd's RSS idle and with `running` pods (default 50) of one
// sleeping container each, and the mean PSS of their berth-monitor processes; ListContainers latency with `list`
// containers (default 500, created, not started); crun run (create, start, wait, delete of /bin/true) and the
// ratio RunPodSandbox+Create+Start over it. Goals (issue 5): that ratio under 2, idle RSS under 15 MiB, monitor
// PSS under 300 KiB.
//
// crun refuses a hybrid cgroup host (v1 controllers + cgroup2 at /sys/fs/cgroup/unified): its runs happen in a
// child in a private mount namespace where unified/cgroup.controllers is an empty file (as bench/lifecycle.cpp).
// clang-format off
#include "cri/api.hpp"  // before <signal.h>: see src/cri/api.hpp
// clang-format on
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_daemon.hpp"

namespace {

namespace v1 = ::runtime::v1;
using Clock = std::chrono::steady_clock;
using Stub = v1::RuntimeService::Stub;

using berth::bench::die;
using berth::bench::run;

long status_kib(pid_t pid, const char* key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(key)) return std::stol(line.substr(std::strlen(key)));
    return -1;
}

long pss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("Pss:")) return std::stol(line.substr(4));
    return -1;
}

// berth-monitor processes whose command line names `state_dir` (this daemon's monitors only).
std::vector<pid_t> monitors_of(const std::string& state_dir) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    while (struct dirent* e = ::readdir(d)) {
        pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
        if (pid <= 0) continue;
        std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
        std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (cmd.find("berth-monitor") != std::string::npos && cmd.find(state_dir) != std::string::npos)
            out.push_back(pid);
    }
    ::closedir(d);
    return out;
}

struct Stats {
    std::mutex mu;
    std::map<std::string, std::vector<double>> ms;
    void add(const std::string& k, double v) {
        std::lock_guard l(mu);
        ms[k].push_back(v);
    }
};

double pct(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

class Bench {
public:
    Bench(Stub& stub, std::string log_dir) : log_dir_(std::move(log_dir)), stub_(stub) {}

    template <class Req, class Resp>
    Resp call(grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*), const char* name, const Req& req,
              Stats* stats = nullptr) {
        double ms = 0;
        Resp resp = berth::bench::call(stub_, rpc, name, req, &ms);
        if (stats) stats->add(name, ms);
        return resp;
    }

    v1::PodSandboxConfig pod_config(const std::string& name) {
        v1::PodSandboxConfig pod;
        pod.mutable_metadata()->set_name(name);
        pod.mutable_metadata()->set_namespace_("bench");
        pod.mutable_metadata()->set_uid("uid-" + name);
        pod.set_log_directory(log_dir_ + "/" + name);
        std::filesystem::create_directories(pod.log_directory());
        pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);
        return pod;
    }

    // Pod + one container; `start`: started too. Returns {pod, container}.
    std::pair<std::string, std::string> make(const std::string& name, bool start, Stats* s,
                                             const std::vector<std::string>& args = {"sleep", "300"}) {
        v1::RunPodSandboxRequest rp;
        *rp.mutable_config() = pod_config(name);
        std::string pod = call(&Stub::RunPodSandbox, "RunPodSandbox", rp, s).pod_sandbox_id();
        v1::CreateContainerRequest cc;
        cc.set_pod_sandbox_id(pod);
        *cc.mutable_sandbox_config() = rp.config();
        auto* c = cc.mutable_config();
        c->mutable_metadata()->set_name(name);
        c->mutable_image()->set_image(berth::bench::kBusyboxImage);
        for (const auto& a : args) c->add_args(a);
        c->set_log_path("c.log");
        c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);
        std::string ctr = call(&Stub::CreateContainer, "CreateContainer", cc, s).container_id();
        if (start) {
            v1::StartContainerRequest sc;
            sc.set_container_id(ctr);
            call(&Stub::StartContainer, "StartContainer", sc, s);
        }
        return {pod, ctr};
    }

    void teardown(const std::string& pod, const std::string& ctr, Stats* s) {
        if (!ctr.empty()) {
            v1::StopContainerRequest st;
            st.set_container_id(ctr);
            st.set_timeout(0);
            call(&Stub::StopContainer, "StopContainer", st, s);
            v1::RemoveContainerRequest rc;
            rc.set_container_id(ctr);
            call(&Stub::RemoveContainer, "RemoveContainer", rc, s);
        }
        v1::StopPodSandboxRequest sp;
        sp.set_pod_sandbox_id(pod);
        call(&Stub::StopPodSandbox, "StopPodSandbox", sp, s);
        v1::RemovePodSandboxRequest rp;
        rp.set_pod_sandbox_id(pod);
        call(&Stub::RemovePodSandbox, "RemovePodSandbox", rp, s);
    }

    void remove_all() {
        auto pods = call(&Stub::ListPodSandbox, "ListPodSandbox", v1::ListPodSandboxRequest());
        for (const auto& p : pods.items()) teardown(p.id(), "", nullptr);
    }

private:
    std::string log_dir_;
    Stub& stub_;
};

const char* kOps[] = {"RunPodSandbox",   "CreateContainer", "StartContainer",  "StopContainer",
                      "RemoveContainer", "StopPodSandbox",  "RemovePodSandbox"};

void print_stats(const char* title, Stats& s) {
    std::printf("\n%s\n  %-18s %9s %9s %6s\n", title, "rpc", "median", "p95", "n");
    for (const char* op : kOps) {
        auto& v = s.ms[op];
        std::printf("  %-18s %7.2fms %7.2fms %6zu\n", op, pct(v, 0.5), pct(v, 0.95), v.size());
    }
}

// crun run of /bin/true in `bundle`, `n` times, in a child in a private mount namespace; the times in ms.
std::vector<double> crun_runs(const std::string& tmp, const std::string& bundle, int n) {
    int fds[2];
    if (::pipe(fds) < 0) die("pipe");
    pid_t child = ::fork();
    if (child == 0) {
        ::close(fds[0]);
        if (::unshare(CLONE_NEWNS) < 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0) ::_exit(3);
        std::string empty = tmp + "/empty-cgroup.controllers";
        std::ofstream(empty).flush();
        // Only on a hybrid host; elsewhere the bind fails and is not needed.
        ::mount(empty.c_str(), "/sys/fs/cgroup/unified/cgroup.controllers", nullptr, MS_BIND, nullptr);
        for (int i = 0; i < n; ++i) {
            std::string id = "ctl-bench-crun-" + std::to_string(i);
            auto t0 = Clock::now();
            int rc = run({"crun", "--root", tmp + "/crun", "run", "-b", bundle, id});
            double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            if (rc != 0) ms = -1;
            if (::write(fds[1], &ms, sizeof ms) != sizeof ms) ::_exit(4);
        }
        ::_exit(0);
    }
    ::close(fds[1]);
    std::vector<double> out;
    double ms;
    while (::read(fds[0], &ms, sizeof ms) == sizeof ms) {
        if (ms < 0) die("crun run failed (run it by hand on " + bundle + " to see why)");
        out.push_back(ms);
    }
    ::close(fds[0]);
    int status;
    ::waitpid(child, &status, 0);
    if (out.size() != static_cast<size_t>(n)) die("crun baseline child failed");
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    berth::bench::init("cri_bench");
    std::string berthd, berthctl, source;
    int pods = 100, concurrency = 10, running = 50, list = 500;
    berth::bench::parse_flags(argc, argv,
                              {{"--berthd", &berthd},
                               {"--berthctl", &berthctl},
                               {"--source", &source},
                               {"--pods", &pods},
                               {"--concurrency", &concurrency},
                               {"--running", &running},
                               {"--list", &list}},
                              "usage: cri_bench --berthd PATH --berthctl PATH --source REPO_DIR [--pods N] "
                              "[--concurrency N] [--running N] [--list N]");

    const std::string& tmp = berth::bench::make_temp_dir("berth-cri-bench");
    // Pods with loopback only: this measures berthd against crun; networking is bench/cni's.
    berth::bench::Daemon& d = berth::bench::start_berthd({.berthd = berthd,
                                                          .dir = tmp,
                                                          .config = "[cni]\nenabled = false\n",
                                                          .busybox_from = source,
                                                          .berthctl = berthctl});
    const pid_t daemon = d.pid;
    const std::string& state = d.state_dir;
    Bench b(*d.stub, tmp + "/logs");
    v1::VersionRequest vr;
    vr.set_version("v1");
    b.call(&Stub::Version, "Version", vr);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long idle_rss = status_kib(daemon, "VmRSS:");

    std::printf("cri_bench: berthd %s, %d pods sequential and %d-way concurrent\n", berthd.c_str(), pods, concurrency);
    // One warm-up pod: first-use costs (image snapshot lookups, cgroup parents) are not the steady state.
    {
        auto [p, c] = b.make("warmup", true, nullptr);
        b.teardown(p, c, nullptr);
    }
    Stats seq;
    for (int i = 0; i < pods; ++i) {
        auto [p, c] = b.make("seq-" + std::to_string(i), true, &seq);
        b.teardown(p, c, &seq);
    }
    print_stats("sequential", seq);

    Stats conc;
    std::vector<std::thread> threads;
    std::atomic<int> next{0};
    for (int t = 0; t < concurrency; ++t)
        threads.emplace_back([&] {
            for (int i; (i = next.fetch_add(1)) < pods;) {
                auto [p, c] = b.make("conc-" + std::to_string(i), true, &conc);
                b.teardown(p, c, &conc);
            }
        });
    for (auto& t : threads) t.join();
    print_stats(("concurrent (" + std::to_string(concurrency) + " threads)").c_str(), conc);

    // Memory with `running` pods.
    std::vector<std::pair<std::string, std::string>> live;
    for (int i = 0; i < running; ++i) live.push_back(b.make("run-" + std::to_string(i), true, nullptr));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long busy_rss = status_kib(daemon, "VmRSS:");
    auto mons = monitors_of(state);
    double pss_sum = 0;
    for (pid_t m : mons) pss_sum += static_cast<double>(pss_kib(m));
    std::printf("\nmemory\n  berthd RSS idle            %6ld KiB   (goal < 15360)\n", idle_rss);
    std::printf("  berthd RSS, %3d pods       %6ld KiB\n", running, busy_rss);
    std::printf("  berth-monitor PSS (mean)   %6.0f KiB   over %zu monitors (goal < 300)\n",
                mons.empty() ? NAN : pss_sum / static_cast<double>(mons.size()), mons.size());
    for (auto& [p, c] : live) b.teardown(p, c, nullptr);

    // ListContainers with `list` containers: created, not started, 10 per pod.
    {
        std::vector<std::string> lpods;
        for (int i = 0; i < list; ++i) {
            if (i % 10 == 0) {
                v1::RunPodSandboxRequest rp;
                *rp.mutable_config() = b.pod_config("list-" + std::to_string(i / 10));
                lpods.push_back(b.call(&Stub::RunPodSandbox, "RunPodSandbox", rp).pod_sandbox_id());
            }
            v1::CreateContainerRequest cc;
            cc.set_pod_sandbox_id(lpods.back());
            *cc.mutable_sandbox_config() = b.pod_config("list-" + std::to_string(i / 10));
            cc.mutable_config()->mutable_metadata()->set_name("c" + std::to_string(i));
            cc.mutable_config()->mutable_image()->set_image(berth::bench::kBusyboxImage);
            cc.mutable_config()->set_log_path("c" + std::to_string(i) + ".log");
            cc.mutable_config()->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
                v1::CONTAINER);
            b.call(&Stub::CreateContainer, "CreateContainer", cc);
        }
        Stats ls;
        size_t n = 0;
        for (int i = 0; i < 50; ++i)
            n = b.call(&Stub::ListContainers, "ListContainers", v1::ListContainersRequest(), &ls).containers_size();
        std::printf("\nListContainers with %zu containers: median %.2fms, p95 %.2fms\n", n,
                    pct(ls.ms["ListContainers"], 0.5), pct(ls.ms["ListContainers"], 0.95));
        b.remove_all();
    }

    // Baseline: crun run of the same busybox (make-bundle.sh's rootfs holds the same busybox binary).
    double crun_median = NAN;
    if (run({"sh", "-c", "command -v crun"}) == 0) {
        std::string bundle = tmp + "/bundle";
        if (run({source + "/scripts/make-bundle.sh", bundle, "true"}) != 0) die("make-bundle.sh failed");
        std::vector<double> times;
        {
            berth::bench::WorkScope work;  // the cleanup waits for crun's runs in tmp to end
            times = crun_runs(tmp, bundle, 20);
        }
        crun_median = pct(times, 0.5);
        std::printf("\ncrun run (create, start, wait, delete of true): median %.2fms, p95 %.2fms\n", crun_median,
                    pct(times, 0.95));
        double ours = pct(seq.ms["RunPodSandbox"], 0.5) + pct(seq.ms["CreateContainer"], 0.5) +
                      pct(seq.ms["StartContainer"], 0.5);
        std::printf(
            "RunPodSandbox+CreateContainer+StartContainer (sequential medians) %.2fms = %.2fx crun run "
            "(goal < 2x)\n",
            ours, ours / crun_median);
    } else {
        std::printf("\ncrun not installed: no baseline\n");
    }
    berth::bench::cleanup();
    return 0;
}
