// What the hub hands a node so it can randomize and dispense offline
// (docs/architecture.md, "The one-owner invariant"; docs/randomization.md): slot grants, participant number ranges,
// minimization streams and the initial shipment, as signed directives
// (shared/directive_payloads.h); their top-up at each pull; their voiding when
// the node is revoked.
//
//   at enrollment   grant.numbers  kNumbersPerRange numbers of the node's site,
//                                  after every number already granted at that site
//                   grant.slots    (list designs) whole blocks in every stratum of
//                                  the node's site, grant_target_slots(forecast,
//                                  supply.offline_days) per stratum
//                   grant.minimization_stream (minimization) fresh seed, allowance
//                                  grant_target_slots(forecast, offline_days),
//                                  offline_baseline of the study-wide totals (share
//                                  and a lean taken in turn across grants)
//                   grant.cap_allowance (arm or cohort caps) an allowance per capped
//                                  arm and cohort, targeted like the stream's
//                                  (hub/cap_allowances.h)
//                   shipment       supply.initial_shipment (hub/kit_inventory.h), to a
//                                  site node only: a nurse's tablet takes kits from its
//                                  site node by custody transfer (hub/custody.h)
//                   grant.lease    randomization until offline_days from now (hub/leases.h)
//   at a pull       the same grants again when the node's free slots in a
//                   stratum, its unused numbers or its remaining allowance fall
//                   below half their target, and a new stream whenever other
//                   allocations made the node's baseline stale, and the lease renewed
//                   (hub/leases.h renew_lease)
//   at revocation   its free slots, unused numbers and stream voided, its kits
//                   lost_with_node; none is ever granted again; its unused cap
//                   allowance voided, which returns it to the other nodes
//
// The forecast is the site's estimated rate (hub/forecast.h site_rate: the
// study's expected rate, else kNodeForecastPerDay, updated by the site's
// enrollment), for each node of the site, split evenly over the node's strata. A node's share of enrollment (for the
// baseline) is 1 / (active sites) / (active nodes of its site).
// Every grant is capped by the stratum caps it can count against: a cap over
// stratification factors bounds the slots outstanding and used in its strata;
// for minimization, caps over site and country bound the allowance.
//
// Every function runs inside a transaction the caller holds; the directives,
// the ownership records and the audit entries commit together.
// Tables: none of its own. It decides what to grant; the records are kept by
// the modules that own them: number_ranges.h, slice_store.h,
// minimization_streams.h, cap_allowances.h, kit_inventory.h, leases.h, and
// allocations.h (read).
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <string>

#include "hub/hub_state.h"
#include "hub/tuning.h"  // kNumbersPerRange, kTopUpDivisor
#include "shared/result.h"

namespace irt::hub {

struct GrantsIssued {
  std::uint64_t directives = 0;
  std::uint64_t slots = 0;
  std::uint64_t numbers = 0;
  std::uint64_t kits = 0;
  std::uint64_t streams = 0;
  std::uint64_t cap_allowances = 0;  // grant.cap_allowance directives
  std::uint64_t leases = 0;          // grant.lease directives
};

// At enrollment, after "study.config" and "roster".
shared::Result<GrantsIssued> issue_enrollment_grants(HubState& hub, const std::string& node_id,
                                                     const std::string& site_id, std::int64_t now_ms);

// At a pull, after the node's events were taken into account (hub/consumption.h).
// Nothing for a node that is not active.
shared::Result<GrantsIssued> top_up_grants(HubState& hub, const std::string& node_id, std::int64_t now_ms);

struct GrantsVoided {
  std::uint64_t slots = 0;
  std::uint64_t numbers = 0;
  std::uint64_t kits = 0;
  std::uint64_t streams = 0;
  std::uint64_t cap_places = 0;  // unused allowance under arm and cohort caps
};

// Inside the revocation's transaction (sync::Ledger::revoke's `also`).
GrantsVoided void_node_grants(HubState& hub, const std::string& node_id, const std::string& actor,
                              std::int64_t now_ms);

}  // namespace irt::hub
