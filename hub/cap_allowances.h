// Arm and cohort caps, enforced through what the hub grants
// (docs/randomization.md, "Caps").
//
// A node randomizes offline, so a cap on an arm or a cohort holds only if no
// node can put more participants into it than the hub allowed it. For every
// capped arm and cohort the hub grants each node an allowance (directive
// "grant.cap_allowance", shared/directive_payloads.h) and keeps, per cap,
//
//     used (randomizations the hub knows, all nodes) + outstanding (granted,
//     not yet used, over the nodes not revoked)  <=  limit
//
// A node's allowance left is what it was granted less what it used; what it
// used offline and has not pushed yet is still inside its allowance, so the
// sum bounds what was really randomized. Counting against caps is
// shared::CapTracker's rule, filled from this module's table of uses.
//
//   at enrollment   every capped arm and cohort: allowance_increment up to the
//                   sizing's target (the minimization allowance's target)
//   at a pull       again for every cap whose allowance left at the node fell
//                   below sizing.top_up_below; a directive only when some
//                   allowance grows
//   at revocation   the node's unused allowance is voided: it no longer counts
//                   as outstanding, so it returns to the other nodes
//   at a cohort's   every node's unused allowance for that cohort is voided
//   close           the same way, and each node that held one gets a
//                   "grant.cap_allowance" whose total is what it used as far
//                   as the hub knows, so it holds none (hub/cohort_decisions.h);
//                   a cohort opened by decision is granted only while open
//   at ingest       the cohort of each screened participant and the arm of each
//                   randomized one (record_cohort, record_cap_use); a cap found
//                   exceeded after a push raises "cap.exceeded" (caps_exceeded,
//                   never naming an arm)
//
// A node shares the room left by its share of enrollment (1 / active sites /
// active nodes of its site), so one node never takes all of it.
// Every function runs inside a transaction the caller holds.
// Tables: hub_cap_allowances, hub_cap_uses (this file).
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hub/hub_state.h"
#include "shared/caps.h"
#include "shared/result.h"

namespace irt::hub {

shared::Status migrate_cap_allowances(storage::Database& db);

// True when the study caps an arm or a cohort (stratum caps are bounded by
// the slot and stream grants themselves, hub/grants.h).
bool has_allowance_caps(const shared::Study& study);

// ---- The arithmetic, for one cap and one node.
struct CapRoom {
  long remaining = 0;              // limit - used over all nodes (negative once exceeded)
  long outstanding_elsewhere = 0;  // granted to the other active nodes and not yet used
  long held = 0;                   // granted to this node and not yet used
};
// What to add to the node's allowance: enough to bring what it holds up to
// min(target, ceil(share x (remaining - outstanding_elsewhere))); never
// negative, so used + outstanding never exceeds the limit.
std::uint64_t allowance_increment(const CapRoom& room, std::uint64_t target, double share);

struct AllowanceSizing {
  std::uint64_t target = 0;        // allowance a node should hold per cap
  std::uint64_t top_up_below = 0;  // a cap is topped up when the node holds less
  double share = 1.0;              // the node's expected fraction of enrollment, in (0, 1]
};

// Issues one "grant.cap_allowance" directive with every cap whose allowance
// grows; returns the number of directives (0 or 1). Nothing when the study
// has no arm or cohort cap.
shared::Result<std::uint64_t> grant_cap_allowances(HubState& hub, const std::string& node_id, const AllowanceSizing& sizing,
                                   std::int64_t now_ms);

// At revocation: the node's allowance left, voided; returns how much.
std::uint64_t void_cap_allowances(HubState& hub, const std::string& node_id, const std::string& actor,
                                  std::int64_t now_ms);

// At a cohort's close (hub/cohort_decisions.h): every node's unused places in
// it voided, each node holding some told by a directive; audited per node.
struct CohortAllowancesVoided {
  std::uint64_t places = 0;
  std::vector<std::pair<std::string, std::uint64_t>> directives;  // (node, directive seq)
};
CohortAllowancesVoided void_cohort_allowances(HubState& hub, const std::string& cohort, const std::string& actor,
                                              const std::string& reason, std::int64_t now_ms);

// ---- Ingest (hub/consumption.h).
// A screened participant's cohort ("" when the study has none).
void record_cohort(storage::Database& db, const std::string& node_id, const std::string& participant,
                   const std::string& cohort);
// A randomized participant now counts against its arm's and its cohort's caps
// (counted once, whoever randomizes it).
void record_cap_use(storage::Database& db, const std::string& node_id, const std::string& participant,
                    const std::string& arm);
// After a push that randomized: the alert "cap.exceeded" when a cap has more
// participants than its limit. It names exceeded cohort caps, and counts
// exceeded arm caps without naming them or any participant (blinded roles
// read alerts); nullopt when every cap holds.
std::optional<std::string> caps_exceeded(HubState& hub);

// The capped arms whose allowance at the node is used up. The node skips
// their list slots, as it skips those of an arm an amendment closed for the
// slot's stratum (Study::arm_closed_for), so the slot grants count only the
// slots of the other arms (hub/grants.h). Empty when the study caps no arm.
// An arm closed for every stratum gets no more allowance.
std::vector<std::string> capped_out_arms(HubState& hub, const std::string& node_id);

// ---- What the hub knows (also for tests and reports; arm ids: unblinded).
struct CapStanding {
  shared::CapScope scope = shared::CapScope::arm;
  std::string id;
  long limit = 0;
  long used = 0;
  long outstanding = 0;
};
std::vector<CapStanding> cap_standing(HubState& hub);
// Participants the hub knows screened into each cohort (screen failures
// included) and, of them, randomized; by cohort id ("" for none).
struct CohortCount {
  long screened = 0;
  long randomized = 0;
};
std::map<std::string, CohortCount> cohort_counts(storage::Database& db);
// Allowance left at one node for one cap (granted - used by it, >= 0; 0 when voided or never granted).
long allowance_left(HubState& hub, const std::string& node_id, shared::CapScope scope, const std::string& id);

}  // namespace irt::hub
