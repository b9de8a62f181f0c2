#include "image/digest.hpp"

#include <cstdlib>

namespace berth::image {

namespace {

constexpr size_t kSha256HexLen = 64;

bool is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// The image-spec's algorithm grammar: components of [a-z0-9] joined by one of "+._-".
bool valid_algorithm(std::string_view a) {
    if (a.empty()) return false;
    bool prev_sep = true;
    for (char c : a) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool sep = c == '+' || c == '.' || c == '_' || c == '-';
        if (!alnum && !sep) return false;
        if (sep && prev_sep) return false;
        prev_sep = sep;
    }
    return !prev_sep;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view text) {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) return fail("invalid digest \"{}\": missing \"<algorithm>:\" prefix", text);
    std::string_view algorithm = text.substr(0, colon);
    std::string_view hex = text.substr(colon + 1);
    if (!valid_algorithm(algorithm)) return fail("invalid digest \"{}\": malformed algorithm \"{}\"", text, algorithm);
    if (algorithm != "sha256")
        return fail("invalid digest \"{}\": algorithm \"{}\" is not supported (only sha256)", text, algorithm);
    if (hex.size() != kSha256HexLen)
        return fail("invalid digest \"{}\": sha256 needs {} hex characters, got {}", text, kSha256HexLen, hex.size());
    for (size_t i = 0; i < hex.size(); ++i) {
        if (!is_lower_hex(hex[i])) {
            if (hex[i] >= 'A' && hex[i] <= 'F')
                return fail("invalid digest \"{}\": hex must be lowercase (character {} is '{}')", text, i, hex[i]);
            return fail("invalid digest \"{}\": character {} of the hex is not a hex digit", text, i);
        }
    }
    return Digest(std::string(hex));
}

Digest Digest::from_sha256_bytes(std::span<const unsigned char, 32> bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(kSha256HexLen);
    for (unsigned char b : bytes) {
        hex += kHex[b >> 4];
        hex += kHex[b & 0xf];
    }
    return Digest(std::move(hex));
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    // Allocation failure of a 200-byte context is not a recoverable condition for this process.
    if (!ctx_) std::abort();
    reset();
}

void Sha256::reset() {
    if (EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) std::abort();
    size_ = 0;
}

void Sha256::update(std::span<const std::byte> data) {
    if (data.empty()) return;
    if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) std::abort();
    size_ += data.size();
}

Digest Sha256::finish() {
    std::array<unsigned char, 32> out{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) != 1 || len != out.size()) std::abort();
    return Digest::from_sha256_bytes(out);
}

Digest Sha256::of(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.finish();
}

}  // namespace berth::image
