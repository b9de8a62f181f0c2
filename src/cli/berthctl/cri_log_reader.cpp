#include "cri_log_reader.hpp"

#include <charconv>
#include <chrono>

namespace berth::ctl {
namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}

}  // namespace

Result<int64_t> parse_rfc3339(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
    int year, month, day, hour, minute, second;
    if (s.size() < 20 || !digits(s, 0, 4, year) || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
        !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, hour) || s[13] != ':' ||
        !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second))
        return fail("timestamp {:?}: not RFC 3339 (YYYY-MM-DDTHH:MM:SS[.frac]Z)", s);
    size_t pos = 19;
    int64_t frac_ns = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        size_t n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 9) frac_ns = frac_ns * 10 + (s[pos] - '0');
            ++n;
            ++pos;
        }
        if (n == 0) return fail("timestamp {:?}: no digits after '.'", s);
        for (size_t i = n; i < 9; ++i) frac_ns *= 10;
    }
    int64_t offset_s = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
        // UTC
    } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
        int oh, om;
        if (!digits(s, pos + 1, 2, oh) || !digits(s, pos + 4, 2, om)) return fail("timestamp {:?}: bad UTC offset", s);
        offset_s = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else {
        return fail("timestamp {:?}: no time zone (Z or +HH:MM) at the end", s);
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return fail("timestamp {:?}: a field is out of range", s);
    std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                    std::chrono::day(static_cast<unsigned>(day))};
    if (!ymd.ok()) return fail("timestamp {:?}: no such date", s);
    int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
    int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
    return secs * 1'000'000'000 + frac_ns;
}

Result<int64_t> parse_since(std::string_view s, int64_t now_ns) {
    if (s.empty()) return fail("--since: empty value");
    if (s.size() >= 20 && s[4] == '-') {
        auto t = parse_rfc3339(s);
        if (!t) return fail("--since: {}", t.error().message());
        return *t;
    }
    // A duration: one or more <number><unit>, units ns us ms s m h.
    int64_t total = 0;
    std::string_view rest = s;
    while (!rest.empty()) {
        int64_t n = 0;
        auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
        if (ec != std::errc() || p == rest.data())
            return fail("--since {:?}: neither an RFC 3339 time nor a duration like 10s, 5m, 1h", s);
        rest.remove_prefix(static_cast<size_t>(p - rest.data()));
        size_t u = 0;
        while (u < rest.size() && ((rest[u] >= 'a' && rest[u] <= 'z') || rest[u] == 'A')) ++u;
        std::string_view unit = rest.substr(0, u);
        rest.remove_prefix(u);
        int64_t mult;
        if (unit == "ns")
            mult = 1;
        else if (unit == "us")
            mult = 1'000;
        else if (unit == "ms")
            mult = 1'000'000;
        else if (unit == "s")
            mult = 1'000'000'000;
        else if (unit == "m")
            mult = 60'000'000'000;
        else if (unit == "h")
            mult = 3'600'000'000'000;
        else
            return fail("--since {:?}: unknown unit {:?} (ns, us, ms, s, m, h)", s, unit);
        total += n * mult;
    }
    return now_ns - total;
}

Result<LogRecord> parse_log_record(std::string_view line) {
    LogRecord r;
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return fail("log record {:?}: no stream after the timestamp", line);
    r.timestamp = std::string(line.substr(0, sp1));
    BERTH_ASSIGN(r.time_ns, parse_rfc3339(r.timestamp));
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return fail("log record {:?}: no P/F tag after the stream", line);
    r.stream = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    if (r.stream != "stdout" && r.stream != "stderr")
        return fail("log record {:?}: stream {:?} is neither stdout nor stderr", line, r.stream);
    // The tag may be the end of the line (an empty F message written without the separating space).
    size_t sp3 = line.find(' ', sp2 + 1);
    std::string_view tag = line.substr(sp2 + 1, sp3 == std::string_view::npos ? std::string_view::npos : sp3 - sp2 - 1);
    if (tag == "P")
        r.partial = true;
    else if (tag != "F")
        return fail("log record {:?}: tag {:?} is neither P nor F", line, tag);
    if (sp3 != std::string_view::npos) r.message = std::string(line.substr(sp3 + 1));
    return r;
}

std::optional<LogLine> LogAssembler::add(LogRecord r) {
    auto& pending = r.stream == "stderr" ? pending_err_ : pending_out_;
    if (!pending)
        pending = LogLine{std::move(r.timestamp), r.time_ns, std::move(r.stream), std::move(r.message)};
    else
        pending->content += r.message;
    if (r.partial) return std::nullopt;
    std::optional<LogLine> done = std::move(pending);
    pending.reset();
    return done;
}

void LogFileParser::feed(std::string_view data, std::deque<LogLine>& out) {
    rest_.append(data);
    size_t start = 0;
    for (size_t nl; (nl = rest_.find('\n', start)) != std::string::npos; start = nl + 1) {
        auto rec = parse_log_record(std::string_view(rest_).substr(start, nl - start));
        if (!rec) {
            ++malformed_;
            continue;
        }
        if (auto line = assembler_.add(std::move(*rec))) out.push_back(std::move(*line));
    }
    rest_.erase(0, start);
}

}  // namespace berth::ctl
