// Depots as actors (docs/supply.md, "Depot users, transfers and returns"):
// the depot's steps are hub commands and API calls, since depots are not nodes.
//
//   depot user  a hub user whose role holds manage_depot, bound to depots (its
//               user record's sites name depots of the study). It signs the
//               steps of its depots' shipments only; any other depot's is
//               refused (forbidden, naming the depot). A supply manager
//               (manage_supply) may act for every depot.
//   transfer    depot A to depot B (kind "transfer", id TRF-nnnnnn): kits in
//               A's stock (available, not reserved, not expired, of lots
//               released in a country B serves) reserved for it; then the
//               lifecycle of hub/shipments.h (requested when the study needs
//               approval, else approved; shipped moves them to depot B as
//               "shipped", in transit; lost makes them missing; cancelled
//               frees them at A). B's user receives them kit by kit.
//   return      a site node's return shipment (event kit.return_shipped, kind
//               "return", id RET-<node>-<event seq>): ingest moves the kits
//               the node holds to the depot, "shipped", in transit; the
//               depot's user receives them kit by kit: received ones are
//               "returned" at the depot (then destroyed there with a witness,
//               hub/kit_decisions.h), the others missing. Each receipt,
//               and a loss, sends the node a "kits.at_depot" directive
//               naming the kits and how the depot found them: they leave
//               the node's records.
//
// Every kit that travels in a transfer or a return is listed in
// hub_shipment_kits with what its receipt said; each hop is an audit entry
// with the kit as subject (`irt-hub kit history`). Never a kit type in an
// answer, an error or an audit entry for a blinded reader: kits are named by number.
// Tables: hub_shipment_kits (and hub_shipments.to_depot), made by hub/kit_inventory.cpp.
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/hub_state.h"
#include "hub/shipments.h"
#include "hub/users.h"
#include "shared/event_payloads.h"
#include "shared/result.h"

namespace irt::hub {

// True when `role` is a depot role (holds manage_depot).
bool is_depot_role(const shared::Role& role);

// Whether `user` may act for `depot`: a role with manage_supply for every
// depot, a depot role for the depots the user is bound to; forbidden otherwise,
// naming the depot and the user's depots.
shared::Status acts_for_depot(HubState& hub, const User& user, const std::string& depot);

// The depots a reader of shipments and depot stock sees: nullopt for every
// depot (any role but a depot role), else the depot user's own depots.
std::optional<std::vector<std::string>> depots_seen_by(HubState& hub, const User& reader);
// Whether a reader that sees `depots` (depots_seen_by) sees shipment `s`: its
// origin or its destination is one of them.
bool shipment_seen(const std::optional<std::vector<std::string>>& depots, const ShipmentRecord& s);
// Whether such a reader sees custodian `kind` ("site", "depot") `id` in a
// reconciliation or a stock list: a depot user its own depots only.
bool custodian_seen(const std::optional<std::vector<std::string>>& depots, const std::string& kind,
                    const std::string& id);

// A signature for a depot's step: of a user holding manage_supply, or a depot
// user of `depot`.
shared::Result<User> check_depot_signature(HubState& hub, const Signature& s, const std::string& depot);

struct TransferRequest {
  std::string from_depot;
  std::string to_depot;
  std::vector<std::string> kits;  // by number, or
  std::string kit_type;           // the earliest-expiring `count` kits of this type (unblinded signers only)
  int count = 0;
  std::string reason;
};

// Makes a transfer and reserves its kits, in one transaction, signed by a
// user acting for the sending depot. invalid_input for a request that does
// not say which kits, or names a kit type to a blinded signer; not_found for
// an unknown depot or kit; conflict for a kit not in the sending depot's
// stock, reserved, expired, or of a lot not released where the receiving
// depot ships; exhausted when the depot lacks `count` such kits. Nothing changes then.
shared::Result<ShipmentRecord> request_transfer(HubState& hub, const TransferRequest& request,
                                                const Signature& signer, std::int64_t now_ms);

// The depot a shipment's steps are signed for: the sending depot, or for a
// return the receiving one.
std::string acting_depot(const ShipmentRecord& s);

// A shipment step's move of kits for a transfer (ship: to the receiving
// depot, in transit) or a transfer or return (lose: in transit -> missing).
// Inside the caller's transaction. Returns how many kits moved, or a conflict.
shared::Result<std::size_t> move_depot_shipment(HubState& hub, const ShipmentRecord& s, ShipmentStep step,
                                                std::int64_t now_ms);

struct DepotReceipt {
  std::string kit;
  shared::KitStatus condition = shared::KitStatus::received;  // received, damaged or missing
};

// The kits of a receipt as the API's body gives them, a list of
// {"kit": K, "condition": received|damaged|missing} (condition received when
// absent); invalid_input for any other shape, naming it.
shared::Result<std::vector<DepotReceipt>> depot_receipts_from_json(const nlohmann::json& listed);

struct DepotReceiptDone {
  ShipmentRecord shipment;  // as it is now: receiving or closed
  std::string signed_by;
  std::size_t kits = 0;
};

// The receiving depot's user reports kits of a transfer or return shipment
// (shipped, delivered or receiving): received (transfer: available at the
// depot; return: returned), damaged (reason required), missing. Once every kit
// is reported the shipment is closed. All or nothing: a kit not in the
// shipment, or already reported, refuses the whole receipt (conflict).
shared::Result<DepotReceiptDone> receive_at_depot(HubState& hub, const std::string& shipment_id,
                                                  const std::vector<DepotReceipt>& kits, const std::string& reason,
                                                  const Signature& signer, std::int64_t now_ms);

// Ingest (inside its transaction): a node's return shipment, event `seq`.
// Kits the node holds at the hub move to the depot in transit; each other kit
// is returned as a problem (the caller raises kit.not_in_custody); an unknown
// depot returns one problem and moves nothing. Read once: a repeat does nothing.
std::string return_shipment_id(const std::string& node_id, std::uint64_t seq);  // "RET-<node>-<seq>"
std::vector<std::string> record_return_shipment(HubState& hub, const std::string& node_id, std::uint64_t seq,
                                                const shared::KitsReturnShipped& r, std::int64_t now_ms);

struct ShipmentKit {
  std::string kit;
  std::string outcome;  // "" not yet reported, received, damaged, missing
};
// The kits that travelled in a transfer or return shipment.
std::vector<ShipmentKit> shipment_kits(storage::Database& db, const std::string& shipment_id);

// For reconciliation: each kit that left in a transfer (shipped or later) ->
// the depots it left; each kit in a return -> the nodes it left.
struct DepotFlows {
  std::map<std::string, std::vector<std::string>> transferred_from;
  std::map<std::string, std::vector<std::string>> returned_from;
};
DepotFlows depot_flows(storage::Database& db);

}  // namespace irt::hub
