// Pages sealed at rest: a SQLite VFS ("irt-sealed") over the platform's own
// that encrypts every page of a database file and of its write-ahead log with
// XChaCha20-Poly1305 (libsodium) under a 32-byte key, so that a copied file
// shows nothing of its tables. The hub keeps hub.db this way under a key
// derived from its data key (hub/hub_state.h); the node seals its fields
// itself and does not use it.
//
// Layout, for a page size of 4096 bytes (the only one sealed files use):
// - SQLite keeps the last kReserve bytes of every page unused (the header's
//   "reserved space", set when the file is created); they hold the page's
//   24-byte nonce and 16-byte tag. A fresh random nonce is drawn at every write.
// - The database file: page 1's first 100 bytes (SQLite's header: page size,
//   counters, the application id that marks a sealed file) stay in clear, so
//   SQLite can read them before any page; the rest of page 1 and every other
//   page are sealed.
// - The WAL: its 32-byte header and each frame's 24-byte header (page number,
//   salts, checksums over the clear page) stay in clear; each frame's page is
//   sealed whole. A frame torn by a crash does not open and is handed to
//   SQLite as it lies, so the frame's checksum fails and recovery stops there,
//   as it would without sealing. A page of the database file that does not
//   open is an error (SQLITE_IOERR_DATA): it was edited, or the key is wrong.
// - Nothing else reaches the disk: a sealed connection keeps temporary tables
//   and statement journals in memory, runs in WAL mode, and the VFS refuses to
//   open a rollback journal for a sealed database (but for a file VACUUM INTO
//   makes from nothing, whose journal never holds a page).
//
// A sealed file's pages authenticate their content, not their place: whether
// the tables hold what was written is the hub's signed ledger's to say
// (`irt-hub verify`), not the file's.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "storage/database.h"

struct sqlite3;

namespace irt::storage::detail {

inline constexpr int kSealedPageSize = 4096;
inline constexpr int kSealedReserve = 40;  // nonce 24, tag 16
// The header's application id (offset 68) of a sealed file: "IRTS".
inline constexpr std::uint32_t kSealedApplicationId = 0x49525453;

// The VFS's name, registered with SQLite on the first call.
const char* sealed_vfs_name();

// A URI naming `file` and carrying the key for the VFS (open with SQLITE_OPEN_URI).
// `made_new`: the file is written whole from nothing by VACUUM INTO, which
// names the VFS in the URI and keeps a journal that never holds a page.
std::string sealed_uri(const std::filesystem::path& file, const SealingKey& key, bool made_new = false);

// The statements that make a new or freshly copied file what sealed files are:
// page size, the sealed mark, WAL mode; written without a rollback journal,
// which sealing allows none of (a file being made is discarded if cut short).
std::string sealed_file_setup();

enum class FileKind { missing_or_empty, sealed, clear, not_sqlite };
// What the first 100 bytes of the main database of `db` say it is, read
// through SQLite's own descriptor of the file (it reads no page).
FileKind sqlite_file_kind(sqlite3* db);
// The same, of a file no connection of this process has open: it opens the
// file, and closing any descriptor of a file drops every POSIX lock the
// process holds on it, SQLite's included. For tests and tools.
FileKind sqlite_file_kind(const std::filesystem::path& file);

}  // namespace irt::storage::detail
