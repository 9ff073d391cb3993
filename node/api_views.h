// The JSON the node's API answers with, built from the domain store for one
// actor. This is where blinding is enforced for the API and the web UI: for a
// blinded role a view carries no arm id or name, no kit type id or name, no
// lot and nothing else that maps kits to arms; kits show only their blinded
// label, which the study makes identical across arms. Unblinded roles (those
// with view_unblinded) also get arm, kit type and lot.
// Thread-safety: pure functions over the caller's store (hold the node's lock).
#pragma once

#include <nlohmann/json.hpp>

#include "node/domain_store.h"
#include "node/sync_service.h"

namespace irt::node {

nlohmann::json participant_view(const ParticipantRecord& p, const DomainStore& store, bool blinded,
                                shared::Days today);
nlohmann::json participant_summary(const ParticipantRecord& p, const DomainStore& store, bool blinded);
nlohmann::json kit_view(const KitRecord& k, const DomainStore& store, bool blinded);
// What the screening form and the visit list need: factors, eligibility
// questions, visits and windows, roles; arms and kit types only when unblinded.
nlohmann::json study_view(const DomainStore& store, bool blinded);
nlohmann::json shipment_view(const ShipmentRecord& s, const DomainStore& store, bool blinded);

}  // namespace irt::node
