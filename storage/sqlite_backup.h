// A consistent copy of a SQLite database file while other processes write to
// it, with SQLite's online backup API (sqlite3_backup_*): the hub's backup and
// restore (hub/backup_commands.cpp, docs/operations.md).
//
// The copy is taken in one step, inside one read transaction of the source, so
// it is the database as one commit left it; in WAL mode writers go on while
// it runs. The target is written, then synced (synchronous=FULL) before the
// call returns. Thread-safety: opens its own connections; call from any thread.
#pragma once

#include <filesystem>

#include "shared/result.h"

namespace irt::storage {

// Copies the SQLite database `source` into the new file `target`, which must
// not exist. Fails (unavailable) when the source cannot be read or stays
// locked, (invalid_input) when `target` exists; leaves no `target` on failure.
shared::Status copy_sqlite_database(const std::filesystem::path& source, const std::filesystem::path& target);

}  // namespace irt::storage
