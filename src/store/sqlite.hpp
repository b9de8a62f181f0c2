// The little of SQLite the stores use: one-shot SQL and prepared statements that finalize themselves. Errors
// name the statement and SQLite's message.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"

namespace berth::store::sqlite {

// The statement and SQLite's last error on `db`.
inline std::unexpected<Error> failure(sqlite3* db, std::string_view sql) {
    return std::unexpected(Error(0, fmt::format("sqlite: {}: {}", sql, sqlite3_errmsg(db))));
}

// Runs SQL without results (schema, pragmas, BEGIN/COMMIT).
inline Result<void> exec(sqlite3* db, const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        std::string text = msg ? msg : sqlite3_errmsg(db);
        sqlite3_free(msg);
        return fail("sqlite: {}: {}", sql, text);
    }
    return {};
}

// A prepared statement, finalized on scope exit. Binds are 1-based, columns 0-based, like SQLite's.
class Stmt {
public:
    static Result<Stmt> prepare(sqlite3* db, const char* sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) return failure(db, sql);
        return Stmt(db, s);
    }
    Stmt(Stmt&& o) noexcept : db_(o.db_), s_(std::exchange(o.s_, nullptr)) {}
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    Stmt& operator=(Stmt&&) = delete;
    ~Stmt() {
        if (s_) sqlite3_finalize(s_);
    }

    Stmt& text(int i, std::string_view v) {
        sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& blob(int i, std::string_view v) {
        sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& int64(int i, int64_t v) {
        sqlite3_bind_int64(s_, i, v);
        return *this;
    }

    // SQLite's result code of one step: SQLITE_ROW, SQLITE_DONE or an error (for callers that tell errors apart,
    // e.g. SQLITE_CONSTRAINT).
    int step_code() { return sqlite3_step(s_); }
    // true: a row is there; false: done; an error otherwise.
    Result<bool> step() {
        int r = sqlite3_step(s_);
        if (r == SQLITE_ROW) return true;
        if (r == SQLITE_DONE) return false;
        return failure(db_, sql());
    }
    // Steps once (a statement without rows) and makes the statement ready to be bound and run again.
    Result<void> run() {
        BERTH_TRY(step());
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
        return {};
    }

    // A TEXT or BLOB column's bytes as they are stored ("" for NULL).
    std::string col_text(int i) const {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, i));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
    }
    int64_t col_int64(int i) const { return sqlite3_column_int64(s_, i); }
    const char* sql() const { return sqlite3_sql(s_); }

private:
    Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
    sqlite3* db_;
    sqlite3_stmt* s_;
};

}  // namespace berth::store::sqlite
