// A fresh, empty database in the tests' PostgreSQL cluster (CTest fixture
// "postgres", tests/support/postgres_cluster.sh), dropped on destruction; or
// a fresh, empty schema of one database the tests share (PostgresSchema),
// as isolated for SQL that names no schema and far cheaper to make and drop.
// Without a running cluster either throws, which fails the test: a PostgreSQL
// test never passes unrun. Header-only, for the test executables and
// benchmarks that link irt_storage.
#pragma once

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "storage/database.h"
#include "tests/support/test_support.h"

namespace irt::test {

// The cluster's admin URL: IRT_TEST_POSTGRES_URL when set (a benchmark given
// --postgres), else the one the CTest fixture wrote.
inline std::string postgres_admin_url() {
  if (const char* given = std::getenv("IRT_TEST_POSTGRES_URL"); given && *given) return given;
  std::string file = std::string(IRT_TEST_POSTGRES_STATE) + "/url";
  std::string url;
  try {
    url = read_file(file);
  } catch (...) {
  }
  while (!url.empty() && (url.back() == '\n' || url.back() == ' ')) url.pop_back();
  if (url.empty())
    throw std::runtime_error("no PostgreSQL test cluster (" + file + " is missing): run the test through ctest, "
                             "whose fixture 'postgres' starts one, after 'packaging/dev.sh deps'");
  return url;
}

// The run asks for the hub on PostgreSQL: IRT_TEST_HUB_ENGINE=postgresql, as the
// "integration-postgresql:" and "hub-postgresql:" tests have (tests/CMakeLists.txt).
inline bool hub_engine_is_postgresql() {
  const char* engine = std::getenv("IRT_TEST_HUB_ENGINE");
  return engine && std::string(engine) == "postgresql";
}

inline storage::Database open_postgres(const std::string& url) {
  auto db = storage::Database::open_postgresql(url);
  if (!db) throw std::runtime_error(db.error().message);
  return std::move(db).value();
}

class PostgresDatabase {
 public:
  PostgresDatabase() : admin_url_(postgres_admin_url()) {
    static std::atomic<int> counter{0};
    name_ = "irt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    auto admin = open_postgres(admin_url_);
    admin.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    admin.exec("CREATE DATABASE " + name_);
    url_ = admin_url_.substr(0, admin_url_.rfind('/') + 1) + name_;
  }
  ~PostgresDatabase() {
    try {
      if (auto admin = storage::Database::open_postgresql(admin_url_))
        admin->exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
      // The cluster is removed with its folder at the end of the run anyway.
    }
  }
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  const std::string& url() const { return url_; }
  storage::Database open() const { return open_postgres(url_); }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// A fresh, empty schema in the database "irt_tests" of the test cluster
// (made by whichever test needs it first), dropped on destruction. url()
// connects with the schema as the search path, so every table a program
// creates or reads without naming a schema is in it. Making and dropping a
// database costs a checkpoint each (over a second with fsync on); a schema,
// a few milliseconds: for the many hubs of the hub's unit tests.
class PostgresSchema {
 public:
  PostgresSchema() {
    const auto admin_url = postgres_admin_url();
    const auto database_url = admin_url.substr(0, admin_url.rfind('/') + 1) + "irt_tests";
    auto db = storage::Database::open_postgresql(database_url);
    if (!db) {
      try {
        open_postgres(admin_url).exec("CREATE DATABASE irt_tests");
      } catch (const storage::StorageError&) {
        // Another test process made it first; opening it below tells.
      }
      db = open_postgres(database_url);
    }
    static std::atomic<int> counter{0};
    name_ = "irt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    db->exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE; CREATE SCHEMA " + name_);
    database_url_ = database_url;
    url_ = database_url + "?options=-csearch_path%3D" + name_;
  }
  ~PostgresSchema() {
    try {
      if (auto db = storage::Database::open_postgresql(database_url_)) db->exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    } catch (...) {
      // The cluster is removed with its folder at the end of the run anyway.
    }
  }
  PostgresSchema(const PostgresSchema&) = delete;
  PostgresSchema& operator=(const PostgresSchema&) = delete;

  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }
  storage::Database open() const { return open_postgres(url_); }

 private:
  std::string name_;
  std::string database_url_;
  std::string url_;
};

}  // namespace irt::test
