// A SQLite file sealed at rest (storage/sealed_vfs.h): rows survive reopening,
// a crash and a copy; the files show nothing of them; a wrong key, a clear
// program, and an edited page are named.
#include "storage/sealed_vfs.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "storage/database.h"
#include "storage/sqlite_backup.h"
#include "tests/support/test_support.h"

using irt::storage::Database;
using irt::storage::SealingKey;
using irt::storage::Transaction;
namespace detail = irt::storage::detail;

namespace {

SealingKey key_of(std::uint8_t b) {
  SealingKey k;
  k.fill(b);
  return k;
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Rows whose text would be plain to see in a clear file.
void add_rows(Database& db, int from, int count) {
  Transaction tx(db);
  auto ins = db.prepare("INSERT INTO allocations(id, arm) VALUES (?, ?)");
  for (int i = from; i < from + count; ++i) {
    ins.bind_all(i, "ARM-PLACEBO-" + std::to_string(i)).run();
    ins.reset();
  }
  tx.commit();
}

std::int64_t row_count(Database& db) {
  auto st = db.prepare("SELECT count(*) FROM allocations WHERE arm LIKE 'ARM-PLACEBO-%'");
  st.step();
  return st.int64(0);
}

Database open_sealed(const std::filesystem::path& file, const SealingKey& key) {
  auto db = Database::open(file, {.sealing_key = &key});
  REQUIRE_MESSAGE(db.ok(), db.error().message);
  return std::move(db).value();
}

// A sealed database at `file` holding table allocations with `rows` rows.
Database sealed_with_rows(const std::filesystem::path& file, const SealingKey& key, int rows) {
  auto db = open_sealed(file, key);
  db.exec("CREATE TABLE allocations (id INTEGER PRIMARY KEY, arm TEXT NOT NULL)");
  if (rows > 0) add_rows(db, 0, rows);
  return db;
}

}  // namespace

TEST_CASE("a sealed database keeps its rows across reopening, and neither it nor its WAL shows them") {
  irt::test::TempDir dir;
  const auto file = dir / "hub.db";
  const auto key = key_of(7);
  {
    auto db = sealed_with_rows(file, key, 2000);  // many pages, some still in the WAL while it is open
    const auto wal = file_bytes(dir / "hub.db-wal");
    CHECK(wal.size() > 4096);
    for (const auto& bytes : {file_bytes(file), wal}) {
      CHECK(bytes.find("ARM-PLACEBO") == std::string::npos);
      CHECK(bytes.find("allocations") == std::string::npos);  // the schema is sealed too
    }
  }
  CHECK(detail::sqlite_file_kind(file) == detail::FileKind::sealed);
  CHECK(file_bytes(file).find("ARM-PLACEBO") == std::string::npos);
  auto db = open_sealed(file, key);
  CHECK(row_count(db) == 2000);
  add_rows(db, 2000, 10);
  CHECK(row_count(db) == 2010);
  db.exec("CREATE TEMP TABLE scratch AS SELECT * FROM allocations ORDER BY arm DESC");  // in memory, not on disk
}

TEST_CASE("a sealed database opens neither without its key nor under another") {
  irt::test::TempDir dir;
  const auto file = dir / "hub.db";
  const auto key = key_of(7);
  {
    auto db = sealed_with_rows(file, key, 10);
  }
  auto clear = Database::open(file, {.create = false});
  REQUIRE_FALSE(clear.ok());
  CHECK(clear.error().message.find("is sealed; it opens only with its key") != std::string::npos);
  const auto other = key_of(8);
  auto wrong = Database::open(file, {.create = false, .sealing_key = &other});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message.find("does not open under its key") != std::string::npos);
  auto reopened = open_sealed(file, key);
  CHECK(row_count(reopened) == 10);
}

TEST_CASE("a page of a sealed database edited on disk is refused, not read") {
  irt::test::TempDir dir;
  const auto file = dir / "hub.db";
  const auto key = key_of(7);
  {
    auto db = sealed_with_rows(file, key, 500);
  }
  {
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(3 * 4096 + 200);
    f.put('\x5a');
  }
  auto db = open_sealed(file, key);  // page 1 (the schema) is whole
  CHECK_THROWS_AS(row_count(db), irt::storage::StorageError);
}

TEST_CASE("a clear database is sealed in place with its rows, once") {
  irt::test::TempDir dir;
  const auto file = dir / "hub.db";
  const auto key = key_of(9);
  {
    auto db = Database::open(file);
    REQUIRE(db.ok());
    db->exec("CREATE TABLE allocations (id INTEGER PRIMARY KEY, arm TEXT NOT NULL)");
    add_rows(*db, 0, 300);
    auto refused = Database::open(file, {.sealing_key = &key});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("is stored in clear") != std::string::npos);
  }
  CHECK(file_bytes(file).find("ARM-PLACEBO") != std::string::npos);
  auto sealed = irt::storage::seal_sqlite_database(file, key);
  REQUIRE_MESSAGE(sealed.ok(), sealed.error().message);
  CHECK(*sealed);
  CHECK(file_bytes(file).find("ARM-PLACEBO") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "hub.db.sealing"));
  auto again = irt::storage::seal_sqlite_database(file, key);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  auto db = open_sealed(file, key);
  CHECK(row_count(db) == 300);
  add_rows(db, 300, 1);
  CHECK(row_count(db) == 301);
}

TEST_CASE("a sealed database copied while it is open gives a sealed copy with the same rows") {
  irt::test::TempDir dir;
  const auto key = key_of(3);
  auto db = sealed_with_rows(dir / "hub.db", key, 700);
  REQUIRE(irt::storage::copy_sqlite_database(dir / "hub.db", dir / "copy.db", &key).ok());
  CHECK(detail::sqlite_file_kind(dir / "copy.db") == detail::FileKind::sealed);
  CHECK(file_bytes(dir / "copy.db").find("ARM-PLACEBO") == std::string::npos);
  auto copy = open_sealed(dir / "copy.db", key);
  CHECK(row_count(copy) == 700);
}

TEST_CASE("a process killed while it writes a sealed database leaves every commit it made, readable") {
  irt::test::TempDir dir;
  const auto file = dir / "hub.db";
  const auto key = key_of(5);
  {
    auto db = sealed_with_rows(file, key, 0);
  }
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    auto db = Database::open(file, {.sealing_key = &key});
    for (int i = 0;; i += 25) {
      if (!db) ::_exit(2);
      add_rows(*db, i, 25);
      const int done = i + 25;  // committed, then told
      if (::write(fds[1], &done, sizeof done) != static_cast<ssize_t>(sizeof done)) ::_exit(3);
    }
  }
  ::close(fds[1]);
  int acknowledged = 0, n = 0;
  while (acknowledged < 3000 && ::read(fds[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n)) acknowledged = n;
  ::kill(child, SIGKILL);
  while (::read(fds[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n)) acknowledged = n;
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  auto db = open_sealed(file, key);
  const auto rows = row_count(db);
  CHECK(rows >= acknowledged);
  CHECK(rows % 25 == 0);
  auto check = db.prepare("PRAGMA integrity_check");
  REQUIRE(check.step());
  CHECK(check.text(0) == "ok");
}

TEST_CASE("two connections to one sealed database each read what the other commits") {
  irt::test::TempDir dir;
  const auto key = key_of(4);
  auto a = sealed_with_rows(dir / "hub.db", key, 0);
  auto b = open_sealed(dir / "hub.db", key);
  CHECK(row_count(b) == 0);
  add_rows(a, 0, 5);
  CHECK(row_count(b) == 5);
  add_rows(b, 5, 300);
  CHECK(row_count(a) == 305);
  a.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  add_rows(a, 305, 1);
  CHECK(row_count(b) == 306);
}

TEST_CASE("a process reads what another process commits to a sealed database it holds open") {
  irt::test::TempDir dir;
  const auto file = dir / "hub.db";
  const auto key = key_of(6);
  {
    auto db = sealed_with_rows(file, key, 0);
  }
  auto reader = open_sealed(file, key);  // open before, and after, the other process writes
  CHECK(row_count(reader) == 0);
  for (int round = 0; round < 3; ++round) {
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      auto db = Database::open(file, {.create = false, .sealing_key = &key});
      if (!db) ::_exit(2);
      add_rows(*db, round * 10, 10);
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WEXITSTATUS(status) == 0);
    CHECK(row_count(reader) == (round + 1) * 10);
  }
}
