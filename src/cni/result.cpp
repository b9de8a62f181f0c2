#include "cni/result.hpp"

#include <arpa/inet.h>

namespace berth::cni {
namespace {

using json = nlohmann::json;

// The family of "addr/len" (4 or 6), 0 when it is not an IP in CIDR form.
int cidr_family(const std::string& cidr) {
    size_t slash = cidr.find('/');
    if (slash == std::string::npos || slash + 1 >= cidr.size() || cidr.size() - slash > 4) return 0;
    std::string addr = cidr.substr(0, slash);
    for (char c : cidr.substr(slash + 1))
        if (c < '0' || c > '9') return 0;
    int len = std::stoi(cidr.substr(slash + 1));
    unsigned char buf[16];
    if (::inet_pton(AF_INET, addr.c_str(), buf) == 1) return len <= 32 ? 4 : 0;
    if (::inet_pton(AF_INET6, addr.c_str(), buf) == 1) return len <= 128 ? 6 : 0;
    return 0;
}

Result<std::vector<std::string>> strings(const json& obj, const char* key, const std::string& path) {
    std::vector<std::string> out;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return out;
    if (!it->is_array()) return fail("{}{}: not an array", path, key);
    for (size_t i = 0; i < it->size(); ++i) {
        if (!(*it)[i].is_string()) return fail("{}{}[{}]: not a string", path, key, i);
        out.push_back((*it)[i].get<std::string>());
    }
    return out;
}

Result<void> parse_dns(const json& r, AddResult& out) {
    auto it = r.find("dns");
    if (it == r.end() || it->is_null()) return {};
    if (!it->is_object()) return fail("dns: not an object");
    BERTH_ASSIGN(out.dns_nameservers, strings(*it, "nameservers", "dns."));
    BERTH_ASSIGN(out.dns_search, strings(*it, "search", "dns."));
    BERTH_ASSIGN(out.dns_options, strings(*it, "options", "dns."));
    if (auto d = it->find("domain"); d != it->end() && d->is_string()) out.dns_domain = d->get<std::string>();
    return {};
}

Result<IpConfig> parse_ip(const json& j, const std::string& path, int expect_family) {
    if (!j.is_object()) return fail("{}: not an object", path);
    IpConfig ip;
    auto addr = j.find(expect_family ? "ip" : "address");
    if (addr == j.end() || !addr->is_string())
        return fail("{}.{}: missing or not a string", path, expect_family ? "ip" : "address");
    ip.address = addr->get<std::string>();
    ip.family = cidr_family(ip.address);
    if (ip.family == 0)
        return fail("{}.{}: \"{}\" is not an IP in CIDR form", path, expect_family ? "ip" : "address", ip.address);
    if (expect_family && ip.family != expect_family)
        return fail("{}.ip: \"{}\" is not an IPv{} address", path, ip.address, expect_family);
    if (auto g = j.find("gateway"); g != j.end() && g->is_string()) ip.gateway = g->get<std::string>();
    if (auto i = j.find("interface"); i != j.end() && !i->is_null()) {
        if (!i->is_number_integer() || i->get<long long>() < 0) return fail("{}.interface: not an index", path);
        ip.interface = static_cast<int>(i->get<long long>());
    }
    // 0.3.x/0.4.0 also say "version": "4"/"6"; it must agree with the address.
    if (auto v = j.find("version"); v != j.end() && v->is_string()) {
        std::string ver = v->get<std::string>();
        if ((ver == "4" && ip.family != 4) || (ver == "6" && ip.family != 6))
            return fail("{}.version: \"{}\" does not match address {}", path, ver, ip.address);
    }
    return ip;
}

}  // namespace

std::string IpConfig::ip() const {
    return address.substr(0, address.find('/'));
}

std::vector<std::string> AddResult::pod_ips(std::string_view ifname) const {
    std::vector<const IpConfig*> picked;
    for (const auto& ip : ips) {
        if (ip.interface < 0) {
            picked.push_back(&ip);
            continue;
        }
        if (static_cast<size_t>(ip.interface) >= interfaces.size()) continue;
        const Interface& itf = interfaces[static_cast<size_t>(ip.interface)];
        if (!itf.sandbox.empty() && (ifname.empty() || itf.name == ifname)) picked.push_back(&ip);
    }
    std::vector<std::string> out;
    for (int fam : {4, 6})
        for (const IpConfig* ip : picked)
            if (ip->family == fam) out.push_back(ip->ip());
    return out;
}

Result<AddResult> parse_add_result(const json& r) {
    if (!r.is_object()) return fail("result: not a JSON object");
    AddResult out;
    if (auto v = r.find("cniVersion"); v != r.end() && v->is_string()) out.cni_version = v->get<std::string>();
    if (r.contains("ip4") || r.contains("ip6")) {
        // 0.1.0 / 0.2.0: one address per family, no interfaces.
        for (auto [key, fam] : {std::pair{"ip4", 4}, std::pair{"ip6", 6}}) {
            auto it = r.find(key);
            if (it == r.end() || it->is_null()) continue;
            BERTH_ASSIGN(IpConfig ip, parse_ip(*it, key, fam));
            out.ips.push_back(std::move(ip));
        }
        BERTH_TRY(parse_dns(r, out));
        return out;
    }
    if (auto it = r.find("interfaces"); it != r.end() && !it->is_null()) {
        if (!it->is_array()) return fail("interfaces: not an array");
        for (size_t i = 0; i < it->size(); ++i) {
            const json& j = (*it)[i];
            if (!j.is_object()) return fail("interfaces[{}]: not an object", i);
            Interface itf;
            if (auto n = j.find("name"); n != j.end() && n->is_string()) itf.name = n->get<std::string>();
            if (auto m = j.find("mac"); m != j.end() && m->is_string()) itf.mac = m->get<std::string>();
            if (auto s = j.find("sandbox"); s != j.end() && s->is_string()) itf.sandbox = s->get<std::string>();
            out.interfaces.push_back(std::move(itf));
        }
    }
    if (auto it = r.find("ips"); it != r.end() && !it->is_null()) {
        if (!it->is_array()) return fail("ips: not an array");
        for (size_t i = 0; i < it->size(); ++i) {
            BERTH_ASSIGN(IpConfig ip, parse_ip((*it)[i], fmt::format("ips[{}]", i), 0));
            if (ip.interface >= 0 && static_cast<size_t>(ip.interface) >= out.interfaces.size())
                return fail("ips[{}].interface: {} is past the {} interfaces", i, ip.interface, out.interfaces.size());
            out.ips.push_back(std::move(ip));
        }
    }
    BERTH_TRY(parse_dns(r, out));
    return out;
}

std::optional<PluginError> parse_plugin_error(std::string_view out) {
    json j = json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    auto code = j.find("code");
    if (code == j.end() || !code->is_number_integer()) return std::nullopt;
    PluginError e;
    e.code = static_cast<int>(code->get<long long>());
    if (auto m = j.find("msg"); m != j.end() && m->is_string()) e.msg = m->get<std::string>();
    if (auto d = j.find("details"); d != j.end() && d->is_string()) e.details = d->get<std::string>();
    return e;
}

std::string_view error_code_text(int code) {
    switch (code) {
        case 1:
            return "incompatible CNI version";
        case 2:
            return "unsupported field in network configuration";
        case 3:
            return "container unknown or does not exist";
        case 4:
            return "invalid environment variables";
        case 5:
            return "I/O failure";
        case 6:
            return "failed to decode content";
        case 7:
            return "invalid network config";
        case 11:
            return "try again later";
        case 50:
            return "the plugin is not available";
        case 51:
            return "the plugin is not available, existing containers may have limited connectivity";
        default:
            return "";
    }
}

}  // namespace berth::cni
