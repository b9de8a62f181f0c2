#include "stream/tls_conn.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string_view>

#include "linux/sigpipe.hpp"

namespace berth::stream {
namespace {

constexpr int kHandshakeTimeoutMs = 10000;

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    if (e == 0) return "unknown TLS error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

// Waits until `fd` is ready for `events`; false on timeout.
bool wait_fd(int fd, short events, int timeout_ms) {
    pollfd p{fd, events, 0};
    for (;;) {
        int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE once the peer has closed: every OpenSSL call
// runs under sys::SigpipeBlock, so it fails with EPIPE instead of ending the process (berthctl does not ignore it).
class TlsConn final : public Conn {
public:
    TlsConn(SSL* ssl, UniqueFd fd) : ssl_(ssl), fd_(std::move(fd)) {}
    ~TlsConn() override { SSL_free(ssl_); }

    Result<size_t> read(std::span<char> buf) override {
        for (;;) {
            if (shut_) return fail_errno(ECONNABORTED, "TLS read: connection shut down");
            int n, err;
            {
                std::lock_guard lock(mu_);
                ERR_clear_error();
                sys::SigpipeBlock quiet;  // a read may write too (alerts, key updates)
                n = SSL_read(ssl_, buf.data(), static_cast<int>(std::min<size_t>(buf.size(), 1 << 30)));
                err = SSL_get_error(ssl_, n);
                if (n <= 0 && err == SSL_ERROR_SSL) return fail("TLS read: {}", ssl_error_text());
            }
            if (n > 0) return static_cast<size_t>(n);
            if (err == SSL_ERROR_ZERO_RETURN) return 0;
            if (err == SSL_ERROR_WANT_READ) {
                wait_fd(fd_.get(), POLLIN, -1);
                continue;
            }
            if (err == SSL_ERROR_WANT_WRITE) {
                wait_fd(fd_.get(), POLLOUT, -1);
                continue;
            }
            if (err == SSL_ERROR_SYSCALL && errno == 0) return 0;  // EOF without close_notify
            return fail_sys("TLS read");
        }
    }

    using Conn::write_all;  // (head, body): joined, then one SSL_write
    Result<void> write_all(std::span<const char> buf) override {
        size_t off = 0;
        while (off < buf.size()) {
            if (shut_) return fail_errno(EPIPE, "TLS write: connection shut down");
            int n, err;
            {
                std::lock_guard lock(mu_);
                ERR_clear_error();
                sys::SigpipeBlock quiet;
                n = SSL_write(ssl_, buf.data() + off, static_cast<int>(std::min<size_t>(buf.size() - off, 1 << 20)));
                err = SSL_get_error(ssl_, n);
                if (n <= 0 && err == SSL_ERROR_SSL) return fail("TLS write: {}", ssl_error_text());
            }
            if (n > 0) {
                off += static_cast<size_t>(n);
                continue;
            }
            if (err == SSL_ERROR_WANT_WRITE) {
                wait_fd(fd_.get(), POLLOUT, -1);
                continue;
            }
            if (err == SSL_ERROR_WANT_READ) {
                wait_fd(fd_.get(), POLLIN, -1);
                continue;
            }
            return fail_errno(errno ? errno : EPIPE, "TLS write");
        }
        return {};
    }

    void shutdown() override {
        if (!shut_.exchange(true)) {
            // close_notify first, best effort (the socket is non-blocking; the peer's answer is not waited for),
            // so the peer sees a clean end of TLS rather than a truncated stream.
            std::lock_guard lock(mu_);
            sys::SigpipeBlock quiet;
            ERR_clear_error();
            SSL_shutdown(ssl_);
            ERR_clear_error();
        }
        ::shutdown(fd_.get(), SHUT_RDWR);  // wakes a poll on either side
    }

private:
    std::mutex mu_;
    SSL* ssl_;
    UniqueFd fd_;
    std::atomic<bool> shut_ = false;
};

}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::load(const std::string& cert_file, const std::string& key_file) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return fail("TLS context: {}", ssl_error_text());
    std::shared_ptr<TlsContext> out(new TlsContext(ctx));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
        return fail("streaming TLS certificate {}: {}", cert_file, ssl_error_text());
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail("streaming TLS key {}: {}", key_file, ssl_error_text());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail("streaming TLS key {} does not match certificate {}: {}", key_file, cert_file, ssl_error_text());
    return out;
}

TlsContext::~TlsContext() {
    SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

namespace {

// Runs the handshake of `ssl` (set up on `fd`, either side) on a non-blocking socket within the timeout; a Conn
// once done. `peer` names the other side in errors. Frees `ssl` on failure.
Result<std::unique_ptr<Conn>> handshake(SSL* ssl, UniqueFd fd, bool server, std::string_view peer) {
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
        SSL_free(ssl);
        return fail_sys("TLS: O_NONBLOCK");
    }
    SSL_set_fd(ssl, fd.get());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kHandshakeTimeoutMs);
    for (;;) {
        ERR_clear_error();
        int r;
        {
            sys::SigpipeBlock quiet;
            r = server ? SSL_accept(ssl) : SSL_connect(ssl);
        }
        if (r == 1) break;
        int err = SSL_get_error(ssl, r);
        int left = static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
        if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) && left > 0 &&
            wait_fd(fd.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, left))
            continue;
        std::string why = err == SSL_ERROR_SSL ? ssl_error_text() : left <= 0 ? "timed out" : "connection closed";
        if (long v = SSL_get_verify_result(ssl); !server && v != X509_V_OK)
            why = fmt::format("the server's certificate: {}", X509_verify_cert_error_string(v));
        SSL_free(ssl);
        return fail("TLS handshake with {}: {}", peer, why);
    }
    return std::unique_ptr<Conn>(new TlsConn(ssl, std::move(fd)));
}

}  // namespace

Result<std::unique_ptr<Conn>> tls_accept(TlsContext& ctx, UniqueFd fd) {
    SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx.native()));
    if (!ssl) return fail("TLS: {}", ssl_error_text());
    return handshake(ssl, std::move(fd), true, "a streaming client");
}

Result<std::unique_ptr<Conn>> tls_connect(UniqueFd fd, const std::string& host, const TlsClientOptions& options) {
    // One context per connection: a client makes few, and each may trust other CAs.
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) return fail("TLS context: {}", ssl_error_text());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!options.skip_verify) {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
        if (!options.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr) != 1)
                return fail("TLS CA file {}: {}", options.ca_file, ssl_error_text());
        } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
            return fail("TLS: the system's CA certificates: {}", ssl_error_text());
        }
    }
    SSL* ssl = SSL_new(ctx.get());  // holds its own reference to the context
    if (!ssl) return fail("TLS: {}", ssl_error_text());
    bool ip = host.find(':') != std::string::npos || host.find_first_not_of("0123456789.") == std::string::npos;
    if (!ip) SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI takes names only
    if (!options.skip_verify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                    : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
        if (ok != 1) {
            SSL_free(ssl);
            return fail("TLS: cannot check the server's name {:?}", host);
        }
    }
    return handshake(ssl, std::move(fd), false, fmt::format("the streaming server {}", host));
}

}  // namespace berth::stream
