#include "hub/hub_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <tuple>

#include "crypto/aead.h"
#include "crypto/key_wrap.h"
#include "storage/sealed_vfs.h"
#include "storage/sqlite_backup.h"

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/cap_allowances.h"
#include "hub/consumption.h"
#include "hub/custody.h"
#include "hub/transfers.h"
#include "hub/deviations.h"
#include "hub/enrollment.h"
#include "hub/kit_decisions.h"
#include "hub/cohort_decisions.h"
#include "hub/kit_inventory.h"
#include "hub/kit_lists.h"
#include "hub/leases.h"
#include "hub/lots.h"
#include "hub/site_activation.h"
#include "hub/minimization_streams.h"
#include "hub/node_overview.h"
#include "hub/number_ranges.h"
#include "hub/push_order.h"
#include "hub/randomization_store.h"
#include "hub/sessions.h"
#include "hub/slice_store.h"
#include "hub/tls_identity.h"
#include "hub/users.h"
#include "hub/webhooks.h"

namespace irt::hub {

namespace fs = std::filesystem;

namespace {

const std::vector<storage::Migration> kStudyMigrations = {
    {1, R"sql(
CREATE TABLE hub_study_versions (
  version INTEGER PRIMARY KEY,
  study_id TEXT NOT NULL,
  document TEXT NOT NULL,
  loaded_ms INTEGER NOT NULL,
  loaded_by TEXT NOT NULL
);
)sql"},
    // Why a version was loaded: the amendment's reason (empty for version 1).
    {2, "ALTER TABLE hub_study_versions ADD COLUMN reason TEXT NOT NULL DEFAULT '';"},
};

shared::Error io_error(const std::string& what, const fs::path& p) {
  return shared::make_error(shared::Errc::internal, "cannot " + what + " " + p.string() + ": " +
                                                        std::strerror(errno) +
                                                        "; check the disk and the directory's permissions");
}

shared::Status write_secret_file(const fs::path& p, crypto::ByteView bytes) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("create", p);
  std::size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      return io_error("write", p);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return io_error("sync", p);
  }
  ::close(fd);
  return {};
}

// A whole key file (at most 64 KiB), refused when others may read it.
shared::Result<crypto::SecretBytes> read_secret_file(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("open", p);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return io_error("inspect", p);
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    return shared::make_error(shared::Errc::forbidden,
                              p.string() + " is readable by other users; run 'chmod 600 " + p.string() +
                                  "' (and consider the key exposed)");
  }
  constexpr off_t kMaxKeyFile = 64 * 1024;
  if (st.st_size <= 0 || st.st_size > kMaxKeyFile) {
    ::close(fd);
    return shared::make_error(shared::Errc::integrity,
                              p.string() + " is not a key file; restore the data directory from backup");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  crypto::SecretBytes out(size);
  std::size_t done = 0;
  while (done < size) {
    auto n = ::read(fd, out.data() + done, size - done);
    if (n <= 0) {
      ::close(fd);
      return io_error("read", p);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return out;
}

// A key sealed under the data key names its place ("keys/hub-signing.key") as
// associated data, so a sealed file moved to another place does not open.
std::string hub_key_file_ad(const fs::path& p) {
  return "irt.hub.key/" + p.parent_path().filename().string() + "/" + p.filename().string();
}

crypto::Bytes seal_hub_key(const crypto::AeadKey& data_key, const fs::path& p, crypto::ByteView secret) {
  return crypto::aead_seal(data_key, secret, crypto::as_bytes(hub_key_file_ad(p)));
}

shared::Result<crypto::SecretBytes> open_sealed_hub_key(const crypto::AeadKey& data_key, const fs::path& p) {
  auto sealed = read_secret_file(p);
  if (!sealed) return sealed.error();
  auto key = crypto::aead_open_secret(data_key, sealed->view(), crypto::as_bytes(hub_key_file_ad(p)));
  if (!key)
    return shared::make_error(shared::Errc::integrity, p.string() +
                                                           " does not open under the hub's data key (edited, or "
                                                           "from another hub); restore the data directory from backup");
  return std::move(*key);
}

shared::Result<crypto::AeadKey> open_hub_data_key(const HubPaths& p, std::string_view passphrase) {
  auto wrapped = read_secret_file(p.data_key);
  if (!wrapped) return wrapped.error();
  auto unwrapped = crypto::unwrap_key(wrapped->view(), passphrase);
  if (!unwrapped.secret) {
    if (unwrapped.error == crypto::UnwrapError::wrong_passphrase)
      return shared::make_error(shared::Errc::unauthenticated,
                                "wrong passphrase for the hub in " + p.dir.string() +
                                    "; check IRT_HUB_PASSPHRASE or --passphrase-file");
    return shared::make_error(shared::Errc::integrity,
                              p.data_key.string() + ": " + crypto::unwrap_error_message(unwrapped.error));
  }
  return crypto::AeadKey::from(std::move(*unwrapped.secret));
}

// The key DATA/hub.db is sealed under (storage/sealed_vfs.h): derived from the
// data key, used for nothing else.
storage::SealingKey database_key(const crypto::AeadKey& data_key) {
  auto sub = data_key.subkey(1, "hubdb v1");
  storage::SealingKey key;
  std::copy(sub.bytes().data(), sub.bytes().data() + key.size(), key.begin());
  return key;
}

// The hub's tables: in PostgreSQL, or in DATA/hub.db sealed under the data
// key's database key. A hub.db an earlier release left in clear is sealed
// first, once (docs/operations.md, "Upgrading").
shared::Result<storage::Database> open_tables(const HubPaths& p, const crypto::AeadKey& data_key, bool create) {
  if (p.postgresql()) return storage::Database::open_location(p.location, {.create = create});
  auto key = database_key(data_key);
  if (!create)
    if (auto sealed = storage::seal_sqlite_database(p.database, key); !sealed) return sealed.error();
  auto db = storage::Database::open(p.database, {.create = create, .sealing_key = &key});
  crypto::secure_zero(key.data(), key.size());
  return db;
}

shared::Status migrate_all(storage::Database& db) {
  for (auto* step : {&migrate_audit, &migrate_enrollment, &migrate_users, &DirectiveOutbox::migrate,
                     &migrate_randomization, &migrate_slices, &migrate_kit_inventory, &migrate_number_ranges,
                     &migrate_minimization_streams, &migrate_allocations, &migrate_consumption,
                     &migrate_cap_allowances, &migrate_push_order, &migrate_sessions, &migrate_deviations,
                     &migrate_node_contacts, &migrate_lots, &migrate_site_activations,
                     &migrate_kit_decisions, &migrate_cohort_decisions,
                     &migrate_custody, &migrate_leases, &migrate_transfers})
    if (auto st = step(db); !st) return st;
  if (auto st = migrate_webhooks(db); !st) return st;
  return db.migrate("hub.study", kStudyMigrations);
}

// Steps of create() that may fail; the caller removes DIR if any does.
shared::Status populate(const HubPaths& p, const std::string& document, const shared::Study& study,
                        const std::string& actor, std::int64_t now_ms, std::string_view passphrase,
                        const crypto::PwhashCost& cost, const InitialKits& kits) {
  for (const auto& sub : {p.signing_key.parent_path(), p.tls_key.parent_path()})
    if (::mkdir(sub.c_str(), 0700) != 0) return io_error("create", sub);
  auto data_key = crypto::AeadKey::generate();
  if (auto st = write_secret_file(p.data_key, crypto::wrap_key(data_key.bytes(), passphrase, cost)); !st) return st;
  auto signing = crypto::SigningKey::generate();
  if (auto st = write_secret_file(p.signing_key, seal_hub_key(data_key, p.signing_key, signing.seed().view())); !st)
    return st;
  auto unblinding = crypto::BoxKeyPair::generate();
  if (auto st = write_secret_file(p.unblinding_key, seal_hub_key(data_key, p.unblinding_key, unblinding.secret().view()));
      !st)
    return st;
  auto tls_key = create_tls_identity(p.tls_certificate);
  if (!tls_key) return tls_key.error();
  if (auto st = write_secret_file(p.tls_key, seal_hub_key(data_key, p.tls_key, tls_key->view())); !st) return st;

  auto db = open_tables(p, data_key, true);
  if (!db) return db.error();
  // Everything init writes to the database is one transaction: a failure at
  // any step leaves the database as it was (on PostgreSQL, empty again for a
  // retry; the SQLite file goes with DIR).
  storage::Transaction tx(*db);
  if (p.postgresql()) {
    // Init never builds a hub over another one's tables.
    if (!db->tables().empty())
      return shared::make_error(shared::Errc::invalid_input,
                                db->label() + " already holds tables; init never overwrites a hub. Give an empty "
                                              "database (createdb NAME) to --db");
    if (auto st = write_secret_file(p.database_url, crypto::as_bytes(p.location + "\n")); !st) return st;
  } else {
    ::chmod(p.database.c_str(), 0600);
  }
  if (auto st = migrate_all(*db); !st) return st;
  AuditSigner audit_signer(*db, signing);
  store_study_version(*db, {study.version, study.id, document, now_ms, actor, ""});
  record_audit(*db, {now_ms, actor, "hub.initialized", study.id, "irt-hub init", "",
                     "study " + study.id + " version " + std::to_string(study.version)});
  if (auto st = create_randomization(*db, study, actor, now_ms); !st) return st;
  if (kits.given()) {
    if (auto lots = load_lots(*db, study, kits.lots_csv, kits.lots_name, actor, now_ms); !lots) return lots.error();
    if (auto imported = import_kit_list(*db, study, kits.kits_csv, kits.kits_name, actor, now_ms); !imported)
      return imported.error();
  } else if (auto st = create_kit_inventory(*db, study, actor, now_ms); !st) {
    return st;
  }
  auto ledger = sync::Ledger::open(*db, signing, ledger_origin(study.id));
  if (!ledger) return ledger.error();
  tx.commit();
  return {};
}

}  // namespace

HubPaths HubPaths::of(const fs::path& dir, const std::string& db) {
  HubPaths p;
  p.dir = dir;
  p.database = dir / "hub.db";
  p.database_url = dir / "database.url";
  p.location = db;
  if (p.location.empty()) {
    std::ifstream in(p.database_url);
    std::getline(in, p.location);
  }
  if (p.location.empty()) p.location = p.database.string();
  p.data_key = dir / "keys" / "hub-data.key";
  p.signing_key = dir / "keys" / "hub-signing.key";
  p.unblinding_key = dir / "keys" / "unblinding.key";
  p.tls_key = dir / "tls" / "hub.key";
  p.tls_certificate = dir / "tls" / "hub.crt";
  return p;
}

std::string ledger_origin(const std::string& study_id) { return "irt.hub/" + study_id; }

HubState::HubState(HubPaths paths, storage::Database db, crypto::SigningKey signing_key,
                   crypto::BoxKeyPair unblinding, shared::Study study, std::string document, std::string fingerprint)
    : paths_(std::move(paths)), db_(std::move(db)), signing_key_(std::move(signing_key)),
      unblinding_key_(std::move(unblinding)), study_(std::move(study)), study_document_(std::move(document)),
      tls_fingerprint_(std::move(fingerprint)),
      outbox_(db_, signing_key_, [this](const std::string& node_id) -> std::optional<crypto::PublicKey> {
        auto node = ledger_->find_node(node_id);
        if (!node) return std::nullopt;
        return node->public_key;
      }) {}

HubState::~HubState() = default;

shared::Result<std::unique_ptr<HubState>> HubState::create(const fs::path& dir, const std::string& study_document,
                                                           const std::string& actor, std::int64_t now_ms,
                                                           std::string_view passphrase, const crypto::PwhashCost& cost,
                                                           const std::string& db, const InitialKits& kits) {
  if (!db.empty() && !storage::Database::is_postgresql_url(db))
    return shared::make_error(shared::Errc::invalid_input, "--db must be a postgresql:// URL (got '" + db +
                                                               "'); leave it out to keep the hub in DIR/hub.db");
  auto load = shared::load_study(study_document);
  if (!load.study)
    return shared::make_error(shared::Errc::invalid_input, "the study document does not validate; run "
                                                           "'irt-hub check-study FILE' to see why");
  std::error_code ec;
  if (fs::exists(dir, ec) || fs::is_symlink(dir, ec))
    return shared::make_error(shared::Errc::invalid_input,
                              dir.string() + " already exists; init never overwrites a hub. Choose a new "
                                             "directory, or use the existing hub with --data " + dir.string());
  if (dir.has_parent_path() && !dir.parent_path().empty()) fs::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST)
      return shared::make_error(shared::Errc::invalid_input,
                                dir.string() + " already exists; init never overwrites a hub");
    return io_error("create", dir);
  }
  auto paths = HubPaths::of(dir, db);
  shared::Status st;
  try {
    st = populate(paths, study_document, *load.study, actor, now_ms, passphrase, cost, kits);
  } catch (const std::exception& e) {
    st = shared::make_error(shared::Errc::internal, std::string("init failed: ") + e.what());
  }
  if (!st) {
    fs::remove_all(dir, ec);  // we made it a moment ago; nothing else lives there
    return st.error();
  }
  return open(dir, passphrase, db);
}

shared::Result<std::unique_ptr<HubState>> HubState::open(const fs::path& dir, std::string_view passphrase,
                                                         const std::string& db_location) {
  std::error_code ec;
  auto paths = HubPaths::of(dir);
  if (!fs::is_directory(dir, ec) || !fs::exists(paths.signing_key, ec) ||
      (!paths.postgresql() && !fs::exists(paths.database, ec)))
    return shared::make_error(shared::Errc::not_found,
                              "no hub data directory at " + dir.string() +
                                  "; create one with 'irt-hub init --data " + dir.string() + " --study FILE'");
  // The keys in DIR go with the database init made beside them, and no other.
  if (!db_location.empty() && db_location != paths.location) {
    if (!paths.postgresql())
      return shared::make_error(shared::Errc::invalid_input,
                                "the hub in " + dir.string() + " keeps its tables in " + paths.database.string() +
                                    ", not in " + storage::Database::redact(db_location) + "; leave out --db");
    return shared::make_error(
        shared::Errc::invalid_input,
        "--db " + storage::Database::redact(db_location) + " is not the database this hub was initialized with (" +
            storage::Database::redact(paths.location) + ", recorded in " + paths.database_url.string() +
            "); leave out --db, or, if the database moved (a failover, a new host name), write its new URL into " +
            paths.database_url.string());
  }
  if (!fs::exists(paths.data_key, ec))
    return shared::make_error(shared::Errc::invalid_input,
                              "the keys in " + dir.string() +
                                  " are stored in clear (the hub was initialized before keys were wrapped); stop "
                                  "the hub, back up the directory, and run 'irt-hub keys wrap --data " +
                                  dir.string() + "' with the passphrase in IRT_HUB_PASSPHRASE or --passphrase-file");
  auto data_key = open_hub_data_key(paths, passphrase);
  if (!data_key) return data_key.error();
  auto seed = open_sealed_hub_key(*data_key, paths.signing_key);
  if (!seed) return seed.error();
  auto unblinding_secret = open_sealed_hub_key(*data_key, paths.unblinding_key);
  if (!unblinding_secret) return unblinding_secret.error();
  auto tls_key = open_sealed_hub_key(*data_key, paths.tls_key);
  if (!tls_key) return tls_key.error();
  if (seed->size() != 32 || unblinding_secret->size() != 32)
    return shared::make_error(shared::Errc::integrity, "the hub's keys in " + dir.string() +
                                                           " have the wrong size; restore the data directory from backup");
  auto signing = crypto::SigningKey::from_seed(seed->view());
  auto unblinding = crypto::BoxKeyPair::from_secret(std::move(unblinding_secret.value()));
  auto fingerprint = hub::tls_fingerprint(paths.tls_certificate);
  if (!fingerprint) return fingerprint.error();

  auto db = open_tables(paths, *data_key, false);
  if (!db) return db.error();
  // A database that holds no hub gets no tables from us either.
  if (auto tables = db->tables(); std::find(tables.begin(), tables.end(), "hub_study_versions") == tables.end())
    return shared::make_error(shared::Errc::not_found,
                              db->label() + " holds no hub; check " +
                                  (paths.postgresql() ? paths.database_url.string() + ", which names it"
                                                      : std::string("the data directory")) +
                                  ", or restore the database from backup");
  if (auto st = migrate_all(*db); !st) return st.error();

  std::unique_ptr<HubState> state(new HubState(paths, std::move(db.value()), std::move(signing),
                                               std::move(unblinding), shared::Study{}, std::string(),
                                               std::move(fingerprint.value())));
  state->tls_key_pem_ = std::move(tls_key.value());
  state->audit_signer_ = std::make_unique<AuditSigner>(state->db_, state->signing_key_);
  if (auto st = state->load_current_study(); !st) return st.error();
  auto ledger = sync::Ledger::open(state->db_, state->signing_key_, ledger_origin(state->study_.id));
  if (!ledger) return ledger.error();
  state->ledger_ = std::move(ledger.value());
  auto* raw = state.get();
  // Every checkpoint commits to the audit trail's head (docs/sync-protocol.md, "Checkpoints").
  state->ledger_->set_audit_head_source([raw] { return audit_head(raw->db_); });
  state->ledger_->set_observer([raw](const sync::LedgerChange& c) {
    record_audit(raw->db_, {c.at_ms, c.actor, c.action, c.subject, c.reason, c.old_value, c.new_value, c.signature});
  });
  return state;
}

std::vector<std::string> verify_alerts(HubState& hub) {
  // The entries the ledger's observer wrote, by (node, time, message): their new_value
  // is the kind, with " at seq N" for an alert about one event.
  std::multimap<std::tuple<std::string, std::int64_t, std::string>, std::string> raised;
  for (auto& e : audit_entries(hub.db()))
    if (e.action == "alert.raised") raised.emplace(std::make_tuple(e.subject, e.at_ms, e.reason), e.new_value);
  std::vector<std::string> problems;
  for (const auto& a : hub.ledger().alerts(false)) {
    const std::string where = "ledger_alerts: alert " + std::to_string(a.id) + " (" + a.kind + ", node " +
                              a.node_id + ", " + utc_text(a.created_ms) + ")";
    const std::string at_seq = a.seq ? a.kind + " at seq " + std::to_string(*a.seq) : a.kind;
    auto [first, last] = raised.equal_range({a.node_id, a.created_ms, a.message});
    auto match = std::find_if(first, last, [&](const auto& r) { return r.second == at_seq || r.second == a.kind; });
    if (match != last) {
      raised.erase(match);
    } else if (first != last) {
      problems.push_back(where + ": stored as '" + at_seq + "', its alert.raised audit entry says '" +
                         first->second + "'");
      raised.erase(first);
    } else {
      problems.push_back(where + " has no alert.raised audit entry (same node, time and message)");
    }
  }
  for (const auto& [key, what] : raised)
    problems.push_back("ledger_alerts: the alert raised at " + utc_text(std::get<1>(key)) + " for node " +
                       std::get<0>(key) + " (" + what + ") is missing");
  return problems;
}

shared::Result<storage::Database> HubState::open_database(const fs::path& dir, std::string_view passphrase) {
  auto paths = HubPaths::of(dir);
  std::error_code ec;
  if (!fs::exists(paths.data_key, ec))
    return shared::make_error(shared::Errc::not_found, "no hub with wrapped keys at " + dir.string() + "; check --data");
  auto data_key = open_hub_data_key(paths, passphrase);
  if (!data_key) return data_key.error();
  return open_tables(paths, *data_key, false);
}

shared::Status HubState::wrap_clear_keys(const fs::path& dir, std::string_view passphrase,
                                         const crypto::PwhashCost& cost) {
  std::error_code ec;
  auto p = HubPaths::of(dir);
  if (!fs::exists(p.signing_key, ec))
    return shared::make_error(shared::Errc::not_found, "no hub data directory at " + dir.string() + "; check --data");
  if (fs::exists(p.data_key, ec))
    return shared::make_error(shared::Errc::invalid_input,
                              "the keys in " + dir.string() + " are already wrapped; nothing was changed");
  auto seed = read_secret_file(p.signing_key);
  if (!seed) return seed.error();
  auto unblinding = read_secret_file(p.unblinding_key);
  if (!unblinding) return unblinding.error();
  auto tls_key = read_secret_file(p.tls_key);
  if (!tls_key) return tls_key.error();
  if (seed->size() != 32 || unblinding->size() != 32)
    return shared::make_error(shared::Errc::integrity, "the key files in " + dir.string() +
                                                           " are not clear 32-byte keys; nothing was changed. "
                                                           "Restore the data directory from backup");
  // Everything sealed is written beside the clear files first, then renamed
  // over them; the data key comes last, as its presence says the rest is sealed.
  auto data_key = crypto::AeadKey::generate();
  std::vector<std::pair<fs::path, crypto::Bytes>> files = {
      {p.signing_key, seal_hub_key(data_key, p.signing_key, seed->view())},
      {p.unblinding_key, seal_hub_key(data_key, p.unblinding_key, unblinding->view())},
      {p.tls_key, seal_hub_key(data_key, p.tls_key, tls_key->view())},
      {p.data_key, crypto::wrap_key(data_key.bytes(), passphrase, cost)}};
  for (const auto& [path, bytes] : files) {
    fs::path fresh = path.string() + ".wrapped";
    fs::remove(fresh, ec);  // left by an interrupted run
    if (auto st = write_secret_file(fresh, bytes); !st) return st;
  }
  for (const auto& [path, bytes] : files)
    if (::rename((path.string() + ".wrapped").c_str(), path.c_str()) != 0) return io_error("replace", path);
  for (const auto& sub : {p.signing_key.parent_path(), p.tls_key.parent_path()})
    if (int fd = ::open(sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  return {};
}

namespace {

// The files of a data directory a backup carries, relative to it: every key
// file as it lies (sealed) and the certificate the nodes pin.
std::vector<fs::path> backed_up_files(const HubPaths& p) {
  std::vector<fs::path> out;
  for (const auto& f : {p.data_key, p.signing_key, p.unblinding_key, p.tls_key, p.tls_certificate})
    out.push_back(fs::relative(f, p.dir));
  return out;
}

shared::Result<crypto::Bytes> read_whole_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return io_error("read", p);
  return crypto::Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const char* kBackupFilesTable = "irt_backup_files";
// The hub's tables, as the sealed file a consistent copy of hub.db makes, in
// chunks. A backup written before hub.db was sealed has no such table: the
// backup file is itself the hub's (clear) database, which open() seals.
const char* kBackupTablesTable = "irt_backup_sealed_tables";
constexpr std::size_t kBackupChunk = 1 << 20;

// Writes the sealed tables a backup carries in chunks into `target`, a new
// file, synced.
shared::Status write_sealed_tables(storage::Database& backup, const fs::path& target) {
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("create", target);
  auto chunks = backup.prepare(std::string("SELECT bytes FROM ") + kBackupTablesTable + " ORDER BY chunk");
  bool ok = true;
  while (ok && chunks.step()) {
    const auto bytes = chunks.blob(0);
    ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  return ok ? shared::Status{} : io_error("write", target);
}

}  // namespace

shared::Status HubState::write_backup(const fs::path& dir, const fs::path& out, std::string_view passphrase) {
  std::error_code ec;
  auto p = HubPaths::of(dir);
  if (!fs::exists(p.signing_key, ec))
    return shared::make_error(shared::Errc::not_found, "no hub data directory at " + dir.string() + "; check --data");
  if (p.postgresql())
    return shared::make_error(
        shared::Errc::invalid_input,
        "this hub keeps its tables in PostgreSQL (" + storage::Database::redact(p.location) +
            "): back them up with 'pg_dump --format=custom', and copy " + (dir / "keys").string() + ", " +
            (dir / "tls").string() + " and " + p.database_url.string() + " beside the dump (docs/operations.md)");
  if (!fs::exists(p.data_key, ec))
    return shared::make_error(shared::Errc::invalid_input,
                              "the keys in " + dir.string() + " are in clear; run 'irt-hub keys wrap --data " +
                                  dir.string() + "' first, so that the backup holds no key in clear");
  if (fs::exists(out, ec) || fs::is_symlink(out, ec))
    return shared::make_error(shared::Errc::invalid_input,
                              out.string() + " already exists; name a new file, a backup never overwrites one");
  auto data_key = open_hub_data_key(p, passphrase);
  if (!data_key) return data_key.error();
  const fs::path partial = out.string() + ".partial", snapshot = out.string() + ".tables";
  for (const auto& f : {partial, snapshot}) fs::remove(f, ec);  // left by an interrupted run
  auto fail = [&](shared::Error e) {
    for (const auto& f : {partial, snapshot}) fs::remove(f, ec);
    return e;
  };
  // A hub.db an earlier release left in clear is sealed first (a hub that
  // served since the upgrade sealed it already).
  auto key = database_key(*data_key);
  auto sealed = storage::seal_sqlite_database(p.database, key);
  auto copied = sealed ? storage::copy_sqlite_database(p.database, snapshot, &key) : shared::Status(sealed.error());
  crypto::secure_zero(key.data(), key.size());
  if (!copied) return fail(copied.error());
  try {
    auto db = storage::Database::open(partial);  // made 0600
    if (!db) return fail(db.error());
    {
      storage::Transaction tx(*db);
      db->exec(std::string("CREATE TABLE ") + kBackupFilesTable + " (path TEXT PRIMARY KEY, content BLOB NOT NULL); " +
               "CREATE TABLE " + kBackupTablesTable + " (chunk INTEGER PRIMARY KEY, bytes BLOB NOT NULL)");
      auto ins = db->prepare(std::string("INSERT INTO ") + kBackupFilesTable + "(path, content) VALUES (?, ?)");
      for (const auto& rel : backed_up_files(p)) {
        auto bytes = read_whole_file(dir / rel);
        if (!bytes) return fail(bytes.error());
        ins.bind_all(rel.string(), *bytes).run();
        ins.reset();
      }
      std::ifstream in(snapshot, std::ios::binary);
      auto chunk = db->prepare(std::string("INSERT INTO ") + kBackupTablesTable + "(chunk, bytes) VALUES (?, ?)");
      storage::Blob bytes(kBackupChunk);
      for (std::int64_t i = 0; in.read(reinterpret_cast<char*>(bytes.data()), kBackupChunk) || in.gcount() > 0; ++i) {
        bytes.resize(static_cast<std::size_t>(in.gcount()));
        chunk.bind_all(i, bytes).run();
        chunk.reset();
        bytes.resize(kBackupChunk);
      }
      if (in.bad()) return fail(io_error("read", snapshot));
      tx.commit();
    }
    db->exec("PRAGMA journal_mode=DELETE");  // one file, no -wal beside it
  } catch (const storage::StorageError& e) {
    return fail(shared::make_error(shared::Errc::internal, std::string("writing the backup failed: ") + e.what()));
  }
  fs::remove(snapshot, ec);
  if (::rename(partial.c_str(), out.c_str()) != 0) return fail(io_error("rename the backup to", out));
  if (int fd = ::open(out.parent_path().empty() ? "." : out.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return {};
}

shared::Result<std::unique_ptr<HubState>> HubState::restore(const fs::path& backup, const fs::path& new_dir,
                                                            std::string_view passphrase) {
  std::error_code ec;
  if (!fs::is_regular_file(backup, ec))
    return shared::make_error(shared::Errc::invalid_input, "no backup file at " + backup.string() + "; check --from");
  const bool existed = fs::exists(new_dir, ec);
  if (existed && (!fs::is_directory(new_dir, ec) || !fs::is_empty(new_dir, ec)))
    return shared::make_error(shared::Errc::invalid_input,
                              new_dir.string() + " is not empty; restore into a new (or empty) directory, never over "
                                                 "a hub");
  if (!existed) {
    if (new_dir.has_parent_path()) fs::create_directories(new_dir.parent_path(), ec);
    if (::mkdir(new_dir.c_str(), 0700) != 0) return io_error("create", new_dir);
  }
  ::chmod(new_dir.c_str(), 0700);
  auto clean = [&](shared::Error e) {
    if (existed) {
      for (const auto& entry : fs::directory_iterator(new_dir, ec)) fs::remove_all(entry.path(), ec);
    } else {
      fs::remove_all(new_dir, ec);
    }
    return e;
  };
  auto p = HubPaths::of(new_dir);
  if (storage::detail::sqlite_file_kind(backup) == storage::detail::FileKind::sealed)
    return clean(shared::make_error(shared::Errc::invalid_input,
                                    backup.string() + " is not a hub backup: it is a hub's sealed database itself; give "
                                                      "a file written by 'irt-hub backup'"));
  const fs::path container = new_dir / "restore.partial";
  if (auto st = storage::copy_sqlite_database(backup, container); !st) return clean(st.error());
  ::chmod(container.c_str(), 0600);
  try {
    auto db = storage::Database::open(container, {.create = false});
    if (!db) return clean(db.error());
    auto tables = db->tables();
    if (std::find(tables.begin(), tables.end(), kBackupFilesTable) == tables.end())
      return clean(shared::make_error(shared::Errc::invalid_input,
                                      backup.string() + " is not a hub backup (it has no table " + kBackupFilesTable +
                                          "); give a file written by 'irt-hub backup'"));
    const auto expected = backed_up_files(p);
    std::size_t written = 0;
    {
      auto files = db->prepare("SELECT path, content FROM irt_backup_files ORDER BY path");
      while (files.step()) {
        const fs::path rel = files.text(0);
        if (std::find(expected.begin(), expected.end(), rel) == expected.end())
          return clean(shared::make_error(shared::Errc::integrity,
                                          backup.string() + " holds an unexpected file '" + rel.string() +
                                              "'; it was not written by 'irt-hub backup'"));
        const fs::path target = new_dir / rel;
        if (!fs::exists(target.parent_path(), ec) && ::mkdir(target.parent_path().c_str(), 0700) != 0)
          return clean(io_error("create", target.parent_path()));
        if (auto st = write_secret_file(target, files.blob(1)); !st) return clean(st.error());
        ++written;
      }
    }
    if (written != expected.size())
      return clean(shared::make_error(shared::Errc::integrity, backup.string() +
                                                                   " lacks some of the hub's key files; it was cut "
                                                                   "short or altered, use another backup"));
    if (std::find(tables.begin(), tables.end(), kBackupTablesTable) != tables.end()) {
      if (auto st = write_sealed_tables(*db, p.database); !st) return clean(st.error());
    } else {
      storage::Transaction tx(*db);
      db->exec("DROP TABLE irt_backup_files");
      tx.commit();
    }
  } catch (const storage::StorageError& e) {
    return clean(shared::make_error(shared::Errc::invalid_input,
                                    backup.string() + " cannot be read as a hub backup: " + e.what()));
  }
  // The database closed and its WAL folded in: an earlier release's backup is
  // the hub's clear database itself, which open() seals.
  if (!fs::exists(p.database, ec) && ::rename(container.c_str(), p.database.c_str()) != 0)
    return clean(io_error("rename the restored database to", p.database));
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(container.string() + suffix, ec);
  auto hub = open(new_dir, passphrase);
  if (!hub) return clean(hub.error());
  return hub;
}

shared::Status HubState::load_current_study() {
  std::string document;
  {
    auto st = db_.prepare("SELECT document FROM hub_study_versions ORDER BY version DESC LIMIT 1");
    if (!st.step())
      return shared::make_error(shared::Errc::integrity,
                                db_.label() + " holds no study; restore the data directory from backup");
    document = st.text(0);
  }
  auto load = shared::load_study(document);
  if (!load.study)
    return shared::make_error(shared::Errc::integrity,
                              "the stored study no longer validates (" +
                                  (load.errors.empty() ? std::string("no detail") : load.errors.front()) +
                                  "); the hub cannot run on it. Load a corrected version");
  auto randomization = RandomizationStore::load(db_, *load.study);
  if (!randomization) return randomization.error();
  study_ = std::move(*load.study);
  study_document_ = std::move(document);
  randomization_ = std::move(randomization.value());
  return {};
}

shared::Status HubState::refresh_study() {
  auto st = db_.prepare("SELECT max(version) FROM hub_study_versions");
  if (!st.step() || st.is_null(0) || st.int64(0) == study_.version) return {};
  return load_current_study();
}

const shared::Study& HubState::study_at(std::optional<int> version) {
  if (!version || *version == study_.version) return study_;
  if (auto it = earlier_versions_.find(*version); it != earlier_versions_.end()) return it->second;
  auto st = db_.prepare("SELECT document FROM hub_study_versions WHERE version = ?");
  st.bind(1, *version);
  if (!st.step()) return study_;
  auto load = shared::load_study(st.text(0));
  if (!load.study) return study_;  // a stored version validated when it was loaded
  return earlier_versions_.emplace(*version, std::move(*load.study)).first->second;
}

void store_study_version(storage::Database& db, const StudyVersion& v) {
  db.prepare(
        "INSERT INTO hub_study_versions(version, study_id, document, loaded_ms, loaded_by, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)")
      .bind_all(v.version, v.study_id, v.document, v.loaded_ms, v.loaded_by, v.reason)
      .run();
}

std::vector<StudyVersion> study_versions(storage::Database& db, bool with_documents) {
  std::vector<StudyVersion> out;
  auto st = db.prepare(
      "SELECT version, study_id, document, loaded_ms, loaded_by, reason FROM hub_study_versions ORDER BY version");
  while (st.step())
    out.push_back({static_cast<int>(st.int64(0)), st.text(1), with_documents ? st.text(2) : std::string(),
                   st.int64(3), st.text(4), st.text(5)});
  return out;
}

}  // namespace irt::hub
