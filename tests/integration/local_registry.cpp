#include "local_registry.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace berth::test {
namespace {

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

}  // namespace

int free_loopback_port(int base, int count) {
    static std::atomic<int> next{0};
    for (int tries = 0; tries < count; ++tries) {
        int port = base + (next++ + ::getpid()) % count;
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(port);
        bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        if (ok) return port;
    }
    return -1;
}

bool loopback_listening(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(port);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

LocalRegistry::~LocalRegistry() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
}

bool LocalRegistry::start(const std::string& dir, const std::string& cert, const std::string& key,
                          const std::string& htpasswd, const std::string& client_ca, std::string data) {
    if (data.empty()) data = dir + "/data";
    port_ = free_loopback_port(port_base_);
    if (port_ < 0) return false;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return false;
    std::string cfg = "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: " + data +
                      "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
    if (!cert.empty()) cfg += "  tls:\n    certificate: " + cert + "\n    key: " + key + "\n";
    if (!client_ca.empty()) cfg += "    clientcas:\n      - " + client_ca + "\n";
    if (!htpasswd.empty()) cfg += "auth:\n  htpasswd:\n    realm: berth-test\n    path: " + htpasswd + "\n";
    const std::string config = dir + "/config.yml";
    std::ofstream(config) << cfg;
    log_ = dir + "/registry.log";
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
        int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::execl("/usr/bin/docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
        ::_exit(127);
    }
    for (int i = 0; i < 300; ++i) {
        if (loopback_listening(port_)) return true;
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

}  // namespace berth::test
