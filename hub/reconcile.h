// Drug accountability: for every site and depot, what it received against
// what became of it, kit by kit (`irt-hub reconcile`, GET
// /api/v1/reconciliation; docs/hub.md, "Reconciliation").
//
//   site   shipped = in transit + on hand + quarantined + rejected + dispensed
//          + returned + destroyed + missing + damaged + lost
//          (every kit shipped to one of the site's nodes, by its status at the hub)
//          + returned to depot (sent back in a return shipment, since held by a depot)
//   depot  placed = shipped + transferred out + in transit + on hand + returned
//          + quarantined + rejected + destroyed + missing + damaged
//          (every kit placed at the depot or brought to it by a transfer or a
//          return: held there, in transit to it, shipped to a site from it,
//          or gone on to another depot by a transfer; hub/depot_shipments.h)
//
// A kit in any other status (lost with a revoked node, a status its custodian
// cannot hold) is a difference, and so is a kit a node of the site reported
// although it did not hold it (an open "kit.not_in_custody" alert). A
// custodian is balanced when it has no difference.
//
// Blinding: counts are by status only, never by kit type (a kit type can name
// an arm); the kit type of each kit is filled only for an unblinded reader.
// Thread-safety: as HubState; reads only.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"

namespace irt::hub {

struct ReconciledKit {
  std::string kit;
  std::string status;    // at the hub (shared::KitStatus name)
  std::string custodian; // node id or depot id
  std::string shipment;  // "" never shipped
  std::string participant;
  std::optional<std::int64_t> units_returned;
  std::string kit_type;  // unblinded readers only
};

struct Reconciliation {
  std::string kind;  // "site" or "depot"
  std::string id;
  std::size_t received = 0;  // site: kits shipped to it; depot: kits placed at it
  std::map<std::string, std::size_t> accounted;  // per column of the equation above ("on_hand", "dispensed", ...)
  std::vector<ReconciledKit> kits;
  std::vector<std::string> differences;
  bool balanced() const { return differences.empty(); }
};

// Every site and depot of the study, or the one named (`site` or `depot`,
// not both); not_found for an id the study does not define.
shared::Result<std::vector<Reconciliation>> reconcile(HubState& hub, const std::string& site,
                                                      const std::string& depot, bool unblinded);
nlohmann::json to_json(const Reconciliation& r);

}  // namespace irt::hub
