#include "store/image_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <time.h>

#include <algorithm>

#include "common/fs.hpp"
#include "common/unique_fd.hpp"
#include "image/reference.hpp"
#include "store/sqlite.hpp"

namespace berth::store {

using image::Digest;

namespace {

// How long a writer waits for another process's transaction before giving up.
constexpr int kBusyTimeoutMs = 30000;

using sqlite::exec;
using sqlite::Stmt;

// An IMMEDIATE transaction (takes the write lock up front, so two writers never deadlock upgrading a read
// transaction); rolled back unless committed.
class Tx {
public:
    static Result<Tx> begin(sqlite3* db) {
        BERTH_TRY(exec(db, "BEGIN IMMEDIATE"));
        return Tx(db);
    }
    Tx(Tx&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
    ~Tx() {
        if (db_) (void)exec(db_, "ROLLBACK");
    }
    Result<void> commit() {
        BERTH_TRY(exec(db_, "COMMIT"));
        db_ = nullptr;
        return {};
    }

private:
    explicit Tx(sqlite3* db) : db_(db) {}
    sqlite3* db_;
};

constexpr const char* kSchemaV1 = R"(
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    config TEXT NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX images_manifest ON images(manifest_digest);
CREATE TABLE image_names (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX image_names_image ON image_names(image_id);
CREATE TABLE image_snapshots (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_snapshots_chain ON image_snapshots(chain_id);
CREATE TABLE image_blobs (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (image_id, digest)
);
CREATE INDEX image_blobs_digest ON image_blobs(digest);
)";

// Version 2: holders (berthd's containers) keep the snapshots and blobs of the image they were created from, even
// after the image record is removed. Copied at hold() time, so they outlive the image's rows.
constexpr const char* kSchemaV2 = R"(
CREATE TABLE holder_snapshots (
    holder TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (holder, chain_id)
);
CREATE TABLE holder_blobs (
    holder TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (holder, digest)
);
)";

Result<std::string> normalize_name(std::string_view name) {
    BERTH_ASSIGN(auto ref, image::ImageReference::parse(name));
    return ref.string();
}

bool is_hex_prefix(std::string_view s) {
    return !s.empty() && s.size() <= 64 &&
           std::ranges::all_of(s, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::set<Digest>> digest_column(sqlite3* db, const char* sql) {
    BERTH_ASSIGN(Stmt s, Stmt::prepare(db, sql));
    std::set<Digest> out;
    for (;;) {
        BERTH_ASSIGN(bool row, s.step());
        if (!row) return out;
        BERTH_ASSIGN(Digest d, Digest::parse(s.col_text(0)));
        out.insert(std::move(d));
    }
}

}  // namespace

Result<ImageStore> ImageStore::open(const std::string& root) {
    const std::string path = path_join(root, "metadata.db");
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("open {}", path))); };
    if (auto r = mkdir_all(root, 0700); !r) return ctx(std::move(r).error());
    // Opening is serialized between processes: two first opens of a new file racing to switch it to WAL get
    // SQLITE_BUSY from SQLite without its busy handler being asked (seen: one of two writers failing at once).
    // The lock covers only the set-up below; the connection itself then relies on WAL and busy_timeout.
    const std::string lock_path = path + ".open-lock";
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock) return ctx(fail_sys("open {}", lock_path).error());
    while (::flock(lock.get(), LOCK_EX) < 0)
        if (errno != EINTR) return ctx(fail_sys("lock {}", lock_path).error());
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<sqlite3, DbClose> db(raw);
    if (rc != SQLITE_OK) return ctx(Error(0, raw ? sqlite3_errmsg(raw) : "out of memory"));
    sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
    // WAL: readers never block the writer nor it them. synchronous=FULL: a committed put survives a power loss,
    // as the blobs and snapshots it names do (they are fsynced before they are recorded).
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"})
        if (auto r = exec(db.get(), pragma); !r) return ctx(std::move(r).error());

    auto tx = Tx::begin(db.get());
    if (!tx) return ctx(std::move(tx).error());
    auto version = Stmt::prepare(db.get(), "PRAGMA user_version");
    if (!version) return ctx(std::move(version).error());
    auto row = version->step();
    if (!row) return ctx(std::move(row).error());
    const int64_t have = version->col_int64(0);
    if (have > kSchemaVersion)
        return ctx(Error(0, fmt::format("schema version {} is newer than this berth's ({}): written by a newer "
                                        "berth, refusing to use it",
                                        have, kSchemaVersion)));
    if (have == 0) {
        // A new file (or one without our tables): create the schema in the same transaction that sets the
        // version, so two processes opening a new store at once create it once.
        if (auto r = exec(db.get(), kSchemaV1); !r) return ctx(std::move(r).error());
    }
    if (have < 2) {
        if (auto r = exec(db.get(), kSchemaV2); !r) return ctx(std::move(r).error());
        if (auto r = exec(db.get(), "PRAGMA user_version=2"); !r) return ctx(std::move(r).error());
    }
    if (auto r = tx->commit(); !r) return ctx(std::move(r).error());
    return ImageStore(path, std::move(db));
}

Result<ImageRecord> ImageStore::put(const ImageRecord& in) {
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("put image {}", in.id.string()))); };
    if (!in.id.valid() || !in.manifest_digest.valid()) return ctx(Error(EINVAL, "id and manifest digest required"));
    std::vector<std::string> names;
    for (const auto& n : in.names) {
        auto norm = normalize_name(n);
        if (!norm) return ctx(std::move(norm).error());
        names.push_back(std::move(*norm));
    }
    sqlite3* db = db_.get();
    auto body = [&]() -> Result<void> {
        BERTH_ASSIGN(Tx tx, Tx::begin(db));
        BERTH_ASSIGN(Stmt ins, Stmt::prepare(db, R"(
            INSERT INTO images (id, manifest_digest, manifest_media_type, config, size, created)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(id) DO UPDATE SET manifest_digest = ?2, manifest_media_type = ?3, config = ?4, size = ?5)"));
        const std::string id = in.id.string();
        BERTH_TRY(ins.text(1, id)
                      .text(2, in.manifest_digest.string())
                      .text(3, in.manifest_media_type)
                      .text(4, in.config_json)
                      .int64(5, static_cast<int64_t>(in.size))
                      .int64(6, static_cast<int64_t>(::time(nullptr)))
                      .run());
        BERTH_ASSIGN(Stmt name, Stmt::prepare(db, R"(
            INSERT INTO image_names (name, image_id) VALUES (?1, ?2)
            ON CONFLICT(name) DO UPDATE SET image_id = ?2)"));
        for (const auto& n : names) BERTH_TRY(name.text(1, n).text(2, id).run());
        BERTH_ASSIGN(Stmt del_snap, Stmt::prepare(db, "DELETE FROM image_snapshots WHERE image_id = ?1"));
        BERTH_TRY(del_snap.text(1, id).run());
        BERTH_ASSIGN(Stmt snap, Stmt::prepare(db, "INSERT INTO image_snapshots VALUES (?1, ?2, ?3)"));
        for (size_t i = 0; i < in.chain_ids.size(); ++i)
            BERTH_TRY(snap.text(1, id).int64(2, static_cast<int64_t>(i)).text(3, in.chain_ids[i].string()).run());
        BERTH_ASSIGN(Stmt del_blob, Stmt::prepare(db, "DELETE FROM image_blobs WHERE image_id = ?1"));
        BERTH_TRY(del_blob.text(1, id).run());
        BERTH_ASSIGN(Stmt blob, Stmt::prepare(db, "INSERT OR IGNORE INTO image_blobs VALUES (?1, ?2)"));
        for (const auto& b : in.blobs) BERTH_TRY(blob.text(1, id).text(2, b.string()).run());
        return tx.commit();
    };
    if (auto r = body(); !r) return ctx(std::move(r).error());
    auto out = load(in.id.string());
    if (!out) return ctx(std::move(out).error());
    return out;
}

Result<ImageRecord> ImageStore::load(const std::string& id) const {
    sqlite3* db = db_.get();
    BERTH_ASSIGN(Stmt s, Stmt::prepare(db, R"(SELECT id, manifest_digest, manifest_media_type, config, size, created
                                              FROM images WHERE id = ?1)"));
    s.text(1, id);
    BERTH_ASSIGN(bool row, s.step());
    if (!row) return fail_errno(ENOENT, "image {}", id);
    ImageRecord rec;
    BERTH_ASSIGN(rec.id, Digest::parse(s.col_text(0)));
    BERTH_ASSIGN(rec.manifest_digest, Digest::parse(s.col_text(1)));
    rec.manifest_media_type = s.col_text(2);
    rec.config_json = s.col_text(3);
    rec.size = static_cast<uint64_t>(s.col_int64(4));
    rec.created = s.col_int64(5);
    BERTH_ASSIGN(Stmt n, Stmt::prepare(db, "SELECT name FROM image_names WHERE image_id = ?1 ORDER BY name"));
    n.text(1, id);
    for (;;) {
        BERTH_ASSIGN(bool more, n.step());
        if (!more) break;
        rec.names.push_back(n.col_text(0));
    }
    BERTH_ASSIGN(Stmt c,
                 Stmt::prepare(db, "SELECT chain_id FROM image_snapshots WHERE image_id = ?1 ORDER BY position"));
    c.text(1, id);
    for (;;) {
        BERTH_ASSIGN(bool more, c.step());
        if (!more) break;
        BERTH_ASSIGN(Digest d, Digest::parse(c.col_text(0)));
        rec.chain_ids.push_back(std::move(d));
    }
    BERTH_ASSIGN(Stmt b, Stmt::prepare(db, "SELECT digest FROM image_blobs WHERE image_id = ?1 ORDER BY digest"));
    b.text(1, id);
    for (;;) {
        BERTH_ASSIGN(bool more, b.step());
        if (!more) break;
        BERTH_ASSIGN(Digest d, Digest::parse(b.col_text(0)));
        rec.blobs.push_back(std::move(d));
    }
    return rec;
}

Result<ImageRecord> ImageStore::get(std::string_view key) const {
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("image {}", key))); };
    sqlite3* db = db_.get();
    auto one = [&](const char* sql, const std::string& arg) -> Result<std::vector<std::string>> {
        BERTH_ASSIGN(Stmt s, Stmt::prepare(db, sql));
        s.text(1, arg);
        std::vector<std::string> ids;
        for (;;) {
            BERTH_ASSIGN(bool row, s.step());
            if (!row) return ids;
            ids.push_back(s.col_text(0));
        }
    };
    // A read transaction: the lookup and the load see one state even while another process writes.
    if (auto r = exec(db, "BEGIN"); !r) return ctx(std::move(r).error());
    struct End {
        sqlite3* db;
        ~End() { (void)exec(db, "COMMIT"); }
    } end{db};

    std::string_view hex = key;
    if (hex.starts_with("sha256:")) hex.remove_prefix(7);
    if (!key.starts_with("sha256:")) {
        if (auto name = normalize_name(key)) {
            auto ids = one("SELECT image_id FROM image_names WHERE name = ?1", *name);
            if (!ids) return ctx(std::move(ids).error());
            if (!ids->empty()) return load(ids->front());
        }
    }
    if (hex.size() == 64) {
        auto ids = one("SELECT id FROM images WHERE manifest_digest = ?1 ORDER BY id", "sha256:" + std::string(hex));
        if (!ids) return ctx(std::move(ids).error());
        if (ids->size() == 1) return load(ids->front());
    }
    if (is_hex_prefix(hex)) {
        auto ids = one("SELECT id FROM images WHERE substr(id, 1, length(?1)) = ?1", "sha256:" + std::string(hex));
        if (!ids) return ctx(std::move(ids).error());
        if (ids->size() == 1) return load(ids->front());
        if (ids->size() > 1) return ctx(Error(0, fmt::format("ambiguous: {} images have this id prefix", ids->size())));
    }
    return ctx(Error(ENOENT, "no such image"));
}

Result<std::vector<ImageRecord>> ImageStore::list() const {
    sqlite3* db = db_.get();
    BERTH_TRY(exec(db, "BEGIN"));
    struct End {
        sqlite3* db;
        ~End() { (void)exec(db, "COMMIT"); }
    } end{db};
    BERTH_ASSIGN(Stmt s, Stmt::prepare(db, "SELECT id FROM images ORDER BY id"));
    std::vector<ImageRecord> out;
    for (;;) {
        BERTH_ASSIGN(bool row, s.step());
        if (!row) return out;
        BERTH_ASSIGN(ImageRecord rec, load(s.col_text(0)));
        out.push_back(std::move(rec));
    }
}

Result<void> ImageStore::remove_name(std::string_view name) {
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("remove name {}", name))); };
    auto norm = normalize_name(name);
    if (!norm) return ctx(std::move(norm).error());
    auto body = [&]() -> Result<void> {
        BERTH_ASSIGN(Tx tx, Tx::begin(db_.get()));
        BERTH_ASSIGN(Stmt s, Stmt::prepare(db_.get(), "DELETE FROM image_names WHERE name = ?1"));
        BERTH_TRY(s.text(1, *norm).run());
        if (sqlite3_changes(db_.get()) == 0) return fail_errno(ENOENT, "no image has it");
        return tx.commit();
    };
    if (auto r = body(); !r) return ctx(std::move(r).error());
    return {};
}

Result<ImageRecord> ImageStore::remove_image(const Digest& id) {
    auto ctx = [&](Error e) { return std::unexpected(std::move(e).wrap(fmt::format("remove image {}", id.string()))); };
    auto body = [&]() -> Result<ImageRecord> {
        BERTH_ASSIGN(Tx tx, Tx::begin(db_.get()));
        BERTH_ASSIGN(ImageRecord rec, load(id.string()));
        BERTH_ASSIGN(Stmt s, Stmt::prepare(db_.get(), "DELETE FROM images WHERE id = ?1"));
        BERTH_TRY(s.text(1, id.string()).run());
        BERTH_TRY(tx.commit());
        return rec;
    };
    auto r = body();
    if (!r) return ctx(std::move(r).error());
    return r;
}

Result<std::set<Digest>> ImageStore::referenced_blobs() const {
    return digest_column(db_.get(), "SELECT digest FROM image_blobs UNION SELECT digest FROM holder_blobs");
}

Result<std::set<Digest>> ImageStore::referenced_snapshots() const {
    return digest_column(db_.get(),
                         "SELECT chain_id FROM image_snapshots UNION SELECT chain_id FROM holder_snapshots");
}

Result<void> ImageStore::hold(std::string_view holder, const ImageRecord& rec) {
    auto body = [&]() -> Result<void> {
        BERTH_ASSIGN(Tx tx, Tx::begin(db_.get()));
        BERTH_ASSIGN(Stmt snap, Stmt::prepare(db_.get(), "INSERT OR IGNORE INTO holder_snapshots VALUES (?1, ?2)"));
        for (const auto& c : rec.chain_ids) BERTH_TRY(snap.text(1, holder).text(2, c.string()).run());
        BERTH_ASSIGN(Stmt blob, Stmt::prepare(db_.get(), "INSERT OR IGNORE INTO holder_blobs VALUES (?1, ?2)"));
        for (const auto& b : rec.blobs) BERTH_TRY(blob.text(1, holder).text(2, b.string()).run());
        return tx.commit();
    };
    BERTH_TRY_CTX(body(), "hold image {} for {}", rec.id.string(), holder);
    return {};
}

Result<void> ImageStore::release(std::string_view holder) {
    auto body = [&]() -> Result<void> {
        BERTH_ASSIGN(Tx tx, Tx::begin(db_.get()));
        BERTH_ASSIGN(Stmt s, Stmt::prepare(db_.get(), "DELETE FROM holder_snapshots WHERE holder = ?1"));
        BERTH_TRY(s.text(1, holder).run());
        BERTH_ASSIGN(Stmt b, Stmt::prepare(db_.get(), "DELETE FROM holder_blobs WHERE holder = ?1"));
        BERTH_TRY(b.text(1, holder).run());
        return tx.commit();
    };
    BERTH_TRY_CTX(body(), "release the image held by {}", holder);
    return {};
}

}  // namespace berth::store
