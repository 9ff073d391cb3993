// A full disk, a read-only database or a disk I/O error: the SQL failures an
// operator can fix, told apart from a bug in a statement. The engines throw
// StorageFaultError for them (sqlite_connection.cpp, postgresql_connection.cpp);
// storage_refusal() is the one place they become what people read.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "shared/result.h"
#include "storage/database.h"

namespace irt::storage {

enum class StorageFault {
  disk_full,  // the disk (or quota) holding the database is full
  read_only,  // the database cannot be written: a read-only file, directory or mount
  io_error,   // the operating system failed a read or a write
};

struct StorageFaultError : StorageError {
  StorageFaultError(const std::string& what, StorageFault fault) : StorageError(what), fault(fault) {}
  StorageFault fault;
};

// For an exception that escaped a request or a command: a StorageFaultError as
// Errc::unavailable (nothing was recorded; the same request succeeds once the
// disk is fixed, without a restart), naming the fault and the fix for
// `program` ("irt-node", "irt-hub"), and no path or SQL (those go to the log);
// nullopt for anything else, which stays an internal error.
std::optional<shared::Error> storage_refusal(const std::exception& e, std::string_view program);

}  // namespace irt::storage
