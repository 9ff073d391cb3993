// A small RAII layer over SQLite, used by the node and the hub.
//
// - Database: one connection, opened with WAL, foreign keys on, a busy timeout,
//   and synchronous=FULL, so a committed transaction survives power loss: that
//   is what "durable before acknowledged" means throughout the project.
// - Statement: a prepared statement; bind by position (1-based), step, read
//   columns (0-based). Raw SQL lives next to the code that owns the table.
// - Transaction: BEGIN IMMEDIATE; rolls back unless commit() was called, so an
//   exception thrown inside leaves nothing half-written.
// - Migrations: numbered, per component, recorded in table schema_version. A
//   file whose schema is newer than the binary knows is refused, unchanged.
//
// SQL failures (disk full, I/O error, a bug in a statement) throw StorageError:
// they are exceptional, and the caller's transaction rolls back. Expected
// failures (cannot open, schema too new) come back as a Result.
// Thread-safety: a Database and its statements belong to one thread at a time.
#pragma once

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

struct sqlite3;
struct sqlite3_stmt;

namespace irt::storage {

struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Blob = std::vector<std::uint8_t>;
using BlobView = std::span<const std::uint8_t>;

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
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
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Database;

struct Migration {
  int version;      // 1, 2, 3, ... in order, never renumbered
  std::string sql;  // one or more statements
  // Optional: runs after `sql` in the same transaction, for a step SQL alone
  // cannot do (sealing a value under a key the program holds). It throws
  // StorageError to refuse, and then nothing of the step is kept.
  std::function<void(Database&)> code = {};
};

class Database {
 public:
  struct Options {
    int busy_timeout_ms = 5000;
    bool create = true;  // create the file if missing
  };

  static shared::Result<Database> open(const std::filesystem::path& file, const Options& options);
  static shared::Result<Database> open(const std::filesystem::path& file) { return open(file, Options{}); }
  ~Database();
  Database(Database&& o) noexcept;
  Database& operator=(Database&& o) noexcept;
  Database(const Database&) = delete;

  void exec(std::string_view sql);  // statements without parameters
  Statement prepare(std::string_view sql);
  std::int64_t last_insert_rowid() const;
  int changes() const;
  bool in_transaction() const;  // a BEGIN is open on this connection
  const std::filesystem::path& path() const { return path_; }

  // Brings `component`'s schema up to the last migration, each step in its own
  // transaction. Refuses (and changes nothing) when the file's schema is newer.
  shared::Status migrate(std::string_view component, const std::vector<Migration>& migrations);
  int schema_version(std::string_view component);

  sqlite3* handle() { return db_; }

 private:
  Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
};

// full: the commit is on disk when commit() returns (synchronous=FULL); the
// only level for anything acknowledged to a user or another party.
// deferred: the commit is atomic but reaches the disk with the next full
// commit or checkpoint (synchronous=NORMAL in WAL). Only for state that is
// safe to lose and recompute, such as a cursor whose loss only causes an
// idempotent resend.
enum class Durability { full, deferred };

class Transaction {
 public:
  explicit Transaction(Database& db, Durability durability = Durability::full);  // BEGIN IMMEDIATE
  ~Transaction();  // ROLLBACK unless committed
  void commit();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  Database* db_;
  Durability durability_;
  bool done_ = false;
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
