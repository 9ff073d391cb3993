// A small RAII layer over a SQL database, used by the node and the hub.
//
// - Database: one connection. SQLite (the node, and the hub by default) is
//   opened with WAL, foreign keys on, a busy timeout and synchronous=FULL;
//   PostgreSQL (the hub's other engine, `postgresql://...`) with its default
//   synchronous_commit=on. Either way a committed transaction survives power
//   loss: that is what "durable before acknowledged" means throughout the project.
// - SQL is written once, in SQLite's dialect where the two differ only in
//   spelling: '?' placeholders, INTEGER/BLOB/REAL columns, `INTEGER PRIMARY KEY`
//   for an id the database assigns (read back with last_insert_rowid()),
//   `ON CONFLICT ... DO ...` upserts. The PostgreSQL engine translates those
//   (connection.h); a migration whose text needs more gives its PostgreSQL
//   text beside it (Migration::postgresql).
// - Statement: a prepared statement; bind by position (1-based), step, read
//   columns (0-based). Raw SQL lives next to the code that owns the table.
//   SQLite keeps what it prepared, by SQL text, and hands it out again
//   (reset, bindings cleared) once the previous Statement is gone, so code
//   that prepares the same SQL on every call parses it once.
// - Transaction: the database's one writer (BEGIN IMMEDIATE on SQLite, an
//   advisory lock on PostgreSQL); rolls back unless commit() was called, so an
//   exception thrown inside leaves nothing half-written.
// - ReadSnapshot: a read-only view of the database as it was at its start
//   (SQLite's WAL read transaction; PostgreSQL REPEATABLE READ READ ONLY),
//   taking no writer lock, so writers go on while a long read runs.
// - Migrations: numbered, per component, recorded in table schema_version. A
//   file whose schema is newer than the binary knows is refused, unchanged.
//
// SQL failures (disk full, I/O error, a bug in a statement) throw StorageError:
// they are exceptional, and the caller's transaction rolls back. Expected
// failures (cannot open, schema too new) come back as a Result.
// Thread-safety: a Database and its statements belong to one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "shared/result.h"

namespace irt::storage {

namespace detail {
class Cursor;
class Connection;
}  // namespace detail

enum class Engine { sqlite, postgresql };

// full: the commit is on disk when commit() returns (synchronous=FULL; on
// PostgreSQL synchronous_commit=on); the only level for anything acknowledged
// to a user or another party.
// deferred: the commit is atomic but reaches the disk with the next full
// commit or checkpoint (synchronous=NORMAL in WAL; synchronous_commit=off).
// Only for state that is safe to lose and recompute, such as a cursor whose
// loss only causes an idempotent resend.
enum class Durability { full, deferred };

struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Blob = std::vector<std::uint8_t>;
// A key that seals a SQLite file's pages at rest (storage/sealed_vfs.h).
using SealingKey = std::array<std::uint8_t, 32>;
using BlobView = std::span<const std::uint8_t>;

// SQL integers are signed 64-bit; ids and counters held as uint64_t are bound through this.
inline std::int64_t sql_int(std::uint64_t v) { return static_cast<std::int64_t>(v); }

class Statement {
 public:
  explicit Statement(std::unique_ptr<detail::Cursor> cursor);
  ~Statement();
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;

  Statement& bind(int index, std::int64_t v);
  Statement& bind(int index, int v) { return bind(index, static_cast<std::int64_t>(v)); }
  Statement& bind(int index, double v);
  Statement& bind(int index, std::string_view v);
  Statement& bind(int index, const char* v) { return bind(index, std::string_view(v)); }
  Statement& bind(int index, const std::string& v) { return bind(index, std::string_view(v)); }
  Statement& bind(int index, BlobView v);
  Statement& bind(int index, const Blob& v) { return bind(index, BlobView(v)); }
  Statement& bind_null(int index);
  template <class T>
  Statement& bind(int index, const std::optional<T>& v) {
    return v ? bind(index, *v) : bind_null(index);
  }
  // Binds every argument in order, starting at 1.
  template <class... Ts>
  Statement& bind_all(const Ts&... vs) {
    int i = 0;
    (bind(++i, vs), ...);
    return *this;
  }

  bool step();  // true while a row is available; throws StorageError on failure
  void run();   // steps to completion
  void reset(); // ready to bind and step again

  bool is_null(int col) const;
  std::int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  Blob blob(int col) const;

 private:
  std::unique_ptr<detail::Cursor> cursor_;
};

class Database;

struct Migration {
  int version;      // 1, 2, 3, ... in order, never renumbered
  std::string sql;  // one or more statements
  // Optional: runs after `sql` in the same transaction, for a step SQL alone
  // cannot do (sealing a value under a key the program holds). It throws
  // StorageError to refuse, and then nothing of the step is kept.
  std::function<void(Database&)> code = {};
  // Optional: the step's text for PostgreSQL, when translating `sql` is not
  // enough (connection.h). Empty: `sql`, translated.
  std::string postgresql = {};
};

class Database {
 public:
  struct Options {
    int busy_timeout_ms = 5000;
    bool create = true;  // create the file if missing
    // SQLite only: every page of the file and of its WAL is sealed under this
    // key (storage/sealed_vfs.h). A missing or empty file is created sealed; a
    // clear one is refused, and seal_sqlite_database()
    // (storage/sqlite_backup.h) seals it. Ignored for PostgreSQL.
    const SealingKey* sealing_key = nullptr;
  };

  static shared::Result<Database> open(const std::filesystem::path& file, const Options& options);
  static shared::Result<Database> open(const std::filesystem::path& file) { return open(file, Options{}); }
  // A PostgreSQL database: "postgresql://user@host:port/dbname" (libpq's URI
  // form; a password belongs in ~/.pgpass or PGPASSWORD, never on a command line).
  static shared::Result<Database> open_postgresql(const std::string& url);
  // `location` is a postgresql:// (or postgres://) URL or else a file path.
  static shared::Result<Database> open_location(const std::string& location, const Options& options);
  static shared::Result<Database> open_location(const std::string& location) {
    return open_location(location, Options{});
  }
  static bool is_postgresql_url(std::string_view location);
  ~Database();
  Database(Database&& o) noexcept;
  Database& operator=(Database&& o) noexcept;
  Database(const Database&) = delete;

  void exec(std::string_view sql);  // statements without parameters
  Statement prepare(std::string_view sql);
  std::int64_t last_insert_rowid() const;
  int changes() const;
  bool in_transaction() const;  // a BEGIN is open on this connection
  Engine engine() const;
  // The database in messages: the file's path, or the URL without its password.
  const std::string& label() const { return label_; }
  // A location as label() names it: a URL's password replaced by ***.
  static std::string redact(const std::string& location);
  // The names of the tables the database holds (on PostgreSQL, in the schema
  // it works in: the first of its search path), in name order.
  std::vector<std::string> tables();

  // Brings `component`'s schema up to the last migration, each step in its own
  // transaction, or, called inside an open one, in a savepoint of it (so a
  // caller can make several components' migrations and more one all-or-nothing
  // step: irt-hub init). Refuses (and changes nothing) when the database's
  // schema is newer than `migrations` know, naming both versions.
  shared::Status migrate(std::string_view component, const std::vector<Migration>& migrations);
  int schema_version(std::string_view component);

  detail::Connection& connection() { return *connection_; }

 private:
  Database(std::unique_ptr<detail::Connection> connection, std::string label);
  std::unique_ptr<detail::Connection> connection_;
  std::string label_;
};

class Transaction {
 public:
  // One writer at a time per database, across every process that shares it,
  // on both engines: SQLite's BEGIN IMMEDIATE takes the file's write lock;
  // on PostgreSQL, BEGIN (READ COMMITTED) then a transaction-scoped advisory
  // lock held until COMMIT or ROLLBACK (postgresql_connection.cpp). Either way
  // a writer waits at the start, not at its first write, and what it reads
  // inside the transaction stays true until it commits: a read that decides a
  // write (the next free slot, the Merkle frontier) belongs inside it. Several
  // hub processes on one PostgreSQL rely on this (docs/architecture.md, hub).
  // Transactions do not nest: one begun inside another throws StorageError on
  // both engines (a part of a transaction that can fail alone is a Savepoint).
  explicit Transaction(Database& db, Durability durability = Durability::full);
  ~Transaction();  // ROLLBACK unless committed
  void commit();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  Database* db_;
  Durability durability_;
  bool done_ = false;
};

// A consistent read of many statements that never holds the writer lock: an
// export or a report reads every table as of one moment while nodes' pushes
// and other writers commit beside it. SQLite (WAL) pins the snapshot at
// begin with a first read; PostgreSQL: BEGIN ISOLATION LEVEL REPEATABLE READ,
// READ ONLY. Writing inside it fails (PostgreSQL refuses; SQLite would
// need the write lock, which a snapshot never takes). Ends with a rollback;
// it does not nest inside a Transaction or another snapshot.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(Database& db);
  ~ReadSnapshot();
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  Database* db_;
};

// A part of an open transaction that can be undone on its own (SAVEPOINT):
// release() keeps its changes in the transaction; otherwise the destructor
// rolls back to where it began and the transaction goes on.
class Savepoint {
 public:
  explicit Savepoint(Database& db);
  ~Savepoint();
  void release();
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;

 private:
  Database* db_;
  bool done_ = false;
};

}  // namespace irt::storage
