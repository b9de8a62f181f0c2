// berth-monitor started as berthd starts it: detached, reporting on a sync pipe, writing CRI logs and the exit
// file, for the in-process handler and for runc and crun.
#include "monitor/monitor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>

#include "common/unique_fd.hpp"
#include "harness.hpp"
#include "linux/pidfd.hpp"
#include "monitor/exit_record.hpp"

namespace berth::test {
namespace {

using nlohmann::json;

constexpr const char* kRunc = "/usr/sbin/runc";
constexpr const char* kCrun = "/usr/bin/crun";
constexpr const char* kUnifiedControllers = "/sys/fs/cgroup/unified/cgroup.controllers";

struct LogRecord {
    struct timespec ts {};
    std::string stream;
    char flag = 0;
    std::string message;
};

// Parses a CRI log file; fails the test on a line that is not a record.
std::vector<LogRecord> parse_log(const std::string& text) {
    static const std::regex re(R"(^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z (stdout|stderr) ([PF]) ([\s\S]*)$)");
    std::vector<LogRecord> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        if (!std::regex_match(line, m, re)) {
            ADD_FAILURE() << "not a CRI log record: " << line.substr(0, 200);
            continue;
        }
        LogRecord r;
        struct tm tm {};
        EXPECT_NE(strptime(m[1].str().c_str(), "%Y-%m-%dT%H:%M:%S", &tm), nullptr);
        r.ts.tv_sec = timegm(&tm);
        r.ts.tv_nsec = std::stol(m[2].str());
        r.stream = m[3];
        r.flag = m[4].str()[0];
        r.message = m[5];
        out.push_back(std::move(r));
    }
    return out;
}

bool before_or_same(const struct timespec& a, const struct timespec& b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

// Makes crun usable on a hybrid cgroup host: a private mount namespace where the unified tree shows no
// controllers, so crun sees a v1 host. For the calling (forked) process only.
bool hide_unified_controllers(const std::string& empty_file) {
    struct statfs st {};
    if (::statfs("/sys/fs/cgroup/unified", &st) < 0) return true;  // not hybrid: nothing to hide
    if (::unshare(CLONE_NEWNS) < 0) return false;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0) return false;
    return ::mount(empty_file.c_str(), kUnifiedControllers, nullptr, MS_BIND, nullptr) == 0;
}

bool alive(pid_t pid) {
    return ::kill(pid, 0) == 0;
}

// A raw client of a monitor's attach socket (monitor.hpp), for the protocol's own tests.
struct AttachClient {
    UniqueFd fd;
    unsigned char flags = 0;  // from the hello

    bool connect(const std::string& dir) {
        fd.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        struct sockaddr_un addr {};
        addr.sun_family = AF_UNIX;
        std::string path = dir + "/attach";
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return false;
        std::string hello = next(10000);
        if (hello.size() != 2 || hello[0] != monitor::kAttachHello) return false;
        flags = static_cast<unsigned char>(hello[1]);
        return true;
    }
    void send(char type, const std::string& payload = {}) {
        std::string f(1, type);
        f += payload;
        EXPECT_EQ(::send(fd.get(), f.data(), f.size(), MSG_NOSIGNAL), static_cast<ssize_t>(f.size()));
    }
    // The next message; "" at EOF or after `timeout_ms` (a hang guard).
    std::string next(int timeout_ms = 30000) {
        struct pollfd p = {fd.get(), POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1) return "";
        char buf[monitor::kAttachMaxFrame + 1];
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    }
    // Messages until the end message (included) or EOF: stdout and stderr bytes, and whether 'X' came.
    void read_to_end(std::string* out, std::string* err, bool* ended) {
        *ended = false;
        for (;;) {
            std::string m = next();
            if (m.empty()) return;
            if (m[0] == monitor::kAttachStdout) *out += m.substr(1);
            if (m[0] == monitor::kAttachStderr) *err += m.substr(1);
            if (m[0] == monitor::kAttachEnd) *ended = true;
        }
    }
};

class MonitorTest : public BerthTest {
protected:
    struct Started {
        pid_t pid = 0;            // the monitor
        pid_t container_pid = 0;  // the container's init
        std::string error;        // set when the monitor reported a failure
        std::string dir, log;
        std::string id;
    };

    void TearDown() override {
        // Containers first (the monitors exit with them), then any monitor still there, by its pid.
        for (const auto& [id, runtime] : external_)
            run_in_runtime_ns(runtime, {"--root", runtime_root(runtime), "delete", "--force", id});
        for (const auto& id : root_entries()) berth({"delete", "--force", id});
        for (pid_t pid : monitors_) {
            int fd = sys::pidfd_open(pid);
            if (fd < 0) continue;
            struct pollfd p = {fd, POLLIN, 0};
            if (::poll(&p, 1, 10000) == 0) sys::pidfd_send_signal(fd, SIGKILL);
            ::close(fd);
        }
        BerthTest::TearDown();
    }

    std::string runtime_root(const std::string& runtime) const {
        return dir_ + "/" + std::filesystem::path(runtime).filename().string();
    }

    // runc or crun with `args`, crun in a mount namespace where it accepts this host.
    CommandResult run_in_runtime_ns(const std::string& runtime, const std::vector<std::string>& args) {
        std::vector<std::string> argv = {runtime};
        argv.insert(argv.end(), args.begin(), args.end());
        if (runtime != kCrun) return run_command(argv);
        // run_command has no pre-exec hook: go through a forked child that enters the namespace and waits.
        pid_t pid = ::fork();
        if (pid == 0) {
            if (!hide_unified_controllers(empty_file())) ::_exit(120);
            CommandResult r = run_command(argv);
            ::_exit(r.exit_code);
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        CommandResult r;
        r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return r;
    }

    std::string empty_file() const { return dir_ + "/empty-cgroup.controllers"; }

    // Starts berth-monitor for `config` the way berthd does and returns what it reported on the sync pipe.
    // With `keep_starter`, the starter is a shell that stays alive after the monitor reported; its pid goes to
    // *starter.
    Started start_monitor(const json& config, const std::string& runtime = {}, pid_t* starter = nullptr) {
        write_config(config);
        Started s;
        s.id = next_id();
        s.dir = dir_ + "/mon-" + s.id;
        s.log = dir_ + "/logs/" + s.id + ".log";
        std::filesystem::create_directories(dir_ + "/logs");
        std::vector<std::string> argv = {BERTH_MONITOR_BIN, "--id", s.id,        "--bundle", bundle_, "--dir", s.dir,
                                         "--log-path",      s.log,  "--sync-fd", "3"};
        if (start_) argv.push_back("--start");
        argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
        if (runtime.empty()) {
            argv.insert(argv.end(), {"--root", root_});
        } else {
            argv.insert(argv.end(), {"--root", runtime_root(runtime), "--runtime", runtime});
            external_.emplace_back(s.id, runtime);
            write_text(empty_file(), "");
        }
        int sync[2];
        EXPECT_EQ(::pipe2(sync, O_CLOEXEC), 0);
        pid_t pid = ::fork();
        if (pid == 0) {
            if (runtime == kCrun && !hide_unified_controllers(empty_file())) ::_exit(120);
            ::dup2(sync[1], 3);
            std::vector<char*> args;
            if (starter) {
                // A starter that outlives the monitor's report: sh runs the monitor, then sleeps.
                std::string cmd;
                for (auto& a : argv) cmd += "'" + a + "' ";
                cmd += "; exec sleep 1000";
                static std::string sh = "/bin/sh", c = "-c";
                static std::string keep;
                keep = cmd;
                args = {sh.data(), c.data(), keep.data(), nullptr};
            } else {
                for (auto& a : argv) args.push_back(a.data());
                args.push_back(nullptr);
            }
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(sync[1]);
        if (!starter) {
            int st = 0;
            ::waitpid(pid, &st, 0);
            EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "berth-monitor exit status " << st;
        } else {
            *starter = pid;
        }
        // One line; EOF may come later than the line (the sleeping starter keeps its copy).
        std::string line;
        char c;
        struct pollfd p = {sync[0], POLLIN, 0};
        while (::poll(&p, 1, 60000) == 1 && ::read(sync[0], &c, 1) == 1 && c != '\n') line += c;
        ::close(sync[0]);
        auto j = json::parse(line, nullptr, false);
        EXPECT_TRUE(j.is_object()) << "sync line: " << line;
        if (!j.is_object()) return s;
        if (j.contains("error")) {
            s.error = j["error"];
            return s;
        }
        s.pid = j.value("pid", 0);
        s.container_pid = j.value("container_pid", 0);
        EXPECT_GT(s.pid, 0);
        EXPECT_GT(s.container_pid, 0);
        if (s.pid > 0) monitors_.push_back(s.pid);
        return s;
    }

    // Waits (through inotify, as berthd does) for the exit file of `s` and reads it.
    monitor::ExitRecord wait_exit(const Started& s) {
        UniqueFd ifd(::inotify_init1(IN_CLOEXEC));
        EXPECT_GE(::inotify_add_watch(ifd.get(), s.dir.c_str(), IN_MOVED_TO), 0) << s.dir;
        bool seen = std::filesystem::exists(s.dir + "/exit");
        while (!seen) {
            struct pollfd p = {ifd.get(), POLLIN, 0};
            if (::poll(&p, 1, 60000) != 1) break;  // a hang guard, not a timing assertion
            alignas(struct inotify_event) char buf[4096];
            ssize_t n = ::read(ifd.get(), buf, sizeof buf);
            for (ssize_t off = 0; off < n;) {
                auto* ev = reinterpret_cast<struct inotify_event*>(buf + off);
                if (ev->len > 0 && std::strcmp(ev->name, "exit") == 0) seen = true;
                off += static_cast<ssize_t>(sizeof *ev + ev->len);
            }
        }
        EXPECT_TRUE(seen) << "no exit file in " << s.dir;
        auto r = monitor::read_exit_record(s.dir);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? *r : monitor::ExitRecord{-1};
    }

    // Waits until the monitor process is gone (it exits right after the exit file).
    void wait_monitor_gone(pid_t pid) {
        int fd = sys::pidfd_open(pid);
        if (fd < 0) return;
        struct pollfd p = {fd, POLLIN, 0};
        EXPECT_EQ(::poll(&p, 1, 60000), 1) << "monitor " << pid << " still runs";
        ::close(fd);
    }

    // The config for `script` run by sh, as a handler's runtime reads it (crun 1.8 refuses ociVersion 1.2.0).
    json sh_config(const std::string& script) {
        json cfg = base_config({"sh", "-c", script});
        cfg["ociVersion"] = "1.0.2";
        return cfg;
    }

    // stdout + stderr lines, exit code 3, timestamps ordered, for one handler.
    void check_streams_and_exit(const std::string& runtime) {
        Started s = start_monitor(sh_config("echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3"), runtime);
        ASSERT_TRUE(s.error.empty()) << s.error;
        monitor::ExitRecord e = wait_exit(s);
        EXPECT_EQ(e.exit_code, 3);
        EXPECT_EQ(e.signal, 0);
        EXPECT_FALSE(e.oom_killed);
        EXPECT_FALSE(e.started_at.empty());
        EXPECT_FALSE(e.finished_at.empty());
        EXPECT_LE(e.started_at, e.finished_at);  // fixed-width UTC timestamps order as text
        wait_monitor_gone(s.pid);
        auto recs = parse_log(read_text(s.log));
        std::vector<std::string> out, err;
        for (size_t i = 0; i < recs.size(); ++i) {
            EXPECT_EQ(recs[i].flag, 'F');
            (recs[i].stream == "stdout" ? out : err).push_back(recs[i].message);
            if (i > 0) {
                EXPECT_TRUE(before_or_same(recs[i - 1].ts, recs[i].ts)) << "record " << i;
            }
        }
        EXPECT_EQ(out, (std::vector<std::string>{"out1", "out2"}));
        EXPECT_EQ(err, (std::vector<std::string>{"err1", "err2"}));
    }

    // With process.terminal: the pty's output is one stream, logged as stdout.
    void check_terminal(const std::string& runtime) {
        json cfg = sh_config("tty; echo hello; exit 4");
        cfg["process"]["terminal"] = true;
        extra_args_ = {"--terminal"};
        Started s = start_monitor(cfg, runtime);
        ASSERT_TRUE(s.error.empty()) << s.error;
        EXPECT_EQ(wait_exit(s).exit_code, 4);
        wait_monitor_gone(s.pid);
        auto recs = parse_log(read_text(s.log));
        ASSERT_EQ(recs.size(), 2u) << read_text(s.log);
        for (const auto& r : recs) EXPECT_EQ(r.stream, "stdout");
        // The terminal turns "\n" into "\r\n"; the record keeps the "\r" as the bytes were written.
        EXPECT_EQ(recs[0].message.rfind("/dev/pts/", 0), 0u) << recs[0].message;
        EXPECT_EQ(recs[1].message, "hello\r");
        EXPECT_FALSE(std::filesystem::exists(s.dir + "/console.sock"));
    }

    // One command on the monitor's ctl socket; its reply line.
    std::string ctl(const Started& s, const std::string& command) {
        UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        struct sockaddr_un addr {};
        addr.sun_family = AF_UNIX;
        std::string path = s.dir + "/ctl";
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return "connect failed";
        std::string line = command + "\n";
        if (::write(c.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) return "write failed";
        std::string reply;
        char buf[512];
        ssize_t n;
        while ((n = ::read(c.get(), buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
        return reply;
    }

    bool start_ = true;  // --start
    std::vector<std::string> extra_args_;
    std::vector<pid_t> monitors_;
    std::vector<std::pair<std::string, std::string>> external_;  // id, runtime
};

TEST_F(MonitorTest, StdoutAndStderrBecomeCriLogRecords) {
    check_streams_and_exit({});
}

TEST_F(MonitorTest, LongLineWithoutNewlineIsSplitIntoPartialRecords) {
    // busybox head and tr as applets: 40 KiB of 'a', no newline, then the container ends.
    Started s = start_monitor(sh_config("head -c 40960 /dev/zero | tr '\\0' a"));
    ASSERT_TRUE(s.error.empty()) << s.error;
    EXPECT_EQ(wait_exit(s).exit_code, 0);
    wait_monitor_gone(s.pid);
    auto recs = parse_log(read_text(s.log));
    ASSERT_EQ(recs.size(), 3u);
    EXPECT_EQ(recs[0].flag, 'P');
    EXPECT_EQ(recs[1].flag, 'P');
    EXPECT_EQ(recs[2].flag, 'F');
    std::string all;
    for (const auto& r : recs) {
        EXPECT_EQ(r.stream, "stdout");
        all += r.message;
    }
    EXPECT_EQ(recs[0].message.size(), 16384u);
    EXPECT_EQ(all, std::string(40960, 'a'));
}

TEST_F(MonitorTest, KilledContainerRecordsTheSignal) {
    json cfg = base_config({"sleep", "1000"});
    Started s = start_monitor(cfg);
    ASSERT_TRUE(s.error.empty()) << s.error;
    ASSERT_TRUE(alive(s.container_pid));
    ASSERT_EQ(::kill(s.container_pid, SIGKILL), 0);
    monitor::ExitRecord e = wait_exit(s);
    EXPECT_EQ(e.signal, SIGKILL);
    EXPECT_EQ(e.exit_code, 128 + SIGKILL);
    EXPECT_FALSE(e.oom_killed);
}

TEST_F(MonitorTest, OomKilledContainerIsReported) {
    json cfg = base_config({"tail", "/dev/zero"});
    cfg["linux"]["resources"]["memory"] = {{"limit", 16 << 20}};
    Started s = start_monitor(cfg);
    ASSERT_TRUE(s.error.empty()) << s.error;
    monitor::ExitRecord e = wait_exit(s);
    EXPECT_TRUE(e.oom_killed);
    EXPECT_EQ(e.signal, SIGKILL);
}

TEST_F(MonitorTest, LogIsReopenedAfterRotation) {
    // The container waits for /go in its rootfs between its two lines.
    Started s =
        start_monitor(sh_config("echo first; while [ ! -e /go ]; do sleep 0.05; done; echo second; rm /go; "
                                "while [ ! -e /go ]; do sleep 0.05; done; echo third"));
    ASSERT_TRUE(s.error.empty()) << s.error;
    // Rotation by SIGUSR1: the monitor makes the new file when it reopens.
    for (int i = 0; i < 6000 && read_text(s.log).find("first") == std::string::npos; ++i) ::usleep(10000);
    ASSERT_EQ(::rename(s.log.c_str(), (s.log + ".1").c_str()), 0);
    ASSERT_EQ(::kill(s.pid, SIGUSR1), 0);
    for (int i = 0; i < 6000 && !std::filesystem::exists(s.log); ++i) ::usleep(10000);
    ASSERT_TRUE(std::filesystem::exists(s.log));
    write_text(rootfs_ + "/go", "");
    for (int i = 0; i < 6000 && read_text(s.log).find("second") == std::string::npos; ++i) ::usleep(10000);
    // Rotation through the control socket: "reopen" answers once the new file is in use.
    ASSERT_EQ(::rename(s.log.c_str(), (s.log + ".2").c_str()), 0);
    int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::string ctl = s.dir + "/ctl";
    std::strncpy(addr.sun_path, ctl.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    ASSERT_EQ(::write(c, "reopen\n", 7), 7);
    char reply[128] = {};
    ASSERT_GT(::read(c, reply, sizeof reply - 1), 0);
    ::close(c);
    EXPECT_STREQ(reply, "ok\n");
    EXPECT_TRUE(std::filesystem::exists(s.log));
    write_text(rootfs_ + "/go", "");
    EXPECT_EQ(wait_exit(s).exit_code, 0);
    wait_monitor_gone(s.pid);
    auto messages = [](const std::string& text) {
        std::vector<std::string> m;
        for (const auto& r : parse_log(text)) m.push_back(r.message);
        return m;
    };
    EXPECT_EQ(messages(read_text(s.log + ".1")), std::vector<std::string>{"first"});
    EXPECT_EQ(messages(read_text(s.log + ".2")), std::vector<std::string>{"second"});
    EXPECT_EQ(messages(read_text(s.log)), std::vector<std::string>{"third"});
}

TEST_F(MonitorTest, MonitorOutlivesItsStarterAndHoldsNoneOfItsFds) {
    // An fd of the starter without O_CLOEXEC: the monitor must not keep it.
    std::string marker = dir_ + "/starter-marker";
    write_text(marker, "");
    int leak = ::open(marker.c_str(), O_RDONLY);
    ASSERT_GE(leak, 0);
    pid_t starter = 0;
    Started s = start_monitor(sh_config("while [ ! -e /go ]; do sleep 0.05; done; exit 5"), {}, &starter);
    ::close(leak);
    ASSERT_TRUE(s.error.empty()) << s.error;
    ASSERT_GT(starter, 0);
    ASSERT_TRUE(alive(starter));
    ASSERT_EQ(::kill(starter, SIGKILL), 0);
    int st = 0;
    ASSERT_EQ(::waitpid(starter, &st, 0), starter);
    EXPECT_TRUE(alive(s.pid));
    EXPECT_TRUE(alive(s.container_pid));
    std::string status = read_text("/proc/" + std::to_string(s.pid) + "/status");
    EXPECT_EQ(status.find("PPid:\t" + std::to_string(starter) + "\n"), std::string::npos);
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(s.pid) + "/fd")) {
        std::string target = read_link(e.path());
        EXPECT_NE(target, marker) << "monitor holds the starter's fd " << e.path();
        if (target.rfind(dir_, 0) == 0) {  // of the test's files, only the log and its own dir
            EXPECT_TRUE(target.rfind(dir_ + "/logs/", 0) == 0 || target.rfind(s.dir, 0) == 0)
                << "monitor fd " << e.path() << " -> " << target;
        }
    }
    write_text(rootfs_ + "/go", "");
    EXPECT_EQ(wait_exit(s).exit_code, 5);
}

TEST_F(MonitorTest, CreateErrorReachesTheStarterAndLeavesNothing) {
    Started s = start_monitor(base_config({"/no/such/binary"}));
    EXPECT_NE(s.error.find("/no/such/binary"), std::string::npos) << s.error;
    EXPECT_NE(s.error.find("create container"), std::string::npos) << s.error;
    EXPECT_FALSE(std::filesystem::exists(s.dir));
    EXPECT_FALSE(std::filesystem::exists(s.log));
    EXPECT_TRUE(root_entries().empty());
}

TEST_F(MonitorTest, TerminalOutputIsLoggedAsStdout) {
    check_terminal({});
}

TEST_F(MonitorTest, HandlerRuncWithTerminal) {
    if (::access(kRunc, X_OK) != 0) GTEST_SKIP() << "runc is not installed";
    check_terminal(kRunc);
}

// --stdin: the container's fd 0 is a pipe whose write end the monitor holds (no EOF); otherwise /dev/null.
TEST_F(MonitorTest, StdinPipeIsHeldOpenByTheMonitor) {
    Started plain = start_monitor(sh_config("cat; echo eof"));
    ASSERT_TRUE(plain.error.empty()) << plain.error;
    EXPECT_EQ(wait_exit(plain).exit_code, 0);
    wait_monitor_gone(plain.pid);
    ASSERT_EQ(parse_log(read_text(plain.log)).size(), 1u);
    EXPECT_EQ(parse_log(read_text(plain.log))[0].message, "eof");

    extra_args_ = {"--stdin"};
    Started s = start_monitor(base_config({"cat"}));
    ASSERT_TRUE(s.error.empty()) << s.error;
    std::string in = read_link("/proc/" + std::to_string(s.container_pid) + "/fd/0");
    ASSERT_EQ(in.rfind("pipe:", 0), 0u) << in;
    bool monitor_holds_it = false;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(s.pid) + "/fd"))
        monitor_holds_it |= read_link(e.path()) == in;
    EXPECT_TRUE(monitor_holds_it) << "the monitor holds no end of " << in;
    ASSERT_EQ(::kill(s.container_pid, SIGKILL), 0);
    EXPECT_EQ(wait_exit(s).signal, SIGKILL);
}

// CreateContainer then StartContainer: the monitor creates, berthd starts it later through the ctl socket.
TEST_F(MonitorTest, StartThroughTheControlSocket) {
    start_ = false;
    Started s = start_monitor(sh_config("echo started; exit 6"));
    ASSERT_TRUE(s.error.empty()) << s.error;
    CommandResult state = berth({"state", s.id});
    ASSERT_EQ(state.exit_code, 0) << state.err;
    EXPECT_EQ(json::parse(state.out)["status"], "created");
    EXPECT_EQ(ctl(s, "bogus"), "error unknown command \"bogus\" (start, reopen)\n");
    EXPECT_EQ(ctl(s, "start"), "ok\n");
    monitor::ExitRecord e = wait_exit(s);
    EXPECT_EQ(e.exit_code, 6);
    EXPECT_FALSE(e.started_at.empty());
    wait_monitor_gone(s.pid);
    auto recs = parse_log(read_text(s.log));
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].message, "started");
}

TEST_F(MonitorTest, HandlerRunc) {
    if (::access(kRunc, X_OK) != 0) GTEST_SKIP() << "runc is not installed";
    check_streams_and_exit(kRunc);
}

TEST_F(MonitorTest, HandlerRuncCreateError) {
    if (::access(kRunc, X_OK) != 0) GTEST_SKIP() << "runc is not installed";
    json cfg = base_config({"/no/such/binary"});
    cfg["ociVersion"] = "1.0.2";
    Started s = start_monitor(cfg, kRunc);
    EXPECT_NE(s.error.find("/no/such/binary"), std::string::npos) << s.error;
    EXPECT_FALSE(std::filesystem::exists(s.dir));
    EXPECT_FALSE(std::filesystem::exists(s.log));
    CommandResult list = run_command({kRunc, "--root", runtime_root(kRunc), "list", "-q"});
    EXPECT_EQ(list.out, "");
}

TEST_F(MonitorTest, HandlerCrun) {
    if (::access(kCrun, X_OK) != 0) GTEST_SKIP() << "crun is not installed";
    check_streams_and_exit(kCrun);
}

// Two clients see the output from when they attached, both send input, one ends its input (no stdin_once: the
// container's stdin stays open), and both get the end message at the exit.
TEST_F(MonitorTest, AttachClientsShareOutputAndInput) {
    extra_args_ = {"--stdin"};
    start_ = false;
    Started s =
        start_monitor(sh_config("echo before; read x; echo out $x; echo err $x >&2; read y; echo bye $y; "
                                "exit 7"));
    ASSERT_TRUE(s.error.empty()) << s.error;
    AttachClient a, b;
    ASSERT_TRUE(a.connect(s.dir));
    ASSERT_TRUE(b.connect(s.dir));
    EXPECT_EQ(a.flags, monitor::kAttachStdin);
    EXPECT_EQ(ctl(s, "start"), "ok\n");
    a.send(monitor::kAttachClientHello, std::string(1, static_cast<char>(monitor::kAttachStdin)));
    a.send(monitor::kAttachInput, "one\n");
    a.send(monitor::kAttachCloseInput);
    a.send(monitor::kAttachInput, "dropped after its close\n");
    b.send(monitor::kAttachInput, "two\n");
    std::string out[2], err[2];
    bool ended[2];
    a.read_to_end(&out[0], &err[0], &ended[0]);
    b.read_to_end(&out[1], &err[1], &ended[1]);
    for (int i = 0; i < 2; ++i) {
        SCOPED_TRACE(i);
        EXPECT_TRUE(ended[i]);
        EXPECT_EQ(out[i].rfind("before\n", 0), 0u) << out[i];
        EXPECT_NE(out[i].find("out one\n"), std::string::npos) << out[i];
        EXPECT_NE(out[i].find("bye two\n"), std::string::npos) << out[i];
        EXPECT_EQ(err[i], "err one\n");
    }
    EXPECT_EQ(wait_exit(s).exit_code, 7);
    wait_monitor_gone(s.pid);
    auto recs = parse_log(read_text(s.log));
    // The log has it all as well (stdout and stderr are separate pipes: their order between them may vary).
    std::vector<std::string> logged;
    for (const auto& r : recs) logged.push_back(r.stream + " " + r.message);
    std::sort(logged.begin(), logged.end());
    EXPECT_EQ(logged,
              (std::vector<std::string>{"stderr err one", "stdout before", "stdout bye two", "stdout out one"}));
    EXPECT_FALSE(std::filesystem::exists(s.dir + "/attach"));
}

// --stdin-once: the first client that ends its input closes the container's stdin.
TEST_F(MonitorTest, AttachStdinOnceClosesStdin) {
    extra_args_ = {"--stdin", "--stdin-once"};
    Started s = start_monitor(base_config({"cat"}));
    ASSERT_TRUE(s.error.empty()) << s.error;
    AttachClient a;
    ASSERT_TRUE(a.connect(s.dir));
    EXPECT_EQ(a.flags, monitor::kAttachStdin | monitor::kAttachStdinOnce);
    a.send(monitor::kAttachClientHello, std::string(1, static_cast<char>(monitor::kAttachStdin)));
    std::string big(300000, 'z');  // more than a pipe holds: the monitor writes it as cat takes it
    a.send(monitor::kAttachInput, "abc\n");
    for (size_t off = 0; off < big.size(); off += 16000) a.send(monitor::kAttachInput, big.substr(off, 16000));
    a.send(monitor::kAttachCloseInput);
    std::string out, err;
    bool ended;
    a.read_to_end(&out, &err, &ended);
    EXPECT_TRUE(ended);
    EXPECT_EQ(out, "abc\n" + big);
    EXPECT_EQ(wait_exit(s).exit_code, 0);
}

// The first stdin client of a stdin_once container that disconnects ends the input too.
TEST_F(MonitorTest, AttachStdinOnceDisconnectClosesStdin) {
    extra_args_ = {"--stdin", "--stdin-once"};
    Started s = start_monitor(base_config({"cat"}));
    ASSERT_TRUE(s.error.empty()) << s.error;
    AttachClient watcher, a;
    ASSERT_TRUE(watcher.connect(s.dir));
    ASSERT_TRUE(a.connect(s.dir));
    a.send(monitor::kAttachClientHello, std::string(1, static_cast<char>(monitor::kAttachStdin)));
    a.send(monitor::kAttachInput, "last words\n");
    a.fd.reset();
    std::string out, err;
    bool ended;
    watcher.read_to_end(&out, &err, &ended);
    EXPECT_TRUE(ended);
    EXPECT_EQ(out, "last words\n");
    EXPECT_EQ(wait_exit(s).exit_code, 0);
}

// A client that takes no output is disconnected after its bounded backlog; the container and its log go on.
TEST_F(MonitorTest, SlowAttacherIsDroppedNotWaitedFor) {
    start_ = false;
    Started s = start_monitor(sh_config("head -c 8000000 /dev/zero | tr '\\0' a; exit 0"));
    ASSERT_TRUE(s.error.empty()) << s.error;
    AttachClient slow;
    ASSERT_TRUE(slow.connect(s.dir));
    EXPECT_EQ(ctl(s, "start"), "ok\n");
    EXPECT_EQ(wait_exit(s).exit_code, 0);
    wait_monitor_gone(s.pid);
    size_t logged = 0;
    for (const auto& r : parse_log(read_text(s.log))) logged += r.message.size();
    EXPECT_EQ(logged, 8000000u);
    std::string out, err;
    bool ended;
    slow.read_to_end(&out, &err, &ended);
    EXPECT_FALSE(ended);
    EXPECT_LT(out.size(), 8000000u);
    EXPECT_LE(out.size(), monitor::kAttachQueueMax + (1u << 20));
}

// With a terminal: input goes to the pty master, a resize is seen by stty, output is all stdout.
TEST_F(MonitorTest, AttachTerminalInputAndResize) {
    json cfg = sh_config("read l; stty size; read l; stty size; exit 0");
    cfg["process"]["terminal"] = true;
    extra_args_ = {"--terminal", "--stdin"};
    Started s = start_monitor(cfg);
    ASSERT_TRUE(s.error.empty()) << s.error;
    AttachClient a;
    ASSERT_TRUE(a.connect(s.dir));
    EXPECT_EQ(a.flags, monitor::kAttachStdin | monitor::kAttachTerminal);
    auto size = [](uint16_t w, uint16_t h) {
        return std::string{static_cast<char>(w >> 8), static_cast<char>(w & 0xff), static_cast<char>(h >> 8),
                           static_cast<char>(h & 0xff)};
    };
    a.send(monitor::kAttachResize, size(101, 31));
    a.send(monitor::kAttachInput, "\n");
    std::string seen;
    while (seen.find("31 101") == std::string::npos) {
        std::string m = a.next();
        ASSERT_FALSE(m.empty()) << seen;
        EXPECT_EQ(m[0], monitor::kAttachStdout);
        seen += m.substr(1);
    }
    a.send(monitor::kAttachResize, size(300, 70));
    a.send(monitor::kAttachInput, "\n");
    std::string out, err;
    bool ended;
    a.read_to_end(&out, &err, &ended);
    EXPECT_TRUE(ended);
    EXPECT_NE(out.find("70 300"), std::string::npos) << out;
    EXPECT_EQ(err, "");
    EXPECT_EQ(wait_exit(s).exit_code, 0);
}

// Without --stdin, input is dropped (the container's stdin is /dev/null) and the hello says so.
TEST_F(MonitorTest, AttachWithoutStdinDropsInput) {
    Started s = start_monitor(sh_config("while [ ! -e /go ]; do sleep 0.05; done; echo done"));
    ASSERT_TRUE(s.error.empty()) << s.error;
    AttachClient a;
    ASSERT_TRUE(a.connect(s.dir));
    EXPECT_EQ(a.flags, 0);
    a.send(monitor::kAttachInput, "ignored\n");
    write_text(rootfs_ + "/go", "");
    std::string out, err;
    bool ended;
    a.read_to_end(&out, &err, &ended);
    EXPECT_TRUE(ended);
    EXPECT_EQ(out, "done\n");
    EXPECT_EQ(wait_exit(s).exit_code, 0);
}

}  // namespace
}  // namespace berth::test
