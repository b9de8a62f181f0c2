// Error and Result<T>: the return type of everything below src/cli that can fail.
//
// An Error carries the errno (0 when the failure is not a system call's) and a message that says what failed on
// what object. Context is prepended as the error travels up, so a caller reads
// "create container c1: mount /proc on /x/rootfs/proc: Operation not permitted".
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace berth {

class Error {
public:
    Error() = default;
    Error(int err, std::string message) : errno_(err), message_(std::move(message)) {}

    // errno of the failing system call, or 0.
    int code() const { return errno_; }
    // The full message, including strerror text when code() != 0.
    const std::string& message() const { return message_; }

    // Returns a copy with "context: " in front of the message.
    Error wrap(std::string_view context) const& { return Error(errno_, fmt::format("{}: {}", context, message_)); }
    Error wrap(std::string_view context) && {
        message_.insert(0, fmt::format("{}: ", context));
        return std::move(*this);
    }

private:
    int errno_ = 0;
    std::string message_;
};

template <typename T = void>
using Result = std::expected<T, Error>;

// A failure that is not a system call's: "what: why".
template <typename... Args>
[[nodiscard]] std::unexpected<Error> fail(fmt::format_string<Args...> f, Args&&... args) {
    return std::unexpected(Error(0, fmt::format(f, std::forward<Args>(args)...)));
}

// A system call's failure with an explicit errno: "what: strerror(err)".
template <typename... Args>
[[nodiscard]] std::unexpected<Error> fail_errno(int err, fmt::format_string<Args...> f, Args&&... args) {
    std::string msg = fmt::format(f, std::forward<Args>(args)...);
    msg += ": ";
    msg += std::system_category().message(err);
    return std::unexpected(Error(err, std::move(msg)));
}

// A system call's failure using the current errno.
template <typename... Args>
[[nodiscard]] std::unexpected<Error> fail_sys(fmt::format_string<Args...> f, Args&&... args) {
    return fail_errno(errno, f, std::forward<Args>(args)...);
}

// Evaluates a Result expression; on failure returns its error (optionally wrapped) from the enclosing function.
#define BERTH_TRY(expr)                                                                                             \
    do {                                                                                                            \
        if (auto berth_try_r_ = (expr); !berth_try_r_) return std::unexpected(std::move(berth_try_r_).error());    \
    } while (0)

#define BERTH_TRY_CTX(expr, ...)                                                                                    \
    do {                                                                                                            \
        if (auto berth_try_r_ = (expr); !berth_try_r_)                                                              \
            return std::unexpected(std::move(berth_try_r_).error().wrap(fmt::format(__VA_ARGS__)));                 \
    } while (0)

// Assigns the value of a Result expression to `lhs` (a declaration allowed) or returns its error.
#define BERTH_CONCAT_INNER_(a, b) a##b
#define BERTH_CONCAT_(a, b) BERTH_CONCAT_INNER_(a, b)
#define BERTH_ASSIGN(lhs, expr) BERTH_ASSIGN_IMPL_(BERTH_CONCAT_(berth_assign_r_, __LINE__), lhs, expr)
#define BERTH_ASSIGN_IMPL_(tmp, lhs, expr)                                                                          \
    auto tmp = (expr);                                                                                              \
    if (!tmp) return std::unexpected(std::move(tmp).error());                                                      \
    lhs = std::move(*tmp)

}  // namespace berth
