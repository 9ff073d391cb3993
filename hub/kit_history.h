// A kit's chain of custody as the hub knows it (`irt-hub kit history`,
// GET /api/v1/kits/{kit}/history): where the kit is and in what status
// (hub/kit_inventory.h), and every audit entry of the hub and event of a node
// about it, its shipment or its lot, oldest first.
//
// Blinded readers get it as the audit trail gives it to them (hub/audit_trail.h:
// text naming an arm or a kit type withheld, sealed parts closed), and never
// the kit's type or lot (an imported lot may hold one kit type only).
// Thread-safety: as HubState.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/audit_trail.h"
#include "hub/hub_state.h"
#include "hub/kit_inventory.h"
#include "shared/result.h"

namespace irt::hub {

struct KitHistory {
  HubKit kit;                       // kit_type and lot cleared for a blinded reader
  std::vector<TrailEntry> entries;  // oldest first
};

// not_found for a kit the hub does not know.
shared::Result<KitHistory> kit_history(HubState& hub, const std::string& kit, bool blinded);

nlohmann::json to_json(const KitHistory& h, bool blinded);

}  // namespace irt::hub
