#include "store/cri_records.hpp"

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "store/sqlite.hpp"

namespace berth::store {
namespace {

constexpr int kBusyTimeoutMs = 30000;

// The key columns are real columns (uniqueness, lookups); the rest of a record is one JSON document, so adding a
// field needs no schema change.
constexpr const char* kSchemaV1 = R"(
CREATE TABLE pods (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    namespace TEXT NOT NULL,
    uid TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    config BLOB NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (name, namespace, uid, attempt)
);
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    pod_id TEXT NOT NULL,
    name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    config BLOB NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (pod_id, name, attempt)
);
CREATE INDEX containers_pod ON containers(pod_id);
)";

using sqlite::exec;
using sqlite::Stmt;

PodState pod_state(std::string_view s) {
    if (s == "ready") return PodState::ready;
    if (s == "notready") return PodState::notready;
    return PodState::creating;
}

ContainerState container_state(std::string_view s) {
    if (s == "created") return ContainerState::created;
    if (s == "running") return ContainerState::running;
    if (s == "exited") return ContainerState::exited;
    return ContainerState::creating;
}

std::string pod_data(const PodRecord& p) {
    return nlohmann::json{
        {"state", to_string(p.state)},      {"created_at", p.created_at},   {"runtime_handler", p.runtime_handler},
        {"cgroup_parent", p.cgroup_parent}, {"owns_cgroup", p.owns_cgroup}, {"host_network", p.host_network},
        {"host_ipc", p.host_ipc},           {"infra_pid", p.infra_pid},     {"infra_start", p.infra_start}}
        .dump();
}

void read_pod_data(const std::string& text, PodRecord& p) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return;
    p.state = pod_state(j.value("state", ""));
    p.created_at = j.value("created_at", int64_t{0});
    p.runtime_handler = j.value("runtime_handler", "");
    p.cgroup_parent = j.value("cgroup_parent", "");
    p.owns_cgroup = j.value("owns_cgroup", false);
    p.host_network = j.value("host_network", false);
    p.host_ipc = j.value("host_ipc", false);
    p.infra_pid = j.value("infra_pid", int32_t{0});
    p.infra_start = j.value("infra_start", uint64_t{0});
}

std::string container_data(const ContainerRecord& c) {
    return nlohmann::json{
        {"state", to_string(c.state)},  {"created_at", c.created_at},   {"started_at", c.started_at},
        {"finished_at", c.finished_at}, {"image_id", c.image_id},       {"image_ref", c.image_ref},
        {"log_path", c.log_path},       {"handler", c.handler},         {"pid", c.pid},
        {"pid_start", c.pid_start},     {"monitor_pid", c.monitor_pid}, {"monitor_start", c.monitor_start},
        {"exit_code", c.exit_code},     {"reason", c.reason},           {"message", c.message},
        {"stop_signal", c.stop_signal}}
        .dump();
}

void read_container_data(const std::string& text, ContainerRecord& c) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return;
    c.state = container_state(j.value("state", ""));
    c.created_at = j.value("created_at", int64_t{0});
    c.started_at = j.value("started_at", int64_t{0});
    c.finished_at = j.value("finished_at", int64_t{0});
    c.image_id = j.value("image_id", "");
    c.image_ref = j.value("image_ref", "");
    c.log_path = j.value("log_path", "");
    c.handler = j.value("handler", "");
    c.pid = j.value("pid", int32_t{0});
    c.pid_start = j.value("pid_start", uint64_t{0});
    c.monitor_pid = j.value("monitor_pid", int32_t{0});
    c.monitor_start = j.value("monitor_start", uint64_t{0});
    c.exit_code = j.value("exit_code", int32_t{0});
    c.reason = j.value("reason", "");
    c.message = j.value("message", "");
    c.stop_signal = j.value("stop_signal", int32_t{0});
}

}  // namespace

const char* to_string(PodState s) {
    switch (s) {
        case PodState::creating:
            return "creating";
        case PodState::ready:
            return "ready";
        case PodState::notready:
            return "notready";
    }
    return "creating";
}

const char* to_string(ContainerState s) {
    switch (s) {
        case ContainerState::creating:
            return "creating";
        case ContainerState::created:
            return "created";
        case ContainerState::running:
            return "running";
        case ContainerState::exited:
            return "exited";
    }
    return "creating";
}

Result<std::unique_ptr<CriRecords>> CriRecords::open(const std::string& root) {
    const std::string path = path_join(root, "cri.db");
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("open {}", path))); };
    if (auto r = mkdir_all(root, 0700); !r) return ctx(std::move(r).error());
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<sqlite3, DbClose> db(raw);
    if (rc != SQLITE_OK) return ctx(Error(0, raw ? sqlite3_errmsg(raw) : "out of memory"));
    sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
    // WAL + synchronous=NORMAL: a commit survives the daemon's crash (SIGKILL), which is what recovery needs; only
    // a power loss may lose the last commits, and then nothing the records name survives either (/run is gone).
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"})
        if (auto r = exec(db.get(), pragma); !r) return ctx(std::move(r).error());
    if (auto r = exec(db.get(), "BEGIN IMMEDIATE"); !r) return ctx(std::move(r).error());
    auto body = [&]() -> Result<void> {
        BERTH_ASSIGN(Stmt v, Stmt::prepare(db.get(), "PRAGMA user_version"));
        if (v.step_code() != SQLITE_ROW) return fail("sqlite: PRAGMA user_version: {}", sqlite3_errmsg(db.get()));
        const int64_t have = v.col_int64(0);
        if (have > kSchemaVersion)
            return fail("schema version {} is newer than this berth's ({}): refusing to use it", have, kSchemaVersion);
        if (have == 0) {
            BERTH_TRY(exec(db.get(), kSchemaV1));
            BERTH_TRY(exec(db.get(), "PRAGMA user_version=1"));
        }
        return {};
    };
    if (auto r = body(); !r) {
        (void)exec(db.get(), "ROLLBACK");
        return ctx(std::move(r).error());
    }
    if (auto r = exec(db.get(), "COMMIT"); !r) return ctx(std::move(r).error());
    return std::unique_ptr<CriRecords>(new CriRecords(path, std::move(db)));
}

Result<void> CriRecords::put_pod(const PodRecord& p, bool insert, std::string* holder) {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("record pod {}", p.id))); };
    BERTH_TRY_CTX(exec(db, "BEGIN IMMEDIATE"), "record pod {}", p.id);
    auto body = [&]() -> Result<void> {
        if (insert) {
            BERTH_ASSIGN(Stmt q, Stmt::prepare(db, R"(SELECT id FROM pods WHERE id = ?1 OR
                (name = ?2 AND namespace = ?3 AND uid = ?4 AND attempt = ?5))"));
            q.text(1, p.id).text(2, p.name).text(3, p.namespace_).text(4, p.uid).int64(5, p.attempt);
            if (q.step_code() == SQLITE_ROW) {
                if (holder) *holder = q.col_text(0);
                return fail_errno(EEXIST, "pod {}/{} (uid {}, attempt {}) is held by pod {}", p.namespace_, p.name,
                                  p.uid, p.attempt, q.col_text(0));
            }
        }
        BERTH_ASSIGN(Stmt s, Stmt::prepare(db, R"(INSERT OR REPLACE INTO pods
            (id, name, namespace, uid, attempt, config, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7))"));
        s.text(1, p.id).text(2, p.name).text(3, p.namespace_).text(4, p.uid).int64(5, p.attempt);
        s.blob(6, p.config).text(7, pod_data(p));
        if (s.step_code() != SQLITE_DONE) return sqlite::failure(db, s.sql());
        return {};
    };
    if (auto r = body(); !r) {
        (void)exec(db, "ROLLBACK");
        return ctx(std::move(r).error());
    }
    BERTH_TRY_CTX(exec(db, "COMMIT"), "record pod {}", p.id);
    return {};
}

Result<std::vector<PodRecord>> CriRecords::query_pods(const char* sql, const std::vector<std::string>& args) const {
    std::lock_guard lock(mu_);
    BERTH_ASSIGN(Stmt s, Stmt::prepare(db_.get(), sql));
    for (size_t i = 0; i < args.size(); ++i) s.text(static_cast<int>(i + 1), args[i]);
    std::vector<PodRecord> out;
    for (;;) {
        int rc = s.step_code();
        if (rc == SQLITE_DONE) return out;
        if (rc != SQLITE_ROW) return sqlite::failure(db_.get(), sql);
        PodRecord p;
        p.id = s.col_text(0);
        p.name = s.col_text(1);
        p.namespace_ = s.col_text(2);
        p.uid = s.col_text(3);
        p.attempt = static_cast<uint32_t>(s.col_int64(4));
        p.config = s.col_text(5);
        read_pod_data(s.col_text(6), p);
        out.push_back(std::move(p));
    }
}

Result<PodRecord> CriRecords::pod(const std::string& id) const {
    BERTH_ASSIGN(auto v,
                 query_pods("SELECT id, name, namespace, uid, attempt, config, data FROM pods WHERE id = ?1", {id}));
    if (v.empty()) return fail_errno(ENOENT, "pod sandbox {}", id);
    return std::move(v.front());
}

Result<std::optional<PodRecord>> CriRecords::pod_by_metadata(const std::string& name, const std::string& ns,
                                                             const std::string& uid, uint32_t attempt) const {
    BERTH_ASSIGN(auto v, query_pods(R"(SELECT id, name, namespace, uid, attempt, config, data FROM pods
                                       WHERE name = ?1 AND namespace = ?2 AND uid = ?3 AND attempt = ?4)",
                                    {name, ns, uid, std::to_string(attempt)}));
    if (v.empty()) return std::optional<PodRecord>();
    return std::optional<PodRecord>(std::move(v.front()));
}

Result<std::vector<PodRecord>> CriRecords::pods() const {
    return query_pods("SELECT id, name, namespace, uid, attempt, config, data FROM pods ORDER BY rowid", {});
}

Result<void> CriRecords::remove_pod(const std::string& id) {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    BERTH_TRY_CTX(exec(db, "BEGIN IMMEDIATE"), "remove pod record {}", id);
    auto body = [&]() -> Result<void> {
        BERTH_ASSIGN(Stmt c, Stmt::prepare(db, "DELETE FROM containers WHERE pod_id = ?1"));
        if (c.text(1, id).step_code() != SQLITE_DONE) return sqlite::failure(db, c.sql());
        BERTH_ASSIGN(Stmt p, Stmt::prepare(db, "DELETE FROM pods WHERE id = ?1"));
        if (p.text(1, id).step_code() != SQLITE_DONE) return sqlite::failure(db, p.sql());
        return {};
    };
    if (auto r = body(); !r) {
        (void)exec(db, "ROLLBACK");
        return std::unexpected(std::move(r).error().wrap(fmt::format("remove pod record {}", id)));
    }
    BERTH_TRY_CTX(exec(db, "COMMIT"), "remove pod record {}", id);
    return {};
}

Result<void> CriRecords::put_container(const ContainerRecord& c, bool insert, std::string* holder) {
    std::lock_guard lock(mu_);
    sqlite3* db = db_.get();
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("record container {}", c.id))); };
    BERTH_TRY_CTX(exec(db, "BEGIN IMMEDIATE"), "record container {}", c.id);
    auto body = [&]() -> Result<void> {
        if (insert) {
            BERTH_ASSIGN(Stmt q, Stmt::prepare(db, R"(SELECT id FROM containers WHERE id = ?1 OR
                (pod_id = ?2 AND name = ?3 AND attempt = ?4))"));
            q.text(1, c.id).text(2, c.pod_id).text(3, c.name).int64(4, c.attempt);
            if (q.step_code() == SQLITE_ROW) {
                if (holder) *holder = q.col_text(0);
                return fail_errno(EEXIST, "container {} (attempt {}) of pod {} is held by container {}", c.name,
                                  c.attempt, c.pod_id, q.col_text(0));
            }
        }
        BERTH_ASSIGN(Stmt s, Stmt::prepare(db, R"(INSERT OR REPLACE INTO containers
            (id, pod_id, name, attempt, config, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6))"));
        s.text(1, c.id).text(2, c.pod_id).text(3, c.name).int64(4, c.attempt);
        s.blob(5, c.config).text(6, container_data(c));
        if (s.step_code() != SQLITE_DONE) return sqlite::failure(db, s.sql());
        return {};
    };
    if (auto r = body(); !r) {
        (void)exec(db, "ROLLBACK");
        return ctx(std::move(r).error());
    }
    BERTH_TRY_CTX(exec(db, "COMMIT"), "record container {}", c.id);
    return {};
}

Result<std::vector<ContainerRecord>> CriRecords::query_containers(const char* sql,
                                                                  const std::vector<std::string>& args) const {
    std::lock_guard lock(mu_);
    BERTH_ASSIGN(Stmt s, Stmt::prepare(db_.get(), sql));
    for (size_t i = 0; i < args.size(); ++i) s.text(static_cast<int>(i + 1), args[i]);
    std::vector<ContainerRecord> out;
    for (;;) {
        int rc = s.step_code();
        if (rc == SQLITE_DONE) return out;
        if (rc != SQLITE_ROW) return sqlite::failure(db_.get(), sql);
        ContainerRecord c;
        c.id = s.col_text(0);
        c.pod_id = s.col_text(1);
        c.name = s.col_text(2);
        c.attempt = static_cast<uint32_t>(s.col_int64(3));
        c.config = s.col_text(4);
        read_container_data(s.col_text(5), c);
        out.push_back(std::move(c));
    }
}

Result<ContainerRecord> CriRecords::container(const std::string& id) const {
    BERTH_ASSIGN(
        auto v, query_containers("SELECT id, pod_id, name, attempt, config, data FROM containers WHERE id = ?1", {id}));
    if (v.empty()) return fail_errno(ENOENT, "container {}", id);
    return std::move(v.front());
}

Result<std::vector<ContainerRecord>> CriRecords::containers() const {
    return query_containers("SELECT id, pod_id, name, attempt, config, data FROM containers ORDER BY rowid", {});
}

Result<std::vector<ContainerRecord>> CriRecords::containers_of(const std::string& pod_id) const {
    return query_containers(
        "SELECT id, pod_id, name, attempt, config, data FROM containers WHERE pod_id = ?1 ORDER BY rowid", {pod_id});
}

Result<void> CriRecords::remove_container(const std::string& id) {
    std::lock_guard lock(mu_);
    BERTH_ASSIGN(Stmt s, Stmt::prepare(db_.get(), "DELETE FROM containers WHERE id = ?1"));
    if (s.text(1, id).step_code() != SQLITE_DONE)
        return fail("remove container record {}: sqlite: {}", id, sqlite3_errmsg(db_.get()));
    return {};
}

}  // namespace berth::store
