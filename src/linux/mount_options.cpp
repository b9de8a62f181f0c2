#include "linux/mount_options.hpp"

#include <sys/mount.h>

#include <array>

namespace berth::sys {

namespace {

struct FlagOption {
    std::string_view name;
    bool set;  // false: the option clears the flag
    unsigned long flag;
};

constexpr std::array kFlagOptions = {
    FlagOption{"ro", true, MS_RDONLY},
    FlagOption{"rw", false, MS_RDONLY},
    FlagOption{"nosuid", true, MS_NOSUID},
    FlagOption{"suid", false, MS_NOSUID},
    FlagOption{"nodev", true, MS_NODEV},
    FlagOption{"dev", false, MS_NODEV},
    FlagOption{"noexec", true, MS_NOEXEC},
    FlagOption{"exec", false, MS_NOEXEC},
    FlagOption{"sync", true, MS_SYNCHRONOUS},
    FlagOption{"async", false, MS_SYNCHRONOUS},
    FlagOption{"dirsync", true, MS_DIRSYNC},
    FlagOption{"remount", true, MS_REMOUNT},
    FlagOption{"mand", true, MS_MANDLOCK},
    FlagOption{"nomand", false, MS_MANDLOCK},
    FlagOption{"noatime", true, MS_NOATIME},
    FlagOption{"atime", false, MS_NOATIME},
    FlagOption{"nodiratime", true, MS_NODIRATIME},
    FlagOption{"diratime", false, MS_NODIRATIME},
    FlagOption{"relatime", true, MS_RELATIME},
    FlagOption{"norelatime", false, MS_RELATIME},
    FlagOption{"strictatime", true, MS_STRICTATIME},
    FlagOption{"nostrictatime", false, MS_STRICTATIME},
    FlagOption{"lazytime", true, MS_LAZYTIME},
    FlagOption{"nolazytime", false, MS_LAZYTIME},
    FlagOption{"iversion", true, MS_I_VERSION},
    FlagOption{"noiversion", false, MS_I_VERSION},
    FlagOption{"silent", true, MS_SILENT},
    FlagOption{"loud", false, MS_SILENT},
    FlagOption{"nosymfollow", true, MS_NOSYMFOLLOW},
    FlagOption{"symfollow", false, MS_NOSYMFOLLOW},
};

struct AttrOption {
    std::string_view name;
    bool set;
    uint64_t attr;
};

constexpr std::array kRecursiveAttrOptions = {
    AttrOption{"rro", true, MOUNT_ATTR_RDONLY},
    AttrOption{"rrw", false, MOUNT_ATTR_RDONLY},
    AttrOption{"rnosuid", true, MOUNT_ATTR_NOSUID},
    AttrOption{"rsuid", false, MOUNT_ATTR_NOSUID},
    AttrOption{"rnodev", true, MOUNT_ATTR_NODEV},
    AttrOption{"rdev", false, MOUNT_ATTR_NODEV},
    AttrOption{"rnoexec", true, MOUNT_ATTR_NOEXEC},
    AttrOption{"rexec", false, MOUNT_ATTR_NOEXEC},
    AttrOption{"rnodiratime", true, MOUNT_ATTR_NODIRATIME},
    AttrOption{"rdiratime", false, MOUNT_ATTR_NODIRATIME},
    AttrOption{"rnosymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
    AttrOption{"rsymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
};

// For mount_setattr the access-time setting is one value out of MOUNT_ATTR__ATIME, not independent bits. The
// negative forms pick what the kernel does when that mode is off: without noatime and without strictatime a
// mount gets relatime, and "no relatime" can only mean strictatime.
struct AtimeOption {
    std::string_view name;
    uint64_t mode;
};

constexpr std::array kRecursiveAtimeOptions = {
    AtimeOption{"rnoatime", MOUNT_ATTR_NOATIME},         AtimeOption{"ratime", MOUNT_ATTR_RELATIME},
    AtimeOption{"rrelatime", MOUNT_ATTR_RELATIME},       AtimeOption{"rnorelatime", MOUNT_ATTR_STRICTATIME},
    AtimeOption{"rstrictatime", MOUNT_ATTR_STRICTATIME}, AtimeOption{"rnostrictatime", MOUNT_ATTR_RELATIME},
};

struct PropagationOption {
    std::string_view name;
    unsigned long flags;
};

constexpr std::array kPropagationOptions = {
    PropagationOption{"private", MS_PRIVATE},       PropagationOption{"rprivate", MS_PRIVATE | MS_REC},
    PropagationOption{"shared", MS_SHARED},         PropagationOption{"rshared", MS_SHARED | MS_REC},
    PropagationOption{"slave", MS_SLAVE},           PropagationOption{"rslave", MS_SLAVE | MS_REC},
    PropagationOption{"unbindable", MS_UNBINDABLE}, PropagationOption{"runbindable", MS_UNBINDABLE | MS_REC},
};

const PropagationOption* find_propagation(std::string_view name) {
    for (const auto& p : kPropagationOptions)
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace

Result<MountFlags> parse_mount_options(const std::vector<std::string>& options) {
    MountFlags out;
    std::string_view propagation_name;
    for (const std::string& opt : options) {
        if (opt.empty()) return fail("mount option \"\" is empty");
        if (opt == "defaults") continue;
        if (opt == "bind") {
            out.bind = true;
            continue;
        }
        if (opt == "rbind") {
            out.bind = out.rbind = true;
            continue;
        }
        if (opt == "tmpcopyup") {
            out.tmpcopyup = true;
            continue;
        }
        if (opt == "idmap" || opt == "ridmap")
            return fail("mount option \"{}\" is not supported (id-mapped mounts)", opt);

        bool matched = false;
        for (const auto& f : kFlagOptions) {
            if (f.name != opt) continue;
            if (f.set) {
                out.flags |= f.flag;
                out.clear &= ~f.flag;
            } else {
                out.clear |= f.flag;
                out.flags &= ~f.flag;
            }
            matched = true;
            break;
        }
        if (matched) continue;

        for (const auto& a : kRecursiveAttrOptions) {
            if (a.name != opt) continue;
            if (a.set) {
                out.attr_set |= a.attr;
                out.attr_clr &= ~a.attr;
            } else {
                out.attr_clr |= a.attr;
                out.attr_set &= ~a.attr;
            }
            matched = true;
            break;
        }
        if (matched) continue;

        for (const auto& a : kRecursiveAtimeOptions) {
            if (a.name != opt) continue;
            out.attr_set = (out.attr_set & ~uint64_t{MOUNT_ATTR__ATIME}) | a.mode;
            out.attr_clr |= MOUNT_ATTR__ATIME;
            matched = true;
            break;
        }
        if (matched) continue;

        if (const PropagationOption* p = find_propagation(opt)) {
            if (out.propagation != 0 && out.propagation != p->flags)
                return fail("mount options \"{}\" and \"{}\" set conflicting propagation", propagation_name, opt);
            out.propagation = p->flags;
            propagation_name = p->name;
            continue;
        }

        if (!out.data.empty()) out.data += ',';
        out.data += opt;
    }
    out.recursive_readonly = (out.attr_set & MOUNT_ATTR_RDONLY) != 0;
    return out;
}

std::vector<std::string> known_mount_options() {
    std::vector<std::string> out = {"defaults", "bind", "rbind"};
    for (const auto& f : kFlagOptions) out.emplace_back(f.name);
    for (const auto& a : kRecursiveAttrOptions) out.emplace_back(a.name);
    for (const auto& a : kRecursiveAtimeOptions) out.emplace_back(a.name);
    for (const auto& p : kPropagationOptions) out.emplace_back(p.name);
    return out;
}

Result<unsigned long> parse_propagation(std::string_view value) {
    if (value.empty()) return 0UL;
    if (const PropagationOption* p = find_propagation(value)) return p->flags;
    return fail("linux.rootfsPropagation: unknown propagation \"{}\"", value);
}

}  // namespace berth::sys
