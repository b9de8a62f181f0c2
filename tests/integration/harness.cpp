#include "harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace berth::test {

using nlohmann::json;

CommandResult run_command(const std::vector<std::string>& argv, const std::string& input,
                          const std::vector<int>& extra_fds) {
    int out[2], err[2], in[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0) return {};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        // extra fds go to 3, 4, ...: first lift them out of the way, then place them.
        std::vector<int> lifted;
        for (int fd : extra_fds) lifted.push_back(fcntl(fd, F_DUPFD, 100));
        for (size_t i = 0; i < lifted.size(); ++i) dup2(lifted[i], 3 + static_cast<int>(i));
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (!input.empty()) {
        ssize_t ignored = write(in[1], input.data(), input.size());
        (void)ignored;
    }
    close(in[1]);
    CommandResult r;
    // Read until both pipes close, or until the command itself has exited: a detached container keeps berth's
    // stdout and stderr (as with runc), so EOF may never come. Then drain what is already in the pipes.
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int status = 0;
    bool exited = false;
    auto drain = [&](int i) {
        char buf[8192];
        for (;;) {
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n == 0) fds[i].fd = -1;  // EOF
            return;
        }
    };
    for (int waited_ms = 0; waited_ms < 120000 && (fds[0].fd >= 0 || fds[1].fd >= 0);) {
        int n = poll(fds, 2, 50);
        if (n < 0 && errno != EINTR) break;
        if (n == 0) waited_ms += 50;
        for (int i = 0; i < 2; ++i)
            if (fds[i].fd >= 0 && fds[i].revents) drain(i);
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            for (int i = 0; i < 2; ++i)
                if (fds[i].fd >= 0) drain(i);
            break;
        }
    }
    close(out[0]);
    close(err[0]);
    if (!exited) {
        // Both pipes closed: the command is finishing. Still running after the loop's 2 minutes: it hangs; kill
        // it so the test fails on the exit code and the suite goes on.
        if (fds[0].fd >= 0 || fds[1].fd >= 0) kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

json base_config(const std::vector<std::string>& args) {
    return json{
        {"ociVersion", "1.2.0"},
        {"process",
         {{"terminal", false},
          {"user", {{"uid", 0}, {"gid", 0}}},
          {"args", args},
          {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
          {"cwd", "/"},
          {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
          {"noNewPrivileges", true}}},
        {"root", {{"path", "rootfs"}, {"readonly", false}}},
        {"hostname", "berth-test"},
        {"mounts",
         {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
          {{"destination", "/dev"},
           {"type", "tmpfs"},
           {"source", "tmpfs"},
           {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
          {{"destination", "/dev/pts"},
           {"type", "devpts"},
           {"source", "devpts"},
           {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
          {{"destination", "/dev/shm"},
           {"type", "tmpfs"},
           {"source", "shm"},
           {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
          {{"destination", "/dev/mqueue"},
           {"type", "mqueue"},
           {"source", "mqueue"},
           {"options", {"nosuid", "noexec", "nodev"}}},
          {{"destination", "/sys"},
           {"type", "sysfs"},
           {"source", "sysfs"},
           {"options", {"nosuid", "noexec", "nodev", "ro"}}}}},
        {"linux",
         {{"namespaces",
           {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}}},
          {"maskedPaths", {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/scsi"}},
          {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s;
}

std::string read_link(const std::string& path) {
    char buf[4096];
    ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_text(const std::string& path, const std::string& text, int mode) {
    {
        std::ofstream f(path, std::ios::trunc);
        f << text;
    }
    chmod(path.c_str(), static_cast<mode_t>(mode));
}

namespace {

void make_busybox_rootfs(const std::string& rootfs) {
    for (const char* d : {"", "/bin", "/etc", "/proc", "/sys", "/dev", "/tmp", "/root"})
        mkdir((rootfs + d).c_str(), 0755);
    chmod((rootfs + "/tmp").c_str(), 01777);
    // A copy, not a hard link: tests must never be able to modify the host's busybox.
    CommandResult cp = run_command({"/bin/cp", "/bin/busybox", rootfs + "/bin/busybox"});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
    CommandResult list = run_command({"/bin/busybox", "--list"});
    std::istringstream names(list.out);
    for (std::string name; std::getline(names, name);) {
        if (name.empty() || name == "busybox") continue;
        symlink("busybox", (rootfs + "/bin/" + name).c_str());
    }
    write_text(rootfs + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                                       "tester:x:1000:1000:tester:/home/tester:/bin/sh\n");
    write_text(rootfs + "/etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
}

}  // namespace

void BerthTest::SetUp() {
    char tmpl[] = "/tmp/berth-it-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    bundle_ = dir_ + "/bundle";
    rootfs_ = bundle_ + "/rootfs";
    root_ = dir_ + "/state";
    ASSERT_EQ(mkdir(bundle_.c_str(), 0755), 0);
    ASSERT_NO_FATAL_FAILURE(make_busybox_rootfs(rootfs_));
}

void BerthTest::TearDown() {
    if (dir_.empty()) return;
    for (const auto& id : root_entries()) berth({"delete", "--force", id});
    run_command({"/bin/rm", "-rf", "--one-file-system", dir_});
}

void BerthTest::write_config(const json& config) { write_text(bundle_ + "/config.json", config.dump(2)); }

CommandResult BerthTest::berth(const std::vector<std::string>& args, const std::string& input,
                               const std::vector<int>& extra_fds) {
    std::vector<std::string> argv = {BERTH_BIN, "--root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, input, extra_fds);
}

std::string BerthTest::next_id() {
    return std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
           std::to_string(++counter_);
}

CommandResult BerthTest::run_config(const json& config) {
    write_config(config);
    return berth({"run", "--bundle", bundle_, next_id()});
}

CommandResult BerthTest::run_sh(const std::string& script, const std::function<void(json&)>& tweak) {
    json cfg = base_config({"sh", "-c", script});
    if (tweak) tweak(cfg);
    return run_config(cfg);
}

std::vector<std::string> BerthTest::root_entries() const {
    std::vector<std::string> out;
    DIR* d = opendir(root_.c_str());
    if (!d) return out;
    while (struct dirent* de = readdir(d)) {
        std::string n = de->d_name;
        // '@' names are berth's own caches (no container id holds '@'), not container state.
        if (n != "." && n != ".." && n[0] != '@') out.push_back(n);
    }
    closedir(d);
    return out;
}

}  // namespace berth::test
