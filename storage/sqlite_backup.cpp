#include "storage/sqlite_backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

#include "storage/sealed_vfs.h"

namespace irt::storage {

namespace {

struct SqliteHandleCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteHandleCloser>;

// Opens `file` as it is stored: through the sealing VFS with a key, as a plain file without.
shared::Result<SqliteHandle> open_sqlite_file(const std::filesystem::path& file, int flags, const SealingKey* key) {
  sqlite3* raw = nullptr;
  int rc = key ? sqlite3_open_v2(detail::sealed_uri(file, *key).c_str(), &raw, flags | SQLITE_OPEN_URI,
                                 detail::sealed_vfs_name())
               : sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
  SqliteHandle db(raw);
  if (rc != SQLITE_OK)
    return shared::make_error(shared::Errc::unavailable, "cannot open " + file.string() + ": " +
                                                             (raw ? sqlite3_errmsg(raw) : "out of memory"));
  sqlite3_busy_timeout(db.get(), 5000);
  if (key) sqlite3_exec(db.get(), "PRAGMA temp_store=MEMORY", nullptr, nullptr, nullptr);
  return db;
}

// A new file that is to be sealed gets the page size and reserve sealing needs
// before its first page is written; it is written without a rollback journal
// (sealing allows none), and whoever writes it removes it if it is left unfinished.
bool prepare_sealed_target(sqlite3* db) {
  int reserve = detail::kSealedReserve;
  return sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) == SQLITE_OK &&
         sqlite3_exec(db, ("PRAGMA page_size=" + std::to_string(detail::kSealedPageSize) + "; PRAGMA journal_mode=OFF")
                              .c_str(),
                      nullptr, nullptr, nullptr) == SQLITE_OK;
}

bool fsync_path(const std::filesystem::path& p, int flags) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

shared::Status copy_sqlite_database(const std::filesystem::path& source, const std::filesystem::path& target,
                                    const SealingKey* key) {
  std::error_code ec;
  if (std::filesystem::exists(target, ec))
    return shared::make_error(shared::Errc::invalid_input,
                              target.string() + " already exists; name a new file, a backup never overwrites one");
  if (!std::filesystem::is_regular_file(source, ec))
    return shared::make_error(shared::Errc::invalid_input, "no database at " + source.string());
  auto from = open_sqlite_file(source, SQLITE_OPEN_READONLY, key);
  if (!from) return from.error();
  auto to = open_sqlite_file(target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, key);
  if (!to) return to.error();
  auto fail = [&](const std::string& why) {
    to->reset();
    std::filesystem::remove(target, ec);
    return shared::make_error(shared::Errc::unavailable,
                              "copying " + source.string() + " to " + target.string() + " failed: " + why);
  };
  if (key && !prepare_sealed_target(to->get())) return fail(sqlite3_errmsg(to->get()));
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
  if (key && !fsync_path(target, O_RDONLY)) return fail("cannot sync the copy");
  return {};
}

shared::Result<bool> seal_sqlite_database(const std::filesystem::path& file, const SealingKey& key) {
  std::error_code ec;
  const std::filesystem::path sealed = file.string() + ".sealing";
  auto fail = [&](const std::string& why) {
    std::filesystem::remove(sealed, ec);
    return shared::make_error(shared::Errc::unavailable, "sealing " + file.string() + " failed: " + why +
                                                             "; the file is left in clear, as it was");
  };
  {
    // The header is read through SQLite's own descriptor: this process may
    // hold the file open in another connection, whose locks a descriptor
    // opened and closed beside it would drop.
    auto clear = open_sqlite_file(file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, nullptr);  // URI: VACUUM INTO's target
    if (!clear) return clear.error();
    switch (detail::sqlite_file_kind(clear->get())) {
      case detail::FileKind::sealed: return false;
      case detail::FileKind::clear: break;
      default:
        return shared::make_error(shared::Errc::integrity,
                                  file.string() + " is not a SQLite database; restore it from backup");
    }
    for (const char* leftover : {"", "-wal", "-shm", "-journal"})  // of an interrupted run
      std::filesystem::remove(sealed.string() + leftover, ec);
    // The copy reads the file through its WAL; VACUUM INTO writes a new file
    // with the reserve asked for here and the page size sealing needs.
    // (The page size first: setting it forgets the reserve asked for.)
    int reserve = detail::kSealedReserve;
    const std::string page_size = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA page_size=" +
                                  std::to_string(detail::kSealedPageSize);
    const std::string into = "VACUUM INTO '" + detail::sealed_uri(sealed, key, true) + "'";
    if (sqlite3_exec(clear->get(), page_size.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK ||
        sqlite3_file_control(clear->get(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) != SQLITE_OK ||
        sqlite3_exec(clear->get(), into.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
      return fail(sqlite3_errmsg(clear->get()));
  }
  {
    auto out = open_sqlite_file(sealed, SQLITE_OPEN_READWRITE, &key);
    if (!out) return fail(out.error().message);
    const std::string mark = detail::sealed_file_setup() + " PRAGMA integrity_check;";
    if (sqlite3_exec(out->get(), mark.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
      return fail(sqlite3_errmsg(out->get()));
    if (detail::sqlite_file_kind(out->get()) != detail::FileKind::sealed) return fail("the copy is not marked sealed");
  }
  // The clear file's WAL was emptied and removed when it closed; one left with
  // frames would be applied to the sealed file, so it stops the swap.
  if (std::filesystem::file_size(file.string() + "-wal", ec) > 0 && !ec) return fail(file.string() + "-wal is not empty");
  if (!fsync_path(sealed, O_RDONLY)) return fail("cannot sync the sealed copy");
  std::filesystem::remove(file.string() + "-shm", ec);
  if (::rename(sealed.c_str(), file.c_str()) != 0) return fail(std::string("rename: ") + std::strerror(errno));
  fsync_path(file.parent_path().empty() ? "." : file.parent_path(), O_RDONLY | O_DIRECTORY);
  return true;
}

}  // namespace irt::storage
