// Typed reading of a parsed JSON document that names the JSON path of every bad value. Internal to src/spec.
//
// A JsonPath lives on the stack while a reader descends and is only formatted when an error is reported, so a
// successful parse builds no path strings. Readers take the document by non-const reference because they move
// strings out of it instead of copying them; the document is garbage once read.
//
// Conventions shared by every reader: a JSON null counts as absent (what Go's encoding/json, which writes most
// config.json files, does too); integers must be JSON integers within the target type's range (1.0, 1e3 and
// out-of-range values are errors, never truncated).
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace berth::spec::detail {

using Json = nlohmann::json;

class JsonPath {
public:
    // The document root; printed as "(root)" when an error is reported on it.
    JsonPath() = default;
    // `parent.member`. `member` must outlive this object (the readers pass string literals).
    JsonPath(const JsonPath& parent, std::string_view member) : parent_(&parent), text_(member), kind_(Kind::member) {}
    // `parent[index]`.
    JsonPath(const JsonPath& parent, size_t index) : parent_(&parent), index_(index), kind_(Kind::index) {}
    // `parent["key"]`: a key of a free-form map (annotations, sysctl, ...), which may itself contain dots.
    static JsonPath map_key(const JsonPath& parent, std::string_view key) {
        JsonPath p(parent, key);
        p.kind_ = Kind::map_key;
        return p;
    }

    std::string str() const;

private:
    enum class Kind { root, member, index, map_key };
    void append_to(std::string& out) const;

    const JsonPath* parent_ = nullptr;
    std::string_view text_;
    size_t index_ = 0;
    Kind kind_ = Kind::root;
};

// `s` in double quotes with JSON escapes, for echoing untrusted values in messages.
std::string quote(std::string_view s);

template <typename... Args>
[[nodiscard]] std::unexpected<Error> path_error(const JsonPath& p, fmt::format_string<Args...> f, Args&&... args) {
    std::string msg = p.str();
    msg += ": ";
    msg += fmt::format(f, std::forward<Args>(args)...);
    return std::unexpected(Error(0, std::move(msg)));
}

[[nodiscard]] std::unexpected<Error> type_error(const Json& j, const JsonPath& p, std::string_view expected);

// Parses `text` into `out`. Errors carry the byte offset and line/column of a syntax error.
[[nodiscard]] Result<void> parse_json(std::string_view text, Json& out);

[[nodiscard]] Result<void> read(Json& j, const JsonPath& p, std::string& out);
[[nodiscard]] Result<void> read(Json& j, const JsonPath& p, bool& out);

template <typename T>
constexpr std::string_view int_type_name() {
    if constexpr (std::is_signed_v<T>) {
        if constexpr (sizeof(T) == 2) return "int16";
        if constexpr (sizeof(T) == 4) return "int32";
        if constexpr (sizeof(T) == 8) return "int64";
        return "integer";
    } else {
        if constexpr (sizeof(T) == 2) return "uint16";
        if constexpr (sizeof(T) == 4) return "uint32";
        if constexpr (sizeof(T) == 8) return "uint64";
        return "unsigned integer";
    }
}

template <typename T>
requires(std::integral<T> && !std::same_as<T, bool>)
    [[nodiscard]] Result<void> read(Json& j, const JsonPath& p, T& out) {
    // nlohmann stores non-negative integers as number_unsigned and negative ones as number_integer;
    // is_number_integer() is true for both, so the unsigned case must be tested first.
    if (j.is_number_unsigned()) {
        auto v = j.get_ref<const Json::number_unsigned_t&>();
        if (!std::in_range<T>(v)) return path_error(p, "{} is out of range for {}", v, int_type_name<T>());
        out = static_cast<T>(v);
        return {};
    }
    if (j.is_number_integer()) {
        auto v = j.get_ref<const Json::number_integer_t&>();
        if (!std::in_range<T>(v)) return path_error(p, "{} is out of range for {}", v, int_type_name<T>());
        out = static_cast<T>(v);
        return {};
    }
    if (j.is_number_float())  // dump() keeps "1024.0" recognisable as the float it was written as
        return path_error(p, "expected {}, got non-integer number {}", int_type_name<T>(), j.dump());
    return type_error(j, p, int_type_name<T>());
}

template <typename T>
[[nodiscard]] Result<void> read(Json& j, const JsonPath& p, std::optional<T>& out) {
    out.emplace();
    return read(j, p, *out);
}

template <typename T>
[[nodiscard]] Result<void> read(Json& j, const JsonPath& p, std::vector<T>& out) {
    if (!j.is_array()) return type_error(j, p, "array");
    out.clear();
    out.resize(j.size());
    for (size_t i = 0; i < out.size(); ++i) BERTH_TRY(read(j[i], JsonPath(p, i), out[i]));
    return {};
}

template <typename T>
[[nodiscard]] Result<void> read(Json& j, const JsonPath& p, std::map<std::string, T>& out) {
    if (!j.is_object()) return type_error(j, p, "object");
    out.clear();
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it->is_null()) continue;
        const std::string& key = it.key();
        T v{};
        BERTH_TRY(read(*it, JsonPath::map_key(p, key), v));
        out.emplace_hint(out.end(), key, std::move(v));
    }
    return {};
}

// Member access on one JSON object, with the object's path for errors.
class ObjectReader {
public:
    ObjectReader(Json& obj, const JsonPath& path) : obj_(&obj), path_(&path) {}

    // The member's value, or nullptr when it is absent or null.
    Json* find(std::string_view key) const {
        auto it = obj_->find(key);
        if (it == obj_->end() || it->is_null()) return nullptr;
        return &*it;
    }
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Reads an optional member; `out` is left untouched when it is absent.
    template <typename T>
    [[nodiscard]] Result<void> opt(std::string_view key, T& out) const {
        Json* v = find(key);
        if (!v) return {};
        return read(*v, JsonPath(*path_, key), out);
    }
    // Reads a member the spec marks REQUIRED where the struct cannot tell "absent" from a default value.
    template <typename T>
    [[nodiscard]] Result<void> req(std::string_view key, T& out) const {
        Json* v = find(key);
        if (!v) return path_error(JsonPath(*path_, key), "required field is missing");
        return read(*v, JsonPath(*path_, key), out);
    }

    const JsonPath& path() const { return *path_; }

private:
    Json* obj_;
    const JsonPath* path_;
};

[[nodiscard]] Result<ObjectReader> as_object(Json& j, const JsonPath& p);

}  // namespace berth::spec::detail
