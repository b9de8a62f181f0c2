// TLS for the streaming server (OpenSSL): a server context from PEM files and a Conn over an accepted socket.
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

}  // namespace berth::stream
