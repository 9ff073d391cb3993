#include "storage/database.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace irt::storage {

namespace {
[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw StorageError(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}
void check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK) fail(db, what);
}
}  // namespace

// ---- Statement

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)) {}

Statement& Statement::bind(int index, std::int64_t v) {
  check(db_, sqlite3_bind_int64(stmt_, index, v), "bind");
  return *this;
}
Statement& Statement::bind(int index, double v) {
  check(db_, sqlite3_bind_double(stmt_, index, v), "bind");
  return *this;
}
Statement& Statement::bind(int index, std::string_view v) {
  check(db_, sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), "bind");
  return *this;
}
Statement& Statement::bind(int index, BlobView v) {
  // A zero-length blob must still be a blob, not NULL.
  static const std::uint8_t kEmpty = 0;
  check(db_, sqlite3_bind_blob64(stmt_, index, v.empty() ? &kEmpty : v.data(), v.size(), SQLITE_TRANSIENT), "bind");
  return *this;
}
Statement& Statement::bind_null(int index) {
  check(db_, sqlite3_bind_null(stmt_, index), "bind");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "";
  sqlite3_reset(stmt_);
  fail(db_, "SQL failed (" + sql.substr(0, 80) + ")");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
std::int64_t Statement::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::real(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}
Blob Statement::blob(int col) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  return p ? Blob(p, p + sqlite3_column_bytes(stmt_, col)) : Blob();
}

// ---- Database

shared::Result<Database> Database::open(const std::filesystem::path& file, const Options& options) {
  if (options.create) {
    // SQLite would create the file 0644 (less the umask) and gives its -wal
    // and -shm files the database file's mode: creating it 0600 first keeps
    // all three private to the account that runs the program. An existing
    // file keeps its mode.
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return shared::make_error(shared::Errc::unavailable, "cannot create database " + file.string() + ": " +
                                                               std::strerror(errno) +
                                                               "; check that the data directory exists and is writable");
    ::close(fd);
  }
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (options.create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return shared::make_error(shared::Errc::unavailable,
                              "cannot open database " + file.string() + ": " + msg +
                                  "; check that the data directory exists and is writable");
  }
  Database d(db, file);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  try {
    d.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    // Reading the schema detects a file that is not a database at all.
    d.exec("SELECT count(*) FROM sqlite_master;");
  } catch (const StorageError& e) {
    return shared::make_error(shared::Errc::integrity, "database " + file.string() + " cannot be read (" +
                                                           e.what() + "); restore it from backup");
  }
  return d;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

Database::Database(Database&& o) noexcept : db_(std::exchange(o.db_, nullptr)), path_(std::move(o.path_)) {}

Database& Database::operator=(Database&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(o.db_, nullptr);
    path_ = std::move(o.path_);
  }
  return *this;
}

void Database::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw StorageError("SQL failed (" + s.substr(0, 80) + "): " + msg);
  }
}

Statement Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                         nullptr) != SQLITE_OK)
    fail(db_, "cannot prepare (" + std::string(sql.substr(0, 80)) + ")");
  return Statement(db_, stmt);
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Database::changes() const { return sqlite3_changes(db_); }
bool Database::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

int Database::schema_version(std::string_view component) {
  exec("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)");
  auto st = prepare("SELECT version FROM schema_version WHERE component = ?");
  st.bind(1, component);
  return st.step() ? static_cast<int>(st.int64(0)) : 0;
}

shared::Status Database::migrate(std::string_view component, const std::vector<Migration>& migrations) {
  int current = schema_version(component);
  int known = migrations.empty() ? 0 : migrations.back().version;
  if (current > known)
    return shared::make_error(shared::Errc::conflict,
                              path_.string() + " holds " + std::string(component) + " schema version " +
                                  std::to_string(current) + ", newer than this program knows (" +
                                  std::to_string(known) + "); install the newer release to open it");
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    Transaction tx(*this);
    exec(m.sql);
    if (m.code) m.code(*this);
    auto st = prepare("INSERT INTO schema_version(component, version) VALUES(?, ?) "
                      "ON CONFLICT(component) DO UPDATE SET version = excluded.version");
    st.bind_all(component, m.version).run();
    tx.commit();
  }
  return {};
}

// ---- Transaction

Transaction::Transaction(Database& db, Durability durability) : db_(&db), durability_(durability) {
  // The synchronous level is read at COMMIT; it cannot change inside a transaction.
  if (durability_ == Durability::deferred) db_->exec("PRAGMA synchronous=NORMAL");
  db_->exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_) {
    try {
      db_->exec("ROLLBACK");
    } catch (...) {
      // The connection is already rolled back (e.g. after SQLITE_FULL); nothing more to undo.
    }
  }
  if (durability_ == Durability::deferred) {
    try {
      db_->exec("PRAGMA synchronous=FULL");
    } catch (...) {
      // Cannot fail outside a transaction; and if it did, the next open sets FULL again.
    }
  }
}

void Transaction::commit() {
  db_->exec("COMMIT");
  done_ = true;
}

Savepoint::Savepoint(Database& db) : db_(&db) { db_->exec("SAVEPOINT part"); }

Savepoint::~Savepoint() {
  if (done_) return;
  try {
    db_->exec("ROLLBACK TO part");
    db_->exec("RELEASE part");
  } catch (...) {
    // The whole transaction was already rolled back by SQLite; its owner sees that at commit.
  }
}

void Savepoint::release() {
  db_->exec("RELEASE part");
  done_ = true;
}

}  // namespace irt::storage
