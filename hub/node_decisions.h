// The central team's signed decisions about a node, for `irt-hub revoke` and
// `irt-hub unfreeze` and their API routes: each takes the electronic signature
// of a hub user holding manage_nodes (hub/users.h check_signature), whose name
// and meaning ("approved") the audit entry keeps, and a reason.
//
//   revoke    sync::Ledger::revoke, voiding what the node held
//             (void_node_grants, hub/grants.h) in the same transaction
//   unfreeze  sync::Ledger::unfreeze after an equivocation
//
// Thread-safety: as HubState. The password lives only for the call.
#pragma once

#include <cstdint>
#include <string>

#include "hub/grants.h"
#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/result.h"

namespace irt::hub {

inline constexpr const char* kNodeDecisionMeaning = "approved";

shared::Result<GrantsVoided> revoke_node(HubState& hub, const std::string& node_id, const std::string& reason,
                                         const Signature& signer, std::int64_t now_ms);
shared::Status unfreeze_node(HubState& hub, const std::string& node_id, const std::string& reason,
                             const Signature& signer, std::int64_t now_ms);

}  // namespace irt::hub
