#include "linux/lsm.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "common/fs.hpp"

namespace berth::sys {

namespace {

std::string field(std::string_view path, std::string_view name) {
    return path.empty() ? std::string(name) : fmt::format("{}.{}", path, name);
}

// One write(2) of the whole value, as the kernel's attr files require.
Result<void> write_attr(const char* path, const std::string& value) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail_sys("open {}", path);
    ssize_t n = ::write(fd, value.data(), value.size());
    int err = errno;
    ::close(fd);
    if (n < 0) return fail_errno(err, "write \"{}\" to {}", value, path);
    if (static_cast<size_t>(n) != value.size()) return fail("short write of \"{}\" to {}", value, path);
    return {};
}

}  // namespace

bool apparmor_enabled() {
    auto text = read_file("/sys/module/apparmor/parameters/enabled");
    return text && !text->empty() && (*text)[0] == 'Y';
}

bool selinux_enabled() {
    return ::access("/sys/fs/selinux/enforce", F_OK) == 0;
}

Result<LsmSettings> resolve_lsm(const spec::Process& process, std::string_view mount_label, std::string_view path) {
    LsmSettings out;
    if (!process.apparmor_profile.empty() && apparmor_enabled()) out.apparmor_profile = process.apparmor_profile;
    if (!process.selinux_label.empty()) {
        if (!selinux_enabled())
            return fail(
                "{}: SELinux label \"{}\" requested, but SELinux is not enabled on this host (no selinuxfs "
                "at /sys/fs/selinux)",
                field(path, "selinuxLabel"), process.selinux_label);
        out.selinux_label = process.selinux_label;
    }
    if (!mount_label.empty() && selinux_enabled()) out.mount_label = mount_label;
    return out;
}

Result<void> apply_apparmor_profile(const std::string& profile) {
    std::string value = "exec " + profile;
    // Since Linux 5.1 AppArmor has its own attr directory; /proc/self/attr/exec is the shared, older one.
    auto r = write_attr("/proc/self/attr/apparmor/exec", value);
    if (!r && r.error().code() == ENOENT) r = write_attr("/proc/self/attr/exec", value);
    if (!r) return std::unexpected(std::move(r).error().wrap(fmt::format("apply AppArmor profile \"{}\"", profile)));
    return {};
}

Result<void> apply_selinux_label(const std::string& label) {
    auto r = write_attr("/proc/self/attr/exec", label);
    if (!r) return std::unexpected(std::move(r).error().wrap(fmt::format("apply SELinux label \"{}\"", label)));
    return {};
}

std::string with_mount_label(const std::string& data, const std::string& label) {
    if (label.empty()) return data;
    std::string opt = fmt::format("context=\"{}\"", label);
    return data.empty() ? opt : data + "," + opt;
}

bool mount_takes_label(std::string_view type) {
    return type != "proc" && type != "sysfs" && type != "cgroup" && type != "cgroup2" && type != "mqueue" &&
           type != "bind" && type != "none" && !type.empty();
}

}  // namespace berth::sys
