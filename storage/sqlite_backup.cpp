#include "storage/sqlite_backup.h"

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

namespace irt::storage {

namespace {

struct SqliteHandleCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteHandleCloser>;

shared::Result<SqliteHandle> open_sqlite_for_backup(const std::filesystem::path& file, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
  SqliteHandle db(raw);
  if (rc != SQLITE_OK)
    return shared::make_error(shared::Errc::unavailable, "cannot open " + file.string() + ": " +
                                                             (raw ? sqlite3_errmsg(raw) : "out of memory"));
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

}  // namespace

shared::Status copy_sqlite_database(const std::filesystem::path& source, const std::filesystem::path& target) {
  std::error_code ec;
  if (std::filesystem::exists(target, ec))
    return shared::make_error(shared::Errc::invalid_input,
                              target.string() + " already exists; name a new file, a backup never overwrites one");
  if (!std::filesystem::is_regular_file(source, ec))
    return shared::make_error(shared::Errc::invalid_input, "no database at " + source.string());
  auto from = open_sqlite_for_backup(source, SQLITE_OPEN_READONLY);
  if (!from) return from.error();
  auto to = open_sqlite_for_backup(target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!to) return to.error();
  auto fail = [&](const std::string& why) {
    to->reset();
    std::filesystem::remove(target, ec);
    return shared::make_error(shared::Errc::unavailable,
                              "copying " + source.string() + " to " + target.string() + " failed: " + why);
  };
  sqlite3_exec(to->get(), "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  sqlite3_backup* copy = sqlite3_backup_init(to->get(), "main", from->get(), "main");
  if (!copy) return fail(sqlite3_errmsg(to->get()));
  // All pages in one step: one read transaction of the source, so the copy is
  // one committed state. A writer holding the lock briefly is waited for.
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt < 200; ++attempt) {
    rc = sqlite3_backup_step(copy, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sqlite3_backup_finish(copy);
  if (rc != SQLITE_DONE) return fail(rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? "the database stayed locked; retry"
                                                                               : sqlite3_errstr(rc));
  if (int e = sqlite3_errcode(to->get()); e != SQLITE_OK) return fail(sqlite3_errmsg(to->get()));
  return {};
}

}  // namespace irt::storage
