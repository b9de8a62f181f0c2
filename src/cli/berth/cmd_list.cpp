#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.hpp"

namespace berth::cli {

const Command& list_command() {
    static const Command c{
        "list", "[command options]", "list containers under --root",
        {{{"format", "f"}, true, "table or json"}, {{"quiet", "q"}, false, "print only container ids"}},
        [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
            std::string format = f.value("format", "table");
            if (format != "table" && format != "json")
                return report_error(Error(0, fmt::format("list: invalid --format \"{}\": use table or json", format)));
            auto entries = runtime::list_containers(g);
            if (!entries) return report_error(entries.error());
            if (f.flag("quiet")) {
                for (const auto& e : *entries) std::printf("%s\n", e.id.c_str());
            } else if (format == "json") {
                nlohmann::json arr = nlohmann::json::array();
                for (const auto& e : *entries)
                    arr.push_back({{"ociVersion", "1.2.0"},
                                   {"id", e.id},
                                   {"pid", e.pid},
                                   {"status", e.status},
                                   {"bundle", e.bundle},
                                   {"created", e.created},
                                   {"owner", e.owner}});
                std::printf("%s\n", arr.dump().c_str());
            } else {
                std::printf("%-20s %-8s %-10s %-40s %-31s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
                for (const auto& e : *entries)
                    std::printf("%-20s %-8d %-10s %-40s %-31s %s\n", e.id.c_str(), e.pid, e.status.c_str(),
                                e.bundle.c_str(), e.created.c_str(), e.owner.c_str());
            }
            return 0;
        },
        0, 0};
    return c;
}

}  // namespace berth::cli
