// Registry configuration and credentials: what a pull needs to know about the registries it talks to. Filled from
// berth.toml's [registries] tables (berthd), from flags (berthctl image pull), and per pull from the CRI AuthConfig.
#pragma once

#include <string>
#include <vector>

namespace berth::image {

// Credentials for one pull, in the forms the CRI AuthConfig carries. At most one form is used, in this order:
// registry_token (a bearer token sent as is), identity_token (an OAuth2 refresh token exchanged at the token
// realm), username + password, auth (base64 "username:password", decoded into the previous form).
struct Credentials {
    std::string username;
    std::string password;
    std::string auth;
    std::string identity_token;
    std::string registry_token;

    bool empty() const {
        return username.empty() && password.empty() && auth.empty() && identity_token.empty() &&
               registry_token.empty();
    }
};

// How to reach one registry host ("docker.io", "host:5000", "[::1]:5000").
struct RegistryHost {
    std::string host;
    // Endpoints tried in order before the host itself, as base URLs ("https://mirror.example:5000",
    // "http://127.0.0.1:5001"); a mirror that fails (network error, 5xx, 404 for the manifest) is skipped.
    std::vector<std::string> mirrors;
    bool insecure = false;   // plain HTTP allowed (and TLS verification off) for this host only
    std::string ca_file;     // extra CA bundle (PEM) trusted for this host, in addition to the system's
    std::string cert_file;   // client certificate (PEM) for mutual TLS, with key_file
    std::string key_file;
    Credentials credentials; // used when a pull brings none
};

struct RegistryConfig {
    std::vector<RegistryHost> hosts;
    // The host's entry, or a default one (https, system CAs, no mirrors) when the configuration names it not.
    RegistryHost for_host(const std::string& host) const {
        for (const auto& h : hosts)
            if (h.host == host) return h;
        RegistryHost h;
        h.host = host;
        return h;
    }
};

}  // namespace berth::image
