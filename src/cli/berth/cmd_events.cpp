// `berth events`: runc's event stream (stats, oom) as JSON lines on stdout.
#include <cstdio>

#include "command.hpp"

namespace berth::cli {
namespace {

// Go-style durations as runc takes them: "5s", "500ms", "1m", "1m30s".
Result<int> parse_duration_ms(const std::string& s) {
    if (s.empty()) return fail("--interval: empty duration");
    double total = 0;
    size_t i = 0;
    while (i < s.size()) {
        size_t start = i;
        while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
        if (i == start) return fail("--interval: invalid duration \"{}\"", s);
        double v = std::strtod(s.substr(start, i - start).c_str(), nullptr);
        size_t ustart = i;
        while (i < s.size() && !((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
        std::string unit = s.substr(ustart, i - ustart);
        if (unit == "ms")
            total += v;
        else if (unit == "s")
            total += v * 1000;
        else if (unit == "m")
            total += v * 60000;
        else if (unit == "h")
            total += v * 3600000;
        else
            return fail("--interval: invalid duration \"{}\" (units: ms, s, m, h)", s);
    }
    if (total < 1 || total > 86400000) return fail("--interval: {} is out of range", s);
    return static_cast<int>(total);
}

}  // namespace

const Command& events_command() {
    static const Command c{"events",
                           "[command options] <container-id>",
                           "stream a container's events (stats, oom) as JSON",
                           {{{"interval"}, true, "interval between stats events (default 5s)"},
                            {{"stats"}, false, "print the container's stats once and exit"}},
                           [](const runtime::GlobalOptions& g, const ParsedFlags& f) {
                               auto interval = parse_duration_ms(f.value("interval", "5s"));
                               if (!interval) return report_error(interval.error());
                               auto r = runtime::container_events(g, f.positional[0], f.flag("stats"), *interval,
                                                                  [](const std::string& line) {
                                                                      std::printf("%s\n", line.c_str());
                                                                      std::fflush(stdout);
                                                                  });
                               if (!r) return report_error(r.error());
                               return 0;
                           },
                           1,
                           1};
    return c;
}

}  // namespace berth::cli
