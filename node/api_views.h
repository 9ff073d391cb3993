// The JSON the node's API answers with, built from the domain store. Who may
// read what, and whether the reader is blinded, is decided by SiteOperations
// (site_reads.cpp, SiteOperations::blinded) and passed in as `blinded`: for a
// blinded reader a view carries no arm id or name, no kit type id or name, no
// lot and nothing else that maps kits to arms; kits show only their blinded
// label, which a blinded study makes identical across arms. Otherwise a view
// also carries arm, kit type and lot.
// Thread-safety: pure functions over the caller's store (hold the node's lock).
#pragma once

#include <nlohmann/json.hpp>

#include "node/domain_store.h"
#include "node/sync_service.h"

namespace irt::node {

// `code_break_reader`: the reader may break the code (Permission::unblind);
// once this participant's code is broken such a reader sees the arm again
// from the record, blinded or not (the kits stay blinded).
nlohmann::json participant_view(const ParticipantRecord& p, const DomainStore& store, bool blinded,
                                shared::Days today, bool code_break_reader = false);
nlohmann::json participant_summary(const ParticipantRecord& p, const DomainStore& store, bool blinded);
// The visits after randomization with their windows in dates and their state
// today: done, missed, due (window open), overdue (window passed), upcoming,
// or not_planned (the participant is no longer on treatment). No arm in it.
nlohmann::json visit_schedule(const ParticipantRecord& p, const DomainStore& store, shared::Days today);
nlohmann::json kit_view(const KitRecord& k, const DomainStore& store, bool blinded);
// What the screening form and the visit list need: factors, eligibility
// questions, visits and windows, roles; arms and kit types only when unblinded.
nlohmann::json study_view(const DomainStore& store, bool blinded);
nlohmann::json shipment_view(const ShipmentRecord& s, const DomainStore& store, bool blinded);

}  // namespace irt::node
