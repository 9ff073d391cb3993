// The lifecycle of a shipment from a depot to a site's node (docs/supply.md,
// "Shipment lifecycle"):
//
//   requested  made by resupply or the initial shipment (hub/kit_inventory.h
//              ship_kits) of a study whose shipments need approval
//              (supply.shipment_approval): its kits stay at the depot,
//              available and reserved for it (their shipment_id names it, so
//              no other pick takes them), shown "reserved"
//   approved   a supply manager approved it (signed, "approved")
//   shipped    the depot handed it to a courier (courier, tracking number):
//              its kits move to the node "shipped" and the node gets the
//              shipment directive now. A study without approval ships at
//              once: its shipments start here, as they always did
//   delivered  the courier or the depot says it arrived (optional)
//   receiving  the node reported some of its kits (received, damaged, missing)
//   closed     every kit of it is accounted for by the node
//   lost       declared lost: its kits not yet reported become "missing"
//   cancelled  before shipping: its reserved kits are available at the depot again
//
// Each step is a signed hub action (manage_supply), audited with the shipment
// as subject (so `irt-hub kit history` of each of its kits shows it): old and
// new state, reason, courier and tracking number; never a kit type. A step
// the shipment's state does not allow is refused (conflict) naming the
// shipment, its state and the steps allowed; nothing changes.
// Tables: hub_shipments (hub/kit_inventory.h).
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/kit_inventory.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "shared/result.h"

namespace irt::hub {

struct ShipmentRecord {
  std::string shipment_id;
  std::string kind;  // "initial", "resupply"; "transfer" (node and site empty), "return" (depot_id empty)
  std::string node_id;
  std::string site_id;
  std::string depot_id;
  std::string status;      // requested, approved, shipped, delivered, receiving, closed, lost, cancelled
  std::string shipped_on;  // "YYYY-MM-DD"; empty before it is shipped
  std::string courier;
  std::string tracking;
  std::size_t kits = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::string to_depot;  // a transfer's or return's receiving depot (hub/depot_shipments.h); else ""
};

// The current study's supply.shipment_approval (docs/study-config.md), read
// from its document as the hub stores it (hub_study_versions).
bool shipments_need_approval(storage::Database& db);

std::optional<ShipmentRecord> find_shipment(storage::Database& db, const std::string& shipment_id);
// Every shipment, oldest first; only those in `status` when given.
std::vector<ShipmentRecord> list_shipments(storage::Database& db, const std::string& status = "");
// The kits that went, or are reserved to go, in a shipment, by number (with
// those a transfer or return carried, wherever they are now).
std::vector<HubKit> kits_of_shipment(storage::Database& db, const std::string& shipment_id);
// A kit's status as readers see it: "reserved" for a kit available at a
// depot that a shipment not yet shipped holds, else its status.
std::string shown_status(const HubKit& k);

// Counts, ids and states only: what every reader may see.
nlohmann::json to_json(const ShipmentRecord& s);
// Its kits: number and status; kit type, lot and expiry for an unblinded reader only.
nlohmann::json kits_json(const std::vector<HubKit>& kits, bool unblinded);

// A shipment ship_kits made, sent on: its directive to the node when it left
// the depot at once (status shipped). Returns true when a directive was issued.
bool send_if_shipped(HubState& hub, const shared::Shipment& shipment, std::int64_t now_ms);

enum class ShipmentStep { approve, ship, deliver, lose, cancel };
const char* to_string(ShipmentStep step);

struct ShipmentStepRequest {
  ShipmentStep step = ShipmentStep::approve;
  std::string reason;    // required to lose or cancel
  std::string courier;   // required to ship
  std::string tracking;  // required to ship
};

struct ShipmentStepDone {
  ShipmentRecord shipment;  // as it is now
  std::string signed_by;
  std::size_t kits = 0;     // kits that moved (shipped, made missing, back in stock)
  std::optional<std::uint64_t> directive_seq;  // the shipment directive, when shipped
};

// Takes one step, in its own transaction. not_found for a shipment the hub
// does not know; conflict for a step its state does not allow, or (ship) a
// reserved kit no longer shippable (its lot's release withdrawn, inside the
// do-not-ship window now: cancel and let resupply pick again);
// invalid_input for a missing reason, courier or tracking number.
shared::Result<ShipmentStepDone> step_shipment(HubState& hub, const std::string& shipment_id,
                                               const ShipmentStepRequest& request, const Signature& signer,
                                               std::int64_t now_ms);

// Ingest read the node's receipt of `shipment_id` (inside its transaction):
// "receiving" while kits of it are still unreported at its node, "closed"
// once none is. Nothing for a shipment the hub did not send from a depot
// (a handover) or one already closed, lost or cancelled.
void note_receipt(storage::Database& db, const std::string& shipment_id, std::int64_t now_ms);

}  // namespace irt::hub
