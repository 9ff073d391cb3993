// Randomization leases (docs/randomization.md, "The lease"): how long a node
// may randomize from what it holds without hearing from the hub. Every
// node's lease ends `supply.offline_days` after its enrollment or its last
// sync; each pull renews it, as a signed "grant.lease" directive. A lease
// bound (`irt-hub lease shorten --until TIME --reason`, signed, manage_study)
// makes every lease end at TIME at the latest: each node not revoked holding a
// longer lease gets a shorter one at once (delivered at its next pull), and
// leases granted until TIME end at TIME. A node that stays offline past its
// lease stops randomizing and goes on with everything else, so a design
// change reaches every randomization made after the node's lease ends.
//
// Renewal: a pull renews the lease only when the new end is at least
// kLeaseRenewStepMs later than the one held (or earlier, under a bound), so a
// node syncing every few minutes gets a directive an hour, not one a sync;
// the lease never ends later than offline_days after the node's last sync.
//
// Who calls it: hub/grants.h (at enrollment and at each pull) and the
// `irt-hub lease` commands. Every function runs inside a transaction the
// caller holds, except shorten_leases, which holds its own.
// Tables: hub_leases (every lease granted, per node), hub_lease_bounds (every
// shortening). Thread-safety: as storage::Database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "shared/result.h"

namespace irt::hub {

shared::Status migrate_leases(storage::Database& db);

inline constexpr std::int64_t kMillisPerDay = 24LL * 3600 * 1000;

// The node's newest lease, nullopt when it has none.
std::optional<shared::RandomizationLease> current_lease(storage::Database& db, const std::string& node_id);

// The earliest end of the bounds in force at now_ms (those whose end is still
// to come), nullopt when there is none.
std::optional<std::int64_t> lease_bound(storage::Database& db, std::int64_t now_ms);

// The lease the node should hold from now_ms: offline_days from now, within
// the bounds in force.
std::int64_t lease_end(HubState& hub, std::int64_t now_ms);

// Grants a new lease when the node holds none or the renewal is due (see
// above); audited. Returns whether a directive was issued.
bool renew_lease(HubState& hub, const std::string& node_id, std::int64_t now_ms);

struct LeasesShortened {
  std::int64_t until_ms = 0;
  std::vector<std::string> nodes;  // the nodes given a shorter lease, by id
};

// The bound "every lease ends at `until_ms` at the latest": signed by a user
// with manage_study, recorded, audited with the leases it shortened, and a
// shorter lease issued to every node not revoked whose lease ends later. Refused
// (invalid_input) without a reason or for a time not after now_ms.
shared::Result<LeasesShortened> shorten_leases(HubState& hub, std::int64_t until_ms, const std::string& reason,
                                               const Signature& signer, std::int64_t now_ms);

// irt-hub verify (hub/verify_tables.h): hub_leases rebuilt from the
// grant.lease directives the hub signed (its outbox, which verify checks
// first): a lease missing, added by hand, or whose end or directive differs.
std::vector<std::string> verify_leases(HubState& hub);

}  // namespace irt::hub
