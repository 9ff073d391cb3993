// The hub's audit trail: every change of state made at the hub (init, invite,
// enroll, user add, revoke, unfreeze, alerts raised by ingest) as who, what,
// when, why, old and new value (21 CFR Part 11 style).
//
// Callers write an entry in the same transaction as the change it describes,
// so the trail never claims a change that rolled back nor misses one that
// committed. Entries are only ever inserted. Values never hold a secret (no
// token, no password, no password hash).
//
// The trail is a hash chain signed by the hub (docs/hub.md, "What verify
// checks"): each entry gets a seal (hub_audit_seals: its position, the hash of
// the entry before it, its own hash over every field, and the hub's Ed25519
// signature of that hash), and one signed head (hub_audit_head: how many
// entries, the last one's hash) moves with every entry, in the same
// transaction. verify_audit names an entry edited, deleted, moved or inserted
// by hand and a tail cut. The key is the one an AuditSigner registered for the
// connection (HubState does, for as long as it is open); without one (a
// module's unit test on a bare database) entries are chained but unsigned, and
// verify_audit names them. Entries written before the trail was chained are
// sealed as they stand the first time the hub opens with its key.
// Thread-safety: as storage::Database (one thread at a time per connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/sign.h"
#include "shared/civil_date.h"
#include "shared/result.h"
#include "sync/checkpoint.h"
#include "storage/database.h"

namespace irt::hub {

struct AuditEntry {
  std::int64_t at_ms = 0;
  std::string actor;   // the signing hub user, else the operating-system user for commands, "hub" for automatic decisions
  std::string action;  // "hub.initialized", "node.enrolled", "user.added", ...
  std::string subject; // what it is about: a node id, a user name, a site
  std::string reason;
  std::string old_value;
  std::string new_value;
  // When the actor signed the change (an electronic signature: the actor's
  // name, the entry's UTC time and this meaning: "approved", "performed",
  // "reviewed"); empty for changes that need none.
  std::string signature;
};

shared::Status migrate_audit(storage::Database& db);
void record_audit(storage::Database& db, const AuditEntry& entry);

// While one lives, record_audit signs what it writes on `db` with `key`.
// Registering seals the entries written before the trail was chained (a data
// directory from an earlier release), once. Both must outlive it.
class AuditSigner {
 public:
  AuditSigner(storage::Database& db, const crypto::SigningKey& key);
  ~AuditSigner();
  AuditSigner(const AuditSigner&) = delete;
  AuditSigner& operator=(const AuditSigner&) = delete;

 private:
  storage::Database* db_;
};

// Re-checks the trail from the stored rows: every entry's seal (position,
// link to the one before, hash of its fields, the hub's signature) and the
// signed head. One problem per line, each naming the entry (its id, action
// and subject) and what is wrong; empty when the trail verifies. `entries`
// gets how many entries were checked.
std::vector<std::string> verify_audit(storage::Database& db, const crypto::PublicKey& hub_key,
                                      std::uint64_t& entries);
// The trail's head as the ledger's checkpoints commit to it (sync/checkpoint.h):
// how many entries are sealed and the last one's hash.
sync::AuditHead audit_head(storage::Database& db);

// irt-hub verify: the trail against every stored checkpoint that commits to
// an audit head (`checkpoint_texts`, opened with `hub_key`): a trail shorter
// than a checkpoint recorded (cut, or restored whole from an earlier copy),
// or whose entry at that position no longer has the hash recorded there.
std::vector<std::string> verify_audit_in_checkpoints(storage::Database& db,
                                                     const std::vector<std::string>& checkpoint_texts,
                                                     const crypto::PublicKey& hub_key);

// Which entries to read; an empty field does not filter.
struct AuditFilter {
  std::optional<std::int64_t> since_ms;  // at or after
  std::string actor;
  std::string subject;
};
std::vector<AuditEntry> audit_entries(storage::Database& db, const AuditFilter& filter = {});  // oldest first

// "2026-01-01T00:00:00Z": how the hub shows a time to people.
using shared::utc_text;

}  // namespace irt::hub
