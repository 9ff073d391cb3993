// Custody of kits between two nodes of one site: a site node hands kits to
// one of its nurses' tablets for home visits, a tablet hands unused kits back
// (docs/supply.md, "Custody between nodes").
//
// The giving node records a kit.handover_requested event (the kits left its
// stock at once, "in transit"). When the hub reads it (hub/consumption.h, in
// the push's transaction) decide_handover moves the kits' custody
// (hub/kit_inventory.h move_node_kits) and sends two directives: to the giving
// node "kits.handover" (outcome "moved": the kits leave its records), to the
// receiving node a "shipment" of kind "handover" (id HND-<giving node>-<event
// seq>) that it receives kit by kit like any shipment. Each kit's hop is one
// audit entry "kit.custody_moved" with the kit as subject, so `irt-hub kit
// history` shows it. A request the hub cannot carry out (the other node is not
// an active node of the same site, a kit is not in the giving node's stock at
// the hub) is refused whole: "kits.handover" with outcome "refused" and the
// reason, the kits return to the giving node's stock, and an audit entry
// "kit.handover_refused". A kit of a refused request that the hub rejected or
// put on hold meanwhile gets that decision sent again after the refusal, so
// that it does not come back usable to the giving node's stock.
// Each request is decided once (hub_kit_handovers, one row per giving node and
// event seq).
// Tables: hub_kit_handovers.
// Thread-safety: as HubState; runs inside a transaction the caller holds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "shared/event_payloads.h"
#include "shared/result.h"

namespace irt::hub {

shared::Status migrate_custody(storage::Database& db);

struct HandoverDecision {
  bool moved = false;
  std::string shipment_id;  // the receiving node's shipment, when moved
  std::string reason;       // why it was refused
  std::size_t kits = 0;
};

// Decides the handover node `from_node` requested in its event `request_seq`.
// A request already decided is answered with the decision kept, and nothing is sent again.
HandoverDecision decide_handover(HubState& hub, const std::string& from_node, std::uint64_t request_seq,
                                 const shared::KitHandoverRequested& request, std::int64_t now_ms);

struct HandoverRecord {
  std::string from_node;
  std::uint64_t request_seq = 0;
  std::string to_node;
  std::string outcome;  // "moved" or "refused"
  std::string shipment_id;
  std::string reason;
  std::size_t kits = 0;
  std::int64_t decided_ms = 0;
};
// Every handover the hub decided, oldest first.
std::vector<HandoverRecord> handovers(storage::Database& db);

}  // namespace irt::hub
