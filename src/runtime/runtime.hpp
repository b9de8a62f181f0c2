// libberth's OCI runtime operations: what `berth create|start|state|kill|delete|run|list` do.
//
// Contract shared by all operations: errors carry the container id and what really failed; a failed create leaves
// no state directory, no process and no mount behind. Operations on one container are not serialized against
// each other beyond what the file system gives (runc has the same model).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "spec/config.hpp"

namespace berth::runtime {

struct GlobalOptions {
    std::string root = "/run/berth";  // --root: where state directories live
    bool systemd_cgroup = false;      // --systemd-cgroup
};

struct CreateOptions {
    std::string id;
    std::string bundle = ".";
    std::string pid_file;
    std::string console_socket;
    bool no_pivot = false;
    bool no_new_keyring = false;
    int preserve_fds = 0;
};

struct RunOptions : CreateOptions {
    bool detach = false;
    bool keep = false;  // keep the stopped container's state after a foreground run
};

[[nodiscard]] Result<void> create_container(const GlobalOptions& g, const CreateOptions& o);
[[nodiscard]] Result<void> start_container(const GlobalOptions& g, const std::string& id);
// The state JSON of one container.
[[nodiscard]] Result<std::string> container_state(const GlobalOptions& g, const std::string& id);
// Signals the init process, or with `all` every process of the container.
[[nodiscard]] Result<void> kill_container(const GlobalOptions& g, const std::string& id, int signal, bool all);
// Deletes a stopped (or, like runc, a created) container; `force` kills a running one first.
[[nodiscard]] Result<void> delete_container(const GlobalOptions& g, const std::string& id, bool force);
// Creates and starts; in the foreground waits and returns the exit code (128+signal when killed), forwarding
// signals and the terminal. Detached returns 0 once the container runs.
[[nodiscard]] Result<int> run_container(const GlobalOptions& g, const RunOptions& o);

struct ListEntry {
    std::string id;
    pid_t pid = 0;
    std::string status;
    std::string bundle;
    std::string created;
    std::string owner;
};
[[nodiscard]] Result<std::vector<ListEntry>> list_containers(const GlobalOptions& g);

struct ExecOptions {
    std::string id;
    std::string process_file;        // --process: a process.json; otherwise built from the flags below
    std::vector<std::string> args;   // command and arguments
    bool tty = false;
    std::string console_socket;
    bool detach = false;
    std::string pid_file;
    std::string cwd;
    std::vector<std::string> env;    // KEY=VALUE, added to (or replacing in) the container's env
    std::string user;                // "uid[:gid]"
    std::vector<uint32_t> additional_gids;
    std::vector<std::string> caps;   // added to every capability set
    bool no_new_privs = false;
    int preserve_fds = 0;
    std::string process_label, apparmor;
    bool ignore_paused = false;
};
// Runs a new process in a running container: every namespace of the container joined, its settings inherited
// from the container's process unless overridden. Foreground: the process's exit code; detached: 0.
[[nodiscard]] Result<int> exec_in_container(const GlobalOptions& g, const ExecOptions& o);

// Freezes every process of a running container (status becomes paused) / thaws a paused one.
[[nodiscard]] Result<void> pause_container(const GlobalOptions& g, const std::string& id);
[[nodiscard]] Result<void> resume_container(const GlobalOptions& g, const std::string& id);
// Applies new resource limits to a container that is not stopped. Devices cannot be changed this way.
[[nodiscard]] Result<void> update_container(const GlobalOptions& g, const std::string& id, const spec::Resources& r);
// Pids (host view) of every process in the container's cgroup.
[[nodiscard]] Result<std::vector<pid_t>> container_processes(const GlobalOptions& g, const std::string& id);
// runc's `events` stream: with `stats_once`, one {"type":"stats","id":...,"data":{...}} line; otherwise a stats
// line every `interval_ms` and an {"type":"oom","id":...} line for each OOM of the container's memory cgroup,
// until the container stops. `emit` gets each line without its newline.
[[nodiscard]] Result<void> container_events(const GlobalOptions& g, const std::string& id, bool stats_once,
                                            int interval_ms, const std::function<void(const std::string&)>& emit);

// Signal names as runc takes them: "KILL", "SIGKILL", "9".
[[nodiscard]] Result<int> parse_signal(std::string_view s);

}  // namespace berth::runtime
