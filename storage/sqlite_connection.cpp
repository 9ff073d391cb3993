// The SQLite engine (connection.h).
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "storage/connection.h"
#include "storage/sealed_vfs.h"
#include "storage/storage_fault.h"

namespace irt::storage::detail {

namespace {

// The connection's last error as a StorageFault (storage_fault.h), if it is one:
// the one mapping of SQLite's codes.
std::optional<StorageFault> sqlite_fault(sqlite3* db) {
  const int os_errno = sqlite3_system_errno(db);
  switch (sqlite3_extended_errcode(db) & 0xff) {  // the primary code of an extended one
    case SQLITE_FULL: return StorageFault::disk_full;
    case SQLITE_READONLY: return StorageFault::read_only;
    case SQLITE_IOERR:
      // A write the file system refused for want of space or of write access
      // comes back from some paths as an I/O error: say which.
      if (os_errno == ENOSPC || os_errno == EDQUOT) return StorageFault::disk_full;
      if (os_errno == EROFS || os_errno == EACCES || os_errno == EPERM) return StorageFault::read_only;
      return StorageFault::io_error;
    default: return std::nullopt;
  }
}

// Throws StorageFaultError for a fault of the disk, StorageError for anything else.
[[noreturn]] void throw_sqlite_error(sqlite3* db, const std::string& message) {
  if (auto fault = sqlite_fault(db)) throw StorageFaultError(message, *fault);
  throw StorageError(message);
}

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  if (!db) throw StorageError(what + ": out of memory");
  throw_sqlite_error(db, what + ": " + sqlite3_errmsg(db));
}
void check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK) fail(db, what);
}

class SqliteCursor final : public Cursor {
 public:
  // `in_use` set: the statement is the connection's kept one for its SQL, and
  // is reset and handed back (in_use cleared) instead of finalized.
  SqliteCursor(sqlite3* db, sqlite3_stmt* stmt, bool* in_use = nullptr) : db_(db), stmt_(stmt), in_use_(in_use) {}
  ~SqliteCursor() override {
    if (!in_use_) {
      sqlite3_finalize(stmt_);
      return;
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  }

  void bind_int64(int index, std::int64_t v) override { check(db_, sqlite3_bind_int64(stmt_, index, v), "bind"); }
  void bind_double(int index, double v) override { check(db_, sqlite3_bind_double(stmt_, index, v), "bind"); }
  void bind_text(int index, std::string_view v) override {
    check(db_, sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), "bind");
  }
  void bind_blob(int index, BlobView v) override {
    // A zero-length blob must still be a blob, not NULL.
    static const std::uint8_t kEmpty = 0;
    check(db_, sqlite3_bind_blob64(stmt_, index, v.empty() ? &kEmpty : v.data(), v.size(), SQLITE_TRANSIENT),
          "bind");
  }
  void bind_null(int index) override { check(db_, sqlite3_bind_null(stmt_, index), "bind"); }

  bool step() override {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "";
    sqlite3_reset(stmt_);
    fail(db_, "SQL failed (" + sql.substr(0, 80) + ")");
  }
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  bool is_null(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t int64(int col) const override { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const override { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const override {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  Blob blob(int col) const override {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
    return p ? Blob(p, p + sqlite3_column_bytes(stmt_, col)) : Blob();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
};

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, kept] : kept_) sqlite3_finalize(kept.stmt);
    sqlite3_close_v2(db_);
  }

  Engine engine() const override { return Engine::sqlite; }

  void exec(std::string_view sql) override {
    std::string s(sql);
    char* err = nullptr;
    if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw_sqlite_error(db_, "SQL failed (" + s.substr(0, 80) + "): " + msg);
    }
  }

  // The statement kept for `sql` when its previous Cursor is gone; a fresh one
  // otherwise (the SQL is in use twice at once, or kMaxKept other texts are
  // kept). Parsing the same SQL on every call was an eighth of a node
  // operation's instructions.
  std::unique_ptr<Cursor> prepare(std::string_view sql) override {
    auto it = kept_.find(sql);
    if (it != kept_.end() && !it->second.in_use) {
      it->second.in_use = true;
      return std::make_unique<SqliteCursor>(db_, it->second.stmt, &it->second.in_use);
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                           nullptr) != SQLITE_OK)
      fail(db_, "cannot prepare (" + std::string(sql.substr(0, 80)) + ")");
    if (it != kept_.end() || kept_.size() >= kMaxKept) return std::make_unique<SqliteCursor>(db_, stmt);
    auto& kept = kept_[std::string(sql)];
    kept = {stmt, true};
    return std::make_unique<SqliteCursor>(db_, stmt, &kept.in_use);
  }

  std::int64_t last_insert_id() override { return sqlite3_last_insert_rowid(db_); }
  int changes() const override { return sqlite3_changes(db_); }
  bool in_transaction() const override { return sqlite3_get_autocommit(db_) == 0; }

  void begin(Durability durability) override {
    // The synchronous level is read at COMMIT; it cannot change inside a transaction.
    if (durability == Durability::deferred) exec("PRAGMA synchronous=NORMAL");
    exec("BEGIN IMMEDIATE");
  }

  // A deferred BEGIN takes no lock; in WAL mode the first read fixes the
  // snapshot every later statement of the transaction sees.
  void begin_read() override {
    exec("BEGIN DEFERRED");
    exec("SELECT count(*) FROM sqlite_master");
  }

  void end(bool commit, Durability durability) override {
    if (commit) {
      exec("COMMIT");
    } else {
      try {
        exec("ROLLBACK");
      } catch (const StorageError&) {
        // Already rolled back by SQLite (e.g. after SQLITE_FULL); nothing more to undo.
      }
    }
    // Cannot fail outside a transaction; and if it did, the next open sets FULL again.
    if (durability == Durability::deferred && !in_transaction()) try {
        exec("PRAGMA synchronous=FULL");
      } catch (const StorageError&) {
      }
  }

  // One SQLite file has one writer process (the node or the hub); a second
  // one would wait at BEGIN IMMEDIATE and then find the version moved on.
  void lock_migrations(bool) override {}
  std::string schema_sql(const Migration& m) const override { return m.sql; }
  std::string_view tables_sql() const override {
    return "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
           "ORDER BY name";
  }

 private:
  static constexpr std::size_t kMaxKept = 128;
  struct Kept {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  sqlite3* db_;
  // By SQL text; map nodes do not move, so a cursor may point at its in_use.
  std::map<std::string, Kept, std::less<>> kept_;
};

}  // namespace

shared::Result<Opened> open_sqlite(const std::filesystem::path& file, const Database::Options& options) {
  // Only a missing file is touched here: closing a descriptor of a file this
  // process has open in SQLite would drop SQLite's locks on it.
  std::error_code ec;
  if (options.create && !std::filesystem::exists(file, ec)) {
    // SQLite would create the file 0644 (less the umask) and gives its -wal
    // and -shm files the database file's mode: creating it 0600 first keeps
    // all three private to the account that runs the program. An existing
    // file keeps its mode.
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return shared::make_error(shared::Errc::unavailable,
                                "cannot create database " + file.string() + ": " + std::strerror(errno) +
                                    "; check that the data directory exists and is writable");
    ::close(fd);
  }
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (options.create ? SQLITE_OPEN_CREATE : 0);
  int rc = options.sealing_key ? sqlite3_open_v2(sealed_uri(file, *options.sealing_key).c_str(), &db,
                                                 flags | SQLITE_OPEN_URI, sealed_vfs_name())
                               : sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return shared::make_error(shared::Errc::unavailable,
                              "cannot open database " + file.string() + ": " + msg +
                                  "; check that the data directory exists and is writable");
  }
  const FileKind kind = sqlite_file_kind(db);
  if ((options.sealing_key && kind == FileKind::clear) || (!options.sealing_key && kind == FileKind::sealed)) {
    sqlite3_close(db);
    return shared::make_error(shared::Errc::invalid_input,
                              "database " + file.string() +
                                  (options.sealing_key ? " is stored in clear, and this program keeps it sealed; "
                                                         "seal it first (seal_sqlite_database)"
                                                       : " is sealed; it opens only with its key"));
  }
  // SQLite opens a file it may not write read-only without a word; every
  // write would then fail. Say so now, with the fix.
  if (sqlite3_db_readonly(db, "main") == 1) {
    sqlite3_close(db);
    return shared::make_error(shared::Errc::unavailable,
                              "the database is read-only: " + file.string() +
                                  " cannot be written; make the data directory and its files writable by this "
                                  "account, or remount the disk read-write");
  }
  auto connection = std::make_unique<SqliteConnection>(db);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  try {
    if (options.sealing_key) {
      // Nothing of a sealed database may reach the disk in clear: temporary
      // tables and statement journals stay in memory. A new file is given the
      // page size and reserve its sealing needs, and the mark that says it is sealed.
      connection->exec("PRAGMA temp_store=MEMORY;");
      if (kind == FileKind::missing_or_empty) {
        int reserve = kSealedReserve;
        check(db, sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve), "reserve bytes");
        connection->exec(sealed_file_setup());
      }
    }
    connection->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    // Reading the schema detects a file that is not a database at all.
    connection->exec("SELECT count(*) FROM sqlite_master;");
  } catch (const StorageError& e) {
    if (options.sealing_key && sqlite3_extended_errcode(db) == SQLITE_IOERR_DATA)
      return shared::make_error(shared::Errc::integrity,
                                "database " + file.string() +
                                    " does not open under its key: the key is not this database's, or the file was "
                                    "edited; restore it from backup");
    return shared::make_error(shared::Errc::integrity, "database " + file.string() + " cannot be read (" +
                                                           e.what() + "); restore it from backup");
  }
  return Opened{std::move(connection), file.string()};
}

}  // namespace irt::storage::detail
