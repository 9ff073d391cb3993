#include "storage/database.h"

#include <optional>
#include <utility>

#include "storage/connection.h"
#include "storage/storage_fault.h"

namespace irt::storage {

std::optional<shared::Error> storage_refusal(const std::exception& e, std::string_view program) {
  const auto* fault = dynamic_cast<const StorageFaultError*>(&e);
  if (!fault) return std::nullopt;
  const std::string who(program);
  const std::string resumes = "; nothing was recorded. Retry once it is fixed: " + who + " resumes without a restart";
  switch (fault->fault) {
    case StorageFault::disk_full:
      return shared::make_error(shared::Errc::unavailable,
                                "disk full: the disk holding " + who + "'s database has no space left" + resumes +
                                    " (free space on that disk, or move the data directory to a larger one)");
    case StorageFault::read_only:
      return shared::make_error(shared::Errc::unavailable,
                                "the database is read-only: " + who + " cannot write its data directory" + resumes +
                                    " (make the directory and its files writable by the account running " + who +
                                    ", or remount the disk read-write)");
    case StorageFault::io_error:
      return shared::make_error(shared::Errc::unavailable,
                                "disk I/O error: the disk holding " + who + "'s database failed a read or write" +
                                    resumes + " (check the disk and the system log; then run '" + who + " verify')");
  }
  return std::nullopt;
}

// ---- Statement

Statement::Statement(std::unique_ptr<detail::Cursor> cursor) : cursor_(std::move(cursor)) {}
Statement::~Statement() = default;
Statement::Statement(Statement&& o) noexcept = default;

Statement& Statement::bind(int index, std::int64_t v) {
  cursor_->bind_int64(index, v);
  return *this;
}
Statement& Statement::bind(int index, double v) {
  cursor_->bind_double(index, v);
  return *this;
}
Statement& Statement::bind(int index, std::string_view v) {
  cursor_->bind_text(index, v);
  return *this;
}
Statement& Statement::bind(int index, BlobView v) {
  cursor_->bind_blob(index, v);
  return *this;
}
Statement& Statement::bind_null(int index) {
  cursor_->bind_null(index);
  return *this;
}

bool Statement::step() { return cursor_->step(); }

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() { cursor_->reset(); }

bool Statement::is_null(int col) const { return cursor_->is_null(col); }
std::int64_t Statement::int64(int col) const { return cursor_->int64(col); }
double Statement::real(int col) const { return cursor_->real(col); }
std::string Statement::text(int col) const { return cursor_->text(col); }
Blob Statement::blob(int col) const { return cursor_->blob(col); }

// ---- Database

Database::Database(std::unique_ptr<detail::Connection> connection, std::string label)
    : connection_(std::move(connection)), label_(std::move(label)) {}
Database::~Database() = default;
Database::Database(Database&& o) noexcept = default;
Database& Database::operator=(Database&& o) noexcept = default;

shared::Result<Database> Database::open(const std::filesystem::path& file, const Options& options) {
  auto opened = detail::open_sqlite(file, options);
  if (!opened) return opened.error();
  return Database(std::move(opened->connection), std::move(opened->label));
}

shared::Result<Database> Database::open_postgresql(const std::string& url) {
  auto opened = detail::open_postgresql(url);
  if (!opened) return opened.error();
  return Database(std::move(opened->connection), std::move(opened->label));
}

bool Database::is_postgresql_url(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

shared::Result<Database> Database::open_location(const std::string& location, const Options& options) {
  return is_postgresql_url(location) ? open_postgresql(location) : open(location, options);
}

std::string Database::redact(const std::string& location) {
  return is_postgresql_url(location) ? detail::redact_url(location) : location;
}

std::vector<std::string> Database::tables() {
  auto st = prepare(connection_->tables_sql());
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

void Database::exec(std::string_view sql) { connection_->exec(sql); }
Statement Database::prepare(std::string_view sql) { return Statement(connection_->prepare(sql)); }
std::int64_t Database::last_insert_rowid() const { return connection_->last_insert_id(); }
int Database::changes() const { return connection_->changes(); }
bool Database::in_transaction() const { return connection_->in_transaction(); }
Engine Database::engine() const { return connection_->engine(); }

int Database::schema_version(std::string_view component) {
  exec("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)");
  auto st = prepare("SELECT version FROM schema_version WHERE component = ?");
  st.bind(1, component);
  return st.step() ? static_cast<int>(st.int64(0)) : 0;
}

shared::Status Database::migrate(std::string_view component, const std::vector<Migration>& migrations) {
  int known = migrations.empty() ? 0 : migrations.back().version;
  auto too_new = [&](int current) {
    return shared::make_error(shared::Errc::conflict,
                              label_ + " holds " + std::string(component) + " schema version " +
                                  std::to_string(current) + ", newer than this program knows (" +
                                  std::to_string(known) + "); install the newer release to open it");
  };
  // Another process sharing the database (hub processes on one PostgreSQL)
  // may be migrating too: one at a time, each re-reading the version. Inside
  // the caller's transaction the writer lock, already held, does that, and
  // each step is a savepoint of it, kept only if the caller commits; taking
  // the migration lock there too would take the two locks in the other order
  // than a migration outside a transaction does, and two such processes could
  // deadlock.
  struct Exclusive {
    detail::Connection& c;
    explicit Exclusive(detail::Connection& c) : c(c) { c.lock_migrations(true); }
    ~Exclusive() {
      try {
        c.lock_migrations(false);
      } catch (const StorageError&) {
        // A lost connection lets go of the lock with the session.
      }
    }
  };
  const bool outer = in_transaction();
  std::optional<Exclusive> exclusive;
  if (!outer) exclusive.emplace(*connection_);
  const int current = schema_version(component);
  if (current > known) return too_new(current);
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    std::optional<Transaction> tx;
    std::optional<Savepoint> part;
    if (outer) part.emplace(*this);
    else tx.emplace(*this);
    exec(connection_->schema_sql(m));
    if (m.code) m.code(*this);
    auto st = prepare("INSERT INTO schema_version(component, version) VALUES(?, ?) "
                      "ON CONFLICT(component) DO UPDATE SET version = excluded.version");
    st.bind_all(component, m.version).run();
    if (part) part->release();
    else tx->commit();
  }
  return {};
}

// ---- Transaction

Transaction::Transaction(Database& db, Durability durability) : db_(&db), durability_(durability) {
  db_->connection().begin(durability_);
}

Transaction::~Transaction() {
  if (!done_) db_->connection().end(false, durability_);
}

void Transaction::commit() {
  db_->connection().end(true, durability_);
  done_ = true;
}

ReadSnapshot::ReadSnapshot(Database& db) : db_(&db) { db_->connection().begin_read(); }

ReadSnapshot::~ReadSnapshot() { db_->connection().end(false, Durability::full); }

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
