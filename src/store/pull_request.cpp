#include "store/pull_request.hpp"

namespace berth::store {
namespace {

using Json = nlohmann::json;

Json credentials_json(const image::Credentials& c) {
    return {{"username", c.username},
            {"password", c.password},
            {"auth", c.auth},
            {"identity_token", c.identity_token},
            {"registry_token", c.registry_token}};
}

// Reads the optional string member `key` of `obj` into `out`; `where` names the object in errors.
Result<void> get_string(const Json& obj, const char* key, std::string& out, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return {};
    if (!it->is_string()) return fail("pull request: {}.{}: not a string", where, key);
    out = it->get<std::string>();
    return {};
}

Result<image::Credentials> credentials_from(const Json& j, const std::string& where) {
    image::Credentials c;
    if (j.is_null()) return c;
    if (!j.is_object()) return fail("pull request: {}: not an object", where);
    BERTH_TRY(get_string(j, "username", c.username, where));
    BERTH_TRY(get_string(j, "password", c.password, where));
    BERTH_TRY(get_string(j, "auth", c.auth, where));
    BERTH_TRY(get_string(j, "identity_token", c.identity_token, where));
    BERTH_TRY(get_string(j, "registry_token", c.registry_token, where));
    return c;
}

std::string_view event_name(PullEvent::Kind k) {
    switch (k) {
        case PullEvent::Kind::resolved: return "resolved";
        case PullEvent::Kind::layer_wait: return "layer_wait";
        case PullEvent::Kind::layer_bytes: return "layer_bytes";
        case PullEvent::Kind::layer_done: return "layer_done";
        case PullEvent::Kind::done: return "done";
    }
    return "unknown";
}

}  // namespace

Json to_json(const PullRequest& r) {
    Json hosts = Json::array();
    for (const auto& h : r.registries.hosts)
        hosts.push_back({{"host", h.host},
                         {"mirrors", h.mirrors},
                         {"insecure", h.insecure},
                         {"ca_file", h.ca_file},
                         {"cert_file", h.cert_file},
                         {"key_file", h.key_file},
                         {"credentials", credentials_json(h.credentials)}});
    return {{"reference", r.reference},
            {"platform",
             {{"os", r.platform.os}, {"architecture", r.platform.architecture}, {"variant", r.platform.variant}}},
            {"credentials", credentials_json(r.credentials)},
            {"registries", std::move(hosts)},
            {"max_parallel_layers", r.max_parallel_layers}};
}

Result<PullRequest> pull_request_from_json(const Json& j) {
    if (!j.is_object()) return fail("pull request: not a JSON object");
    PullRequest r;
    BERTH_TRY(get_string(j, "reference", r.reference, "request"));
    if (r.reference.empty()) return fail("pull request: reference: missing");
    if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
        if (!p->is_object()) return fail("pull request: platform: not an object");
        BERTH_TRY(get_string(*p, "os", r.platform.os, "platform"));
        BERTH_TRY(get_string(*p, "architecture", r.platform.architecture, "platform"));
        BERTH_TRY(get_string(*p, "variant", r.platform.variant, "platform"));
    }
    if (auto c = j.find("credentials"); c != j.end()) {
        BERTH_ASSIGN(r.credentials, credentials_from(*c, "credentials"));
    }
    if (auto regs = j.find("registries"); regs != j.end() && !regs->is_null()) {
        if (!regs->is_array()) return fail("pull request: registries: not an array");
        for (size_t i = 0; i < regs->size(); ++i) {
            const Json& h = (*regs)[i];
            const std::string where = fmt::format("registries[{}]", i);
            if (!h.is_object()) return fail("pull request: {}: not an object", where);
            image::RegistryHost host;
            BERTH_TRY(get_string(h, "host", host.host, where));
            if (auto m = h.find("mirrors"); m != h.end() && !m->is_null()) {
                if (!m->is_array()) return fail("pull request: {}.mirrors: not an array", where);
                for (const auto& url : *m) {
                    if (!url.is_string()) return fail("pull request: {}.mirrors: not a string", where);
                    host.mirrors.push_back(url.get<std::string>());
                }
            }
            if (auto in = h.find("insecure"); in != h.end() && !in->is_null()) {
                if (!in->is_boolean()) return fail("pull request: {}.insecure: not a boolean", where);
                host.insecure = in->get<bool>();
            }
            BERTH_TRY(get_string(h, "ca_file", host.ca_file, where));
            BERTH_TRY(get_string(h, "cert_file", host.cert_file, where));
            BERTH_TRY(get_string(h, "key_file", host.key_file, where));
            if (auto c = h.find("credentials"); c != h.end()) {
                BERTH_ASSIGN(host.credentials, credentials_from(*c, where + ".credentials"));
            }
            r.registries.hosts.push_back(std::move(host));
        }
    }
    if (auto n = j.find("max_parallel_layers"); n != j.end() && !n->is_null()) {
        if (!n->is_number_unsigned() || n->get<unsigned>() == 0)
            return fail("pull request: max_parallel_layers: not a positive integer");
        r.max_parallel_layers = n->get<unsigned>();
    }
    return r;
}

Json to_json(const PullEvent& e) {
    Json j = {{"event", event_name(e.kind)}};
    if (e.digest.valid()) j["digest"] = e.digest.string();
    if (e.kind == PullEvent::Kind::layer_bytes || e.kind == PullEvent::Kind::resolved) {
        j["done"] = e.done;
        j["total"] = e.total;
    }
    if (e.kind == PullEvent::Kind::layer_done) j["cached"] = e.cached;
    return j;
}

}  // namespace berth::store
