#include "storage/database.h"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <stdexcept>

#include "tests/support/test_support.h"

using irt::storage::Database;
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

}  // namespace

TEST_CASE("a committed transaction is visible after reopening the file") {
  irt::test::TempDir dir;
  {
    auto db = open_db(dir);
    REQUIRE(db.migrate("test", kV1).ok());
    Transaction tx(db);
    irt::storage::Blob data = {0, 1, 2};
    db.prepare("INSERT INTO notes(body, data) VALUES(?, ?)").bind_all("hello", data).run();
    tx.commit();
  }
  auto db = open_db(dir);
  auto st = db.prepare("SELECT body, data FROM notes");
  REQUIRE(st.step());
  CHECK(st.text(0) == "hello");
  CHECK(st.blob(1) == irt::storage::Blob{0, 1, 2});
}

TEST_CASE("an exception inside a transaction rolls everything back") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  REQUIRE(db.migrate("test", kV1).ok());
  try {
    Transaction tx(db);
    db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("one").run();
    throw std::runtime_error("failure between two writes");
  } catch (const std::runtime_error&) {
  }
  CHECK(count_notes(db) == 0);
}

TEST_CASE("a savepoint not released undoes only its own part, and a released one commits with the transaction") {
  irt::test::TempDir dir;
  {
    auto db = open_db(dir);
    REQUIRE(db.migrate("test", kV1).ok());
    Transaction tx(db);
    db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("kept").run();
    try {
      irt::storage::Savepoint part(db);
      db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("undone").run();
      throw std::runtime_error("failure inside the savepoint");
    } catch (const std::runtime_error&) {
    }
    {
      irt::storage::Savepoint part(db);
      db.prepare("INSERT INTO notes(body) VALUES(?)").bind_all("released").run();
      part.release();
    }
    tx.commit();
  }
  auto db = open_db(dir);
  auto st = db.prepare("SELECT group_concat(body, ',') FROM (SELECT body FROM notes ORDER BY id)");
  REQUIRE(st.step());
  CHECK(st.text(0) == "kept,released");
}

TEST_CASE("a failing statement throws StorageError and names the problem") {
  irt::test::TempDir dir;
  auto db = open_db(dir);
  REQUIRE(db.migrate("test", kV1).ok());
  auto st = db.prepare("INSERT INTO notes(body) VALUES(NULL)");
  CHECK_THROWS_WITH_AS(st.run(), doctest::Contains("NOT NULL"), irt::storage::StorageError);
}

TEST_CASE("migrations apply in order once, and a newer file is refused unchanged") {
  irt::test::TempDir dir;
  {
    auto db = open_db(dir);
    REQUIRE(db.migrate("test", kV2).ok());
    CHECK(db.schema_version("test") == 2);
    REQUIRE(db.migrate("test", kV2).ok());  // idempotent
    db.prepare("INSERT INTO notes(body, author) VALUES('x', 'y')").run();
  }
  auto db = open_db(dir);
  auto status = db.migrate("test", kV1);  // an older binary
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == irt::shared::Errc::conflict);
  CHECK(status.error().message.find("newer than this program knows") != std::string::npos);
  CHECK(db.schema_version("test") == 2);
  CHECK(count_notes(db) == 1);
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
  irt::test::TempDir dir;
  auto db = open_db(dir);
  std::vector<Migration> migrations = kV1;
  migrations.push_back({2, "ALTER TABLE notes ADD COLUMN author TEXT", [](Database& d) {
                          CHECK(d.in_transaction());
                          d.prepare("INSERT INTO notes(body, author) VALUES('from code', 'me')").run();
                        }});
  migrations.push_back({3, "CREATE TABLE later (x)", [](Database& d) {
                          d.prepare("INSERT INTO later(x) VALUES(1)").run();
                          throw irt::storage::StorageError("refused");
                        }});
  CHECK_THROWS_AS((void)db.migrate("test", migrations), irt::storage::StorageError);
  CHECK(db.schema_version("test") == 2);
  CHECK(count_notes(db) == 1);
  CHECK_THROWS_AS(db.prepare("SELECT x FROM later"), irt::storage::StorageError);
}
