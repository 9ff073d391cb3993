// What storage::Database asks of a database engine; private to storage/.
// Two implementations: SQLite (sqlite_connection.cpp, the embedded default)
// and PostgreSQL through libpq (postgresql_connection.cpp). Callers never see
// these: they write SQL with '?' placeholders and the types below, and the
// engine translates what differs (placeholders, blobs, column types, durability).
// Every method throws StorageError on an SQL or I/O failure.
// Thread-safety: one thread at a time per connection, as Database.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "storage/database.h"

namespace irt::storage::detail {

class Cursor {
 public:
  virtual ~Cursor() = default;
  virtual void bind_int64(int index, std::int64_t v) = 0;
  virtual void bind_double(int index, double v) = 0;
  virtual void bind_text(int index, std::string_view v) = 0;
  virtual void bind_blob(int index, BlobView v) = 0;
  virtual void bind_null(int index) = 0;
  virtual bool step() = 0;
  virtual void reset() = 0;
  virtual bool is_null(int col) const = 0;
  virtual std::int64_t int64(int col) const = 0;
  virtual double real(int col) const = 0;
  virtual std::string text(int col) const = 0;
  virtual Blob blob(int col) const = 0;
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Engine engine() const = 0;
  virtual void exec(std::string_view sql) = 0;
  virtual std::unique_ptr<Cursor> prepare(std::string_view sql) = 0;
  virtual std::int64_t last_insert_id() = 0;
  virtual int changes() const = 0;
  virtual bool in_transaction() const = 0;
  // Opens a write transaction holding the database's one writer lock, which
  // serializes writers across processes (database.h, Transaction).
  virtual void begin(Durability durability) = 0;
  virtual void end(bool commit, Durability durability) = 0;  // commit or roll back what begin() opened
  // Opens a read-only snapshot that takes no writer lock (ReadSnapshot);
  // end(false, Durability::full) closes it.
  virtual void begin_read() = 0;
  // Holds (true) or lets go of (false) the lock that makes processes sharing
  // the database migrate one at a time; SQLite's BEGIN IMMEDIATE already does.
  virtual void lock_migrations(bool hold) = 0;
  // A migration's schema text in this engine's dialect.
  virtual std::string schema_sql(const Migration& m) const = 0;
  // A query whose rows are the names of the tables the database holds, in name order.
  virtual std::string_view tables_sql() const = 0;
};

struct Opened {
  std::unique_ptr<Connection> connection;
  std::string label;  // names the database in messages, without any password
};

shared::Result<Opened> open_sqlite(const std::filesystem::path& file, const Database::Options& options);
shared::Result<Opened> open_postgresql(const std::string& url);
std::string redact_url(const std::string& url);

}  // namespace irt::storage::detail
