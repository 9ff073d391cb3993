#include "storage/database.h"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <future>
#include <optional>
#include <stdexcept>

#include "storage/storage_fault.h"
#include "tests/support/postgres_database.h"
#include "tests/support/test_support.h"

using irt::storage::Database;
using irt::storage::Engine;
using irt::storage::Migration;
using irt::storage::Transaction;

namespace {

const std::vector<Migration> kV1 = {
    {1, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, data BLOB)"},
};
const std::vector<Migration> kV2 = {
    kV1[0],
    {2, "ALTER TABLE notes ADD COLUMN author TEXT"},
};

// One database on one engine; open() reaches the same database again, as a
// restarted process would.
class Store {
 public:
  explicit Store(Engine engine) : engine_(engine) {
    if (engine == Engine::sqlite)
      dir_.emplace();
    else
      pg_.emplace();
  }
  Database open() const {
    if (pg_) return pg_->open();
    auto db = Database::open(*dir_ / "t.db");
    REQUIRE(db.ok());
    return std::move(db).value();
  }
  Engine engine() const { return engine_; }

 private:
  Engine engine_;
  std::optional<irt::test::TempDir> dir_;
  std::optional<irt::test::PostgresSchema> pg_;
};

// Runs `body` on SQLite and on PostgreSQL, as two subcases of the test.
template <class Body>
void on_both_engines(Body body) {
  SUBCASE("sqlite") {
    Store store(Engine::sqlite);
    body(store);
  }
  SUBCASE("postgresql") {
    Store store(Engine::postgresql);
    body(store);
  }
}

Database open_db(const irt::test::TempDir& dir) {
  auto db = Database::open(dir / "t.db");
  REQUIRE(db.ok());
  return std::move(db).value();
}

int count_notes(Database& db) {
  auto st = db.prepare("SELECT count(*) FROM notes");
  REQUIRE(st.step());
  return static_cast<int>(st.int64(0));
}

std::string bodies(Database& db) {
  std::string out;
  auto st = db.prepare("SELECT body FROM notes ORDER BY id");
  while (st.step()) out += (out.empty() ? "" : ",") + st.text(0);
  return out;
}

}  // namespace

TEST_CASE("a committed transaction is visible after reopening the database") {
  on_both_engines([](const Store& store) {
    {
      auto db = store.open();
      REQUIRE(db.migrate("test", kV1).ok());
      Transaction tx(db);
      irt::storage::Blob data = {0, 1, 2, 0, 0xff, '\\', '\''};
      db.prepare("INSERT INTO notes(body, data) VALUES(?, ?)").bind_all("hello", data).run();
      CHECK(db.last_insert_rowid() == 1);
      db.prepare("INSERT INTO notes(body, data) VALUES(?, ?)").bind_all("empty", irt::storage::Blob{}).run();
      CHECK(db.last_insert_rowid() == 2);
      tx.commit();
    }
    auto db = store.open();
    auto st = db.prepare("SELECT body, data FROM notes ORDER BY id");
    REQUIRE(st.step());
    CHECK(st.text(0) == "hello");
    CHECK(st.blob(1) == irt::storage::Blob{0, 1, 2, 0, 0xff, '\\', '\''});
    REQUIRE(st.step());
    CHECK_FALSE(st.is_null(1));  // an empty blob is not NULL
    CHECK(st.blob(1).empty());
    CHECK_FALSE(st.step());
  });
}

TEST_CASE("integers are 64-bit, reals and NULLs round-trip, and changes() counts the rows a statement touched") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    REQUIRE(db.migrate("test", {{1, "CREATE TABLE n (k TEXT PRIMARY KEY, i INTEGER, r REAL)"}}).ok());
    const std::int64_t big = 9'007'199'254'740'993;  // beyond 32 bits and beyond a double
    db.prepare("INSERT INTO n(k, i, r) VALUES(?, ?, ?)").bind_all("a", big, 0.1).run();
    db.prepare("INSERT INTO n(k, i, r) VALUES(?, ?, ?)").bind_all("b", std::optional<std::int64_t>(), 2.5).run();
    auto st = db.prepare("SELECT i, r, i + ? FROM n WHERE k = ?");
    st.bind_all(std::int64_t{1}, "a");
    REQUIRE(st.step());
    CHECK(st.int64(0) == big);
    CHECK(st.real(1) == doctest::Approx(0.1));
    CHECK(st.int64(2) == big + 1);
    st.reset();
    st.bind_all(std::int64_t{1}, "b");
    REQUIRE(st.step());
    CHECK(st.is_null(0));
    db.prepare("UPDATE n SET r = r + 1").run();
    CHECK(db.changes() == 2);
    db.prepare("INSERT INTO n(k, i) VALUES('a', 5) ON CONFLICT(k) DO NOTHING").run();
    CHECK(db.changes() == 0);
  });
}


TEST_CASE("an exception inside a transaction rolls everything back") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    REQUIRE(db.migrate("test", kV1).ok());
    try {
      Transaction tx(db);
      db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("one").run();
      throw std::runtime_error("failure between two writes");
    } catch (const std::runtime_error&) {
    }
    CHECK_FALSE(db.in_transaction());
    CHECK(count_notes(db) == 0);
  });
}


TEST_CASE("a savepoint not released undoes only its own part, and a released one commits with the transaction") {
  on_both_engines([](const Store& store) {
    {
      auto db = store.open();
      REQUIRE(db.migrate("test", kV1).ok());
      Transaction tx(db);
      db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("kept").run();
      try {
        irt::storage::Savepoint part(db);
        db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("undone").run();
        db.prepare("INSERT INTO notes(body) VALUES(NULL)").run();  // fails: PostgreSQL aborts up to the savepoint
      } catch (const irt::storage::StorageError&) {
      }
      {
        irt::storage::Savepoint part(db);
        db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("released").run();
        part.release();
      }
      tx.commit();
    }
    auto db = store.open();
    CHECK(bodies(db) == "kept,released");
  });
}

TEST_CASE("a transaction in which a statement failed cannot commit, and keeps nothing") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    REQUIRE(db.migrate("test", kV1).ok());
    {
      Transaction tx(db);
      db.prepare("INSERT INTO notes(body) VALUES('first')").run();
      CHECK_THROWS_AS(db.prepare("INSERT INTO notes(body) VALUES(NULL)").run(), irt::storage::StorageError);
      if (store.engine() == Engine::postgresql)
        CHECK_THROWS_WITH_AS(tx.commit(), doctest::Contains("rolled it back"), irt::storage::StorageError);
    }
    // SQLite keeps the transaction open after a failed statement; the caller
    // did not commit, so the destructor rolled it back on both engines.
    CHECK(count_notes(db) == 0);
  });
}


TEST_CASE("transactions do not nest: a second begin throws on both engines, and the first goes on") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    REQUIRE(db.migrate("test", kV1).ok());
    {
      Transaction tx(db);
      db.prepare("INSERT INTO notes(body) VALUES('outer')").run();
      CHECK_THROWS_AS(Transaction{db}, irt::storage::StorageError);
      CHECK(db.in_transaction());
      db.prepare("INSERT INTO notes(body) VALUES('after')").run();
      tx.commit();
    }
    CHECK(bodies(db) == "outer,after");
  });
}

TEST_CASE("migrations inside an open transaction are savepoints of it: kept with its commit, gone with its rollback") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    {
      Transaction tx(db);
      REQUIRE(db.migrate("test", kV2).ok());
      CHECK(db.in_transaction());
      CHECK(db.schema_version("test") == 2);
    }  // rolled back
    CHECK(db.schema_version("test") == 0);
    CHECK(db.tables() == std::vector<std::string>{"schema_version"});
    {
      // A step that fails undoes itself; the earlier ones stay in the transaction.
      Transaction tx(db);
      std::vector<Migration> failing = {kV1[0], {2, "ALTER TABLE nothing ADD COLUMN x TEXT"}};
      CHECK_THROWS_AS((void)db.migrate("test", failing), irt::storage::StorageError);
      CHECK(db.schema_version("test") == 1);
      REQUIRE(db.migrate("test", kV2).ok());
      tx.commit();
    }
    CHECK(db.schema_version("test") == 2);
    CHECK(db.tables() == std::vector<std::string>{"notes", "schema_version"});
  });
}

TEST_CASE("a blob literal x'..' in a statement is a blob on both engines, and stays text inside quotes") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    REQUIRE(db.migrate("test", kV1).ok());
    db.prepare("INSERT INTO notes(body, data) VALUES('tax x''00'' ?', x'00fF')").run();
    auto st = db.prepare("SELECT body, data FROM notes WHERE data = X'00ff'");
    REQUIRE(st.step());
    CHECK(st.text(0) == "tax x'00' ?");
    CHECK(st.blob(1) == irt::storage::Blob{0x00, 0xff});
  });
}

TEST_CASE("a migration's SQLite words hold on both engines: whole words only, never inside quotes") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    REQUIRE(db.migrate("test", {{1, "CREATE TABLE w (id INTEGER PRIMARY KEY AUTOINCREMENT, INTEGERS INTEGER, "
                                    "r REAL, b BLOB DEFAULT x'00ff', kind TEXT NOT NULL DEFAULT 'REAL BLOB INTEGER' "
                                    "CHECK (kind <> 'INTEGER PRIMARY KEY'));\n"
                                    "CREATE TABLE k (name TEXT PRIMARY KEY, n INTEGER)\n  WITHOUT ROWID"}})
                .ok());
    const std::int64_t big = 9'007'199'254'740'993;
    db.prepare("INSERT INTO w(INTEGERS, r) VALUES(?, ?)").bind_all(big, 0.5).run();
    CHECK(db.last_insert_rowid() == 1);
    db.prepare("INSERT INTO k(name, n) VALUES('a', ?)").bind_all(big).run();
    auto st = db.prepare("SELECT w.id, INTEGERS, r, b, kind, k.n FROM w, k");
    REQUIRE(st.step());
    CHECK(st.int64(0) == 1);
    CHECK(st.int64(1) == big);
    CHECK(st.real(2) == 0.5);
    CHECK(st.blob(3) == irt::storage::Blob{0x00, 0xff});
    CHECK(st.text(4) == "REAL BLOB INTEGER");
    CHECK(st.int64(5) == big);
    CHECK_THROWS_AS(db.prepare("INSERT INTO w(kind) VALUES('INTEGER PRIMARY KEY')").run(), irt::storage::StorageError);
  });
}

TEST_CASE("a failing statement throws StorageError and names the problem") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    REQUIRE(db.migrate("test", kV1).ok());
    auto st = db.prepare("INSERT INTO notes(body) VALUES(NULL)");
    CHECK_THROWS_WITH_AS(st.run(), doctest::Contains("body"), irt::storage::StorageError);
  });
}


TEST_CASE("migrations apply in order once, and a newer database is refused unchanged") {
  on_both_engines([](const Store& store) {
    {
      auto db = store.open();
      REQUIRE(db.migrate("test", kV2).ok());
      CHECK(db.schema_version("test") == 2);
      REQUIRE(db.migrate("test", kV2).ok());  // idempotent
      db.prepare("INSERT INTO notes(body, author) VALUES('x', 'y')").run();
    }
    auto db = store.open();
    auto status = db.migrate("test", kV1);  // an older binary
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == irt::shared::Errc::conflict);
    CHECK(status.error().message.find("newer than this program knows") != std::string::npos);
    CHECK(db.schema_version("test") == 2);
    CHECK(count_notes(db) == 1);
  });
}

TEST_CASE("a migration's PostgreSQL text is used there, its SQLite text elsewhere") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    std::vector<Migration> m = {{1, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('sqlite')", {},
                                 "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('postgresql')"}};
    REQUIRE(db.migrate("test", m).ok());
    auto st = db.prepare("SELECT v FROM t");
    REQUIRE(st.step());
    CHECK(st.text(0) == (store.engine() == Engine::postgresql ? "postgresql" : "sqlite"));
  });
}


TEST_CASE("the connection runs in WAL mode with full synchronous writes and foreign keys") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  auto mode = db.prepare("PRAGMA journal_mode");
  REQUIRE(mode.step());
  CHECK(mode.text(0) == "wal");
  auto sync = db.prepare("PRAGMA synchronous");
  REQUIRE(sync.step());
  CHECK(sync.int64(0) == 2);  // FULL
  auto fk = db.prepare("PRAGMA foreign_keys");
  REQUIRE(fk.step());
  CHECK(fk.int64(0) == 1);
}

TEST_CASE("a file that is not a database is refused with a clear message") {
  irt::test::TempDir dir;
  irt::test::write_file(dir / "t.db", std::string(8192, 'x'));
  auto db = Database::open(dir / "t.db");
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().message.find("restore it from backup") != std::string::npos);
}

TEST_CASE("opening a missing file without create is refused") {
  irt::test::TempDir dir;
  auto db = Database::open(dir / "missing.db", {.create = false});
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == irt::shared::Errc::unavailable);
}

TEST_CASE("a deferred-durability transaction commits and restores full synchronous writes") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  REQUIRE(db.migrate("test", kV1).ok());
  {
    Transaction tx(db, irt::storage::Durability::deferred);
    auto level = db.prepare("PRAGMA synchronous");
    REQUIRE(level.step());
    CHECK(level.int64(0) == 1);  // NORMAL while the cursor-like write commits
    db.prepare("INSERT INTO notes(body) VALUES('cursor')").run();
    tx.commit();
  }
  CHECK(count_notes(db) == 1);
  auto level = db.prepare("PRAGMA synchronous");
  REQUIRE(level.step());
  CHECK(level.int64(0) == 2);  // FULL again for everything acknowledged
}

TEST_CASE("a new database and its WAL and SHM files are created 0600 whatever the umask") {
  irt::test::TempDir dir;
  auto old = ::umask(022);  // the usual default, which would leave them readable by everyone
  {
    auto db = open_db(dir);
    REQUIRE(db.migrate("test", kV1).ok());
    db.prepare("INSERT INTO notes(body) VALUES('private')").run();
    for (const char* name : {"t.db", "t.db-wal", "t.db-shm"}) {
      CAPTURE(name);
      struct stat st {};
      REQUIRE(::stat((dir / name).c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
    }
  }
  ::umask(old);
}

TEST_CASE("a migration's code step runs in the step's transaction, and a throw undoes the step") {
  on_both_engines([](const Store& store) {
    auto db = store.open();
    std::vector<Migration> migrations = kV1;
    migrations.push_back({2, "ALTER TABLE notes ADD COLUMN author TEXT", [](Database& d) {
                            CHECK(d.in_transaction());
                            d.prepare("INSERT INTO notes(body, author) VALUES('from code', 'me')").run();
                          }});
    migrations.push_back({3, "CREATE TABLE later (x INTEGER)", [](Database& d) {
                            d.prepare("INSERT INTO later(x) VALUES(1)").run();
                            throw irt::storage::StorageError("refused");
                          }});
    CHECK_THROWS_AS((void)db.migrate("test", migrations), irt::storage::StorageError);
    CHECK(db.schema_version("test") == 2);
    CHECK(count_notes(db) == 1);
    CHECK_THROWS_AS(db.prepare("SELECT x FROM later").run(), irt::storage::StorageError);
  });
}

TEST_CASE("postgresql: a server that cannot be reached is unavailable, and the message hides the password") {
  auto db = Database::open_postgresql("postgresql://irt:s3cret@127.0.0.1:1/nothing?connect_timeout=2");
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == irt::shared::Errc::unavailable);
  CHECK(db.error().message.find("127.0.0.1:1") != std::string::npos);
  CHECK(db.error().message.find("s3cret") == std::string::npos);
  CHECK(Database::is_postgresql_url("postgres://h/db"));
  CHECK_FALSE(Database::is_postgresql_url("/var/lib/irt/hub.db"));
}

TEST_CASE("postgresql: a deferred-durability transaction turns synchronous commit off for itself only") {
  irt::test::PostgresSchema pg;
  auto db = pg.open();
  REQUIRE(db.migrate("test", kV1).ok());
  auto level = [&] {
    auto st = db.prepare("SHOW synchronous_commit");
    REQUIRE(st.step());
    return st.text(0);
  };
  CHECK(level() == "on");
  {
    Transaction tx(db, irt::storage::Durability::deferred);
    CHECK(level() == "off");
    db.prepare("INSERT INTO notes(body) VALUES('cursor')").run();
    tx.commit();
  }
  CHECK(level() == "on");
  CHECK(count_notes(db) == 1);
}

TEST_CASE("postgresql: two connections migrating the same database at once, as two hub processes would, apply each step once") {
  irt::test::PostgresSchema pg;
  // The step sleeps so that the second process arrives while the first is inside it.
  std::vector<Migration> m = {{1, "", {}, "CREATE TABLE once (x INTEGER); SELECT pg_sleep(0.5); INSERT INTO once VALUES (1)"}};
  auto migrate = [&] {
    auto db = pg.open();
    return db.migrate("test", m);
  };
  auto other = std::async(std::launch::async, migrate);
  auto mine = migrate();
  auto theirs = other.get();
  CHECK_MESSAGE(mine.ok(), (mine.ok() ? "" : mine.error().message));
  CHECK_MESSAGE(theirs.ok(), (theirs.ok() ? "" : theirs.error().message));
  auto db = pg.open();
  auto st = db.prepare("SELECT count(*) FROM once");
  REQUIRE(st.step());
  CHECK(st.int64(0) == 1);
  CHECK(db.schema_version("test") == 1);
}

TEST_CASE("a statement prepared again is the connection's kept one, reset and with its bindings cleared") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  REQUIRE(db.migrate("notes", kV1).ok());
  {
    auto st = db.prepare("SELECT ?");
    st.bind(1, std::int64_t{5});
    REQUIRE(st.step());
    CHECK(st.int64(0) == 5);  // left on its row: handed back reset
  }
  auto again = db.prepare("SELECT ?");
  REQUIRE(again.step());
  CHECK(again.is_null(0));  // the earlier binding is gone
}

TEST_CASE("the same SQL used twice at once gets two statements that do not disturb each other") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  REQUIRE(db.migrate("notes", kV1).ok());
  for (int i = 1; i <= 3; ++i) db.prepare("INSERT INTO notes(id, body) VALUES(?, ?)").bind_all(i, "n").run();
  const char* sql = "SELECT id FROM notes WHERE id >= ? ORDER BY id";
  std::vector<std::int64_t> outer_ids, inner_counts;
  auto outer = db.prepare(sql);
  outer.bind(1, std::int64_t{1});
  while (outer.step()) {
    outer_ids.push_back(outer.int64(0));
    auto inner = db.prepare(sql);
    inner.bind(1, outer.int64(0));
    std::int64_t n = 0;
    while (inner.step()) ++n;
    inner_counts.push_back(n);
  }
  CHECK(outer_ids == std::vector<std::int64_t>{1, 2, 3});
  CHECK(inner_counts == std::vector<std::int64_t>{3, 2, 1});
}

TEST_CASE("a kept statement sees a table changed by a migration after it was first prepared") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  REQUIRE(db.migrate("notes", kV1).ok());
  db.prepare("INSERT INTO notes(id, body) VALUES(?, ?)").bind_all(1, "a").run();
  { CHECK(db.prepare("SELECT * FROM notes").step()); }
  REQUIRE(db.migrate("notes", kV2).ok());
  db.exec("UPDATE notes SET author = 'ann'");
  auto st = db.prepare("SELECT * FROM notes");
  REQUIRE(st.step());
  CHECK(st.text(3) == "ann");  // the fourth column, added after the statement was kept
}

TEST_CASE("two connections that read a value and write it back, as two hub processes would, never lose an update") {
  // A read that decides a write, inside a Transaction: the writer lock makes
  // the second connection wait for the first's commit and read its value.
  on_both_engines([](Store& store) {
    {
      auto db = store.open();
      db.exec("CREATE TABLE counter (n INTEGER NOT NULL)");
      db.exec("INSERT INTO counter VALUES (0)");
    }
    constexpr int kEach = 40;
    auto add = [&] {
      auto db = store.open();
      for (int i = 0; i < kEach; ++i) {
        Transaction tx(db);
        auto read = db.prepare("SELECT n FROM counter");
        read.step();
        auto n = read.int64(0);
        db.prepare("UPDATE counter SET n = ?").bind(1, n + 1).run();
        tx.commit();
      }
    };
    auto other = std::async(std::launch::async, add);
    add();
    other.get();
    auto db = store.open();
    auto st = db.prepare("SELECT n FROM counter");
    REQUIRE(st.step());
    CHECK(st.int64(0) == 2 * kEach);
  });
}

TEST_CASE("a migration inside a transaction and one outside it, on two connections at once, never deadlock") {
  // Outside a transaction a migration takes the migration lock, then the
  // writer lock for each step; inside one it already holds the writer lock and
  // must not wait for the migration lock (PostgreSQL would find a deadlock and
  // abort one of them).
  on_both_engines([](Store& store) {
    REQUIRE(store.open().migrate("notes", kV1).ok());  // the schema_version table, made before the two start
    constexpr int kEach = 15;
    auto migrate_all = [&](const std::string& side, bool inside) {
      auto db = store.open();
      for (int i = 0; i < kEach; ++i) {
        auto name = side + std::to_string(i);
        std::vector<Migration> steps = {{1, "CREATE TABLE " + name + " (x INTEGER)"}};
        std::optional<Transaction> tx;
        if (inside) tx.emplace(db);
        REQUIRE(db.migrate(name, steps).ok());
        if (tx) tx->commit();
      }
    };
    auto other = std::async(std::launch::async, migrate_all, "outside", false);
    migrate_all("inside", true);
    other.get();
    auto db = store.open();
    CHECK(db.schema_version("inside14") == 1);
    CHECK(db.schema_version("outside14") == 1);
  });
}

TEST_CASE("a read snapshot sees the database as at its start and holds no writer back, on both engines") {
  on_both_engines([](Store& store) {
    auto reader = store.open();
    auto writer = store.open();
    REQUIRE(reader.migrate("notes", kV1).ok());
    reader.exec("INSERT INTO notes(body) VALUES ('before')");
    {
      irt::storage::ReadSnapshot snapshot(reader);
      CHECK(count_notes(reader) == 1);
      // A writer commits while the snapshot is open: it takes the writer lock
      // at once (a snapshot holds none), and the reader does not see its row.
      Transaction tx(writer);
      writer.exec("INSERT INTO notes(body) VALUES ('during')");
      tx.commit();
      CHECK(count_notes(writer) == 2);
      CHECK(count_notes(reader) == 1);
      CHECK(bodies(reader) == "before");
    }
    CHECK_FALSE(reader.in_transaction());
    CHECK(count_notes(reader) == 2);
  });
}

TEST_CASE("a read snapshot does not nest inside a transaction") {
  on_both_engines([](Store& store) {
    auto db = store.open();
    Transaction tx(db);
    CHECK_THROWS_AS(irt::storage::ReadSnapshot{db}, irt::storage::StorageError);
  });
}

// SQLite's page limit gives SQLITE_FULL as a full disk does (the real disk is
// filled in tests/integration/disk_full_test.cpp); query_only, SQLITE_READONLY.
TEST_CASE("a full disk and a read-only database are told apart from a bug, and nothing of the transaction stays") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  REQUIRE(db.migrate("test", kV1).ok());
  {
    Transaction tx(db);
    db.prepare("INSERT INTO notes(body) VALUES('kept')").run();
    tx.commit();
  }
  auto pages = db.prepare("PRAGMA page_count");
  REQUIRE(pages.step());
  db.exec("PRAGMA max_page_count = " + std::to_string(pages.int64(0)));
  pages.reset();
  const std::string big(64 * 1024, 'x');
  auto write_big = [&] {
    Transaction tx(db);
    db.prepare("INSERT INTO notes(body) VALUES(?)").bind(1, big).run();
    tx.commit();
  };
  try {
    write_big();
    FAIL("a write past the page limit succeeded");
  } catch (const irt::storage::StorageFaultError& e) {
    CHECK(e.fault == irt::storage::StorageFault::disk_full);
    auto refusal = irt::storage::storage_refusal(e, "irt-node");
    REQUIRE(refusal);
    CHECK(refusal->code == irt::shared::Errc::unavailable);
    CHECK(refusal->message.find("disk full") != std::string::npos);
    CHECK(refusal->message.find("nothing was recorded") != std::string::npos);
  }
  CHECK(bodies(db) == "kept");
  db.exec("PRAGMA max_page_count = 1000000");
  write_big();  // space back: the same write succeeds on the same connection
  CHECK(count_notes(db) == 2);

  db.exec("PRAGMA query_only = 1");
  try {
    Transaction tx(db);
    db.prepare("INSERT INTO notes(body) VALUES('no')").run();
    tx.commit();
    FAIL("a write to a read-only database succeeded");
  } catch (const irt::storage::StorageFaultError& e) {
    CHECK(e.fault == irt::storage::StorageFault::read_only);
    auto refusal = irt::storage::storage_refusal(e, "irt-hub");
    REQUIRE(refusal);
    CHECK(refusal->message.find("the database is read-only") != std::string::npos);
  }
  db.exec("PRAGMA query_only = 0");
  CHECK(count_notes(db) == 2);

  // A bug in a statement stays an internal error.
  try {
    db.prepare("INSERT INTO notes(body) VALUES(NULL)").run();
    FAIL("a NULL body was stored");
  } catch (const irt::storage::StorageError& e) {
    CHECK(dynamic_cast<const irt::storage::StorageFaultError*>(&e) == nullptr);
    CHECK(!irt::storage::storage_refusal(e, "irt-node"));
  }
}
