// A fresh, empty database in the tests' PostgreSQL cluster (CTest fixture
// "postgres", tests/support/postgres_cluster.sh), dropped on destruction.
// Without a running cluster it throws, which fails the test: a PostgreSQL
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

}  // namespace irt::test
