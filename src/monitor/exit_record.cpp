#include "monitor/exit_record.hpp"

#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"

namespace berth::monitor {

ExitRecord exit_record_from_status(int st) {
    ExitRecord r;
    if (WIFSIGNALED(st)) {
        r.signal = WTERMSIG(st);
        r.exit_code = 128 + r.signal;
    } else {
        r.exit_code = WEXITSTATUS(st);
    }
    return r;
}

std::string to_json(const ExitRecord& r) {
    nlohmann::ordered_json j;
    j["exit_code"] = r.exit_code;
    if (r.signal != 0) j["signal"] = r.signal;
    j["oom_killed"] = r.oom_killed;
    j["started_at"] = r.started_at;
    j["finished_at"] = r.finished_at;
    return j.dump();
}

Result<ExitRecord> parse_exit_record(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail("exit record: not a JSON object");
    ExitRecord r;
    auto field = [&](const char* name, auto& out, bool required) -> Result<void> {
        auto it = j.find(name);
        if (it == j.end()) {
            if (required) return fail("exit record: missing {}", name);
            return {};
        }
        using T = std::remove_reference_t<decltype(out)>;
        bool ok = std::is_same_v<T, bool>          ? it->is_boolean()
                  : std::is_same_v<T, std::string> ? it->is_string()
                                                   : it->is_number_integer();
        if (!ok) return fail("exit record: {} has the wrong type", name);
        out = it->template get<T>();
        return {};
    };
    BERTH_TRY(field("exit_code", r.exit_code, true));
    BERTH_TRY(field("signal", r.signal, false));
    BERTH_TRY(field("oom_killed", r.oom_killed, true));
    BERTH_TRY(field("started_at", r.started_at, false));
    BERTH_TRY(field("finished_at", r.finished_at, true));
    return r;
}

Result<void> write_exit_record(const std::string& dir, const ExitRecord& r) {
    return write_file_atomic(path_join(dir, kExitFileName), to_json(r) + "\n", 0644);
}

Result<ExitRecord> read_exit_record(const std::string& dir) {
    std::string path = path_join(dir, kExitFileName);
    BERTH_ASSIGN(std::string text, read_file(path));
    auto r = parse_exit_record(text);
    if (!r) return std::unexpected(std::move(r).error().wrap(path));
    return r;
}

}  // namespace berth::monitor
