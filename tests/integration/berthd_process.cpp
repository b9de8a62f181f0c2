#include "berthd_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace berth::test {
namespace {

constexpr const char* kServingMarker = "serving CRI on ";

int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

TempDir::TempDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = fmt::format("/tmp/berthd-{}-{}-{}", tag, ::getpid(), counter++);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

BerthdProcess::~BerthdProcess() {
    if (running()) kill_hard();
    if (out_fd_ >= 0) ::close(out_fd_);
}

bool BerthdProcess::start(const std::string& socket, const std::vector<std::string>& extra) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        output_ = "pipe2 failed";
        return false;
    }
    std::vector<std::string> args = {BERTHD_BIN, "--socket", socket};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        output_ = "fork failed";
        return false;
    }
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec.
        int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(fds[1], STDERR_FILENO);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    pid_ = pid;
    out_fd_ = fds[0];

    char buf[4096];
    while (output_.find(kServingMarker) == std::string::npos) {
        ssize_t n = ::read(out_fd_, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // the daemon closed its output: it exited without serving
            reap();
            return false;
        }
        output_.append(buf, static_cast<size_t>(n));
    }
    return true;
}

void BerthdProcess::drain_output() {
    if (out_fd_ < 0) return;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(out_fd_, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        output_.append(buf, static_cast<size_t>(n));
    }
    ::close(out_fd_);
    out_fd_ = -1;
}

int BerthdProcess::reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    exit_code_ = exit_code_of(status);
    drain_output();
    return exit_code_;
}

bool BerthdProcess::read_output_until(const std::string& needle, size_t from, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[4096];
    while (output_.find(needle, from) == std::string::npos) {
        if (out_fd_ < 0) return false;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        struct pollfd p = {.fd = out_fd_, .events = POLLIN, .revents = 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        ssize_t n = ::read(out_fd_, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        output_.append(buf, static_cast<size_t>(n));
    }
    return true;
}

void BerthdProcess::signal(int sig) {
    if (running()) ::kill(pid_, sig);
}

int BerthdProcess::stop(int sig) {
    if (!running()) return exit_code_;
    ::kill(pid_, sig);
    return reap();
}

int BerthdProcess::terminate() {
    return stop(SIGTERM);
}
int BerthdProcess::kill_hard() {
    return stop(SIGKILL);
}

long BerthdProcess::rss_kib() const {
    std::ifstream in(fmt::format("/proc/{}/status", pid_));
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmRSS:")) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

}  // namespace berth::test
