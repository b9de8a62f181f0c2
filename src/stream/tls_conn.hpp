// TLS for the streaming connections (OpenSSL): the server's context from PEM files and a Conn over an accepted
// socket; for the clients, a Conn over a connected socket with the server's certificate verified.
//
// One reader and one writer may use the Conn at once (the Conn contract): the socket is non-blocking, every
// OpenSSL call runs under one mutex, and waiting for the socket happens outside it.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "stream/conn.hpp"

namespace berth::stream {

class TlsContext {
public:
    // The certificate chain and the private key (PEM); errors name the file and OpenSSL's reason.
    [[nodiscard]] static Result<std::shared_ptr<TlsContext>> load(const std::string& cert_file,
                                                                  const std::string& key_file);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    void* native() const { return ctx_; }  // SSL_CTX*

private:
    explicit TlsContext(void* ctx) : ctx_(ctx) {}
    void* ctx_;
};

// The server side of a TLS handshake on `fd` (10 s at most), then a Conn over it.
[[nodiscard]] Result<std::unique_ptr<Conn>> tls_accept(TlsContext& ctx, UniqueFd fd);

// How a client checks the server it connects to.
struct TlsClientOptions {
    std::string ca_file;       // PEM certificates to trust; empty: the system's CAs
    bool skip_verify = false;  // accept any certificate (as crictl does for the runtime's streaming URLs)
};

// The client side of a TLS handshake on connected `fd` (10 s at most) with server name `host` (SNI; the
// certificate must name it, as a DNS name or IP address, unless skip_verify), then a Conn over it. TLS 1.2+.
[[nodiscard]] Result<std::unique_ptr<Conn>> tls_connect(UniqueFd fd, const std::string& host,
                                                        const TlsClientOptions& options);

}  // namespace berth::stream
