// berthctl run IMAGE [-- CMD ARGS]: a pod and one container in a single step, for people. Pulls the image when the
// daemon does not have it, lays the log out the way kubelet does (<log-dir>/<ns>_<pod>_<uid>/<container>/0.log),
// then either prints the ids and leaves (-d) or follows the log until the container exits and exits with its code
// (--rm: and removes the container, the pod and the log).
#include "command.hpp"
// clang-format off: the CRI headers (via command.hpp) come before <signal.h>
#include <signal.h>
#include <sys/random.h>
// clang-format on

#include <cstdio>
#include <filesystem>

namespace berth::ctl {
namespace {

using Stub = v1::RuntimeService::Stub;
using IStub = v1::ImageService::Stub;

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) {
    g_interrupted.store(true);
}

Result<std::string> random_hex(size_t bytes) {
    std::string raw(bytes, '\0');
    if (::getrandom(raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size())) return fail_sys("getrandom");
    std::string out;
    for (unsigned char c : raw) out += fmt::format("{:02x}", c);
    return out;
}

// The pod (and its log directory) made by run; undone on destruction unless released. Errors while undoing are
// reported, not returned: the first error is the one the user needs.
class RunCleanup {
public:
    RunCleanup(CriClient& client, std::string log_dir) : client_(client), log_dir_(std::move(log_dir)) {}
    ~RunCleanup() {
        if (keep_) return;
        if (!container_id_.empty()) {
            v1::RemoveContainerRequest req;
            req.set_container_id(container_id_);
            if (auto r = client_.runtime(&Stub::RemoveContainer, "RemoveContainer", req); !r) report(r.error());
        }
        if (!pod_id_.empty()) {
            v1::StopPodSandboxRequest stop;
            stop.set_pod_sandbox_id(pod_id_);
            if (auto r = client_.runtime(&Stub::StopPodSandbox, "StopPodSandbox", stop); !r) report(r.error());
            v1::RemovePodSandboxRequest rm;
            rm.set_pod_sandbox_id(pod_id_);
            if (auto r = client_.runtime(&Stub::RemovePodSandbox, "RemovePodSandbox", rm); !r) report(r.error());
        }
        std::error_code ec;
        std::filesystem::remove_all(log_dir_, ec);
    }
    void keep() { keep_ = true; }
    std::string pod_id_, container_id_;

private:
    CriClient& client_;
    std::string log_dir_;
    bool keep_ = false;
};

}  // namespace

int cmd_run(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("run", args,
                               {{"--name", true},
                                {"-n|--namespace", true},
                                {"--rm", false},
                                {"-d|--detach", false},
                                {"-r|--runtime", true},
                                {"-e|--env", true},
                                {"-w|--workdir", true},
                                {"--log-dir", true},
                                {"--label", true}},
                               1);
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "run: expected IMAGE [--] [CMD ARGS...]"));
    if (p->has("--rm") && p->has("--detach")) return report(Error(0, "run: --rm and -d exclude each other"));
    const std::string image = p->positional[0];
    std::vector<std::string> cmd(p->positional.begin() + 1, p->positional.end());
    cmd.insert(cmd.end(), p->after_dashdash.begin(), p->after_dashdash.end());

    auto suffix = random_hex(4);
    auto uid = random_hex(16);
    if (!suffix || !uid) return report(!suffix ? suffix.error() : uid.error());
    const std::string name = p->value("--name").value_or("berthctl-" + *suffix);
    const std::string ns = p->value("--namespace").value_or("default");
    auto labels = p->labels("--label");
    if (!labels) return report(labels.error());

    CriClient client(opts.socket_path);

    // The image: pulled when the daemon does not have it.
    v1::ImageStatusRequest ireq;
    ireq.mutable_image()->set_image(image);
    auto ist = client.image(&IStub::ImageStatus, "ImageStatus", ireq);
    if (!ist) return report(ist.error().wrap(image));
    if (!ist->has_image() || ist->image().id().empty()) {
        std::fprintf(stderr, "Pulling %s\n", image.c_str());
        v1::PullImageRequest pull;
        pull.mutable_image()->set_image(image);
        if (auto r = client.image(&IStub::PullImage, "PullImage", pull, std::chrono::seconds(0)); !r)
            return report(r.error().wrap(image));
    }

    // Kubelet makes the pod's log directory before RunPodSandbox; so does run.
    const std::string log_dir =
        fmt::format("{}/{}_{}_{}", p->value("--log-dir").value_or("/var/log/pods"), ns, name, *uid);
    std::error_code ec;
    std::filesystem::create_directories(log_dir, ec);
    if (ec) return report(Error(ec.value(), fmt::format("create log directory {}: {}", log_dir, ec.message())));
    RunCleanup cleanup(client, log_dir);

    v1::PodSandboxConfig pod;
    pod.mutable_metadata()->set_name(name);
    pod.mutable_metadata()->set_namespace_(ns);
    pod.mutable_metadata()->set_uid(*uid);
    pod.set_hostname(name.substr(0, 63));
    pod.set_log_directory(log_dir);
    (*pod.mutable_labels())["io.berth.berthctl-run"] = "true";
    for (const auto& [k, v] : *labels) (*pod.mutable_labels())[k] = v;
    // Kubelet's default: a PID namespace per container.
    pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);
    v1::RunPodSandboxRequest rreq;
    *rreq.mutable_config() = pod;
    if (auto rt = p->value("--runtime")) rreq.set_runtime_handler(*rt);
    auto run = client.runtime(&Stub::RunPodSandbox, "RunPodSandbox", rreq, std::chrono::seconds(240));
    if (!run) return report(run.error());
    cleanup.pod_id_ = run->pod_sandbox_id();

    v1::CreateContainerRequest creq;
    creq.set_pod_sandbox_id(run->pod_sandbox_id());
    *creq.mutable_sandbox_config() = pod;
    auto* c = creq.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(image);
    // Like `docker run IMAGE CMD`: CMD replaces the image's cmd and keeps its entrypoint.
    for (const auto& a : cmd) c->add_args(a);
    for (const auto& e : p->values("--env")) {
        size_t eq = e.find('=');
        auto* kv = c->add_envs();
        kv->set_key(e.substr(0, eq));
        if (eq != std::string::npos) kv->set_value(e.substr(eq + 1));
    }
    if (auto wd = p->value("--workdir")) c->set_working_dir(*wd);
    c->set_log_path(name + "/0.log");
    for (const auto& [k, v] : *labels) (*c->mutable_labels())[k] = v;
    c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);
    auto created = client.runtime(&Stub::CreateContainer, "CreateContainer", creq, std::chrono::seconds(240));
    if (!created) return report(created.error());
    cleanup.container_id_ = created->container_id();

    v1::StartContainerRequest sreq;
    sreq.set_container_id(created->container_id());
    if (auto r = client.runtime(&Stub::StartContainer, "StartContainer", sreq, std::chrono::seconds(120)); !r)
        return report(r.error());

    if (p->has("--detach")) {
        cleanup.keep();
        std::printf("%s\n%s\n", run->pod_sandbox_id().c_str(), created->container_id().c_str());
        return 0;
    }
    if (!p->has("--rm")) cleanup.keep();

    // Ctrl-C stops the container (10 s grace) instead of leaving it behind unseen.
    struct sigaction sa = {};
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    LogOptions lo;
    lo.follow = true;
    lo.interrupted = &g_interrupted;
    auto logs = print_container_logs(client, created->container_id(), lo);
    if (g_interrupted.load()) {
        v1::StopContainerRequest stop;
        stop.set_container_id(created->container_id());
        stop.set_timeout(10);
        if (auto r = client.runtime(&Stub::StopContainer, "StopContainer", stop, std::chrono::seconds(40)); !r)
            return report(r.error());
    } else if (!logs) {
        return report(logs.error());
    }
    v1::ContainerStatusRequest st;
    st.set_container_id(created->container_id());
    auto status = client.runtime(&Stub::ContainerStatus, "ContainerStatus", st);
    if (!status) return report(status.error());
    if (status->status().state() != v1::CONTAINER_EXITED)
        return report(Error(0, fmt::format("container {} did not exit (state {})", created->container_id(),
                                           v1::ContainerState_Name(status->status().state()))));
    return status->status().exit_code();
}

}  // namespace berth::ctl
