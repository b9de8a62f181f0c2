// What the berthd benchmarks (bench/cri, bench/cni, bench/stream) share: their flags, a temp dir, berthd daemons
// started in it (with the busybox test image when asked), CRI calls that die on failure, and one cleanup.
//
// The cleanup runs when the bench calls cleanup(), on die(), and on SIGINT, SIGTERM and SIGHUP (then the process
// exits 128+signal). It removes every pod of every daemon through the CRI, closes the daemons' stubs and stops the
// daemons by PID (SIGTERM; SIGKILL after 30 s), runs the bench's own at_cleanup() steps (last registered first),
// kills by PID what the daemons left behind (processes in their cgroup parents, in namespaces pinned under the temp
// dir, or naming the temp dir on their command line), unmounts whatever is still mounted under the temp dir, and
// removes the daemons' cgroup parents and the temp dir. It runs once; what fails is said on stderr
// ("<bench>: cleanup: ...") and does not change the exit status. After a cleanup on die() or a signal, nothing more
// reaches stdout.
//
// Threads: init() comes first in main, before any thread exists (gRPC starts some): it blocks the signals in the
// whole process and starts the thread that waits for them. Whatever makes something the cleanup must find (an
// RPC, a child process, a mount) runs inside a WorkScope: the cleanup waits until no other thread is inside one,
// and once it has begun, any other thread that opens one (or calls die()) waits there until the process exits, so
// nothing is made behind the cleanup's back. call(), run(), make_temp_dir() and start_berthd() open one themselves.
#pragma once

// clang-format off
#include "cri/api.hpp"  // before <signal.h>: see src/cri/api.hpp
// clang-format on
#include <grpcpp/client_context.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace berth::bench {

namespace v1 = ::runtime::v1;
using Stub = v1::RuntimeService::Stub;

// The image import_busybox() makes: scripts/make-oci-busybox.sh's busybox.
inline constexpr const char* kBusyboxImage = "localhost/berth/busybox:latest";

// First thing in main, before any thread: names the bench in messages, blocks SIGINT, SIGTERM and SIGHUP (those not
// ignored already: nohup and background jobs keep their meaning) and starts the thread that cleans up on them.
void init(const char* program);

// Prints "<program>: <what>" on stderr, runs the cleanup and exits 1. When another thread is already cleaning up,
// waits for it to end the process instead. In a forked child: only prints and exits.
[[noreturn]] void die(const std::string& what);

// One `--name VALUE` flag: text or a whole number.
struct Flag {
    std::string_view name;
    std::variant<std::string*, int*> into;
};
// Reads `--name VALUE` pairs into `flags`; dies on an unknown flag, a flag without a value and a number that is not
// one, and with `usage` when a text flag is still empty afterwards (give optional text flags a default).
void parse_flags(int argc, char** argv, std::initializer_list<Flag> flags, std::string_view usage);

// mkdtemp of /tmp/<prefix>-XXXXXX; the cleanup removes it. One per process.
const std::string& make_temp_dir(const std::string& prefix);

// The text of a file; "" when it cannot be read (say, a /proc entry of a process that is gone).
std::string read_text(const std::string& path);

// Runs argv (argv[0] searched in PATH unless it holds a '/') to its end, fork + exec as the benchmarks always
// timed it: the child gets an empty signal mask and /dev/null as stdout (and stderr with Quiet::all). Its exit
// status, 128+signal when killed; dies when it cannot fork.
enum class Quiet { stdout_only, all };
int run(const std::vector<std::string>& argv, Quiet quiet = Quiet::stdout_only);

struct DaemonOptions {
    std::string berthd;  // the binary
    // Holds berth.toml, b.sock, berthd.log, root/ (the store) and state/ (--state-dir); made if missing.
    std::string dir;
    std::string config;         // berth.toml's text
    std::string cgroup_parent;  // --cgroup-parent, removed by the cleanup; empty: "/" + the temp dir's name
    // Set both to import scripts/make-oci-busybox.sh's image (kBusyboxImage) from the repository `source` into
    // root/ with `berthctl image import` before berthd starts.
    std::string busybox_from;
    std::string berthctl;
};

// A running berthd; the cleanup owns it: pid is -1 once it has been reaped, stub is gone after the cleanup.
struct Daemon {
    pid_t pid = -1;
    std::string dir, socket, root, state_dir, log;
    std::unique_ptr<Stub> stub;  // on `socket`
};

// Starts berthd in a process group of its own (a terminal's Ctrl-C reaches the bench, which removes the pods
// first, not the daemon) and waits until it serves its socket; dies with its log when it does not within 10 s.
Daemon& start_berthd(const DaemonOptions& options);

// A step of the bench's own for the cleanup, run after the daemons have stopped (last registered first).
void at_cleanup(std::function<void()> step);

// Runs the cleanup (see the top of this file) unless it ran already; when another thread is running it, waits
// until it has ended.
void cleanup();

// See the top of this file. Nests; costs one uncontended mutex lock on entry and exit.
class WorkScope {
public:
    WorkScope();
    ~WorkScope();
    WorkScope(const WorkScope&) = delete;
    WorkScope& operator=(const WorkScope&) = delete;
};

// One CRI call with a 120 s deadline inside a WorkScope; dies with "<what>: <message>" when it fails. `ms`: the
// call's own time in milliseconds, measured around the stub call alone.
template <class Req, class Resp>
Resp call(Stub& stub, grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*), std::string_view what,
          const Req& req, double* ms = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    Resp resp;
    grpc::Status st;
    {
        WorkScope work;
        auto t0 = std::chrono::steady_clock::now();
        st = (stub.*rpc)(&ctx, req, &resp);
        if (ms) *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    if (!st.ok()) die(std::string(what) + ": " + st.error_message());
    return resp;
}

}  // namespace berth::bench
