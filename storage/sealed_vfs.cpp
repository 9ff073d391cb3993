#include "storage/sealed_vfs.h"

#include <sodium.h>
#include <sqlite3.h>

#include <array>
#include <cctype>
#include <cstring>
#include <fstream>
#include <mutex>

namespace irt::storage::detail {

namespace {

constexpr int kPage = kSealedPageSize;
constexpr int kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr int kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kNonce + kTag == kSealedReserve);
constexpr int kHeader = 100;           // the database file's clear header, on page 1
constexpr int kWalHeader = 32;         // the WAL's header
constexpr int kFrameHeader = 24;       // each WAL frame's header
constexpr int kFrame = kFrameHeader + kPage;
constexpr char kKeyParameter[] = "irt_key";
// A file being made whole from nothing (VACUUM INTO's target): its rollback
// journal never holds a page, as every page is new.
constexpr char kNewParameter[] = "irt_new";
constexpr unsigned char kAd[] = "irt sealed page v1";

sqlite3_vfs* root() { return sqlite3_vfs_find(nullptr); }

struct SealedFile {
  sqlite3_file base;   // first: SQLite sees this
  sqlite3_file* real;  // the platform's file, allocated right after this struct
  enum { clear, database, wal } kind;
  SealingKey key;
};

SealedFile* self(sqlite3_file* f) { return reinterpret_cast<SealedFile*>(f); }
sqlite3_file* real(sqlite3_file* f) { return self(f)->real; }

// Seals bytes [from, kPage - kSealedReserve) of `page` in place; the nonce and tag go into the reserve.
void seal(const SealingKey& key, unsigned char* page, int from) {
  unsigned char* nonce = page + kPage - kSealedReserve;
  unsigned char* tag = nonce + kNonce;
  randombytes_buf(nonce, kNonce);
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(page + from, tag, nullptr, page + from,
                                                      static_cast<unsigned long long>(kPage - kSealedReserve - from),
                                                      kAd, sizeof kAd, nullptr, nonce, key.data());
}

// Opens what seal() sealed, in place; false (and `page` unchanged) if it does not open.
bool open(const SealingKey& key, unsigned char* page, int from) {
  const unsigned char* nonce = page + kPage - kSealedReserve;
  return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
             page + from, nullptr, page + from, static_cast<unsigned long long>(kPage - kSealedReserve - from),
             nonce + kNonce, kAd, sizeof kAd, nonce, key.data()) == 0;
}

// SQLite never writes into a page's reserve and computes the WAL's checksums
// over whole pages, reserve included: it gets back the zeros it left there.
void zero_reserve(unsigned char* page) { std::memset(page + kPage - kSealedReserve, 0, kSealedReserve); }

// Where a read or write of `n` bytes at `off` falls: a region left in clear, a
// sealed page (and from which byte it is sealed), a whole WAL frame (header and
// page), or none of these (an access SQLite does not make to these files).
struct Span {
  enum { in_clear, page, frame, unexpected } what;
  int sealed_from = 0;
};

Span span_of(const SealedFile& f, int n, sqlite3_int64 off) {
  if (f.kind == SealedFile::database) {
    if (off + n <= kHeader) return {Span::in_clear};
    if (n == kPage && off % kPage == 0) return {Span::page, off == 0 ? kHeader : 0};
    return {Span::unexpected};
  }
  if (off + n <= kWalHeader) return {Span::in_clear};
  if (off < kWalHeader) return {Span::unexpected};
  const auto at = (off - kWalHeader) % kFrame;
  if (at == 0 && n == kFrameHeader) return {Span::in_clear};
  if (at == kFrameHeader && n == kPage) return {Span::page, 0};
  if (at == 0 && n == kFrame) return {Span::frame};
  return {Span::unexpected};
}

int x_close(sqlite3_file* f) {
  int rc = real(f)->pMethods->xClose(real(f));
  sodium_memzero(self(f)->key.data(), self(f)->key.size());
  return rc;
}

int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  auto& file = *self(f);
  if (file.kind == SealedFile::clear) return real(f)->pMethods->xRead(real(f), buf, n, off);
  const Span s = span_of(file, n, off);
  if (s.what == Span::unexpected) return SQLITE_IOERR_READ;
  int rc = real(f)->pMethods->xRead(real(f), buf, n, off);
  if (rc != SQLITE_OK || s.what == Span::in_clear) return rc;  // a short read is past the end: zeros, as SQLite expects
  auto* bytes = static_cast<unsigned char*>(buf);
  if (s.what == Span::frame) {
    // Recovery reads whole frames; one torn by a crash goes back as it lies and fails its checksum.
    if (open(file.key, bytes + kFrameHeader, 0)) zero_reserve(bytes + kFrameHeader);
    return SQLITE_OK;
  }
  if (!open(file.key, bytes, s.sealed_from)) return SQLITE_IOERR_DATA;
  zero_reserve(bytes);
  return SQLITE_OK;
}

int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  auto& file = *self(f);
  if (file.kind == SealedFile::clear) return real(f)->pMethods->xWrite(real(f), buf, n, off);
  const Span s = span_of(file, n, off);
  if (s.what == Span::in_clear) return real(f)->pMethods->xWrite(real(f), buf, n, off);
  if (s.what != Span::page) return SQLITE_IOERR_WRITE;
  std::array<unsigned char, kPage> page;
  std::memcpy(page.data(), buf, kPage);
  seal(file.key, page.data(), s.sealed_from);
  int rc = real(f)->pMethods->xWrite(real(f), page.data(), kPage, off);
  sodium_memzero(page.data(), page.size());
  return rc;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) { return real(f)->pMethods->xTruncate(real(f), size); }
int x_sync(sqlite3_file* f, int flags) { return real(f)->pMethods->xSync(real(f), flags); }
int x_file_size(sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); }
int x_lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
int x_unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
int x_check_reserved_lock(sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); }
int x_file_control(sqlite3_file* f, int op, void* arg) { return real(f)->pMethods->xFileControl(real(f), op, arg); }
int x_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int x_device_characteristics(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int x_shm_unmap(sqlite3_file* f, int remove) { return real(f)->pMethods->xShmUnmap(real(f), remove); }

// Version 2: shared memory for WAL, and no memory-mapped reads (xFetch), which
// would hand SQLite the sealed bytes.
const sqlite3_io_methods kMethods = {
    2,           x_close,         x_read,      x_write,      x_truncate,      x_sync,
    x_file_size, x_lock,          x_unlock,    x_check_reserved_lock, x_file_control, x_sector_size,
    x_device_characteristics, x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap, nullptr,
    nullptr};

bool parse_key(const char* hex, SealingKey& key) {
  size_t len = 0;
  return hex && std::strlen(hex) == 2 * key.size() &&
         sodium_hex2bin(key.data(), key.size(), hex, 2 * key.size(), nullptr, &len, nullptr) == 0 &&
         len == key.size();
}

int x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = self(f);
  file->base.pMethods = nullptr;
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  file->kind = SealedFile::clear;
  const char* hex = name ? sqlite3_uri_parameter(name, kKeyParameter) : nullptr;
  if (hex) {
    if (flags & SQLITE_OPEN_MAIN_DB) {
      file->kind = SealedFile::database;
    } else if (flags & SQLITE_OPEN_WAL) {
      file->kind = SealedFile::wal;
    } else if (!(flags & SQLITE_OPEN_MAIN_JOURNAL) || !sqlite3_uri_boolean(name, kNewParameter, 0)) {
      return SQLITE_CANTOPEN;  // a rollback journal would hold pages in clear
    }
    if (file->kind != SealedFile::clear && !parse_key(hex, file->key)) return SQLITE_CANTOPEN;
  }
  auto* under = static_cast<sqlite3_vfs*>(vfs->pAppData);
  int rc = under->xOpen(under, name, file->real, flags, out_flags);
  if (rc == SQLITE_OK) file->base.pMethods = &kMethods;
  return rc;
}

int x_delete(sqlite3_vfs* v, const char* name, int sync) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xDelete(u, name, sync);
}
int x_access(sqlite3_vfs* v, const char* name, int flags, int* out) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xAccess(u, name, flags, out);
}
int x_full_pathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xFullPathname(u, name, n, out);
}
void* x_dl_open(sqlite3_vfs* v, const char* name) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xDlOpen(u, name);
}
void x_dl_error(sqlite3_vfs* v, int n, char* out) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  u->xDlError(u, n, out);
}
void (*x_dl_sym(sqlite3_vfs* v, void* handle, const char* sym))(void) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xDlSym(u, handle, sym);
}
void x_dl_close(sqlite3_vfs* v, void* handle) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  u->xDlClose(u, handle);
}
int x_randomness(sqlite3_vfs* v, int n, char* out) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xRandomness(u, n, out);
}
int x_sleep(sqlite3_vfs* v, int us) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xSleep(u, us);
}
int x_current_time(sqlite3_vfs* v, double* out) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xCurrentTime(u, out);
}
int x_get_last_error(sqlite3_vfs* v, int n, char* out) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xGetLastError(u, n, out);
}
int x_current_time_int64(sqlite3_vfs* v, sqlite3_int64* out) {
  auto* u = static_cast<sqlite3_vfs*>(v->pAppData);
  return u->xCurrentTimeInt64(u, out);
}

}  // namespace

const char* sealed_vfs_name() {
  static const char* name = [] {
    if (sodium_init() < 0) return static_cast<const char*>(nullptr);
    sqlite3_vfs* under = root();
    static sqlite3_vfs vfs = {};
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(SealedFile)) + under->szOsFile;
    vfs.mxPathname = under->mxPathname;
    vfs.zName = "irt-sealed";
    vfs.pAppData = under;
    vfs.xOpen = x_open;
    vfs.xDelete = x_delete;
    vfs.xAccess = x_access;
    vfs.xFullPathname = x_full_pathname;
    vfs.xDlOpen = x_dl_open;
    vfs.xDlError = x_dl_error;
    vfs.xDlSym = x_dl_sym;
    vfs.xDlClose = x_dl_close;
    vfs.xRandomness = x_randomness;
    vfs.xSleep = x_sleep;
    vfs.xCurrentTime = x_current_time;
    vfs.xGetLastError = x_get_last_error;
    vfs.xCurrentTimeInt64 = x_current_time_int64;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) return static_cast<const char*>(nullptr);
    return vfs.zName;
  }();
  return name;
}

std::string sealed_uri(const std::filesystem::path& file, const SealingKey& key, bool made_new) {
  std::string uri = "file:";
  static const char* digits = "0123456789ABCDEF";
  for (char ch : file.string()) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '/' || c == '.' || c == '-' || c == '_' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      uri += '%';
      uri += digits[c >> 4];
      uri += digits[c & 15];
    }
  }
  std::array<char, 2 * sizeof(SealingKey) + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), key.data(), key.size());
  uri += std::string("?") + kKeyParameter + "=" + hex.data();
  if (made_new) uri += std::string("&") + kNewParameter + "=1&vfs=" + sealed_vfs_name();
  sodium_memzero(hex.data(), hex.size());
  return uri;
}

std::string sealed_file_setup() {
  return "PRAGMA journal_mode=OFF; PRAGMA page_size=" + std::to_string(kPage) +
         "; PRAGMA application_id=" + std::to_string(kSealedApplicationId) + "; PRAGMA journal_mode=WAL;";
}

namespace {

FileKind kind_of_header(const std::array<unsigned char, kHeader>& h) {
  if (std::memcmp(h.data(), "SQLite format 3", 16) != 0) return FileKind::not_sqlite;
  const std::uint32_t app = std::uint32_t(h[68]) << 24 | std::uint32_t(h[69]) << 16 | std::uint32_t(h[70]) << 8 | h[71];
  const int page_size = h[16] << 8 | h[17];
  return app == kSealedApplicationId && h[20] == kSealedReserve && page_size == kPage ? FileKind::sealed
                                                                                     : FileKind::clear;
}

}  // namespace

FileKind sqlite_file_kind(sqlite3* db) {
  sqlite3_file* f = nullptr;
  sqlite3_int64 size = 0;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f || !f->pMethods ||
      f->pMethods->xFileSize(f, &size) != SQLITE_OK || size == 0)
    return FileKind::missing_or_empty;
  std::array<unsigned char, kHeader> h{};
  if (size < kHeader || f->pMethods->xRead(f, h.data(), kHeader, 0) != SQLITE_OK) return FileKind::not_sqlite;
  return kind_of_header(h);
}

FileKind sqlite_file_kind(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::array<unsigned char, kHeader> h{};
  if (!in || !in.read(reinterpret_cast<char*>(h.data()), h.size())) {
    in.clear();
    return in.gcount() == 0 ? FileKind::missing_or_empty : FileKind::not_sqlite;
  }
  return kind_of_header(h);
}

}  // namespace irt::storage::detail
