#include "image/registry.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fs.hpp"

namespace berth::image {

using Json = nlohmann::json;

namespace {

constexpr uint64_t kMaxManifestSize = 4 << 20;
constexpr uint64_t kMaxErrorBody = 64 << 10;
constexpr int kMaxRedirects = 10;
constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

// The media type without parameters, lowercased.
std::string bare_media_type(std::string_view ct) {
    if (auto semi = ct.find(';'); semi != std::string_view::npos) ct = ct.substr(0, semi);
    return lower(trim(ct));
}

std::string url_encode(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

std::string base64_encode(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

Result<std::string> base64_decode(std::string_view in) {
    std::string s(trim(in));
    if (s.size() % 4 != 0) return fail("not base64 (length {} is not a multiple of 4)", s.size());
    std::string out(3 * (s.size() / 4) + 1, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    if (n < 0) return fail("not base64");
    size_t len = static_cast<size_t>(n);
    // EVP_DecodeBlock counts the padding's zero bytes.
    for (size_t i = s.size(); i > 0 && s[i - 1] == '='; --i) --len;
    out.resize(len);
    return out;
}

std::string status_text(long status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

// "HTTP 404 Not Found: MANIFEST_UNKNOWN: manifest unknown" from a response's status and the distribution-spec's
// JSON error body ({"errors":[{"code","message","detail"}]}), or the start of a non-JSON body.
std::string describe_status(long status, std::string_view body) {
    std::string out = fmt::format("HTTP {}", status);
    if (auto t = status_text(status); !t.empty()) out += " " + t;
    Json j = Json::parse(body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("errors") && j["errors"].is_array()) {
        for (const auto& e : j["errors"]) {
            if (!e.is_object()) continue;
            out += ":";
            if (e.contains("code") && e["code"].is_string()) out += " " + e["code"].get<std::string>();
            if (e.contains("message") && e["message"].is_string()) out += ": " + e["message"].get<std::string>();
        }
    } else if (!j.is_discarded() && j.is_object() && j.contains("details") && j["details"].is_string()) {
        out += ": " + j["details"].get<std::string>();  // token servers (docker's auth) use this form
    } else if (auto b = trim(body); !b.empty() && b.size() <= 200 &&
               std::all_of(b.begin(), b.end(), [](char c) { return std::isprint(static_cast<unsigned char>(c)); })) {
        out += fmt::format(": {}", b);
    }
    return out;
}

bool retriable_status(long status) { return status == 408 || status == 429 || status >= 500; }

void backoff(unsigned failures) {
    auto ms = std::min<uint64_t>(100ull << std::min(failures, 10u), 5000);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void curl_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_ALL); });
}

struct CurlFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

// ---- parsing helpers ----

std::vector<AuthChallenge> parse_www_authenticate(std::string_view v) {
    std::vector<AuthChallenge> out;
    size_t i = 0;
    auto skip_ws = [&] {
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    };
    auto token = [&] {
        size_t b = i;
        while (i < v.size() && v[i] != ' ' && v[i] != '\t' && v[i] != ',' && v[i] != '=') ++i;
        return v.substr(b, i - b);
    };
    while (i < v.size()) {
        skip_ws();
        while (i < v.size() && v[i] == ',') ++i, skip_ws();
        if (i >= v.size()) break;
        std::string_view scheme = token();
        if (scheme.empty()) {
            ++i;  // a stray '=': skip it
            continue;
        }
        AuthChallenge ch{lower(scheme), {}};
        // Parameters: name=value pairs separated by commas, until a token not followed by '=' starts a new
        // challenge.
        for (;;) {
            skip_ws();
            size_t save = i;
            std::string_view name = token();
            skip_ws();
            if (name.empty() || i >= v.size() || v[i] != '=') {
                i = save;
                break;
            }
            ++i;  // '='
            skip_ws();
            std::string value;
            if (i < v.size() && v[i] == '"') {
                ++i;
                while (i < v.size() && v[i] != '"') {
                    if (v[i] == '\\' && i + 1 < v.size()) ++i;
                    value += v[i++];
                }
                if (i < v.size()) ++i;  // closing quote
            } else {
                size_t b = i;
                while (i < v.size() && v[i] != ',' && v[i] != ' ' && v[i] != '\t') ++i;
                value = v.substr(b, i - b);
            }
            ch.params[lower(name)] = std::move(value);
            skip_ws();
            if (i < v.size() && v[i] == ',') ++i;
        }
        out.push_back(std::move(ch));
    }
    return out;
}

std::string manifest_accept() {
    return fmt::format("{}, {}, {}, {}", media_type::kOciIndex, media_type::kOciManifest,
                       media_type::kDockerManifestList, media_type::kDockerManifest);
}

ManifestKind classify_manifest(std::string_view content_type, std::string_view body) {
    auto by_type = [](std::string_view mt) {
        if (mt == media_type::kOciIndex || mt == media_type::kDockerManifestList) return ManifestKind::index;
        if (mt == media_type::kOciManifest || mt == media_type::kDockerManifest) return ManifestKind::manifest;
        if (mt == "application/vnd.docker.distribution.manifest.v1+json" ||
            mt == "application/vnd.docker.distribution.manifest.v1+prettyjws")
            return ManifestKind::schema1;
        return ManifestKind::unknown;
    };
    if (auto k = by_type(bare_media_type(content_type)); k != ManifestKind::unknown) return k;
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return ManifestKind::unknown;
    if (j.contains("schemaVersion") && j["schemaVersion"] == 1) return ManifestKind::schema1;
    if (j.contains("mediaType") && j["mediaType"].is_string())
        return by_type(bare_media_type(j["mediaType"].get<std::string>()));
    if (j.contains("manifests")) return ManifestKind::index;
    if (j.contains("config") && j.contains("layers")) return ManifestKind::manifest;
    return ManifestKind::unknown;
}

std::string registry_api_host(std::string_view domain) {
    if (domain == "docker.io") return "registry-1.docker.io";
    return std::string(domain);
}

std::string manifest_url(std::string_view base, std::string_view repository, std::string_view reference) {
    return fmt::format("{}/v2/{}/manifests/{}", base, repository, reference);
}

std::string blob_url(std::string_view base, std::string_view repository, const Digest& digest) {
    return fmt::format("{}/v2/{}/blobs/{}", base, repository, digest.string());
}

std::string url_authority(std::string_view url) {
    auto p = url.find("://");
    if (p == std::string_view::npos) return "";
    url.remove_prefix(p + 3);
    auto end = url.find_first_of("/?#");
    if (end != std::string_view::npos) url = url.substr(0, end);
    if (auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
    return lower(url);
}

Result<Credentials> decode_auth(const Credentials& creds) {
    Credentials c = creds;
    if (c.auth.empty() || !c.username.empty() || !c.password.empty()) return c;
    auto decoded = base64_decode(c.auth);
    if (!decoded) return std::unexpected(std::move(decoded).error().wrap("credentials: auth"));
    auto colon = decoded->find(':');
    if (colon == std::string::npos) return fail("credentials: auth: not of the form base64(\"username:password\")");
    c.username = decoded->substr(0, colon);
    c.password = decoded->substr(colon + 1);
    return c;
}

// ---- HTTP ----

struct RegistryClient::Request {
    std::string method = "GET";
    std::string url;
    std::vector<std::string> headers;  // besides Authorization
    std::string post_body;             // POST: application/x-www-form-urlencoded
    uint64_t resume_from = 0;          // bytes of the body the sink already has (sends Range)
    const BlobSink* sink = nullptr;    // a 2xx body goes here, else into Response::body
    uint64_t max_body = kMaxManifestSize;
};

struct RegistryClient::Response {
    long status = 0;
    std::string url;  // of the last request (after redirects)
    std::map<std::string, std::string> headers;  // lowercased names, of the last response
    std::string body;  // non-2xx bodies and 2xx bodies without a sink (up to max_body)
    bool body_truncated = false;
    uint64_t delivered = 0;       // bytes handed to the sink
    std::string transport_error;  // non-empty: curl failed (connection, TLS, dropped transfer)
    bool tls_error = false;

    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? "" : it->second;
    }
};

namespace {

struct Transfer {
    CURL* curl = nullptr;
    RegistryClient::Request* req = nullptr;
    RegistryClient::Response* resp = nullptr;
    bool started = false;
    uint64_t skip = 0;  // body bytes to drop (a server that ignored Range)
    std::optional<Error> sink_error;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string_view line(data, size * n);
    if (line.starts_with("HTTP/")) {
        t->resp->headers.clear();  // a new response (after 100 Continue)
    } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
        t->resp->headers[lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
    }
    return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    const bool ok = status >= 200 && status < 300;
    if (!ok || !t->req->sink) {
        auto& body = t->resp->body;
        if (body.size() < t->req->max_body) {
            body.append(data, std::min<size_t>(len, t->req->max_body - body.size()));
        }
        if (body.size() >= t->req->max_body && len > 0) {
            t->resp->body_truncated = true;
            if (ok) return 0;  // a 2xx document larger than allowed: abort
        }
        return len;
    }
    if (!t->started) {
        t->started = true;
        if (t->req->resume_from > 0) {
            if (status == 206) {
                // Content-Range: bytes <first>-<last>/<total>
                std::string cr = t->resp->header("content-range");
                uint64_t first = 0;
                if (std::sscanf(cr.c_str(), "bytes %lu-", &first) != 1 || first != t->req->resume_from) {
                    t->sink_error = Error(0, fmt::format("asked for bytes {}- but got Content-Range \"{}\"",
                                                         t->req->resume_from, cr));
                    return 0;
                }
            } else {
                t->skip = t->req->resume_from;  // the whole blob again
            }
        }
    }
    std::string_view chunk(data, len);
    if (t->skip > 0) {
        size_t drop = std::min<uint64_t>(t->skip, chunk.size());
        t->skip -= drop;
        chunk.remove_prefix(drop);
    }
    if (chunk.empty()) return len;
    auto r = (*t->req->sink)(std::as_bytes(std::span(chunk.data(), chunk.size())));
    if (!r) {
        t->sink_error = std::move(r).error();
        return 0;
    }
    t->resp->delivered += chunk.size();
    return len;
}

// One HTTP exchange without redirects or auth handling. Errors are only for what must not be retried (a sink's
// error, a resource failure); transport failures are reported in Response::transport_error.
Result<RegistryClient::Response> perform(RegistryClient::Request& req, const RegistryClient::Endpoint& tls,
                                         const std::string& authorization) {
    curl_init_once();
    std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
    if (!curl) return fail("{} {}: curl_easy_init failed", req.method, req.url);
    RegistryClient::Response resp;
    resp.url = req.url;
    Transfer t{curl.get(), &req, &resp};

    curl_slist* raw = nullptr;
    auto add = [&](const std::string& h) { raw = curl_slist_append(raw, h.c_str()); };
    for (const auto& h : req.headers) add(h);
    if (!authorization.empty()) add("Authorization: " + authorization);
    if (req.resume_from > 0) add(fmt::format("Range: bytes={}-", req.resume_from));
    std::unique_ptr<curl_slist, SlistFree> headers(raw);

    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 byte/s for 60 s) is a transport failure, retried with Range.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, nullptr);  // blobs are digested as sent: no transfer decoding
    if (req.method == "POST") {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.post_body.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.post_body.size()));
    } else if (req.method == "HEAD") {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    if (!tls.verify_tls) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_blob ca{};
    if (!tls.ca_pem.empty()) {
        ca.data = const_cast<char*>(tls.ca_pem.data());
        ca.len = tls.ca_pem.size();
        ca.flags = CURL_BLOB_NOCOPY;
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (!tls.cert_file.empty()) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, tls.cert_file.c_str());
        curl_easy_setopt(c, CURLOPT_SSLKEY, (tls.key_file.empty() ? tls.cert_file : tls.key_file).c_str());
    }

    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    if (t.sink_error) return std::unexpected(std::move(*t.sink_error));
    if (rc != CURLE_OK) {
        if (rc == CURLE_WRITE_ERROR && resp.body_truncated)
            return fail("{} {}: response larger than {} bytes", req.method, req.url, req.max_body);
        resp.transport_error = curl_easy_strerror(rc);
        resp.tls_error = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                         rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
                         rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ISSUER_ERROR;
    }
    return resp;
}

}  // namespace

// ---- client ----

RegistryClient::~RegistryClient() = default;

Result<std::unique_ptr<RegistryClient>> RegistryClient::create(const RegistryConfig& config, std::string_view domain,
                                                              Credentials creds, unsigned max_attempts) {
    std::unique_ptr<RegistryClient> c(new RegistryClient());
    const RegistryHost host = config.for_host(std::string(domain));
    c->host_ = std::string(domain);
    c->max_attempts_ = std::max(1u, max_attempts);
    BERTH_ASSIGN(c->creds_, decode_auth(creds.empty() ? host.credentials : creds));

    auto tls_of = [](const RegistryHost& h, Endpoint& ep) -> Result<void> {
        ep.verify_tls = !h.insecure;
        ep.cert_file = h.cert_file;
        ep.key_file = h.key_file;
        if (!h.ca_file.empty()) {
            BERTH_ASSIGN(std::string extra, read_file(h.ca_file));
            std::string system;
            if (path_exists(kSystemCaBundle)) {
                BERTH_ASSIGN(system, read_file(kSystemCaBundle));
            }
            ep.ca_pem = system + "\n" + extra;
        }
        return {};
    };
    for (std::string m : host.mirrors) {
        while (m.ends_with('/')) m.pop_back();
        if (!m.contains("://")) m = "https://" + m;
        if (!m.starts_with("http://") && !m.starts_with("https://"))
            return fail("registry {}: mirror \"{}\": not an http(s) URL", domain, m);
        Endpoint ep;
        ep.base = m;
        BERTH_TRY_CTX(tls_of(config.for_host(url_authority(m)), ep), "registry {}: mirror {}", domain, m);
        c->endpoints_.push_back(std::move(ep));
    }
    Endpoint up;
    up.base = "https://" + registry_api_host(domain);
    up.upstream = true;
    BERTH_TRY_CTX(tls_of(host, up), "registry {}", domain);
    c->endpoints_.push_back(up);
    if (host.insecure) {
        up.base = "http://" + registry_api_host(domain);
        c->endpoints_.push_back(up);
    }
    return c;
}

std::vector<const RegistryClient::Endpoint*> RegistryClient::live_endpoints() {
    std::lock_guard lock(mu_);
    std::vector<const Endpoint*> out;
    for (const auto& ep : endpoints_)
        if (!dead_.contains(&ep)) out.push_back(&ep);
    // Every endpoint failed once: try them all again rather than none.
    if (out.empty())
        for (const auto& ep : endpoints_) out.push_back(&ep);
    return out;
}

void RegistryClient::mark_dead(const Endpoint* ep) {
    std::lock_guard lock(mu_);
    dead_.insert(ep);
}

Result<std::string> RegistryClient::fetch_token(const Endpoint& ep, const AuthChallenge& ch, const std::string& scope) {
    auto realm_it = ch.params.find("realm");
    if (realm_it == ch.params.end() || realm_it->second.empty())
        return fail("registry {}: Bearer challenge without a realm", url_authority(ep.base));
    const std::string& realm = realm_it->second;
    if (!realm.starts_with("https://") && !realm.starts_with("http://"))
        return fail("registry {}: token realm \"{}\" is not an http(s) URL", url_authority(ep.base), realm);
    std::string service = ch.params.contains("service") ? ch.params.at("service") : "";
    const bool with_creds = ep.upstream;
    Request req;
    std::string authz;
    if (with_creds && !creds_.identity_token.empty()) {
        req.method = "POST";
        req.url = realm;
        req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
        req.post_body = fmt::format("grant_type=refresh_token&client_id=berth&service={}&scope={}&refresh_token={}",
                                    url_encode(service), url_encode(scope), url_encode(creds_.identity_token));
    } else {
        req.url = realm + (realm.contains('?') ? "&" : "?");
        if (!service.empty()) req.url += "service=" + url_encode(service) + "&";
        req.url += "scope=" + url_encode(scope);
        if (with_creds && !creds_.username.empty())
            authz = "Basic " + base64_encode(creds_.username + ":" + creds_.password);
    }
    req.max_body = 1 << 20;
    // The realm's own TLS settings when it is the registry's host, else the defaults.
    Endpoint tls;
    if (url_authority(realm) == url_authority(ep.base)) tls = ep;
    BERTH_ASSIGN(Response resp, perform(req, tls, authz));
    if (!resp.transport_error.empty())
        return fail("token request {} {}: {}", req.method, realm, resp.transport_error);
    if (resp.status != 200)
        return fail("token request {} {} (scope {}): {}", req.method, realm, scope,
                    describe_status(resp.status, resp.body));
    Json j = Json::parse(resp.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail("token response from {}: not a JSON object", realm);
    for (const char* key : {"token", "access_token"})
        if (j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty())
            return "Bearer " + j[key].get<std::string>();
    return fail("token response from {}: no token or access_token", realm);
}

Result<std::string> RegistryClient::authorization(const Endpoint& ep, std::string_view repository,
                                                  const std::string& header, bool force_refresh) {
    const std::string authority = url_authority(ep.base);
    if (header.empty()) {
        // No challenge yet: what a previous challenge taught (cached), else nothing.
        std::lock_guard lock(mu_);
        if (ep.upstream && !creds_.registry_token.empty()) return "Bearer " + creds_.registry_token;
        if (auto it = tokens_.find({authority, fmt::format("repository:{}:pull", repository)}); it != tokens_.end())
            return it->second;
        if (auto it = basic_hosts_.find(authority); it != basic_hosts_.end()) return it->second;
        return std::string();
    }
    auto challenges = parse_www_authenticate(header);
    const AuthChallenge* bearer = nullptr;
    const AuthChallenge* basic = nullptr;
    for (const auto& ch : challenges) {
        if (ch.scheme == "bearer" && !bearer) bearer = &ch;
        if (ch.scheme == "basic" && !basic) basic = &ch;
    }
    if (bearer) {
        if (ep.upstream && !creds_.registry_token.empty()) return "Bearer " + creds_.registry_token;
        std::string scope = fmt::format("repository:{}:pull", repository);
        if (auto it = bearer->params.find("scope"); it != bearer->params.end() && !it->second.empty())
            scope = it->second;
        const std::pair key{authority, scope};
        {
            std::lock_guard lock(mu_);
            if (auto it = tokens_.find(key); it != tokens_.end() && !force_refresh) return it->second;
        }
        BERTH_ASSIGN(std::string token, fetch_token(ep, *bearer, scope));
        std::lock_guard lock(mu_);
        tokens_[key] = token;
        tokens_[{authority, fmt::format("repository:{}:pull", repository)}] = token;
        return token;
    }
    if (basic) {
        if (!ep.upstream || creds_.username.empty()) return std::string();  // anonymous: the 401 stands
        std::string value = "Basic " + base64_encode(creds_.username + ":" + creds_.password);
        std::lock_guard lock(mu_);
        basic_hosts_[authority] = value;
        return value;
    }
    if (challenges.empty()) return std::string();
    return fail("registry {}: unsupported authentication scheme \"{}\"", authority, challenges.front().scheme);
}

Result<RegistryClient::Response> RegistryClient::send(const Endpoint& ep, Request& req, std::string_view repository) {
    BERTH_ASSIGN(std::string authz, authorization(ep, repository, "", false));
    const std::string first_url = req.url;
    bool auth_answered = false;
    for (int redirects = 0;;) {
        const bool own_host = url_authority(req.url) == url_authority(ep.base);
        // Another host (a redirect to blob storage) gets neither our credentials nor our client certificate.
        Endpoint other;
        BERTH_ASSIGN(Response resp, perform(req, own_host ? ep : other, own_host ? authz : std::string()));
        if (!resp.transport_error.empty()) {
            req.url = first_url;
            return resp;
        }
        if (resp.status == 401 && own_host && !auth_answered) {
            auth_answered = true;
            BERTH_ASSIGN(std::string next, authorization(ep, repository, resp.header("www-authenticate"), true));
            if (!next.empty() && next != authz) {
                authz = std::move(next);
                continue;
            }
        }
        if (resp.status >= 300 && resp.status < 400 && resp.status != 304 && !resp.header("location").empty()) {
            if (++redirects > kMaxRedirects) return fail("{} {}: more than {} redirects", req.method, first_url,
                                                         kMaxRedirects);
            char* next = nullptr;
            std::string target;
            // Resolve a relative Location against the current URL.
            std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
            if (u && curl_url_set(u.get(), CURLUPART_URL, req.url.c_str(), 0) == CURLUE_OK &&
                curl_url_set(u.get(), CURLUPART_URL, resp.header("location").c_str(), 0) == CURLUE_OK &&
                curl_url_get(u.get(), CURLUPART_URL, &next, 0) == CURLUE_OK) {
                target = next;
                curl_free(next);
            } else {
                return fail("{} {}: bad redirect Location \"{}\"", req.method, req.url, resp.header("location"));
            }
            req.url = target;
            continue;
        }
        req.url = first_url;
        return resp;
    }
}

Result<FetchedManifest> RegistryClient::get_manifest(std::string_view repository, std::string_view reference) {
    std::optional<Digest> pinned;
    if (reference.contains(':')) {
        BERTH_ASSIGN(Digest d, Digest::parse(reference));
        pinned = d;
    }
    std::string last_error;
    unsigned failures = 0;
    for (unsigned attempt = 0; attempt < max_attempts_; ++attempt) {
        if (attempt > 0) backoff(failures);
        auto eps = live_endpoints();
        bool retry = false;
        for (size_t i = 0; i < eps.size(); ++i) {
            const Endpoint& ep = *eps[i];
            const bool last = i + 1 == eps.size();
            Request req;
            req.url = manifest_url(ep.base, repository, reference);
            req.headers.push_back("Accept: " + manifest_accept());
            BERTH_ASSIGN(Response resp, send(ep, req, repository));
            if (!resp.transport_error.empty()) {
                last_error = fmt::format("GET {}: {}", req.url, resp.transport_error);
                if (!last) {
                    mark_dead(&ep);
                    continue;
                }
                if (resp.tls_error) return fail("{}", last_error);
                retry = true;
                break;
            }
            if (resp.status != 200) {
                last_error = fmt::format("GET {}: {}", req.url, describe_status(resp.status, resp.body));
                if (!ep.upstream && (resp.status == 404 || retriable_status(resp.status))) continue;
                if (retriable_status(resp.status)) {
                    retry = true;
                    break;
                }
                return fail("{}", last_error);
            }
            FetchedManifest m;
            m.url = req.url;
            m.body = std::move(resp.body);
            m.digest = Sha256::of(m.body);
            m.kind = classify_manifest(resp.header("content-type"), m.body);
            m.content_type = bare_media_type(resp.header("content-type"));
            if (m.kind != ManifestKind::unknown && m.kind != ManifestKind::schema1) {
                Json j = Json::parse(m.body, nullptr, false);
                if (!j.is_discarded() && j.is_object() && j.contains("mediaType") && j["mediaType"].is_string())
                    m.content_type = bare_media_type(j["mediaType"].get<std::string>());
            }
            if (pinned && m.digest != *pinned)
                return fail("GET {}: the manifest's content has digest {}, not the requested {}", m.url,
                            m.digest.string(), pinned->string());
            if (m.kind == ManifestKind::schema1)
                return fail("GET {}: Docker image manifest schema 1 ({}) is not supported (deprecated; push the "
                            "image again with a current client)",
                            m.url, m.content_type);
            if (m.kind == ManifestKind::unknown)
                return fail("GET {}: unsupported manifest media type \"{}\"", m.url, m.content_type);
            return m;
        }
        if (!retry) break;  // every endpoint answered without a retriable failure
        ++failures;
    }
    return fail("{}", last_error.empty() ? fmt::format("manifest {}:{}: no endpoint", repository, reference)
                                         : last_error);
}

Result<void> RegistryClient::fetch_blob(std::string_view repository, const Digest& digest,
                                        std::optional<uint64_t> size, const BlobSink& sink) {
    Sha256 hasher;
    uint64_t done = 0;
    std::string url_in_error;
    BlobSink counted = [&](std::span<const std::byte> data) -> Result<void> {
        if (size && done + data.size() > *size)
            return fail("blob {} from {}: more than the {} bytes its descriptor gives", digest.string(),
                        url_in_error, *size);
        hasher.update(data);
        done += data.size();
        return sink(data);
    };
    std::string last_error;
    unsigned failures = 0;
    for (;;) {
        if (failures >= max_attempts_) break;
        if (failures > 0) backoff(failures - 1);
        auto eps = live_endpoints();
        bool retry = false;
        for (size_t i = 0; i < eps.size(); ++i) {
            const Endpoint& ep = *eps[i];
            const bool last = i + 1 == eps.size();
            Request req;
            req.url = blob_url(ep.base, repository, digest);
            url_in_error = req.url;
            req.sink = &counted;
            req.resume_from = done;
            const uint64_t before = done;
            BERTH_ASSIGN(Response resp, send(ep, req, repository));
            if (!resp.transport_error.empty()) {
                last_error = fmt::format("GET {} (blob {}, {} bytes received): {}", req.url, digest.string(), done,
                                         resp.transport_error);
                if (!last && done == before) {
                    mark_dead(&ep);
                    continue;
                }
                if (resp.tls_error) return fail("{}", last_error);
                retry = true;
                // Progress resets the count: only failures in a row without a byte gained give up.
                if (done > before) failures = 0;
                break;
            }
            if (resp.status != 200 && resp.status != 206) {
                last_error = fmt::format("GET {} (blob {}): {}", req.url, digest.string(),
                                         describe_status(resp.status, resp.body));
                if (!ep.upstream && (resp.status == 404 || retriable_status(resp.status))) continue;
                if (retriable_status(resp.status)) {
                    retry = true;
                    break;
                }
                return fail("{}", last_error);
            }
            if (size && done != *size) {
                // A complete response that is short: the server's fault, retried from where it stopped.
                last_error = fmt::format("GET {} (blob {}): got {} of {} bytes", req.url, digest.string(), done, *size);
                retry = true;
                if (done > before) failures = 0;
                break;
            }
            Digest got = hasher.finish();
            if (got != digest)
                return fail("GET {}: blob {}: the content has digest {} ({} bytes): refused", req.url,
                            digest.string(), got.string(), done);
            return {};
        }
        if (!retry) break;
        ++failures;
    }
    return fail("{}", last_error.empty() ? fmt::format("blob {}: no endpoint", digest.string()) : last_error);
}

Result<std::string> RegistryClient::fetch_blob_bytes(std::string_view repository, const Digest& digest,
                                                     uint64_t max_size) {
    std::string out;
    BERTH_TRY(fetch_blob(repository, digest, std::nullopt, [&](std::span<const std::byte> data) -> Result<void> {
        if (out.size() + data.size() > max_size)
            return fail("blob {}: larger than {} bytes", digest.string(), max_size);
        out.append(reinterpret_cast<const char*>(data.data()), data.size());
        return {};
    }));
    return out;
}

// ---- resolve ----

namespace {

std::string platform_string(const Platform& p) {
    std::string s = p.os + "/" + p.architecture;
    if (!p.variant.empty()) s += "/" + p.variant;
    return s;
}

}  // namespace

Result<ResolvedImage> resolve_image(RegistryClient& client, const ImageReference& ref, const Platform& platform) {
    const std::string reference = ref.digest.valid() ? ref.digest.string() : ref.tag;
    BERTH_ASSIGN(FetchedManifest top, client.get_manifest(ref.repository, reference));
    ResolvedImage out;
    FetchedManifest m = std::move(top);
    if (m.kind == ManifestKind::index) {
        const std::string what = fmt::format("index {} of {}", m.digest.string(), ref.string());
        BERTH_ASSIGN(ImageIndex index, parse_index(m.body, what));
        const Descriptor* chosen = nullptr;
        // An exact variant match wins over a compatible one (linux/arm64 without variant matches v8 as well).
        for (int pass = 0; pass < 2 && !chosen; ++pass) {
            for (const auto& d : index.manifests) {
                if (!d.platform || (!d.media_type.empty() && !is_manifest_media_type(d.media_type))) continue;
                bool ok = pass == 0 ? d.platform->os == platform.os &&
                                          d.platform->architecture == platform.architecture &&
                                          d.platform->variant == platform.variant
                                    : platform_matches(platform, *d.platform);
                if (ok) {
                    chosen = &d;
                    break;
                }
            }
        }
        if (!chosen) {
            std::string have;
            for (const auto& d : index.manifests)
                if (d.platform) have += (have.empty() ? "" : ", ") + platform_string(*d.platform);
            return fail("{}: index {} has no manifest for platform {} (it has: {})", ref.string(),
                        m.digest.string(), platform_string(platform), have.empty() ? "none" : have);
        }
        out.index_digest = m.digest;
        const Descriptor wanted = *chosen;
        BERTH_ASSIGN(m, client.get_manifest(ref.repository, wanted.digest.string()));
        if (m.kind != ManifestKind::manifest)
            return fail("{}: index {} entry {} is not an image manifest", ref.string(), out.index_digest.string(),
                        wanted.digest.string());
        if (m.body.size() != wanted.size)
            return fail("{}: manifest {} has {} bytes, the index says {}", ref.string(), wanted.digest.string(),
                        m.body.size(), wanted.size);
    }
    const std::string what = fmt::format("manifest {} of {}", m.digest.string(), ref.string());
    BERTH_ASSIGN(out.parsed, parse_manifest(m.body, what));
    out.manifest.media_type = out.parsed.media_type.empty() ? m.content_type : out.parsed.media_type;
    out.manifest.digest = m.digest;
    out.manifest.size = m.body.size();
    out.manifest_body = std::move(m.body);
    return out;
}

}  // namespace berth::image
