// The one audit trail the central team reads: the hub's own entries
// (hub/audit.h) and every node's events (the site-side trail, as the hub's
// ledger holds them), merged and ordered by time. `irt-hub audit` and
// GET /api/v1/audit both print what audit_trail returns.
//
// A node event is attributed to the site user who recorded it (the event's
// actor), its node and site; its object is the participant, kit or shipment
// it is about, and its time the node's clock when it was recorded. Its details are the event's payload without the
// sealed part. For a blinded reader (hub/users.h reads_blinded) nothing that
// names an arm or a kit type is shown: sealed parts stay sealed, and an
// entry whose text names an arm or a kit type (a supply alert naming the kit
// type short at a site) has that text withheld. For an unblinded reader the
// sealed part is opened with the hub's unblinding key and shown as "allocation".
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hub/audit.h"
#include "hub/hub_state.h"

namespace irt::hub {

struct TrailEntry {
  std::int64_t at_ms = 0;
  std::string source;  // "hub" or "node"
  std::string user;    // the hub user, "hub", or the site user who acted
  std::string action;  // the hub's action, or the node event's type
  std::string object;  // user, node id, site; or participant, kit, shipment
  std::string reason;
  std::string old_value;
  std::string new_value;
  std::string signature;  // "approved", or "signer (role), meaning, time" of a node's e-signature
  std::string node_id;    // node events only
  std::string site_id;
  std::uint64_t seq = 0;
  nlohmann::json details;  // node events: the payload a reader may see
  bool withheld = false;   // something was left out for a blinded reader
};

// Filters as AuditFilter: since (at_ms), user (the actor), object (the
// object, or a node event's node id). Oldest first.
std::vector<TrailEntry> audit_trail(HubState& hub, const AuditFilter& filter, bool blinded);

nlohmann::json to_json(const TrailEntry& e);

// `text` as a reader may see it: for a blinded reader, a note that it was
// withheld when it names an arm or a kit type (the rule the trail applies).
std::string readable_text(const shared::Study& study, const std::string& text, bool blinded);

}  // namespace irt::hub
