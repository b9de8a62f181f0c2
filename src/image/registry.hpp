// Registry client: the pull side of the OCI distribution-spec over HTTP(S) (libcurl).
//
// What it does:
//   - manifests by tag or digest, with Accept listing the OCI index/manifest and Docker manifest list/schema2
//     types; Docker schema1 is refused with an error saying so; a manifest fetched by digest is verified;
//   - blobs streamed to a sink and verified against their digest while they stream; redirects followed by hand
//     (Authorization is only sent to the registry's own host), retried with exponential backoff after network
//     errors, 5xx and 429, and resumed with a Range request where the last attempt stopped (the sink sees one
//     continuous stream);
//   - auth: WWW-Authenticate challenges (Bearer realm/service/scope, Basic); anonymous and credentialed token
//     fetches (GET with basic auth; an identity_token as an OAuth2 refresh_token grant by POST), a registry_token
//     sent as bearer as is, basic auth; tokens cached per (host, scope) for the client's life;
//   - endpoints: the mirrors of the host, in order, then the host itself. A mirror that fails (network error, 5xx,
//     404) is skipped. TLS trusts the system CAs plus the host's ca_file, with an optional client certificate;
//     an insecure host is tried over https without verification, then over plain http. Credentials go to the
//     host itself only, never to a mirror.
// Errors name the URL, the digest, the HTTP status and the registry's JSON error code and message.
//
// Thread-safety: one RegistryClient may be used by many threads at once (each request has its own curl handle;
// the token cache and the endpoint state are locked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "image/digest.hpp"
#include "image/manifest.hpp"
#include "image/reference.hpp"
#include "image/registry_config.hpp"

namespace berth::image {

// One challenge of a WWW-Authenticate header: `scheme` lowercased ("bearer", "basic"), parameter names lowercased.
struct AuthChallenge {
    std::string scheme;
    std::map<std::string, std::string> params;
};
// Parses a WWW-Authenticate value (RFC 7235: comma-separated challenges, each a scheme and auth-params, values as
// tokens or quoted strings with backslash escapes). Malformed parts are skipped, not fatal.
std::vector<AuthChallenge> parse_www_authenticate(std::string_view value);

// The Accept header value for manifest requests.
std::string manifest_accept();
enum class ManifestKind { index, manifest, schema1, unknown };
// What a manifest response is: by its Content-Type, else (a missing or generic type) by the body's mediaType, or
// by its shape (an OCI index without mediaType has "manifests", a manifest "config"/"layers").
ManifestKind classify_manifest(std::string_view content_type, std::string_view body);

// The host name an API request goes to: "docker.io" is served by registry-1.docker.io.
std::string registry_api_host(std::string_view domain);
// "<base>/v2/<repository>/manifests/<reference>" and "<base>/v2/<repository>/blobs/<digest>".
std::string manifest_url(std::string_view base, std::string_view repository, std::string_view reference);
std::string blob_url(std::string_view base, std::string_view repository, const Digest& digest);
// The host[:port] part of an absolute URL ("" when it has none).
std::string url_authority(std::string_view url);
// Decodes the CRI `auth` form (base64 "user:password") into username and password.
[[nodiscard]] Result<Credentials> decode_auth(const Credentials& creds);

struct FetchedManifest {
    std::string url;           // where it came from
    std::string content_type;  // the media type (Content-Type, else the body's mediaType)
    ManifestKind kind = ManifestKind::unknown;
    std::string body;
    Digest digest;  // sha256 of body
};

// Receives a blob's bytes in order as they arrive. An error aborts the fetch and is not retried.
using BlobSink = std::function<Result<void>(std::span<const std::byte>)>;

class RegistryClient {
public:
    // A client for the registry `domain` (as in ImageReference::domain), configured from `config`'s entry for it
    // (and its mirrors' entries for their TLS settings). `creds` when not empty, else the entry's credentials.
    [[nodiscard]] static Result<std::unique_ptr<RegistryClient>> create(const RegistryConfig& config,
                                                                        std::string_view domain, Credentials creds,
                                                                        unsigned max_attempts = 5);
    ~RegistryClient();

    // GETs a manifest by tag or digest (a digest-pinned one is verified). Indexes and manifests of the accepted
    // types are returned; schema1 and other types are errors.
    [[nodiscard]] Result<FetchedManifest> get_manifest(std::string_view repository, std::string_view reference);
    // Streams blob `digest` (of `size` bytes when known) to `sink`, retrying and resuming as described above.
    // Returns only once every byte was delivered and the digest matched; on any error the sink may have seen
    // part of the blob (the caller discards it).
    [[nodiscard]] Result<void> fetch_blob(std::string_view repository, const Digest& digest,
                                          std::optional<uint64_t> size, const BlobSink& sink);
    // A small blob (a config) whole, at most `max_size` bytes.
    [[nodiscard]] Result<std::string> fetch_blob_bytes(std::string_view repository, const Digest& digest,
                                                       uint64_t max_size);

    struct Endpoint {
        std::string base;  // "https://host:port" (no trailing slash)
        bool upstream = false;
        bool verify_tls = true;
        std::string ca_pem;  // extra CAs, appended to the system bundle
        std::string cert_file, key_file;
    };
    struct Request;
    struct Response;

private:
    RegistryClient() = default;
    // One request on `ep` with auth handled (a 401 answered once with the challenge's credentials) and redirects
    // followed.
    [[nodiscard]] Result<Response> send(const Endpoint& ep, Request& req, std::string_view repository);
    [[nodiscard]] Result<std::string> authorization(const Endpoint& ep, std::string_view repository,
                                                    const std::string& challenge_header, bool force_refresh);
    [[nodiscard]] Result<std::string> fetch_token(const Endpoint& ep, const AuthChallenge& ch,
                                                  const std::string& scope);
    std::vector<const Endpoint*> live_endpoints();
    void mark_dead(const Endpoint* ep);

    std::string host_;
    Credentials creds_;
    unsigned max_attempts_ = 5;
    std::vector<Endpoint> endpoints_;
    std::mutex mu_;
    std::set<const Endpoint*> dead_;
    std::map<std::pair<std::string, std::string>, std::string> tokens_;  // (authority, scope) -> "Bearer ..."
    std::map<std::string, std::string> basic_hosts_;                     // authority -> "Basic ..."
};

// An image resolved in a registry: the platform's manifest (through an index when the reference names one).
struct ResolvedImage {
    Descriptor manifest;  // media type, digest and size of the image manifest itself
    std::string manifest_body;
    ImageManifest parsed;
    Digest index_digest;  // when the reference named an index
};
[[nodiscard]] Result<ResolvedImage> resolve_image(RegistryClient& client, const ImageReference& ref,
                                                  const Platform& platform);

}  // namespace berth::image
