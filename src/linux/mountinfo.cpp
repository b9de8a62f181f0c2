#include "linux/mountinfo.hpp"

#include <charconv>

#include "common/fs.hpp"

namespace berth::sys {

namespace {

std::string unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        size_t j = line.find(' ', i);
        if (j == std::string_view::npos) j = line.size();
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

template <typename T>
bool to_number(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

bool option_list_has(std::string_view list, std::string_view option) {
    size_t i = 0;
    while (i <= list.size()) {
        size_t j = list.find(',', i);
        if (j == std::string_view::npos) j = list.size();
        if (list.substr(i, j - i) == option) return true;
        i = j + 1;
    }
    return false;
}

bool MountInfo::has_option(std::string_view name) const {
    return option_list_has(options, name);
}
bool MountInfo::has_super_option(std::string_view name) const {
    return option_list_has(super_options, name);
}

Result<std::vector<MountInfo>> parse_mountinfo(std::string_view text) {
    std::vector<MountInfo> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.empty()) continue;
        auto f = split_spaces(line);
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        size_t sep = 6;
        while (sep < f.size() && f[sep] != "-") ++sep;
        if (f.size() < 7 || sep + 3 > f.size()) return fail("mountinfo: malformed line \"{}\"", line);
        MountInfo m;
        auto colon = f[2].find(':');
        if (!to_number(f[0], m.id) || !to_number(f[1], m.parent_id) || colon == std::string_view::npos ||
            !to_number(f[2].substr(0, colon), m.major) || !to_number(f[2].substr(colon + 1), m.minor))
            return fail("mountinfo: malformed line \"{}\"", line);
        m.root = unescape(f[3]);
        m.mount_point = unescape(f[4]);
        m.options = std::string(f[5]);
        for (size_t i = 6; i < sep; ++i) m.optional_fields.emplace_back(f[i]);
        m.fstype = unescape(f[sep + 1]);
        m.source = unescape(f[sep + 2]);
        if (sep + 3 < f.size()) m.super_options = unescape(f[sep + 3]);
        out.push_back(std::move(m));
    }
    return out;
}

Result<std::vector<MountInfo>> read_mountinfo() {
    BERTH_ASSIGN(std::string text, read_file("/proc/self/mountinfo"));
    return parse_mountinfo(text);
}

const MountInfo* find_mount_for(const std::vector<MountInfo>& mounts, std::string_view path) {
    const MountInfo* best = nullptr;
    size_t best_len = 0;
    for (const auto& m : mounts) {
        std::string_view mp = m.mount_point;
        bool prefix = mp == "/" || path == mp ||
                      (path.size() > mp.size() && path.substr(0, mp.size()) == mp && path[mp.size()] == '/');
        if (!prefix) continue;
        // Later entries were mounted later and cover earlier ones on the same mount point.
        if (!best || mp.size() >= best_len) {
            best = &m;
            best_len = mp.size();
        }
    }
    return best;
}

}  // namespace berth::sys
