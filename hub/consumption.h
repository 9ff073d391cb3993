// What nodes report consuming, taken from their accepted events: the hub's
// side of the one-owner invariant. After a push is durably ingested (and
// again before a pull is answered) the sync server calls record_consumption,
// which reads the node's events after its cursor from the ledger and records:
//
//   participant.screened / .screen_failed  the participant number used (its
//                                          range's usage) and the factor levels
//   participant.randomized                 the slot used (SliceLedger::record_use)
//                                          or, for minimization, the decision,
//                                          replayed with verify_offline_decision
//                                          from the granted stream; the arm (from
//                                          the part sealed to the hub's unblinding
//                                          key) and the kits dispensed
//   kit.dispensed, kit.replaced,           the kits' status at the hub
//   shipment.received, kit.quarantined,
//   kit.returned, kit.destroyed
//   supply.shortage                        an alert "supply.shortage" naming the
//                                          site, the visit and, from the sealed
//                                          part, the kit types short with the
//                                          counts (never the participant): for
//                                          the unblinded supply team
//
// Facts are never rejected: an event that uses a slot, number or kit the node
// does not own, or a decision that does not replay, is kept and raises a
// ledger alert ("slot.not_owned", "number.not_granted", "kit.not_in_custody",
// "minimization.replay", "event.unreadable"), whose message never names an arm
// (only "supply.shortage" names kit types, see above).
// The cursor (hub_consumption_cursor) advances in the same transaction as the
// records, so a crash re-reads the same events and nothing is counted twice.
// Tables: hub_consumption_cursor, hub_participants, hub_allocations (the
// allocations are unblinded, like the list they come from).
// Thread-safety: as HubState; runs inside a transaction the caller holds.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "hub/hub_state.h"
#include "shared/minimization.h"
#include "shared/result.h"
#include "sync/event.h"

namespace irt::hub {

shared::Status migrate_consumption(storage::Database& db);

struct ConsumptionReport {
  std::uint64_t events = 0;
  std::uint64_t numbers = 0;
  std::uint64_t slots = 0;
  std::uint64_t decisions = 0;  // minimization decisions replayed and verified
  std::uint64_t kits = 0;
  std::uint64_t alerts = 0;
};

// `fresh`, when given, are the node's events just appended in the caller's
// transaction; they are used instead of re-reading the ledger when they start
// right after the node's cursor.
shared::Result<ConsumptionReport> record_consumption(HubState& hub, const std::string& node_id, std::int64_t now_ms,
                                                     const std::vector<sync::SignedEvent>* fresh = nullptr);

// Study-wide minimization totals of every allocation the hub knows, and their number.
std::pair<shared::MarginalTotals, std::uint64_t> allocation_totals(storage::Database& db,
                                                                   const shared::MinimizationConfig& config);

// Allocations the hub knows whose participant's factors match all of `levels`
// (factor id -> level), for caps.
std::uint64_t allocations_matching(storage::Database& db, const std::map<std::string, std::string>& levels);

}  // namespace irt::hub
