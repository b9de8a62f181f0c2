// berthd's pod sandbox and container records: <root>/cri.db (SQLite, WAL), apart from the image metadata so each
// schema is versioned on its own. Every write is one transaction; a record is written before the thing it names is
// made (state "creating") so a crash in the middle leaves a record that recovery finds and undoes.
//
// Uniqueness is the CRI's: one pod per (name, namespace, uid, attempt), one container per (pod, name, attempt).
// put_*() of a new record whose metadata another record holds fails with EEXIST, and `holder` says which.
//
// The request configs are kept as the serialized protobuf messages (PodSandboxConfig, ContainerConfig): the store
// does not depend on the CRI headers, the managers parse them.
//
// Thread-safety: one connection guarded by a mutex; every member may be called from any thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace berth::store {

enum class PodState { creating, ready, notready };
enum class ContainerState { creating, created, running, exited };

const char* to_string(PodState s);
const char* to_string(ContainerState s);

struct PodRecord {
    std::string id;
    std::string name, namespace_, uid;
    uint32_t attempt = 0;
    PodState state = PodState::creating;
    int64_t created_at = 0;      // unix nanoseconds
    std::string config;          // serialized runtime.v1.PodSandboxConfig
    std::string runtime_handler;  // the handler's name as berthd resolved it
    std::string cgroup_parent;   // the pod's cgroup (relative to each hierarchy's root)
    bool owns_cgroup = false;    // berthd made cgroup_parent (the default parent), so it removes it
    bool host_network = false, host_ipc = false;
    int32_t infra_pid = 0;       // the process holding a shared PID namespace; 0: none
    uint64_t infra_start = 0;    // its start time (/proc/<pid>/stat field 22), against pid reuse
};

struct ContainerRecord {
    std::string id;
    std::string pod_id;
    std::string name;
    uint32_t attempt = 0;
    ContainerState state = ContainerState::creating;
    int64_t created_at = 0, started_at = 0, finished_at = 0;  // unix nanoseconds; 0: not yet
    std::string config;      // serialized runtime.v1.ContainerConfig
    std::string image_id;    // sha256:...
    std::string image_ref;   // what the request named (the image spec's image)
    std::string log_path;    // absolute
    std::string handler;     // runtime handler name
    int32_t pid = 0;         // the container's init (host pid namespace)
    uint64_t pid_start = 0;
    int32_t monitor_pid = 0;
    uint64_t monitor_start = 0;
    int32_t exit_code = 0;
    std::string reason;      // Completed, Error, OOMKilled
    std::string message;
    int32_t stop_signal = 0;  // what StopContainer sends first
};

class CriRecords {
public:
    static constexpr int kSchemaVersion = 1;

    // Opens (creating when missing) <root>/cri.db.
    [[nodiscard]] static Result<std::unique_ptr<CriRecords>> open(const std::string& root);
    const std::string& path() const { return path_; }

    // Inserts a new pod (EEXIST with *holder set when the metadata is taken, or the id) or replaces the record of
    // the same id.
    [[nodiscard]] Result<void> put_pod(const PodRecord& p, bool insert, std::string* holder = nullptr);
    [[nodiscard]] Result<PodRecord> pod(const std::string& id) const;  // ENOENT when missing
    // The pod holding (name, namespace, uid, attempt), if any.
    [[nodiscard]] Result<std::optional<PodRecord>> pod_by_metadata(const std::string& name, const std::string& ns,
                                                                   const std::string& uid, uint32_t attempt) const;
    [[nodiscard]] Result<std::vector<PodRecord>> pods() const;
    // Removes the pod's record (and its containers' records). Missing: success.
    [[nodiscard]] Result<void> remove_pod(const std::string& id);

    [[nodiscard]] Result<void> put_container(const ContainerRecord& c, bool insert, std::string* holder = nullptr);
    [[nodiscard]] Result<ContainerRecord> container(const std::string& id) const;  // ENOENT when missing
    [[nodiscard]] Result<std::vector<ContainerRecord>> containers() const;
    [[nodiscard]] Result<std::vector<ContainerRecord>> containers_of(const std::string& pod_id) const;
    [[nodiscard]] Result<void> remove_container(const std::string& id);

private:
    struct DbClose {
        void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
    };
    CriRecords(std::string path, std::unique_ptr<sqlite3, DbClose> db) : path_(std::move(path)), db_(std::move(db)) {}
    [[nodiscard]] Result<std::vector<PodRecord>> query_pods(const char* sql, const std::vector<std::string>& args) const;
    [[nodiscard]] Result<std::vector<ContainerRecord>> query_containers(const char* sql,
                                                                        const std::vector<std::string>& args) const;

    std::string path_;
    mutable std::mutex mu_;
    std::unique_ptr<sqlite3, DbClose> db_;
};

}  // namespace berth::store
