// Content digests ("sha256:<64 lowercase hex>") and a streaming SHA-256 hasher.
//
// Only sha256 is supported: it is the only algorithm the OCI image-spec requires and the only one registries and
// the ecosystem's tools produce. Other registered algorithms (sha512) parse to a clear "not supported" error.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace berth::image {

// A validated digest. Default-constructed is empty (valid() == false); every other value is well-formed.
class Digest {
public:
    Digest() = default;

    // Parses "sha256:<hex>": the algorithm must be sha256, the hex exactly 64 lowercase characters. Errors quote
    // the digest and say what is wrong with it.
    [[nodiscard]] static Result<Digest> parse(std::string_view text);
    // From the 32 raw bytes of a SHA-256 sum.
    static Digest from_sha256_bytes(std::span<const unsigned char, 32> bytes);

    bool valid() const { return !hex_.empty(); }
    std::string_view algorithm() const { return "sha256"; }
    // The 64 lowercase hex characters.
    const std::string& hex() const { return hex_; }
    // "sha256:<hex>".
    std::string string() const { return "sha256:" + hex_; }

    friend bool operator==(const Digest&, const Digest&) = default;
    friend auto operator<=>(const Digest&, const Digest&) = default;

private:
    explicit Digest(std::string hex) : hex_(std::move(hex)) {}
    std::string hex_;
};

// Streaming SHA-256 (OpenSSL EVP). Not thread-safe; movable. finish() may be called once; after it the hasher
// must be reset() before further use.
class Sha256 {
public:
    Sha256();
    Sha256(Sha256&&) noexcept = default;
    Sha256& operator=(Sha256&&) noexcept = default;

    void update(std::span<const std::byte> data);
    void update(std::string_view data) { update(std::as_bytes(std::span(data.data(), data.size()))); }
    // Bytes fed since construction or the last reset().
    uint64_t size() const { return size_; }
    Digest finish();
    void reset();

    // One-shot digest of a buffer.
    static Digest of(std::string_view data);

private:
    struct CtxFree {
        void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
    uint64_t size_ = 0;
};

}  // namespace berth::image
