// What the hub knows of participants from the nodes' events: each screening
// (the number, the node and site, the factor values) and each allocation (the
// arm, from the part sealed to the hub's unblinding key, with the slot or the
// minimization decision it came from). The allocations are unblinded, like
// the list they come from: nothing here goes to a blinded role.
//
// Who calls it: hub/consumption.h records screenings and allocations;
// hub/grants.h reads the study-wide totals for minimization baselines and
// caps. Every function runs inside a transaction the caller holds.
// Tables: hub_participants, hub_allocations. Thread-safety: as storage::Database.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shared/event_payloads.h"
#include "shared/minimization.h"
#include "shared/offline_minimization.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

class HubState;

shared::Status migrate_allocations(storage::Database& db);

struct Screening {
  std::string number;
  std::string node_id;
  std::string site_id;
  std::string factors_json;  // {"factor id": "level", ...}
  shared::ParticipantStatus status = shared::ParticipantStatus::screened;
  std::uint64_t seq = 0;     // the node's event
};
// false (nothing recorded) when the number was screened before.
bool record_screening(storage::Database& db, const Screening& s);

struct Allocation {
  std::string participant;
  std::string node_id;
  std::uint64_t seq = 0;  // the node's event
  std::string randomization_number;
  std::optional<std::int64_t> stratum, slot;                 // from a list slot
  std::optional<std::int64_t> stream_id, decision_sequence;  // from a minimization decision
  std::string arm;
  std::int64_t recorded_ms = 0;
};
// false (nothing recorded) when the participant was allocated before.
bool record_allocation(storage::Database& db, const Allocation& a);

// A participant's withdrawal or completion, as its node recorded it: the
// hub's supply planning stops counting its visits to come.
void record_participant_status(storage::Database& db, const std::string& number, shared::ParticipantStatus status);

// Where the participant is served now: its node and site after a transfer
// (hub/transfers.h). The allocation keeps the node that made it. nullopt /
// false when the hub holds no screening of it.
std::optional<std::pair<std::string, std::string>> participant_home(storage::Database& db, const std::string& number);
bool move_participant(storage::Database& db, const std::string& number, const std::string& node_id,
                      const std::string& site_id);
// The participants node `node_id` serves (screened or randomized, not moved
// away), by number.
std::vector<std::string> participants_served_by(storage::Database& db, const std::string& node_id);

// Whether any participant is allocated to the arm; whether the site has
// screened anyone (amendments keep such arms and sites, hub/amendments.h);
// whether anyone is allocated at all.
bool arm_has_allocations(storage::Database& db, const std::string& arm);
bool site_has_participants(storage::Database& db, const std::string& site_id);
bool any_allocation(storage::Database& db);
// The node event that randomized the participant (node id, seq); nullopt before any.
std::optional<std::pair<std::string, std::uint64_t>> allocation_event(storage::Database& db, const std::string& number);

// The factor values recorded at the participant's screening; empty when none.
std::map<std::string, std::string> participant_factors(storage::Database& db, const std::string& number);

// The node's allocations from minimization stream `stream_id` with a decision
// sequence below `before`: the own allocations a decision was made against.
std::vector<shared::OwnAllocation> stream_allocations(storage::Database& db, const std::string& node_id,
                                                      std::uint64_t stream_id, std::uint64_t before);

// Study-wide minimization totals of the allocations the hub knows, and their
// number: every allocation, or with `streams_from_ms` only those decided from
// streams issued at or after it (the current minimization segment:
// hub/grants.cpp, docs/randomization.md "Design changes").
std::pair<shared::MarginalTotals, std::uint64_t> allocation_totals(storage::Database& db,
                                                                   const shared::MinimizationConfig& config,
                                                                   std::int64_t streams_from_ms = 0);

// The allocations of participants screened at `site_id`, in participant order
// (unblinded: the arm is there).
struct SiteAllocation {
  std::string participant;
  std::string arm;
  bool on_study = true;  // false once withdrawn or completed: no visits to come
};
std::vector<SiteAllocation> site_allocations(storage::Database& db, const std::string& site_id);

// Every allocation with where its participant was screened and the factor
// values recorded then, in participant order (unblinded: the arm is there).
struct AllocatedParticipant {
  std::string participant;
  std::string site_id;
  std::map<std::string, std::string> factors;
  std::string arm;
  std::string node_id;
  std::uint64_t seq = 0;  // the node's randomization event
};
std::vector<AllocatedParticipant> allocated_participants(storage::Database& db);
std::uint64_t site_allocation_count(storage::Database& db, const std::string& site_id);

// Allocations the hub knows whose participant's factors match all of `levels`
// (factor id -> level), for caps.
std::uint64_t allocations_matching(storage::Database& db, const std::map<std::string, std::string>& levels);

// Rebuilds every allocation from the participant.randomized events in the
// ledger (the arm from the part sealed to the hub's unblinding key) and
// compares it with what allocated_participants reads: one problem per
// allocation missing, without its event, or differing in participant or arm.
// Blinding: an arm is never named, only "differs" (the operator running
// irt-hub verify may be blinded).
std::vector<std::string> verify_allocations(HubState& hub);

}  // namespace irt::hub
