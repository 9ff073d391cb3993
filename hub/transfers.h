// Participant transfers between sites (docs/supply.md, "Participant
// transfers"): a node records participant.transfer_requested (the target
// site, the reason); ingest keeps the request here (hub/consumption.h, in the
// push's transaction); a hub user holding manage_study approves or rejects it,
// signed ("approved"), with a reason.
//
// Approval moves the participant, like every consumable thing, by directives:
//   - the target is the target site's first active node of kind "site"; a
//     site without one refuses the approval (enroll a node there first);
//   - the hub rebuilds the participant's record from the facts in the ledger
//     (the home node's screening, randomization, visits, replacements and code
//     break, on top of the record an earlier transfer brought it): number,
//     factors, cohort, randomization number, stratum, arm (from the part sealed
//     to the hub), the design version it was randomized under, visits done;
//   - the kits dispensed to it and not returned move with it (custody at the
//     hub, hub/kit_inventory.h move_participant_kits), each hop audited
//     "kit.custody_moved";
//   - "participant.transfer" (approved) tells the home node, which stops
//     serving it (status transferred, its kits leave its records);
//     "participant.transfer_in" brings the record, with its arm and its kits'
//     types, to the target node, which serves it from then on (future visits
//     dispensed from its own stock by the participant's arm);
//   - the hub's record of where the participant is (hub_participants) follows,
//     so resupply plans its visits for the target site.
// Rejection sends "participant.transfer" (rejected) to the node that asked.
// A request is decided once; a participant withdrawn or completed since its
// request cannot be approved (reject it). Nothing here names an arm or a kit
// type outside the transfer_in directive: the list, the audit entries and the
// refusals are safe for blinded readers.
// Tables: hub_participant_transfers.
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/event_payloads.h"
#include "shared/result.h"

namespace irt::hub {

shared::Status migrate_transfers(storage::Database& db);

inline constexpr const char* kTransferDecisionMeaning = "approved";

// Ingest (inside its transaction): node `node_id`'s event `seq`. An event
// read again records nothing new.
void record_transfer_request(HubState& hub, const std::string& node_id, std::uint64_t seq,
                             const shared::TransferRequested& request, const std::string& requested_by,
                             std::int64_t requested_ms);

struct TransferRecord {
  std::int64_t id = 0;
  std::string participant;
  std::string from_node, from_site;
  std::uint64_t request_seq = 0;
  std::string to_site;
  std::string reason;
  std::string requested_by;
  std::int64_t requested_ms = 0;
  std::string status;  // "requested", "approved" or "rejected"
  std::string to_node;
  std::string decided_by;
  std::string decision_reason;
  std::int64_t decided_ms = 0;
  std::size_t kits = 0;  // kits that moved with the participant
};
// Every request, oldest first; only those in `status` when given.
std::vector<TransferRecord> transfers(storage::Database& db, const std::string& status = "");
nlohmann::json to_json(const TransferRecord& t);

struct TransferDone {
  TransferRecord transfer;
  std::vector<std::pair<std::string, std::uint64_t>> directives;  // (node, directive seq) sent
};

// The lost tablet (docs/operations.md): every participant that revoked node
// `from_node` served (screened or randomized) moves to `to_node`, an active
// site node of the same site, exactly as an approved transfer moves one: its
// record rebuilt from the ledger, its dispensed kits in custody of `to_node`,
// a participant.transfer_in directive to `to_node`, which serves it from its
// next sync. Each is kept as an approved transfer from `from_node` (its
// request_seq past the revoked node's last acknowledged event: that node
// never pushes again), so a later transfer builds on it. Signed by a hub user
// holding manage_study, in one transaction. invalid_input without a reason;
// conflict when `from_node` is not revoked, or `to_node` is not an active site
// node of its site.
struct RehomeDone {
  std::vector<TransferRecord> moved;
  std::vector<std::pair<std::string, std::uint64_t>> directives;  // (node, directive seq) sent
};
shared::Result<RehomeDone> rehome_participants(HubState& hub, const std::string& from_node, const std::string& to_node,
                                               const std::string& reason, const Signature& signer,
                                               std::int64_t now_ms);

// Decides the pending request of `participant`. not_found when it has none;
// conflict when it was decided, when the target site has no site node, or when
// the participant is no longer screened or randomized at its node (approve);
// invalid_input without a reason.
shared::Result<TransferDone> decide_transfer(HubState& hub, const std::string& participant, bool approve,
                                             const std::string& reason, const Signature& signer, std::int64_t now_ms);

}  // namespace irt::hub
