// prepare_rootfs + finish_rootfs for real, as root, in forked children with their own mount namespace (so nothing
// reaches the host's mount table): a busybox rootfs in a temp dir, a config built here, and checks made from
// inside the pivoted child against what the kernel reports (mountinfo, errno of writes, stat of devices).
#include "linux/rootfs.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_process.hpp"
#include "common/fs.hpp"
#include "linux/mountinfo.hpp"

namespace berth::sys {
namespace {

using berth::testing::ChildChecks;
using berth::testing::run_in_child;

spec::Mount mnt(std::string dest, std::string type, std::string source, std::vector<std::string> options = {}) {
    spec::Mount m;
    m.destination = std::move(dest);
    m.type = std::move(type);
    m.source = std::move(source);
    m.options = std::move(options);
    return m;
}

spec::Device device(std::string path, std::string type, int64_t major, int64_t minor, uint32_t mode, uint32_t uid,
                    uint32_t gid) {
    spec::Device d;
    d.path = std::move(path);
    d.type = std::move(type);
    d.major = major;
    d.minor = minor;
    d.file_mode = mode;
    d.uid = uid;
    d.gid = gid;
    return d;
}

// errno of open(path, flags), 0 when it succeeded.
int open_errno(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
}

std::string link_of(const std::string& path) {
    char buf[256];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    return n < 0 ? std::string("<no link>") : std::string(buf, static_cast<size_t>(n));
}

const MountInfo* mount_at(const std::vector<MountInfo>& mounts, std::string_view mp) {
    const MountInfo* found = nullptr;
    for (const auto& m : mounts)
        if (m.mount_point == mp) found = &m;
    return found;
}

bool same_dev(const std::string& a, const std::string& b) {
    struct stat sa {
    }, sb{};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev;
}

// True when a cgroup.procs file lists this process.
bool procs_has_self(const std::string& path) {
    auto text = read_file(path);
    if (!text) return false;
    std::string me = std::to_string(::getpid());
    size_t pos = 0;
    while (pos < text->size()) {
        size_t eol = text->find('\n', pos);
        if (eol == std::string::npos) eol = text->size();
        if (text->compare(pos, eol - pos, me) == 0) return true;
        pos = eol + 1;
    }
    return false;
}

class RootfsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root";
        if (!path_exists("/bin/busybox")) GTEST_SKIP() << "needs /bin/busybox (busybox-static)";
        char tmpl[] = "/tmp/berth-rootfs-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        bundle_ = dir_ + "/bundle";
        rootfs_ = bundle_ + "/rootfs";
        for (const char* d : {"bin", "etc", "proc", "sys", "dev", "tmp", "secret"})
            ASSERT_TRUE(mkdir_all(rootfs_ + "/" + d));
        auto busybox = read_file("/bin/busybox");
        ASSERT_TRUE(busybox) << busybox.error().message();
        ASSERT_TRUE(write_file(rootfs_ + "/bin/busybox", *busybox, 0755));
        for (const char* applet : {"sh", "true", "cat", "ls"})
            ASSERT_EQ(::symlink("busybox", (rootfs_ + "/bin/" + applet).c_str()), 0);
        ASSERT_TRUE(write_file(rootfs_ + "/etc/hostname", "container\n"));
        ASSERT_TRUE(write_file(rootfs_ + "/secret/key", "s3cr3t"));
        ASSERT_TRUE(write_file(rootfs_ + "/secret-file", "s3cr3t"));

        ASSERT_TRUE(mkdir_all(bundle_ + "/data-src"));
        ASSERT_TRUE(write_file(bundle_ + "/data-src/hello", "hello"));
        ASSERT_TRUE(write_file(dir_ + "/hosts-file", "127.0.0.1 localhost\n"));
        ASSERT_TRUE(mkdir_all(dir_ + "/rro-src/sub"));
        ASSERT_TRUE(mkdir_all(dir_ + "/victim"));
        ASSERT_TRUE(write_file(dir_ + "/victim/marker", "host"));

        // Planted by a hostile image: every one of these must resolve inside the rootfs.
        ASSERT_EQ(::symlink("/", (rootfs_ + "/evil").c_str()), 0);
        ASSERT_EQ(::symlink((dir_ + "/victim").c_str(), (rootfs_ + "/evil2").c_str()), 0);
        ASSERT_EQ(::symlink("../../../../../../..", (rootfs_ + "/updir").c_str()), 0);
    }

    void TearDown() override {
        if (!dir_.empty()) {
            auto r = remove_all(dir_);
            EXPECT_TRUE(r) << r.error().message();
        }
    }

    RootfsOptions options() const {
        RootfsOptions o;
        o.rootfs = rootfs_;
        o.bundle = bundle_;
        return o;
    }

    spec::Config full_config() const {
        spec::Config c;
        c.root = spec::Root{"rootfs", true};
        c.mounts = {
            mnt("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
            mnt("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
            mnt("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}),
            mnt("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
            mnt("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
            mnt("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
            mnt("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
            mnt("/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777"}),
            mnt("/data", "bind", "data-src", {"rbind", "ro", "nosuid"}),
            mnt("/conf/hosts", "bind", dir_ + "/hosts-file", {"bind", "ro"}),
            mnt("/rro", "bind", dir_ + "/rro-src", {"rbind", "rro"}),
            mnt("/rbind-ro", "bind", dir_ + "/rro-src", {"rbind", "ro"}),
            mnt("/evil/etc", "tmpfs", "tmpfs", {"mode=700"}),
            mnt("/evil2", "tmpfs", "tmpfs", {}),
            mnt("/updir/escaped", "tmpfs", "tmpfs", {}),
            mnt("/a/../../../../dotdot", "tmpfs", "tmpfs", {}),
        };
        c.linux.emplace();
        c.linux->masked_paths = {"/proc/kcore", "/proc/timer_list", "/secret", "/secret-file", "/no/such/path"};
        c.linux->readonly_paths = {"/proc/sys", "/proc/sysrq-trigger", "/proc/uptime", "/no/such/dir"};
        c.linux->devices = {device("/dev/custom-null", "c", 1, 3, 0600, 1000, 1000),
                            device("/dev/fifo0", "p", 0, 0, 0640, 0, 0)};
        return c;
    }

    std::string dir_, bundle_, rootfs_;
};

TEST_F(RootfsTest, FullContainerRootfs) {
    spec::Config config = full_config();
    RootfsOptions opts = options();
    std::string dir = dir_, rootfs = rootfs_;
    auto outcome = run_in_child([&](int&) {
        ChildChecks c;
        if (::unshare(CLONE_NEWNS) < 0) return std::string("unshare CLONE_NEWNS");
        // A submount inside the rro source: rro must reach it, plain ro must not.
        if (::mount("tmpfs", (dir + "/rro-src/sub").c_str(), "tmpfs", 0, nullptr) < 0)
            return std::string("tmpfs on rro-src/sub");
        bool host_has_kcore = ::access("/proc/kcore", F_OK) == 0;
        bool host_has_timer_list = ::access("/proc/timer_list", F_OK) == 0;
        bool host_has_sysrq = ::access("/proc/sysrq-trigger", F_OK) == 0;

        auto prepared = prepare_rootfs(config, opts);
        if (!prepared) return "prepare_rootfs: " + prepared.error().message();

        // Still seeing the host: nothing was mounted on it through the planted symlinks.
        c.expect(same_dev("/etc", "/") && path_exists("/etc/passwd"), "host /etc untouched");
        c.expect(same_dev(dir + "/victim", dir) && path_exists(dir + "/victim/marker"), "host victim dir untouched");
        c.expect(!path_exists("/escaped") && !path_exists("/dotdot"), "nothing created at host /escaped, /dotdot");
        c.expect(!same_dev(rootfs + "/etc", rootfs), "/evil/etc landed on rootfs/etc");
        c.expect(!same_dev(rootfs + "/escaped", rootfs), "/updir/escaped landed on rootfs/escaped");
        c.expect(!same_dev(rootfs + "/dotdot", rootfs), "/a/../../../../dotdot landed on rootfs/dotdot");

        auto finished = finish_rootfs(config, opts);
        if (!finished) return c.failures() + "\nfinish_rootfs: " + finished.error().message();

        char cwd[256] = {};
        c.expect(::getcwd(cwd, sizeof cwd) && std::string_view(cwd) == "/", std::string("cwd is / : ") + cwd);
        c.expect(path_exists("/bin/busybox"), "/bin/busybox visible");
        c.expect(!path_exists("/usr") && !path_exists("/var"), "host tree not reachable");

        auto mounts_r = read_mountinfo();
        if (!mounts_r) return c.failures() + "\nmountinfo: " + mounts_r.error().message();
        const auto& mounts = *mounts_r;
        auto expect_mount = [&](std::string_view mp, std::string_view fstype, std::vector<std::string_view> opts_on,
                                std::vector<std::string_view> opts_off = {}) {
            const MountInfo* m = mount_at(mounts, mp);
            if (!m) {
                c.expect(false, fmt::format("{} is a mount point", mp));
                return;
            }
            if (!fstype.empty()) c.expect(m->fstype == fstype, fmt::format("{} is {} (is {})", mp, fstype, m->fstype));
            for (auto o : opts_on) c.expect(m->has_option(o), fmt::format("{} has {} ({})", mp, o, m->options));
            for (auto o : opts_off) c.expect(!m->has_option(o), fmt::format("{} lacks {} ({})", mp, o, m->options));
        };
        expect_mount("/", "", {"ro"});
        expect_mount("/proc", "proc", {"rw", "nosuid", "nodev", "noexec"});
        expect_mount("/proc/sys", "proc", {"ro", "nosuid", "nodev", "noexec"});
        if (host_has_sysrq) expect_mount("/proc/sysrq-trigger", "proc", {"ro"});
        expect_mount("/proc/uptime", "proc", {"ro"});
        // Masks are binds of the container's /dev/null, which lives on its /dev tmpfs.
        if (host_has_kcore) expect_mount("/proc/kcore", "tmpfs", {});
        if (host_has_timer_list) expect_mount("/proc/timer_list", "tmpfs", {});
        expect_mount("/secret-file", "tmpfs", {});
        expect_mount("/secret", "tmpfs", {"ro"});
        expect_mount("/dev", "tmpfs", {"nosuid"}, {"noexec"});
        expect_mount("/dev/pts", "devpts", {"nosuid", "noexec"});
        expect_mount("/dev/shm", "tmpfs", {"nosuid", "noexec", "nodev"});
        expect_mount("/dev/mqueue", "mqueue", {"nosuid", "noexec", "nodev"});
        expect_mount("/sys", "sysfs", {"ro", "nosuid", "nodev", "noexec"});
        expect_mount("/sys/fs/cgroup", "tmpfs", {"ro", "nosuid", "nodev", "noexec"});
        expect_mount("/sys/fs/cgroup/memory", "cgroup", {"ro", "nosuid", "nodev", "noexec"});
        expect_mount("/sys/fs/cgroup/unified", "cgroup2", {"ro"});
        expect_mount("/data", "", {"ro", "nosuid"}, {"nodev"});
        expect_mount("/conf/hosts", "", {"ro"});
        expect_mount("/rro", "", {"ro"});
        expect_mount("/rro/sub", "tmpfs", {"ro"});
        expect_mount("/rbind-ro", "", {"ro"});
        expect_mount("/rbind-ro/sub", "tmpfs", {"rw"});
        expect_mount("/etc", "tmpfs", {});
        expect_mount("/escaped", "tmpfs", {});
        expect_mount(dir + "/victim", "tmpfs", {});  // /evil2 -> <host dir>/victim, resolved inside the rootfs
        expect_mount("/dotdot", "tmpfs", {});

        // What the flags mean for real.
        c.expect(open_errno("/newfile", O_WRONLY | O_CREAT) == EROFS, "root is read-only");
        c.expect(open_errno("/tmp/newfile", O_WRONLY | O_CREAT) == 0, "/tmp is writable");
        c.expect(open_errno("/proc/sys/kernel/hostname", O_WRONLY) == EROFS, "/proc/sys is read-only");
        c.expect(open_errno("/sys/kernel/profiling", O_WRONLY) == EROFS, "/sys is read-only");
        c.expect(open_errno("/sys/fs/cgroup/memory/cgroup.procs", O_WRONLY) == EROFS, "cgroup dirs are read-only");
        c.expect(path_exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"), "own memory cgroup is visible");
        c.expect(path_exists("/sys/fs/cgroup/cpu/tasks"), "cpu hierarchy is visible");
        c.expect(procs_has_self("/sys/fs/cgroup/memory/cgroup.procs"), "memory dir is this process's own cgroup");
        c.expect(open_errno("/data/new", O_WRONLY | O_CREAT) == EROFS, "/data is read-only");
        auto hello = read_file("/data/hello");
        c.expect(hello && *hello == "hello", "/data has the bundle-relative source's file");
        auto hosts = read_file("/conf/hosts");
        c.expect(hosts && *hosts == "127.0.0.1 localhost\n", "file bind mount has the source file");
        c.expect(open_errno("/conf/hosts", O_WRONLY) == EROFS, "file bind is read-only");
        c.expect(open_errno("/rro/new", O_WRONLY | O_CREAT) == EROFS, "/rro is read-only");
        c.expect(open_errno("/rro/sub/new", O_WRONLY | O_CREAT) == EROFS, "rro reaches the submount");
        c.expect(open_errno("/rbind-ro/sub/new", O_WRONLY | O_CREAT) == 0, "plain ro does not reach the submount");

        // Masked paths.
        for (const char* masked : {"/proc/kcore", "/proc/timer_list", "/secret-file"}) {
            if (std::string_view(masked) == "/proc/kcore" && !host_has_kcore) continue;
            if (std::string_view(masked) == "/proc/timer_list" && !host_has_timer_list) continue;
            auto text = read_file(masked);
            c.expect(text && text->empty(), fmt::format("{} reads empty", masked));
        }
        auto secret = read_file("/secret/key");
        c.expect(!secret && secret.error().code() == ENOENT, "/secret/key hidden");
        c.expect(open_errno("/secret/x", O_WRONLY | O_CREAT) == EROFS, "/secret is a read-only tmpfs");

        // Devices.
        struct stat st {};
        c.expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
                     minor(st.st_rdev) == 3 && (st.st_mode & 07777) == 0666,
                 "/dev/null is char 1:3 mode 0666");
        c.expect(
            ::stat("/dev/tty", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 && minor(st.st_rdev) == 0,
            "/dev/tty is char 5:0");
        c.expect(::stat("/dev/urandom", &st) == 0 && S_ISCHR(st.st_mode) && minor(st.st_rdev) == 9, "/dev/urandom");
        c.expect(::stat("/dev/custom-null", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
                     minor(st.st_rdev) == 3 && (st.st_mode & 07777) == 0600 && st.st_uid == 1000 && st.st_gid == 1000,
                 "/dev/custom-null is char 1:3 0600 1000:1000");
        c.expect(::stat("/dev/fifo0", &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0640,
                 "/dev/fifo0 is a fifo 0640");
        UniqueFd zero(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
        char buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        c.expect(zero && ::read(zero.get(), buf, sizeof buf) == 8 && buf[0] == 0 && buf[7] == 0, "/dev/zero reads 0");
        c.expect(link_of("/dev/fd") == "/proc/self/fd", "/dev/fd -> /proc/self/fd");
        c.expect(link_of("/dev/stdin") == "/proc/self/fd/0", "/dev/stdin");
        c.expect(link_of("/dev/stdout") == "/proc/self/fd/1", "/dev/stdout");
        c.expect(link_of("/dev/stderr") == "/proc/self/fd/2", "/dev/stderr");
        c.expect(link_of("/dev/ptmx") == "pts/ptmx", "/dev/ptmx -> pts/ptmx");
        if (host_has_kcore) c.expect(link_of("/dev/core") == "/proc/kcore", "/dev/core -> /proc/kcore");
        c.expect(::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode), "/dev/shm is a directory");
        c.expect(open_errno("/dev/pts/ptmx", O_RDWR) == 0, "a pty can be opened through the new devpts");

        // The rootfs is usable: exec busybox from it.
        pid_t pid = ::fork();
        if (pid == 0) {
            ::execl("/bin/busybox", "busybox", "true", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        int status = -1;
        ::waitpid(pid, &status, 0);
        c.expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec /bin/busybox true in the rootfs");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
    // The host side saw nothing: the victim is as it was and no mount is left behind.
    EXPECT_TRUE(path_exists(dir_ + "/victim/marker"));
    EXPECT_TRUE(same_dev(rootfs_, dir_));
}

TEST_F(RootfsTest, NoPivotMovesTheRootfsAndChroots) {
    spec::Config config;
    config.root = spec::Root{"rootfs", false};
    config.mounts = {mnt("/proc", "proc", "proc"), mnt("/dev", "tmpfs", "tmpfs", {"mode=755"})};
    config.linux.emplace();
    config.linux->masked_paths = {"/proc/kcore", "/etc/hostname"};
    RootfsOptions opts = options();
    opts.no_pivot = true;
    auto outcome = run_in_child([&](int&) {
        ChildChecks c;
        if (::unshare(CLONE_NEWNS) < 0) return std::string("unshare CLONE_NEWNS");
        auto prepared = prepare_rootfs(config, opts);
        if (!prepared) return "prepare_rootfs: " + prepared.error().message();
        auto finished = finish_rootfs(config, opts);
        if (!finished) return "finish_rootfs: " + finished.error().message();
        c.expect(path_exists("/bin/busybox") && path_exists("/etc/hostname"), "rootfs is /");
        c.expect(!path_exists("/usr"), "host tree not reachable");
        c.expect(open_errno("/tmp/x", O_WRONLY | O_CREAT) == 0, "root is writable without root.readonly");
        ::unlink("/tmp/x");
        auto masked = read_file("/etc/hostname");
        c.expect(masked && masked->empty(), "masked with no_pivot too");
        struct stat st {};
        c.expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "/dev/null created");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

TEST_F(RootfsTest, RootfsPropagationSharedIsAppliedAfterThePivot) {
    spec::Config config;
    config.root = spec::Root{"rootfs", false};
    config.mounts = {mnt("/proc", "proc", "proc")};
    config.linux.emplace();
    config.linux->rootfs_propagation = "rshared";
    RootfsOptions opts = options();
    auto outcome = run_in_child([&](int&) {
        ChildChecks c;
        if (::unshare(CLONE_NEWNS) < 0) return std::string("unshare CLONE_NEWNS");
        auto prepared = prepare_rootfs(config, opts);
        if (!prepared) return "prepare_rootfs: " + prepared.error().message();
        auto finished = finish_rootfs(config, opts);
        if (!finished) return "finish_rootfs: " + finished.error().message();
        auto mounts = read_mountinfo();
        if (!mounts) return mounts.error().message();
        const MountInfo* root = mount_at(*mounts, "/");
        bool shared = false;
        if (root)
            for (const auto& f : root->optional_fields) shared = shared || f.starts_with("shared:");
        c.expect(shared, "/ is shared");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

// With a new cgroup namespace the hierarchies are mounted afresh, rooted by the kernel at the namespace's cgroup.
TEST_F(RootfsTest, CgroupMountInANewCgroupNamespace) {
    spec::Config config;
    config.root = spec::Root{"rootfs", false};
    config.mounts = {mnt("/proc", "proc", "proc"), mnt("/sys", "sysfs", "sysfs", {"ro"}),
                     mnt("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "ro"})};
    RootfsOptions opts = options();
    opts.new_cgroup_namespace = true;
    auto outcome = run_in_child([&](int&) {
        ChildChecks c;
        if (::unshare(CLONE_NEWNS | CLONE_NEWCGROUP) < 0) return std::string("unshare");
        auto prepared = prepare_rootfs(config, opts);
        if (!prepared) return "prepare_rootfs: " + prepared.error().message();
        auto finished = finish_rootfs(config, opts);
        if (!finished) return "finish_rootfs: " + finished.error().message();
        auto mounts = read_mountinfo();
        if (!mounts) return mounts.error().message();
        const MountInfo* memory = mount_at(*mounts, "/sys/fs/cgroup/memory");
        c.expect(memory && memory->fstype == "cgroup" && memory->root == "/" && memory->has_option("ro") &&
                     memory->has_super_option("memory"),
                 "memory hierarchy mounted read-only at the namespace root");
        const MountInfo* unified = mount_at(*mounts, "/sys/fs/cgroup/unified");
        c.expect(unified && unified->fstype == "cgroup2", "unified is cgroup2");
        c.expect(procs_has_self("/sys/fs/cgroup/memory/cgroup.procs"), "memory dir is this process's cgroup");
        c.expect(open_errno("/sys/fs/cgroup/memory/cgroup.procs", O_WRONLY) == EROFS, "read-only");
        auto self = read_file("/proc/self/cgroup");
        c.expect(self && self->find(":memory:/\n") != std::string::npos, "in the namespace root of memory");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

// Errors from prepare_rootfs, each checked in its own fresh mount namespace.
std::string prepare_error(const spec::Config& config, const RootfsOptions& opts) {
    auto outcome = run_in_child([&](int&) {
        if (::unshare(CLONE_NEWNS) < 0) return std::string("unshare CLONE_NEWNS");
        auto r = prepare_rootfs(config, opts);
        return r ? std::string("<succeeded>") : r.error().message();
    });
    return outcome.report;
}

TEST_F(RootfsTest, DestinationsThatEscapeOrAreRelativeAreRejected) {
    spec::Config config;
    config.mounts = {mnt("../../etc", "tmpfs", "tmpfs")};
    EXPECT_EQ(prepare_error(config, options()),
              fmt::format("mount tmpfs on ../../etc (rootfs {}): mount destination \"../../etc\" escapes the rootfs",
                          rootfs_));
    config.mounts = {mnt("etc", "tmpfs", "tmpfs")};
    EXPECT_NE(prepare_error(config, options()).find("mount destination \"etc\" is not absolute"), std::string::npos);
}

TEST_F(RootfsTest, ErrorsNameTheMountAndTheErrno) {
    spec::Config config;
    config.mounts = {mnt("/x", "berthnosuchfs", "none")};
    EXPECT_EQ(prepare_error(config, options()),
              fmt::format("mount berthnosuchfs on /x (rootfs {}): No such device", rootfs_));

    config.mounts = {mnt("/data", "bind", "no-such-source", {"rbind"})};
    std::string missing = prepare_error(config, options());
    EXPECT_NE(missing.find("mount no-such-source on /data"), std::string::npos) << missing;
    EXPECT_NE(missing.find("stat source " + bundle_ + "/no-such-source: No such file or directory"), std::string::npos)
        << missing;

    config.mounts = {mnt("/t", "bind", "data-src", {"bind", "tmpcopyup"})};
    EXPECT_NE(prepare_error(config, options()).find("\"tmpcopyup\" is only for tmpfs mounts, not bind"),
              std::string::npos);
    config.mounts = {mnt("/t", "proc", "proc", {"tmpcopyup"})};
    EXPECT_NE(prepare_error(config, options()).find("\"tmpcopyup\" is only for tmpfs mounts, not proc"),
              std::string::npos);
}

// podman --read-only mounts tmpfs on /run, /tmp and /var/tmp with "tmpcopyup": the tmpfs starts with what the
// image had there (owner, mode, symlinks, nested directories), while the image's directory itself stays untouched.
TEST_F(RootfsTest, TmpcopyupFillsTheTmpfsWithTheMountPointsContents) {
    ASSERT_TRUE(mkdir_all(rootfs_ + "/run/sub/deeper"));
    ASSERT_TRUE(write_file(rootfs_ + "/run/sub/deeper/file", "image content", 0640));
    ASSERT_EQ(::chown((rootfs_ + "/run/sub/deeper/file").c_str(), 1000, 1001), 0);
    ASSERT_EQ(::chmod((rootfs_ + "/run/sub").c_str(), 0711), 0);
    ASSERT_EQ(::symlink("sub/deeper/file", (rootfs_ + "/run/link").c_str()), 0);
    ASSERT_EQ(::mkfifo((rootfs_ + "/run/fifo").c_str(), 0600), 0);
    spec::Config config;
    config.root = spec::Root{"rootfs", true};
    config.mounts = {mnt("/run", "tmpfs", "tmpfs", {"nosuid", "tmpcopyup", "mode=755"}),
                     mnt("/ro", "tmpfs", "tmpfs", {"tmpcopyup", "ro"}), mnt("/fresh", "tmpfs", "tmpfs", {"tmpcopyup"})};
    ASSERT_TRUE(mkdir_all(rootfs_ + "/ro"));
    ASSERT_TRUE(write_file(rootfs_ + "/ro/kept", "kept"));
    RootfsOptions opts = options();
    auto outcome = run_in_child([&](int&) {
        ChildChecks c;
        if (::unshare(CLONE_NEWNS) < 0) return std::string("unshare CLONE_NEWNS");
        auto prepared = prepare_rootfs(config, opts);
        if (!prepared) return "prepare_rootfs: " + prepared.error().message();
        auto finished = finish_rootfs(config, opts);
        if (!finished) return "finish_rootfs: " + finished.error().message();
        struct statfs fs {};
        c.expect(::statfs("/run", &fs) == 0 && fs.f_type == TMPFS_MAGIC, "tmpfs on /run");
        auto content = read_file("/run/sub/deeper/file");
        c.expect(content && *content == "image content", "file copied");
        struct stat st {};
        c.expect(::stat("/run/sub/deeper/file", &st) == 0 && st.st_uid == 1000 && st.st_gid == 1001 &&
                     (st.st_mode & 07777) == 0640,
                 "file owner and mode kept");
        c.expect(::stat("/run/sub", &st) == 0 && (st.st_mode & 07777) == 0711, "directory mode kept");
        c.expect(link_of("/run/link") == "sub/deeper/file", "symlink copied as a symlink");
        c.expect(::lstat("/run/fifo", &st) == 0 && S_ISFIFO(st.st_mode), "fifo copied");
        c.expect(open_errno("/run/new", O_WRONLY | O_CREAT) == 0, "tmpfs writable on a read-only root");
        auto kept = read_file("/ro/kept");
        c.expect(kept && *kept == "kept", "copied into a read-only tmpfs");
        c.expect(open_errno("/ro/new", O_WRONLY | O_CREAT) == EROFS, "\"ro\" applied after the copy");
        c.expect(open_errno("/fresh/new", O_WRONLY | O_CREAT) == 0, "missing mount point: empty tmpfs");
        return c.failures();
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
    // The copy went into the tmpfs, not into the image.
    EXPECT_FALSE(path_exists(rootfs_ + "/run/new"));
}

// The error a user sees when procfs cannot be mounted: a user namespace that does not own its pid namespace.
TEST_F(RootfsTest, ProcWithoutAnOwnedPidNamespaceFailsNamingTheMount) {
    spec::Config config;
    config.mounts = {mnt("/proc", "proc", "proc", {"nosuid"})};
    RootfsOptions opts = options();
    opts.in_user_namespace = true;
    auto outcome = run_in_child([&](int&) {
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return std::string("unshare");
        bool mapped = write_file("/proc/self/setgroups", "deny") && write_file("/proc/self/uid_map", "0 0 1") &&
                      write_file("/proc/self/gid_map", "0 0 1");
        if (!mapped) return std::string("writing id maps");
        auto r = prepare_rootfs(config, opts);
        return r ? std::string("<succeeded>") : r.error().message();
    });
    EXPECT_EQ(outcome.report, fmt::format("mount proc on /proc (rootfs {}): Operation not permitted", rootfs_));
}

TEST_F(RootfsTest, BindMountsOverProcfsAreRefused) {
    spec::Config config;
    config.mounts = {mnt("/proc", "proc", "proc"), mnt("/proc/version", "bind", dir_ + "/hosts-file", {"bind"})};
    std::string err = prepare_error(config, options());
    EXPECT_NE(err.find("/proc/version lies inside procfs"), std::string::npos) << err;

    // LXCFS-style files are allowed.
    config.mounts = {mnt("/proc", "proc", "proc"), mnt("/proc/uptime", "bind", dir_ + "/hosts-file", {"bind"})};
    EXPECT_EQ(prepare_error(config, options()), "<succeeded>");

    config.mounts = {mnt("/proc", "tmpfs", "tmpfs")};
    err = prepare_error(config, options());
    EXPECT_NE(err.find("only procfs may be mounted on /proc"), std::string::npos) << err;
}

// In a user namespace (mapping root to root, the only mapping an unprivileged unshare may write): mknod is refused,
// so devices are bind-mounted from the host; sysfs cannot be mounted without an owned network namespace, so /sys is
// an rbind of the host's; bind remounts must keep the flags the kernel locked.
TEST_F(RootfsTest, InAUserNamespace) {
    spec::Config config;
    config.root = spec::Root{"rootfs", true};
    config.mounts = {
        mnt("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
        mnt("/dev", "tmpfs", "tmpfs", {"nosuid", "mode=755"}),
        mnt("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}),
        mnt("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
        mnt("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "ro"}),
        mnt("/data", "bind", "data-src", {"rbind", "ro"}),
        mnt("/locked", "bind", dir_ + "/locked-src", {"rbind", "ro"}),
    };
    config.linux.emplace();
    config.linux->masked_paths = {"/proc/kcore", "/etc/hostname"};
    config.linux->readonly_paths = {"/proc/sys"};
    RootfsOptions opts = options();
    opts.in_user_namespace = true;
    std::string locked_src = dir_ + "/locked-src";
    ASSERT_TRUE(mkdir_all(locked_src));
    auto outcome = run_in_child([&](int&) {
        // A nosuid,nodev,noexec mount made outside the user namespace: inside it these flags are locked, and a
        // remount that drops them is refused.
        if (::unshare(CLONE_NEWNS) < 0) return std::string("unshare CLONE_NEWNS");
        if (::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) < 0) return std::string("make / private");
        if (::mount("tmpfs", locked_src.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
            return std::string("mount locked-src");
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) < 0) return std::string("unshare");
        bool mapped = write_file("/proc/self/setgroups", "deny") && write_file("/proc/self/uid_map", "0 0 1") &&
                      write_file("/proc/self/gid_map", "0 0 1");
        if (!mapped) return std::string("writing id maps");
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) < 0) return std::string("pipe");
        pid_t pid = ::fork();  // pid 1 of the new pid namespace, which may mount its own procfs
        if (pid == 0) {
            ::close(fds[0]);
            ChildChecks c;
            auto run = [&]() -> std::string {
                auto prepared = prepare_rootfs(config, opts);
                if (!prepared) return "prepare_rootfs: " + prepared.error().message();
                auto finished = finish_rootfs(config, opts);
                if (!finished) return "finish_rootfs: " + finished.error().message();
                struct stat st {};
                c.expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
                             minor(st.st_rdev) == 3,
                         "/dev/null is the host's char 1:3");
                auto mounts = read_mountinfo();
                if (!mounts) return mounts.error().message();
                const MountInfo* null_mount = mount_at(*mounts, "/dev/null");
                c.expect(null_mount && null_mount->fstype == "devtmpfs", "/dev/null is a bind of the host node");
                const MountInfo* sys = mount_at(*mounts, "/sys");
                c.expect(sys && sys->fstype == "sysfs" && sys->has_option("ro"), "/sys is a read-only sysfs bind");
                c.expect(open_errno("/sys/kernel/profiling", O_WRONLY) == EROFS, "/sys is read-only");
                c.expect(open_errno("/proc/sys/kernel/hostname", O_WRONLY) == EROFS, "/proc/sys is read-only");
                c.expect(open_errno("/data/x", O_WRONLY | O_CREAT) == EROFS, "/data is read-only");
                const MountInfo* locked = mount_at(*mounts, "/locked");
                c.expect(locked && locked->has_option("ro") && locked->has_option("nosuid") &&
                             locked->has_option("nodev") && locked->has_option("noexec"),
                         "/locked is ro and kept its locked nosuid,nodev,noexec");
                c.expect(open_errno("/x", O_WRONLY | O_CREAT) == EROFS, "root is read-only");
                c.expect(path_exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"), "cgroup visible");
                auto masked = read_file("/etc/hostname");
                c.expect(masked && masked->empty(), "/etc/hostname masked");
                c.expect(::getpid() == 1, "pid 1 in the new pid namespace");
                return c.failures();
            };
            std::string failures = run();
            (void)write_all(fds[1], failures);
            ::_exit(failures.empty() ? 0 : 1);
        }
        ::close(fds[1]);
        auto report = read_fd(fds[0]);
        ::close(fds[0]);
        int status = -1;
        ::waitpid(pid, &status, 0);
        std::string out = report ? *report : report.error().message();
        if (out.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) out = "grandchild failed silently";
        return out;
    });
    EXPECT_TRUE(outcome.ok()) << outcome.describe();
}

}  // namespace
}  // namespace berth::sys
