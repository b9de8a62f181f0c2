#include "runtime/container_state.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "linux/namespaces.hpp"

namespace berth::runtime {

using nlohmann::json;

std::string_view to_string(Status s) {
    switch (s) {
        case Status::creating: return "creating";
        case Status::created: return "created";
        case Status::running: return "running";
        case Status::paused: return "paused";
        case Status::stopped: return "stopped";
    }
    return "unknown";
}

std::string container_dir(const std::string& root, const std::string& id) { return path_join(root, id); }

std::string seccomp_cache_dir(const std::string& root) { return path_join(root, "@seccomp-cache"); }

std::string exec_fifo_path(const std::string& root, const std::string& id) {
    return path_join(container_dir(root, id), "exec.fifo");
}

Result<void> validate_container_id(const std::string& id) {
    if (id.empty()) return fail("container id is empty");
    if (id.size() > 1024) return fail("container id is longer than 1024 bytes");
    if (id == "." || id == "..") return fail("invalid container id \"{}\"", id);
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.' || c == '+';
        if (!ok) return fail("invalid container id \"{}\": only [A-Za-z0-9_.+-] are allowed", id);
    }
    return {};
}

namespace {

json hook_list_to_json(const std::vector<spec::Hook>& hooks) {
    json arr = json::array();
    for (const auto& h : hooks) {
        json j = {{"path", h.path}};
        if (!h.args.empty()) j["args"] = h.args;
        if (!h.env.empty()) j["env"] = h.env;
        if (h.timeout) j["timeout"] = *h.timeout;
        arr.push_back(std::move(j));
    }
    return arr;
}

std::vector<spec::Hook> hook_list_from_json(const json& arr) {
    std::vector<spec::Hook> out;
    if (!arr.is_array()) return out;
    for (const auto& j : arr) {
        spec::Hook h;
        h.path = j.value("path", "");
        h.args = j.value("args", std::vector<std::string>{});
        h.env = j.value("env", std::vector<std::string>{});
        if (j.contains("timeout")) h.timeout = j["timeout"].get<int>();
        out.push_back(std::move(h));
    }
    return out;
}

}  // namespace

Result<void> save_state(const std::string& root, const ContainerState& st) {
    json hooks = {{"prestart", hook_list_to_json(st.hooks.prestart)},
                  {"createRuntime", hook_list_to_json(st.hooks.create_runtime)},
                  {"createContainer", hook_list_to_json(st.hooks.create_container)},
                  {"startContainer", hook_list_to_json(st.hooks.start_container)},
                  {"poststart", hook_list_to_json(st.hooks.poststart)},
                  {"poststop", hook_list_to_json(st.hooks.poststop)}};
    json j = {{"id", st.id},
              {"bundle", st.bundle},
              {"rootfs", st.rootfs},
              {"pid", st.pid},
              {"pid_start_time", st.pid_start_time},
              {"created", st.created},
              {"owner_uid", st.owner_uid},
              {"annotations", st.annotations},
              {"hooks", std::move(hooks)},
              {"cgroup_paths", st.cgroup_paths},
              {"namespace_paths", st.namespace_paths},
              {"new_pid_namespace", st.new_pid_namespace}};
    return write_file_atomic(path_join(container_dir(root, st.id), "state.json"), j.dump(), 0600);
}

Result<ContainerState> load_state(const std::string& root, const std::string& id) {
    BERTH_TRY(validate_container_id(id));
    std::string path = path_join(container_dir(root, id), "state.json");
    auto text = read_file(path);
    if (!text) {
        if (text.error().code() == ENOENT) return std::unexpected(Error(ENOENT, fmt::format("container \"{}\" does not exist", id)));
        return std::unexpected(text.error());
    }
    try {
        json j = json::parse(*text);
        ContainerState st;
        st.id = j.at("id").get<std::string>();
        st.bundle = j.value("bundle", "");
        st.rootfs = j.value("rootfs", "");
        st.pid = j.value("pid", 0);
        st.pid_start_time = j.value("pid_start_time", uint64_t{0});
        st.created = j.value("created", "");
        st.owner_uid = j.value("owner_uid", 0u);
        st.annotations = j.value("annotations", std::map<std::string, std::string>{});
        if (j.contains("hooks")) {
            const json& h = j["hooks"];
            st.hooks.prestart = hook_list_from_json(h.value("prestart", json::array()));
            st.hooks.create_runtime = hook_list_from_json(h.value("createRuntime", json::array()));
            st.hooks.create_container = hook_list_from_json(h.value("createContainer", json::array()));
            st.hooks.start_container = hook_list_from_json(h.value("startContainer", json::array()));
            st.hooks.poststart = hook_list_from_json(h.value("poststart", json::array()));
            st.hooks.poststop = hook_list_from_json(h.value("poststop", json::array()));
        }
        st.cgroup_paths = j.value("cgroup_paths", std::map<std::string, std::string>{});
        st.namespace_paths = j.value("namespace_paths", std::map<std::string, std::string>{});
        st.new_pid_namespace = j.value("new_pid_namespace", false);
        return st;
    } catch (const std::exception& e) {
        return fail("{}: corrupt state: {}", path, e.what());
    }
}

Result<std::vector<std::string>> list_container_ids(const std::string& root) {
    std::vector<std::string> ids;
    DIR* d = ::opendir(root.c_str());
    if (!d) {
        if (errno == ENOENT) return ids;
        return fail_sys("open state root {}", root);
    }
    while (struct dirent* de = ::readdir(d)) {
        std::string name = de->d_name;
        if (name == "." || name == ".." || !validate_container_id(name)) continue;
        if (path_exists(path_join(path_join(root, name), "state.json"))) ids.push_back(name);
    }
    ::closedir(d);
    std::sort(ids.begin(), ids.end());
    return ids;
}

Status current_status(const std::string& root, const ContainerState& st) {
    if (!sys::process_alive(st.pid, st.pid_start_time)) return Status::stopped;
    auto freezer = st.cgroup_paths.find("freezer");
    if (freezer != st.cgroup_paths.end()) {
        auto s = read_file(path_join(freezer->second, "freezer.state"));
        if (s && s->starts_with("FROZEN")) return Status::paused;
    }
    auto unified = st.cgroup_paths.find("unified");
    if (unified != st.cgroup_paths.end() && freezer == st.cgroup_paths.end()) {
        auto s = read_file(path_join(unified->second, "cgroup.freeze"));
        if (s && s->starts_with("1")) return Status::paused;
    }
    // A created container can be paused too (runc allows it): frozen wins over the fifo.
    if (path_exists(exec_fifo_path(root, st.id))) return Status::created;
    return Status::running;
}

std::string state_json(const ContainerState& st, std::string_view status) {
    json j = {{"ociVersion", std::string(spec::kOciVersion)},
              {"id", st.id},
              {"status", std::string(status)}};
    // The spec: pid is REQUIRED when status is created or running (runc also reports it when paused).
    j["pid"] = status == "stopped" ? 0 : st.pid;
    j["bundle"] = st.bundle;
    j["rootfs"] = st.rootfs;
    j["created"] = st.created;
    j["owner"] = "";
    if (!st.annotations.empty()) j["annotations"] = st.annotations;
    return j.dump(2);
}

}  // namespace berth::runtime
