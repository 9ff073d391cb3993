// What nodes report consuming, taken from their accepted events: the hub's
// side of the one-owner invariant. Inside a push's append transaction (and
// again before a pull is answered) hub/ingest.h calls record_consumption,
// which reads the node's events after its cursor from the ledger and records,
// through the modules that own each table:
//
//   participant.screened / .screen_failed  the participant number used (its
//                                          range's usage: number_ranges.h) and
//                                          the factor levels (allocations.h)
//   participant.randomized                 the slot used (SliceStore::record_use)
//                                          or, for minimization, the decision,
//                                          replayed with verify_offline_decision
//                                          from the granted stream
//                                          (minimization_streams.h); the arm (from
//                                          the part sealed to the hub's unblinding
//                                          key: allocations.h) and the kits dispensed;
//                                          made under a study version older than a
//                                          design change, after it: the deviation
//                                          "old_design" (design_changes.h)
//   kit.dispensed, kit.replaced,           the kits' status at the hub
//   shipment.received, kit.quarantined,
//   kit.returned, kit.destroyed           (kit_inventory.h)
//   supply.shortage                        an alert "supply.shortage" naming the
//                                          site, the visit and, from the sealed
//                                          part, the kit types short with the
//                                          counts (never the participant): for
//                                          the unblinded supply team
//
// Payloads are read only through shared/event_payloads.h. Facts are never
// rejected: an event that uses a slot, number or kit the node does not own, or
// a decision that does not replay, is kept and raises a ledger alert
// ("slot.not_owned", "number.not_granted", "kit.not_in_custody",
// "minimization.replay"); one whose payload or sealed part does not parse (or
// does not open) raises "event.unreadable" naming the event type, its seq and
// the field. No message names an arm or a field's value (only
// "supply.shortage" names kit types, see above).
// The cursor (hub_consumption_cursor) advances in the same transaction as the
// records, so a crash re-reads the same events and nothing is counted twice.
// Tables: hub_consumption_cursor.
// Thread-safety: as HubState; runs inside a transaction the caller holds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/hub_state.h"
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

}  // namespace irt::hub
