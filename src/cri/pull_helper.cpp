#include "cri/pull_helper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/fs.hpp"
#include "common/unique_fd.hpp"
#include "cri/subprocess.hpp"

namespace berth::cri {
namespace {

// The helper's answer is a few lines; anything longer is not the protocol.
constexpr size_t kMaxOutput = 1 << 20;

}  // namespace

std::string default_pull_helper_path() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0) return "berth-pull";
    std::string self(buf, static_cast<size_t>(n));
    return self.substr(0, self.rfind('/') + 1) + "berth-pull";
}

Result<std::string> run_pull_helper(const std::string& helper_path, const std::string& root,
                                    const store::PullRequest& request, const std::function<bool()>& cancelled,
                                    uint64_t* fetched_bytes) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) < 0) return fail_sys("pipe for berth-pull");
    UniqueFd in_r(in[0]), in_w(in[1]);
    if (::pipe2(out, O_CLOEXEC) < 0) return fail_sys("pipe for berth-pull");
    UniqueFd out_r(out[0]), out_w(out[1]);

    // spawn_process gives the helper the default signal mask (berthd blocks its stop signals) and no other fd; its
    // stderr stays berthd's, so anything it says lands in the daemon's log.
    BERTH_ASSIGN(pid_t pid, spawn_process({.argv = {helper_path, "--root", root},
                                           .stdin_fd = in_r.get(),
                                           .stdout_fd = out_w.get(),
                                           .stderr_fd = STDERR_FILENO}));
    in_r.reset();
    out_w.reset();

    // The request is small (well under a pipe buffer), so writing it cannot block on a helper that is not reading.
    auto wrote = write_all(in_w.get(), to_json(request).dump());
    if (!wrote) wrote = std::unexpected(std::move(wrote).error().wrap("write the pull request to berth-pull"));
    in_w.reset();

    std::string output;
    bool killed = false;
    for (;;) {
        struct pollfd p = {.fd = out_r.get(), .events = POLLIN, .revents = 0};
        int r = ::poll(&p, 1, 1000);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) {
            if (cancelled && cancelled()) {
                ::kill(pid, SIGKILL);
                killed = true;
                break;
            }
            continue;
        }
        char buf[4096];
        ssize_t n = ::read(out_r.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        output.append(buf, static_cast<size_t>(n));
        if (output.size() > kMaxOutput) {
            ::kill(pid, SIGKILL);
            break;
        }
    }
    BERTH_ASSIGN(const int status, wait_process(pid));
    if (killed) return fail_errno(ECANCELED, "pull {}: cancelled by the caller", request.reference);
    if (!wrote) return std::unexpected(std::move(wrote).error());

    // The last JSON line is the result; earlier lines are progress events.
    nlohmann::json result;
    size_t end = output.size();
    while (end > 0) {
        size_t start = output.rfind('\n', end - 1);
        start = start == std::string::npos ? 0 : start + 1;
        if (end > start) {
            auto line = nlohmann::json::parse(output.substr(start, end - start), nullptr, false);
            if (!line.is_discarded() && line.is_object()) {
                result = std::move(line);
                break;
            }
        }
        if (start == 0) break;
        end = start - 1;
    }
    if (fetched_bytes && result.contains("fetched_bytes") && result["fetched_bytes"].is_number_unsigned())
        *fetched_bytes = result["fetched_bytes"].get<uint64_t>();
    if (result.contains("error") && result["error"].is_string()) return fail("{}", result["error"].get<std::string>());
    if (status == 0 && result.contains("image") && result["image"].is_object() &&
        result["image"].contains("id") && result["image"]["id"].is_string())
        return result["image"]["id"].get<std::string>();
    if (status == 127) return fail("pull {}: cannot run the pull helper {}", request.reference, helper_path);
    if (status > 128)
        return fail("pull {}: the pull helper {} died of signal {}", request.reference, helper_path, status - 128);
    return fail("pull {}: the pull helper {} gave no result (exit status {})", request.reference, helper_path,
                status);
}

}  // namespace berth::cri
