#include "spec/state.hpp"

#include "spec/json_reader.hpp"

namespace berth::spec {

std::string state_to_json(const State& s) {
    nlohmann::ordered_json j = {{"ociVersion", s.oci_version}, {"id", s.id}, {"status", s.status}};
    if (s.pid != 0) j["pid"] = s.pid;
    j["bundle"] = s.bundle;
    if (!s.annotations.empty()) j["annotations"] = s.annotations;
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<State> parse_state(std::string_view json_text) {
    using detail::JsonPath;
    try {
        detail::Json doc;
        BERTH_TRY(detail::parse_json(json_text, doc));
        JsonPath root;
        BERTH_ASSIGN(auto o, detail::as_object(doc, root));
        State s;
        BERTH_TRY(o.req("ociVersion", s.oci_version));
        BERTH_TRY(o.req("id", s.id));
        BERTH_TRY(o.req("status", s.status));
        BERTH_TRY(o.opt("pid", s.pid));
        BERTH_TRY(o.req("bundle", s.bundle));
        BERTH_TRY(o.opt("annotations", s.annotations));
        if (s.status != "creating" && s.status != "created" && s.status != "running" && s.status != "stopped")
            return detail::path_error(JsonPath(root, "status"), "unknown status {}", detail::quote(s.status));
        if (s.pid < 0) return detail::path_error(JsonPath(root, "pid"), "must not be negative, got {}", s.pid);
        return s;
    } catch (const std::exception& e) {
        return fail("parse state: {}", e.what());
    }
}

}  // namespace berth::spec
