// The PostgreSQL engine (connection.h), through libpq.
//
// What it translates from the SQL the callers write (database.h):
// - '?' placeholders become $1, $2, ..., and a blob literal x'00ff' becomes
//   '\x00ff'::bytea, in every prepared statement (not inside quotes);
// - in migrations: `INTEGER PRIMARY KEY` (SQLite's rowid alias) becomes a
//   BIGINT identity column, so last_insert_rowid() is lastval(); INTEGER
//   becomes BIGINT (SQLite's integers are 64-bit), BLOB becomes BYTEA, REAL
//   becomes DOUBLE PRECISION, a blob literal becomes bytea as above, and
//   `WITHOUT ROWID` goes: whole words outside quotes, in one pass (a
//   std::regex pass per word took 43 % of a PostgreSQL hub test's CPU under
//   the sanitizers). A table that inserts its own values into such an
//   id column must say so in its Migration::postgresql text instead.
// Parameters go as text, except blobs (binary bytea) and integers and reals,
// which are typed int8 and float8 so arithmetic on them stays 64-bit. Results
// come back as text; bytea columns are decoded, booleans read as 0 or 1.
// A transaction PostgreSQL aborted after a failed statement cannot commit:
// commit() throws rather than let COMMIT quietly roll it back.
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>
#include <regex>
#include <vector>

#include "storage/connection.h"
#include "storage/storage_fault.h"

namespace irt::storage::detail {

namespace {

constexpr Oid kInt8 = 20;
constexpr Oid kFloat8 = 701;
constexpr Oid kBytea = 17;
// Seconds libpq waits for a server that does not answer, unless the URL sets connect_timeout.
constexpr const char* kConnectTimeoutSeconds = "10";
// The advisory lock that serializes migrations (an arbitrary key, fixed forever).
constexpr std::int64_t kMigrationLock = 0x697274'0001;
// The advisory lock every write transaction takes first (begin()), so that
// processes sharing the database write one at a time, as on SQLite. Advisory
// locks belong to the database they are taken in, so one fixed key is one
// writer per database, whatever else the server holds.
constexpr std::int64_t kWriterLock = 0x697274'0002;

bool identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// '?' placeholders become $1, $2, ...; a blob literal x'00ff' becomes
// '\x00ff'::bytea (PostgreSQL would read x'..' as a bit string). Neither inside quotes.
std::string translate_statement(std::string_view sql, int& count) {
  std::string out;
  out.reserve(sql.size() + 16);
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote) {
      if (c == quote) quote = 0;
      out += c;
    } else if ((c == 'x' || c == 'X') && i + 1 < sql.size() && sql[i + 1] == '\'' &&
               (i == 0 || !identifier_char(sql[i - 1]))) {
      auto end = sql.find('\'', i + 2);
      if (end == std::string_view::npos) end = sql.size();
      out += "'\\x";
      out += sql.substr(i + 2, end - i - 2);
      out += "'::bytea";
      i = end;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$' + std::to_string(++count);
    } else {
      out += c;
    }
  }
  return out;
}

// A migration's SQLite types and clauses in PostgreSQL's words (the file's
// head). One pass over the words outside quotes; a word is what a regular
// expression's \b would bound: letters, digits and '_'.
std::string translate_schema(std::string_view sql) {
  static constexpr std::string_view kRowidColumn = "INTEGER PRIMARY KEY", kAutoincrement = " AUTOINCREMENT",
                                    kWithoutRowid = "WITHOUT ROWID";
  auto word_at = [&](std::size_t i, std::string_view w) {
    return sql.substr(i, w.size()) == w && (i + w.size() == sql.size() || !identifier_char(sql[i + w.size()]));
  };
  std::string out;
  out.reserve(sql.size() + sql.size() / 4);
  for (std::size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {  // a literal or a quoted name, as written (a blob literal: x'..' below)
      const auto end = std::min(sql.find(c, i + 1), sql.size() - 1);
      out += sql.substr(i, end + 1 - i);
      i = end + 1;
    } else if (c == ')') {
      auto j = i + 1;
      while (j < sql.size() && std::isspace(static_cast<unsigned char>(sql[j]))) ++j;
      out += c;
      i = word_at(j, kWithoutRowid) ? j + kWithoutRowid.size() : i + 1;
    } else if (!identifier_char(c)) {
      out += c;
      ++i;
    } else {
      auto j = i;
      while (j < sql.size() && identifier_char(sql[j])) ++j;
      const auto word = sql.substr(i, j - i);
      if ((word == "x" || word == "X") && j < sql.size() && sql[j] == '\'') {
        const auto end = std::min(sql.find('\'', j + 1), sql.size());
        out += "'\\x";
        out += sql.substr(j + 1, end - j - 1);
        out += "'::bytea";
        j = end + 1;
      } else if (word_at(i, kRowidColumn)) {
        out += "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
        j = i + kRowidColumn.size();
        if (word_at(j, kAutoincrement)) j += kAutoincrement.size();
      } else if (word == "INTEGER") {
        out += "BIGINT";
      } else if (word == "BLOB") {
        out += "BYTEA";
      } else if (word == "REAL") {
        out += "DOUBLE PRECISION";
      } else {
        out += word;
      }
      i = std::min(j, sql.size());
    }
  }
  return out;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

std::string error_text(PGconn* conn, const PGresult* r) {
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg.empty() ? "no answer from the server" : msg;
}

// The server's SQLSTATE as a StorageFault (storage_fault.h), if it is one:
// 53100 (disk full), 25006 (read-only transaction: a hot standby), 58030 (I/O error).
std::optional<StorageFault> postgresql_fault(const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string_view s = state ? state : "";
  if (s == "53100") return StorageFault::disk_full;
  if (s == "25006") return StorageFault::read_only;
  if (s == "58030") return StorageFault::io_error;
  return std::nullopt;
}

// The result of a command, or StorageError naming the SQL and the server's message.
ResultPtr checked(PGconn* conn, PGresult* raw, std::string_view sql) {
  ResultPtr r(raw);
  auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string message = "SQL failed (" + std::string(sql.substr(0, 80)) + "): " + error_text(conn, r.get());
    if (auto fault = postgresql_fault(r.get())) throw StorageFaultError(message, *fault);
    throw StorageError(message);
  }
  return r;
}

int affected_rows(const PGresult* r) {
  const char* n = PQcmdTuples(const_cast<PGresult*>(r));
  return n && *n ? std::atoi(n) : 0;
}


class PgConnection;

class PgCursor final : public Cursor {
 public:
  PgCursor(PgConnection& connection, std::string sql, int params)
      : connection_(connection),
        sql_(std::move(sql)),
        values_(static_cast<std::size_t>(params)),
        types_(static_cast<std::size_t>(params), 0),
        formats_(static_cast<std::size_t>(params), 0) {}

  void bind_int64(int index, std::int64_t v) override { set(index, std::to_string(v), kInt8, 0); }
  void bind_double(int index, double v) override {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", v);
    set(index, text, kFloat8, 0);
  }
  void bind_text(int index, std::string_view v) override { set(index, std::string(v), 0, 0); }
  void bind_blob(int index, BlobView v) override {
    set(index, std::string(reinterpret_cast<const char*>(v.data()), v.size()), kBytea, 1);
  }
  void bind_null(int index) override {
    auto i = position(index);
    values_[i] = std::nullopt;
    types_[i] = 0;
    formats_[i] = 0;
  }

  bool step() override;
  void reset() override {
    result_.reset();
    row_ = -1;
    for (auto& v : values_) v = std::nullopt;
  }

  bool is_null(int col) const override { return PQgetisnull(result_.get(), row_, col) != 0; }
  std::int64_t int64(int col) const override {
    const char* v = PQgetvalue(result_.get(), row_, col);
    if (*v == 't') return 1;
    if (*v == 'f') return 0;
    return std::strtoll(v, nullptr, 10);
  }
  double real(int col) const override { return std::strtod(PQgetvalue(result_.get(), row_, col), nullptr); }
  std::string text(int col) const override {
    return std::string(PQgetvalue(result_.get(), row_, col),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, col)));
  }
  Blob blob(int col) const override {
    const char* v = PQgetvalue(result_.get(), row_, col);
    if (PQftype(result_.get(), col) != kBytea) return Blob(v, v + PQgetlength(result_.get(), row_, col));
    std::size_t n = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
    if (!raw) throw StorageError("out of memory decoding a bytea column");
    Blob out(raw, raw + n);
    PQfreemem(raw);
    return out;
  }

 private:
  // Where bind parameter `index` (from 1, as SQL numbers them) is kept.
  std::size_t position(int index) const {
    if (index < 1 || index > static_cast<int>(values_.size()))
      throw StorageError("bind: parameter " + std::to_string(index) + " out of range (" + sql_.substr(0, 80) + ")");
    return static_cast<std::size_t>(index - 1);
  }
  void set(int index, std::string value, Oid type, int format) {
    auto i = position(index);
    values_[i] = std::move(value);
    types_[i] = type;
    formats_[i] = format;
  }

  PgConnection& connection_;
  std::string sql_;
  std::vector<std::optional<std::string>> values_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
  ResultPtr result_;
  int row_ = -1;
};

class PgConnection final : public Connection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection() override { PQfinish(conn_); }

  Engine engine() const override { return Engine::postgresql; }

  void exec(std::string_view sql) override {
    std::string s(sql);
    auto r = checked(conn_, PQexec(conn_, s.c_str()), sql);
    changes_ = affected_rows(r.get());
  }

  // The result of one command, with the rows it changed recorded for changes().
  ResultPtr run(const std::string& sql, const std::vector<std::optional<std::string>>& values,
                const std::vector<Oid>& types, const std::vector<int>& formats) {
    std::vector<const char*> pointers;
    std::vector<int> lengths;
    for (const auto& v : values) {
      pointers.push_back(v ? v->data() : nullptr);
      lengths.push_back(v ? static_cast<int>(v->size()) : 0);
    }
    auto n = static_cast<int>(values.size());
    auto r = checked(conn_,
                     PQexecParams(conn_, sql.c_str(), n, types.data(), pointers.data(), lengths.data(),
                                  formats.data(), 0),
                     sql);
    changes_ = affected_rows(r.get());
    return r;
  }

  std::unique_ptr<Cursor> prepare(std::string_view sql) override {
    int params = 0;
    auto translated = translate_statement(sql, params);
    return std::make_unique<PgCursor>(*this, std::move(translated), params);
  }

  std::int64_t last_insert_id() override {
    auto r = checked(conn_, PQexec(conn_, "SELECT lastval()"), "SELECT lastval()");
    return std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
  }
  int changes() const override { return changes_; }
  bool in_transaction() const override {
    auto s = PQtransactionStatus(conn_);
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
  }

  // One round trip: BEGIN, the durability, then the writer lock, held until
  // COMMIT or ROLLBACK. READ COMMITTED (stated, whatever the server's
  // default) gives every later statement a snapshot taken after the lock was
  // granted, so it sees everything the previous writer committed.
  void begin(Durability durability) override {
    // PostgreSQL only warns at a nested BEGIN, and the inner COMMIT would then
    // commit the outer transaction's work early; SQLite refuses, and so do we.
    if (in_transaction()) throw StorageError("cannot begin a transaction inside another; use a Savepoint for a part");
    exec(std::string("BEGIN ISOLATION LEVEL READ COMMITTED; ") +
         (durability == Durability::deferred ? "SET LOCAL synchronous_commit = off; " : "") +
         "SELECT pg_advisory_xact_lock(" + std::to_string(kWriterLock) + ")");
  }

  // No advisory lock: writers go on. REPEATABLE READ gives every statement
  // the snapshot of the first one; READ ONLY refuses a write by mistake.
  void begin_read() override {
    if (in_transaction()) throw StorageError("cannot begin a read snapshot inside a transaction");
    exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1");
  }

  void end(bool commit, Durability) override {
    if (!commit) {
      if (in_transaction()) try {
          exec("ROLLBACK");
        } catch (const StorageError&) {
          // The connection is lost: the server rolls the transaction back itself.
        }
      return;
    }
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR)
      throw StorageError("COMMIT refused: a statement in this transaction failed, so PostgreSQL rolled it back");
    exec("COMMIT");
  }

  void lock_migrations(bool hold) override {
    exec(hold ? "SELECT pg_advisory_lock(" + std::to_string(kMigrationLock) + ")"
              : "SELECT pg_advisory_unlock(" + std::to_string(kMigrationLock) + ")");
  }

  std::string schema_sql(const Migration& m) const override {
    return m.postgresql.empty() ? translate_schema(m.sql) : m.postgresql;
  }
  std::string_view tables_sql() const override {
    return "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
           "ORDER BY table_name";
  }

 private:
  PGconn* conn_;
  int changes_ = 0;
};

bool PgCursor::step() {
  if (!result_) {
    result_ = connection_.run(sql_, values_, types_, formats_);
    row_ = -1;
  }
  return ++row_ < PQntuples(result_.get());
}

void ignore_notice(void*, const char*) {}

}  // namespace

// The URL without a password, for messages.
std::string redact_url(const std::string& url) {
  static const std::regex kPassword(R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)");
  return std::regex_replace(url, kPassword, "$1:***@");
}

shared::Result<Opened> open_postgresql(const std::string& url) {
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {kConnectTimeoutSeconds, url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  auto label = redact_url(url);
  if (!conn || PQstatus(conn) != CONNECTION_OK) {
    std::string why = conn ? error_text(conn, nullptr) : "out of memory";
    PQfinish(conn);
    return shared::make_error(shared::Errc::unavailable, "cannot connect to PostgreSQL at " + label + " (" + why +
                                                             "); check that the server runs and the URL, user and "
                                                             "password (~/.pgpass or PGPASSWORD)");
  }
  PQsetNoticeProcessor(conn, ignore_notice, nullptr);
  auto connection = std::make_unique<PgConnection>(conn);
  try {
    // A committed transaction must be on disk before it is acknowledged.
    auto fsync = connection->prepare("SHOW fsync");
    if (fsync->step() && fsync->text(0) != "on")
      return shared::make_error(shared::Errc::unavailable,
                                "PostgreSQL at " + label + " runs with fsync off, so a committed record could be lost "
                                                           "in a crash; set fsync = on in postgresql.conf");
    // "on" or stricter (remote_write, remote_apply with standbys) is kept as the operator set it.
    auto commit = connection->prepare("SHOW synchronous_commit");
    if (commit->step() && (commit->text(0) == "off" || commit->text(0) == "local"))
      connection->exec("SET synchronous_commit = on");
  } catch (const StorageError& e) {
    return shared::make_error(shared::Errc::unavailable, "PostgreSQL at " + label + " refused the session set-up (" +
                                                             e.what() + ")");
  }
  return Opened{std::move(connection), label};
}

}  // namespace irt::storage::detail
