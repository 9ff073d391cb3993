// The hub's audit trail: every change of state made at the hub (init, invite,
// enroll, user add, revoke, unfreeze, alerts raised by ingest) as who, what,
// when, why, old and new value (21 CFR Part 11 style).
//
// Callers write an entry in the same transaction as the change it describes,
// so the trail never claims a change that rolled back nor misses one that
// committed. Entries are only ever inserted. Values never hold a secret (no
// token, no password, no password hash).
// Thread-safety: as storage::Database (one thread at a time per connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/civil_date.h"
#include "shared/result.h"
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
