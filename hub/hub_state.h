// The hub's data directory and everything opened from it.
//
// Layout of DATA (created by `irt-hub init`, mode 0700):
//   hub.db                    SQLite database (ledger_*, hub_* tables), every page
//                             of it and of its WAL sealed under a key derived from
//                             the data key (storage/sealed_vfs.h), unless
//   database.url              the hub's tables are in PostgreSQL: the URL given
//                             to `irt-hub init --db`, 0600 (docs/architecture.md, storage;
//                             several serve processes, replication, backups: docs/scaling.md)
//   keys/hub-data.key         the hub's data key: 32 random bytes wrapped under a key
//                             derived with Argon2id from the operator's passphrase
//                             (crypto/key_wrap.h, the node's scheme), 0600
//   keys/hub-signing.key      Ed25519 seed sealed under the data key (crypto/aead.h), 0600:
//                             signs certificates, directives and checkpoints
//   keys/unblinding.key       X25519 secret sealed under the data key, 0600: opens sealed fields
//   tls/hub.key               ECDSA P-256 key, PEM, sealed under the data key, 0600
//   tls/hub.crt               self-signed certificate, PEM (nodes pin its fingerprint)
// Each sealed file has its own name as associated data, so files swapped
// between places do not open. Without the passphrase the directory reveals no
// key and no table (the lists, seeds, allocations and kits in hub.db); a directory whose keys are in clear (made before they were wrapped) is
// refused until `irt-hub keys wrap` wraps them (docs/hub.md).
//
// Who uses it: every irt-hub command that touches a hub, and the sync server.
// create() refuses an existing directory and leaves nothing behind when it
// fails half way: it removes DIR, and writes the database in one transaction,
// so a PostgreSQL database given to init --db is as empty as before and a
// retry works. open() refuses a secret key file readable by others.
// The current study is the last version stored in hub_study_versions; every
// version stays there (hub/amendments.h adds them). A process that keeps a
// HubState open (serve) calls refresh_study() before each request, so an
// amendment made by another process governs its next answer.
// Thread-safety: one thread at a time (it owns one database connection); the
// sync server serialises access. Several processes may each open a HubState
// on one PostgreSQL database: what they share is in its tables, and their
// writes are serialised by storage::Transaction (docs/architecture.md, hub).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/password.h"
#include "crypto/seal.h"
#include "crypto/sign.h"
#include "hub/directive_outbox.h"
#include "shared/result.h"
#include "shared/study.h"
#include "storage/database.h"
#include "sync/ledger.h"

namespace irt::hub {

class RandomizationStore;
class AuditSigner;

struct HubPaths {
  std::filesystem::path dir;
  std::filesystem::path database;      // the SQLite file
  std::filesystem::path database_url;  // the file recording a PostgreSQL URL
  // Where the tables are: the PostgreSQL URL given to init (--db) or recorded
  // in database_url, else the SQLite file.
  std::string location;
  std::filesystem::path data_key;
  std::filesystem::path signing_key;
  std::filesystem::path unblinding_key;
  std::filesystem::path tls_key;
  std::filesystem::path tls_certificate;
  static HubPaths of(const std::filesystem::path& dir, const std::string& db = "");
  bool postgresql() const { return storage::Database::is_postgresql_url(location); }
};

// The lots and kit list a study ships with (hub/kit_lists.h): CSV texts and
// the file names they are audited under. Without them init generates kits.
struct InitialKits {
  std::string lots_csv, lots_name;
  std::string kits_csv, kits_name;
  bool given() const { return !kits_name.empty(); }
};

class HubState {
 public:
  // init: makes DIR, the keys, the TLS identity and the database, stores
  // the study document (already validated by the caller) as version 1, and
  // generates the randomization list and the kit list (randomization_store.h,
  // kit_inventory.h): every table, row and checkpoint in one transaction.
  // `db`: a postgresql:// URL to keep the tables in PostgreSQL (an empty
  // database: init refuses one that holds tables); empty for DATA/hub.db.
  static shared::Result<std::unique_ptr<HubState>> create(const std::filesystem::path& dir,
                                                          const std::string& study_document,
                                                          const std::string& actor, std::int64_t now_ms,
                                                          std::string_view passphrase, const crypto::PwhashCost& cost,
                                                          const std::string& db = "",
                                                          const InitialKits& kits = {});
  // `db` (--db): empty, or the PostgreSQL URL init recorded in DIR/database.url;
  // any other is refused (the keys in DIR go with the database init made
  // beside them), as is a database that holds no hub. A database that moved
  // (a failover, a new host name) is named by editing DIR/database.url.
  // `passphrase` unwraps the keys; a wrong one is refused (Errc::unauthenticated).
  static shared::Result<std::unique_ptr<HubState>> open(const std::filesystem::path& dir, std::string_view passphrase,
                                                        const std::string& db = "");
  // Wraps the keys of a data directory made before they were wrapped (raw
  // key files) under `passphrase`; refuses one whose keys are already wrapped.
  static shared::Status wrap_clear_keys(const std::filesystem::path& dir, std::string_view passphrase,
                                        const crypto::PwhashCost& cost);
  // The hub's tables by themselves, opened as open() opens them (DATA/hub.db
  // unsealed with the key the passphrase unwraps; or PostgreSQL): for tools
  // and tests that read or edit tables directly.
  static shared::Result<storage::Database> open_database(const std::filesystem::path& dir,
                                                         std::string_view passphrase);
  // Backups (docs/operations.md). A backup is one file, a SQLite database in
  // clear holding two tables: irt_backup_sealed_tables, the hub's tables as a
  // sealed copy of hub.db (SQLite's online backup: one committed state, taken
  // while the hub serves; storage/sqlite_backup.h) in chunks; and
  // irt_backup_files, DIR's key files as they lie (sealed under the data key,
  // itself wrapped under the passphrase) and the certificate. So the file
  // reveals nothing without the passphrase, which it needs to be written.
  // Refuses (invalid_input) a hub whose tables are in PostgreSQL, naming
  // pg_dump, and an `out` that exists. Writes `out` 0600, whole or not at all
  // (renamed into place when complete).
  static shared::Status write_backup(const std::filesystem::path& dir, const std::filesystem::path& out,
                                     std::string_view passphrase);
  // Makes `new_dir` (absent, or an empty directory) from a write_backup file,
  // and opens it with `passphrase` (a backup an earlier release wrote, the
  // clear database itself, is sealed then). Refuses a non-empty `new_dir`, a file that
  // is not a backup, and a wrong passphrase; on any failure removes what it
  // wrote, so a retry starts clean.
  static shared::Result<std::unique_ptr<HubState>> restore(const std::filesystem::path& backup,
                                                           const std::filesystem::path& new_dir,
                                                           std::string_view passphrase);
  ~HubState();

  const HubPaths& paths() const { return paths_; }
  storage::Database& db() { return db_; }
  sync::Ledger& ledger() { return *ledger_; }
  DirectiveOutbox& outbox() { return outbox_; }
  const crypto::SigningKey& signing_key() const { return signing_key_; }
  const crypto::BoxKeyPair& unblinding_key() const { return unblinding_key_; }
  const shared::Study& study() const { return study_; }
  const std::string& study_document() const { return study_document_; }
  const std::string& tls_fingerprint() const { return tls_fingerprint_; }
  // The TLS private key, PEM, for the server (never written in clear).
  const crypto::SecretBytes& tls_key_pem() const { return tls_key_pem_; }
  // The randomization list and its slice ledger; nullptr for minimization.
  RandomizationStore* randomization() { return randomization_.get(); }
  // Loads the current study version (and its randomization list) when the
  // database holds a newer one than this state; one query when it does not.
  shared::Status refresh_study();
  // The study as it was at `version` (versions never change once stored), for
  // judging what a node did under the version it acted under; the current
  // study for a version the hub does not hold (an event from before the
  // node's first study.config carries none).
  const shared::Study& study_at(std::optional<int> version);

 private:
  HubState(HubPaths paths, storage::Database db, crypto::SigningKey signing_key, crypto::BoxKeyPair unblinding,
           shared::Study study, std::string document, std::string fingerprint);
  shared::Status load_current_study();

  HubPaths paths_;
  storage::Database db_;
  crypto::SigningKey signing_key_;
  crypto::BoxKeyPair unblinding_key_;
  shared::Study study_;
  std::string study_document_;
  std::string tls_fingerprint_;
  crypto::SecretBytes tls_key_pem_;
  DirectiveOutbox outbox_;
  std::unique_ptr<sync::Ledger> ledger_;
  std::unique_ptr<AuditSigner> audit_signer_;  // record_audit signs with signing_key_ (hub/audit.h)
  std::unique_ptr<RandomizationStore> randomization_;
  std::map<int, shared::Study> earlier_versions_;  // study_at's cache
};

// One row of hub_study_versions: a version as loaded, by whom, when and why.
struct StudyVersion {
  int version = 0;
  std::string study_id;
  std::string document;  // empty when listed without documents
  std::int64_t loaded_ms = 0;
  std::string loaded_by;  // init's operator, then each amendment's signer
  std::string reason;     // the amendment's reason; empty for version 1
};
// Inside the caller's transaction (init, an amendment).
void store_study_version(storage::Database& db, const StudyVersion& v);
// Every version, oldest first.
std::vector<StudyVersion> study_versions(storage::Database& db, bool with_documents = false);

// Every alert in the ledger against the alert.raised audit entry that
// HubState's ledger observer wrote with it (same node, time, message, kind and
// seq), and every such entry against its alert: one problem per alert edited,
// deleted or inserted by hand (irt-hub verify).
std::vector<std::string> verify_alerts(HubState& hub);

// "irt.hub/<study id>": the origin line of the hub's checkpoints.
std::string ledger_origin(const std::string& study_id);

}  // namespace irt::hub
