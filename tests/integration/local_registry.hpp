// Loopback ports and Debian's docker-registry, for the tests that pull (registry, berthd's PullImage, berthctl).
#pragma once

#include <sys/types.h>

#include <string>

namespace berth::test {

// A loopback port in [base, base + count) that nothing is bound to now, rotating so that one run never hands out
// the same port twice in a row; -1 when all are taken. Each suite has its own range.
int free_loopback_port(int base, int count = 100);
// Whether something accepts connections on 127.0.0.1:<port>.
bool loopback_listening(int port);

// docker-registry serving on 127.0.0.1:<a port of its range>, killed by its PID and reaped on destruction.
class LocalRegistry {
public:
    explicit LocalRegistry(int port_base) : port_base_(port_base) {}
    ~LocalRegistry();
    LocalRegistry(const LocalRegistry&) = delete;
    LocalRegistry& operator=(const LocalRegistry&) = delete;

    // Serves with its config and log in `dir`, storing into `data` (default dir/data; two registries may serve one
    // storage); TLS with `cert`/`key`, basic auth from `htpasswd`, client certificates signed by `client_ca`
    // required, each when given. True once it accepts connections.
    bool start(const std::string& dir, const std::string& cert = "", const std::string& key = "",
               const std::string& htpasswd = "", const std::string& client_ca = "", std::string data = "");
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    int port() const { return port_; }
    const std::string& log() const { return log_; }

private:
    int port_base_;
    int port_ = -1;
    pid_t pid_ = -1;
    std::string log_;
};

}  // namespace berth::test
