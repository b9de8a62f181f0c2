#include "cni/network.hpp"

#include <cstdlib>

#include "cni/exec.hpp"
#include "cni/result.hpp"

namespace berth::cni {
namespace {

using json = nlohmann::json;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    size_t start = s.find_first_not_of(" \n\r");
    return start == std::string::npos ? std::string() : s.substr(start);
}

// The last non-empty line of a plugin's stderr (its own log), at most 512 bytes.
std::string last_line(const std::string& err) {
    std::string t = trim(err);
    size_t nl = t.rfind('\n');
    std::string line = nl == std::string::npos ? t : t.substr(nl + 1);
    if (line.size() > 512) line = line.substr(0, 512) + "...";
    return line;
}

}  // namespace

std::string Runner::args_text(const std::vector<std::pair<std::string, std::string>>& args) {
    std::string out;
    for (const auto& [k, v] : args) out += (out.empty() ? "" : ";") + k + "=" + v;
    return out;
}

json Runner::derive(const NetworkConfig& n, size_t index, const json& capability_args, const json* prev_result) {
    json c = n.plugins.at(index);
    json runtime_config = json::object();
    if (auto caps = c.find("capabilities"); caps != c.end() && caps->is_object()) {
        for (const auto& [name, on] : caps->items())
            if (on.is_boolean() && on.get<bool>() && capability_args.contains(name))
                runtime_config[name] = capability_args.at(name);
    }
    c.erase("capabilities");
    c["cniVersion"] = n.cni_version;
    c["name"] = n.name;
    if (!runtime_config.empty())
        c["runtimeConfig"] = std::move(runtime_config);
    else
        c.erase("runtimeConfig");
    if (prev_result && !prev_result->is_null())
        c["prevResult"] = *prev_result;
    else
        c.erase("prevResult");
    return c;
}

Result<void> Runner::check_binaries(const NetworkConfig& n) const {
    for (const std::string& type : plugin_binaries(n)) {
        if (auto found = find_plugin(type, bin_dirs_); !found)
            return std::unexpected(
                Error(ENOENT, fmt::format("network \"{}\" ({}): {}", n.name, n.file.empty() ? "cached" : n.file,
                                          found.error().message())));
    }
    return {};
}

Result<std::string> Runner::invoke(const NetworkConfig& n, size_t index, const std::string& command,
                                   const Attachment* a, const json& config) const {
    const std::string type = n.plugins[index].value("type", "");
    auto where = [&] { return fmt::format("network \"{}\": plugin \"{}\" ({})", n.name, type, command); };
    auto bin = find_plugin(type, bin_dirs_);
    if (!bin) return std::unexpected(Error(ENOENT, fmt::format("{}: {}", where(), bin.error().message())));

    ExecRequest r;
    r.binary = *bin;
    r.timeout = timeout_;
    r.stdin_data = config.dump();
    r.env.emplace_back("CNI_COMMAND", command);
    if (a) {
        r.env.emplace_back("CNI_CONTAINERID", a->container_id);
        r.env.emplace_back("CNI_NETNS", a->netns);
        r.env.emplace_back("CNI_IFNAME", a->ifname);
        r.env.emplace_back("CNI_ARGS", args_text(a->args));
    }
    std::string cni_path;
    for (const auto& d : bin_dirs_) cni_path += (cni_path.empty() ? "" : ":") + d;
    r.env.emplace_back("CNI_PATH", cni_path);
    // Plugins run tools of their own (portmap and bridge's ipMasq run iptables).
    const char* path = std::getenv("PATH");
    r.env.emplace_back("PATH", path && *path ? path : kDefaultPath);

    BERTH_ASSIGN(ExecOutput o, exec_plugin(r));
    if (o.timed_out)
        return std::unexpected(
            Error(ETIMEDOUT, fmt::format("{}: killed after {} ms without an answer", where(), timeout_.count())));
    if (o.exit_code == 0) return std::move(o.out);
    if (auto e = parse_plugin_error(o.out)) {
        std::string text = e->msg;
        if (!e->details.empty()) text += (text.empty() ? "" : ": ") + e->details;
        if (text.empty()) text = std::string(error_code_text(e->code));
        std::string_view known = error_code_text(e->code);
        return fail("{}: {} (CNI error {}{}{})", where(), text, e->code, known.empty() ? "" : ": ", known);
    }
    std::string why = last_line(o.err);
    if (why.empty()) why = last_line(o.out);
    if (o.exit_code == 127 && why.empty()) why = "could not be executed";
    return fail("{}: exit status {}{}{}", where(), o.exit_code, why.empty() ? "" : ": ", why);
}

Result<json> Runner::add(const NetworkConfig& n, const Attachment& a) const {
    BERTH_TRY(check_binaries(n));
    json prev;  // null: the first plugin gets no prevResult
    for (size_t i = 0; i < n.plugins.size(); ++i) {
        json config = derive(n, i, a.capability_args, prev.is_null() ? nullptr : &prev);
        BERTH_ASSIGN(std::string out, invoke(n, i, "ADD", &a, config));
        json result = json::parse(out, nullptr, false);
        if (result.is_discarded() || !result.is_object())
            return fail("network \"{}\": plugin \"{}\" (ADD): its result is not a JSON object: {}", n.name,
                        n.plugins[i].value("type", ""), last_line(out));
        if (auto parsed = parse_add_result(result); !parsed)
            return fail("network \"{}\": plugin \"{}\" (ADD): bad result: {}", n.name, n.plugins[i].value("type", ""),
                        parsed.error().message());
        prev = std::move(result);
    }
    return prev;
}

Result<void> Runner::del(const NetworkConfig& n, const Attachment& a, const json& prev_result) const {
    // prevResult on DEL came with 0.4.0; older plugins do not expect it.
    const bool with_prev = compare_versions(n.cni_version, "0.4.0") >= 0 && !prev_result.is_null();
    for (size_t i = n.plugins.size(); i-- > 0;) {
        json config = derive(n, i, a.capability_args, with_prev ? &prev_result : nullptr);
        BERTH_TRY(invoke(n, i, "DEL", &a, config));
    }
    return {};
}

Result<void> Runner::check(const NetworkConfig& n, const Attachment& a, const json& prev_result) const {
    if (compare_versions(n.cni_version, "0.4.0") < 0 || n.disable_check) return {};
    if (prev_result.is_null()) return fail("network \"{}\": CHECK needs the result of the ADD", n.name);
    for (size_t i = 0; i < n.plugins.size(); ++i) {
        json config = derive(n, i, a.capability_args, &prev_result);
        BERTH_TRY(invoke(n, i, "CHECK", &a, config));
    }
    return {};
}

Result<void> Runner::status(const NetworkConfig& n) const {
    if (compare_versions(n.cni_version, "1.1.0") < 0) return {};
    for (size_t i = 0; i < n.plugins.size(); ++i) {
        json config = derive(n, i, json::object(), nullptr);
        BERTH_TRY(invoke(n, i, "STATUS", nullptr, config));
    }
    return {};
}

Result<void> Runner::gc(const NetworkConfig& n, const std::vector<AttachmentKey>& valid) const {
    if (compare_versions(n.cni_version, "1.1.0") < 0 || n.disable_gc) return {};
    json list = json::array();
    for (const auto& v : valid) list.push_back({{"containerID", v.container_id}, {"ifname", v.ifname}});
    std::string errors;
    for (size_t i = 0; i < n.plugins.size(); ++i) {
        json config = derive(n, i, json::object(), nullptr);
        config["cni.dev/valid-attachments"] = list;
        // Plugins built against libcni 1.2.0-1.2.2 read the key under its first name; both carry the same list.
        config["cni.dev/attachments"] = list;
        if (auto r = invoke(n, i, "GC", nullptr, config); !r)
            errors += (errors.empty() ? "" : "; ") + r.error().message();
    }
    if (!errors.empty()) return fail("{}", errors);
    return {};
}

}  // namespace berth::cni
