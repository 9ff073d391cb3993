// Cohorts opened and closed by a decision of the study team
// (docs/randomization.md, "Cohorts opened by decision"): a dose-escalation
// study opens the next cohort only after a safety review.
//
// A cohort with "opens": "by_decision" (shared/study.h Cohort) is
//
//   not_opened  until `irt-hub cohort open` (or POST /api/v1/cohorts/{id}/open);
//               its "after" cohort, when it names one, must be closed first
//   open        the hub grants nodes places under its cap
//               (hub/cap_allowances.h), at each node's next pull
//   closed      after `irt-hub cohort close`: every node's unused places are
//               voided, and each node that held some is told at its next pull
//               (a grant.cap_allowance leaving it none); closed for good
//
// A cohort without "opens" is open from the start and takes no decision.
// Each decision is a critical action: the signature of a hub user holding
// manage_study, meaning "approved", a reason, one audit entry with the old
// and new state. A decision in the wrong order (opened twice, opened before
// its "after" cohort is closed, closed before it was opened) is refused and
// changes nothing.
//
// A node offline at the close can still use the places it held (at most
// what it held, the bound caps give); each screening into the cohort made
// after the close (by the node's clock) is kept and raises a "closed_cohort"
// deviation at ingest (hub/deviations.h, closed_cohort_deviation below).
// Tables: hub_cohort_decisions. Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/result.h"

namespace irt::hub {

shared::Status migrate_cohort_decisions(storage::Database& db);

enum class CohortState { not_opened, open, closed };
std::string to_string(CohortState s);

// The cohort's state now; a cohort open from the start is always open.
CohortState cohort_state(storage::Database& db, const shared::Cohort& cohort);

struct CohortStanding {
  std::string id;
  std::string name;
  bool opens_by_decision = false;
  std::string after;
  CohortState state = CohortState::open;
  std::int64_t opened_ms = 0;  // 0: not opened by a decision
  std::string opened_by;
  std::int64_t closed_ms = 0;  // 0: not closed
  std::string closed_by;
  long screened = 0;           // participants the hub knows screened into it
  long randomized = 0;         // of them, randomized (they count against its cap)
  std::optional<long> limit;   // its cap
  long outstanding = 0;        // places granted to nodes and not yet used
};
// Every cohort of the study, in study order.
std::vector<CohortStanding> cohort_standing(HubState& hub);
nlohmann::json to_json(const CohortStanding& c);

inline constexpr const char* kCohortDecisionMeaning = "approved";

struct CohortDecisionDone {
  std::int64_t decision_id = 0;
  std::string cohort;
  CohortState from = CohortState::not_opened;
  CohortState to = CohortState::open;
  std::string signed_by;
  std::uint64_t places_voided = 0;                                // at a close
  std::vector<std::pair<std::string, std::uint64_t>> directives;  // (node, directive seq) sent at a close
};

// open = true: open the cohort; false: close it. not_found for a cohort the
// study does not define; conflict for a decision out of order or on a cohort
// open from the start; invalid_input without a reason.
shared::Result<CohortDecisionDone> decide_cohort(HubState& hub, const std::string& cohort, bool open,
                                                 const std::string& reason, const Signature& signer,
                                                 std::int64_t now_ms);

// ---- the rule, for hub/consumption.h: the deviation's summary when a node
// screened a participant into a cohort opened by decision after it was closed
// (by the node's clock).
std::optional<std::string> closed_cohort_deviation(HubState& hub, const std::string& cohort,
                                                   std::int64_t device_time_ms);

}  // namespace irt::hub
