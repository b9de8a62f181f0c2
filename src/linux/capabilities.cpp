#include "linux/capabilities.hpp"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <memory>

#include "common/fs.hpp"
#include "spec/names.hpp"

namespace berth::sys {

int last_capability() {
    static int last = [] {
        auto text = read_file("/proc/sys/kernel/cap_last_cap");
        if (!text) return CAP_LAST_CAP;
        return std::atoi(text->c_str());
    }();
    return last;
}

namespace {

Result<std::vector<int>> resolve_set(const std::vector<std::string>& names, std::string_view path,
                                     std::string_view set) {
    std::vector<int> out;
    for (size_t i = 0; i < names.size(); ++i) {
        auto cap = spec::capability_from_name(names[i]);
        if (!cap) return fail("{}.{}[{}]: unknown capability \"{}\"", path, set, i, names[i]);
        if (*cap > last_capability()) continue;
        if (std::find(out.begin(), out.end(), *cap) == out.end()) out.push_back(*cap);
    }
    return out;
}

std::string cap_name(int cap) {
    auto names = spec::capability_names();
    return cap >= 0 && static_cast<size_t>(cap) < names.size() ? std::string(names[static_cast<size_t>(cap)])
                                                                : std::to_string(cap);
}

}  // namespace

Result<CapabilitySets> resolve_capabilities(const spec::Capabilities& caps, std::string_view path) {
    CapabilitySets s;
    BERTH_ASSIGN(s.bounding, resolve_set(caps.bounding, path, "bounding"));
    BERTH_ASSIGN(s.effective, resolve_set(caps.effective, path, "effective"));
    BERTH_ASSIGN(s.inheritable, resolve_set(caps.inheritable, path, "inheritable"));
    BERTH_ASSIGN(s.permitted, resolve_set(caps.permitted, path, "permitted"));
    BERTH_ASSIGN(s.ambient, resolve_set(caps.ambient, path, "ambient"));
    return s;
}

Result<void> prepare_capabilities(const CapabilitySets& sets) {
    for (int cap = 0; cap <= last_capability(); ++cap) {
        if (std::find(sets.bounding.begin(), sets.bounding.end(), cap) != sets.bounding.end()) continue;
        if (cap_drop_bound(static_cast<cap_value_t>(cap)) < 0 && errno != EINVAL)
            return fail_sys("drop {} from the bounding set", cap_name(cap));
    }
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail_sys("prctl PR_SET_KEEPCAPS");
    return {};
}

Result<void> apply_capabilities(const CapabilitySets& sets) {
    std::unique_ptr<struct _cap_struct, int (*)(void*)> caps(cap_init(), cap_free);
    if (!caps) return fail_sys("cap_init");
    auto set_flag = [&](cap_flag_t flag, const std::vector<int>& list) -> Result<void> {
        if (list.empty()) return {};
        std::vector<cap_value_t> values(list.begin(), list.end());
        if (cap_set_flag(caps.get(), flag, static_cast<int>(values.size()), values.data(), CAP_SET) < 0)
            return fail_sys("cap_set_flag");
        return {};
    };
    BERTH_TRY(set_flag(CAP_EFFECTIVE, sets.effective));
    BERTH_TRY(set_flag(CAP_PERMITTED, sets.permitted));
    BERTH_TRY(set_flag(CAP_INHERITABLE, sets.inheritable));
    if (cap_set_proc(caps.get()) < 0) return fail_sys("set the process capabilities");
    if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return fail_sys("prctl PR_SET_KEEPCAPS 0");
    if (cap_reset_ambient() < 0 && errno != EINVAL) return fail_sys("reset the ambient capabilities");
    for (int cap : sets.ambient) {
        // The kernel only allows ambient capabilities that are both permitted and inheritable.
        if (cap_set_ambient(static_cast<cap_value_t>(cap), CAP_SET) < 0)
            return fail_sys("raise ambient capability {} (it must be permitted and inheritable too)", cap_name(cap));
    }
    return {};
}

}  // namespace berth::sys
