// Whole SQLite database files: a consistent copy while other processes write
// to it, with SQLite's online backup API (sqlite3_backup_*), for the hub's
// backup and restore (hub/backup_commands.cpp, docs/operations.md); and the
// sealing of a clear file (storage/sealed_vfs.h) when the hub upgrades one.
//
// The copy is taken in one step, inside one read transaction of the source, so
// it is the database as one commit left it; in WAL mode writers go on while
// it runs. The target is written, then synced (synchronous=FULL) before the
// call returns. Thread-safety: opens its own connections; call from any thread.
#pragma once

#include <filesystem>

#include "shared/result.h"
#include "storage/database.h"

namespace irt::storage {

// Copies the SQLite database `source` into the new file `target`, which must
// not exist. With a key, the source is a file sealed under it and so is the
// target. Fails (unavailable) when the source cannot be read or stays locked,
// (invalid_input) when `target` exists; leaves no `target` on failure.
shared::Status copy_sqlite_database(const std::filesystem::path& source, const std::filesystem::path& target,
                                    const SealingKey* key = nullptr);

// Seals the clear SQLite database `file` under `key`, in place: a sealed copy
// is written beside it, synced, and renamed over it, so a crash leaves one or
// the other whole. Returns false, changing nothing, when the file is sealed
// already. No other connection may have the file open.
shared::Result<bool> seal_sqlite_database(const std::filesystem::path& file, const SealingKey& key);

}  // namespace irt::storage
