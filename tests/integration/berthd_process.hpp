// A berthd started by a test, on a socket in a private temp dir. Kept apart from the gRPC test code: it needs
// <signal.h> and <sys/wait.h>, which must not meet the generated CRI headers (see src/cri/api.hpp).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace berth::test {

// A fresh directory under /tmp named after the test and getpid(); removed with everything in it on destruction.
class TempDir {
public:
    explicit TempDir(const std::string& tag);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

class BerthdProcess {
public:
    BerthdProcess() = default;
    // Kills the daemon (SIGKILL, by PID) and reaps it if it is still running: a failed test leaves no daemon.
    ~BerthdProcess();
    BerthdProcess(const BerthdProcess&) = delete;
    BerthdProcess& operator=(const BerthdProcess&) = delete;

    // Starts `berthd --socket <socket> extra...` and reads its output until it says it serves (true) or exits
    // (false; exit_code() and output() tell why). No timing involved: the read blocks on the daemon's stderr.
    bool start(const std::string& socket, const std::vector<std::string>& extra = {});

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }
    // Everything the daemon wrote to stdout and stderr so far (read at start, by read_output_until, and at exit).
    const std::string& output() const { return output_; }
    // Reads the running daemon's output until `needle` appears at or after offset `from` of output() (true), or
    // `timeout_ms` passes or the output ends (false).
    bool read_output_until(const std::string& needle, size_t from, int timeout_ms);
    // Sends `sig` to the running daemon without waiting for anything.
    void signal(int sig);
    // Exit code after it ended (128+signal when killed), -1 before.
    int exit_code() const { return exit_code_; }

    // Sends `sig` and waits for the daemon to exit; returns its exit code.
    int stop(int sig);
    // SIGTERM, then wait.
    int terminate();
    // SIGKILL, then wait: the crash of a daemon, leaving its socket behind.
    int kill_hard();

    // VmRSS of the running daemon in KiB, from /proc/<pid>/status; -1 if unreadable.
    long rss_kib() const;

private:
    void drain_output();
    int reap();

    pid_t pid_ = -1;
    int out_fd_ = -1;
    int exit_code_ = -1;
    std::string output_;
};

}  // namespace berth::test
