#include "runtime/features.hpp"

#include <seccomp.h>

#include "linux/lsm.hpp"
#include "linux/mount_options.hpp"
#include "linux/seccomp.hpp"
#include "spec/config.hpp"
#include "spec/names.hpp"

namespace berth::runtime {

nlohmann::json features() {
    using nlohmann::json;
    json namespaces = json::array();
    for (auto t : {spec::NamespaceType::cgroup, spec::NamespaceType::ipc, spec::NamespaceType::mount,
                   spec::NamespaceType::network, spec::NamespaceType::pid, spec::NamespaceType::time,
                   spec::NamespaceType::user, spec::NamespaceType::uts})
        namespaces.push_back(std::string(spec::to_string(t)));
    json caps = json::array();
    for (auto name : spec::capability_names()) caps.push_back(std::string(name));

    const scmp_version* v = seccomp_version();
    std::string libseccomp = v ? fmt::format("{}.{}.{}", v->major, v->minor, v->micro) : "unknown";

    return json{
        {"ociVersionMin", "1.0.0"},
        {"ociVersionMax", std::string(spec::kOciVersion)},
        {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
        {"mountOptions", sys::known_mount_options()},
        {"linux",
         {
             {"namespaces", namespaces},
             {"capabilities", caps},
             {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", true}}},
             {"seccomp",
              {{"enabled", true},
               {"actions", sys::known_seccomp_actions()},
               {"operators", sys::known_seccomp_operators()},
               {"archs", sys::known_seccomp_architectures()},
               {"knownFlags", sys::known_seccomp_flags()},
               {"supportedFlags", sys::supported_seccomp_flags()}}},
             // features.md: whether support is compiled in, unrelated to the host. Where the host lacks the
             // module, a profile is skipped and a label refused; the host.* annotations below say which.
             {"apparmor", {{"enabled", true}}},
             {"selinux", {{"enabled", true}}},
             {"intelRdt", {{"enabled", false}}},
             {"mountExtensions", {{"idmap", {{"enabled", false}}}}},
         }},
        {"annotations",
         {{"io.github.berth.version", BERTH_VERSION},
          {"io.github.berth.libseccomp.version", libseccomp},
          {"io.github.berth.checkpoint.enabled", "false"},
          {"io.github.berth.host.apparmor.enabled", sys::apparmor_enabled() ? "true" : "false"},
          {"io.github.berth.host.selinux.enabled", sys::selinux_enabled() ? "true" : "false"}}},
    };
}

}  // namespace berth::runtime
