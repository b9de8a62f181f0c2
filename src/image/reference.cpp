#include "image/reference.hpp"

#include <cctype>
#include <vector>

namespace berth::image {

namespace {

// The distribution spec's limit on the whole name (domain included).
constexpr size_t kNameTotalLengthMax = 255;
constexpr size_t kTagLengthMax = 128;

bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_alnum(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// path-component: [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
bool valid_path_component(std::string_view c) {
    if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
    size_t i = 0;
    while (i < c.size()) {
        if (is_lower_alnum(c[i])) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < c.size() && !is_lower_alnum(c[j])) ++j;
        std::string_view sep = c.substr(i, j - i);
        bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
        if (!ok) return false;
        i = j;
    }
    return true;
}

// domain-component: [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool valid_domain_component(std::string_view c) {
    if (c.empty() || !is_alnum(c.front()) || !is_alnum(c.back())) return false;
    for (char ch : c)
        if (!is_alnum(ch) && ch != '-') return false;
    return true;
}

// host[:port], where host is dotted domain components or a bracketed IPv6 address.
bool valid_domain(std::string_view d) {
    std::string_view host = d;
    std::string_view port;
    if (!d.empty() && d.front() == '[') {
        size_t close = d.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        for (char c : d.substr(1, close - 1))
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
        host = {};
        std::string_view rest = d.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
            if (port.empty()) return false;
        }
    } else {
        size_t colon = d.find(':');
        if (colon != std::string_view::npos) {
            host = d.substr(0, colon);
            port = d.substr(colon + 1);
            if (port.empty()) return false;
        }
        size_t i = 0;
        while (i <= host.size()) {
            size_t j = host.find('.', i);
            if (j == std::string_view::npos) j = host.size();
            if (!valid_domain_component(host.substr(i, j - i))) return false;
            i = j + 1;
        }
    }
    for (char c : port)
        if (c < '0' || c > '9') return false;
    return true;
}

// tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool valid_tag(std::string_view t) {
    if (t.empty() || t.size() > kTagLengthMax) return false;
    if (!is_alnum(t.front()) && t.front() != '_') return false;
    for (char c : t)
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
    return true;
}

bool is_hex64(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!is_lower_alnum(c) || c > 'f') return false;
    return true;
}

}  // namespace

Result<ImageReference> ImageReference::parse(std::string_view text) {
    auto bad = [&](std::string_view why) { return fail("invalid image reference \"{}\": {}", text, why); };
    if (text.empty()) return bad("empty");

    ImageReference ref;
    std::string_view rest = text;

    size_t at = rest.find('@');
    if (at != std::string_view::npos) {
        auto d = Digest::parse(rest.substr(at + 1));
        if (!d) return std::unexpected(std::move(d).error().wrap(fmt::format("invalid image reference \"{}\"", text)));
        ref.digest = std::move(*d);
        rest = rest.substr(0, at);
    }

    // A tag is after the last ':' that follows the last '/': "host:5000/x" has no tag, "host:5000/x:1" has one.
    size_t last_slash = rest.rfind('/');
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
        std::string_view tag = rest.substr(colon + 1);
        if (!valid_tag(tag)) return bad(fmt::format("invalid tag \"{}\"", tag));
        ref.tag = std::string(tag);
        rest = rest.substr(0, colon);
    }
    if (rest.empty()) return bad("missing repository name");

    std::string_view remainder = rest;
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
        std::string_view first = rest.substr(0, slash);
        bool has_upper = false;
        for (char c : first) has_upper |= (c >= 'A' && c <= 'Z');
        if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" || has_upper) {
            if (!valid_domain(first)) return bad(fmt::format("invalid registry host \"{}\"", first));
            ref.domain = std::string(first);
            remainder = rest.substr(slash + 1);
        }
    }
    if (ref.domain.empty() || ref.domain == "index.docker.io") ref.domain = "docker.io";

    if (remainder.empty()) return bad("missing repository name");
    if (slash == std::string_view::npos && ref.tag.empty() && !ref.digest.valid() && is_hex64(remainder))
        return bad("a 64-character hex string is an image ID, not a repository name");
    size_t i = 0;
    while (i <= remainder.size()) {
        size_t j = remainder.find('/', i);
        if (j == std::string_view::npos) j = remainder.size();
        std::string_view component = remainder.substr(i, j - i);
        if (!valid_path_component(component)) {
            for (char c : component)
                if (c >= 'A' && c <= 'Z') return bad("repository name must be lowercase");
            return bad(fmt::format("invalid repository path component \"{}\"", component));
        }
        i = j + 1;
    }
    ref.repository = std::string(remainder);
    if (ref.domain == "docker.io" && ref.repository.find('/') == std::string::npos)
        ref.repository.insert(0, "library/");
    if (ref.name().size() > kNameTotalLengthMax)
        return bad(fmt::format("name is longer than {} characters", kNameTotalLengthMax));
    if (ref.tag.empty() && !ref.digest.valid()) ref.tag = "latest";
    return ref;
}

std::string ImageReference::string() const {
    std::string out = name();
    if (!tag.empty()) out += ":" + tag;
    if (digest.valid()) out += "@" + digest.string();
    return out;
}

}  // namespace berth::image
