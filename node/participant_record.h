// A participant as the node holds it: number, status, stratification values,
// eligibility answers, randomization (slot, arm, number), visits with the kits
// dispensed at each, code break, withdrawal and transfer.
//
// The whole record is stored AEAD-encrypted (domain_store.h); only the status
// and an opaque row id are in clear. `arm` and `decision` reveal the
// allocation: they never leave the node except sealed to the hub's unblinding
// key, and API views drop them for blinded roles (api_views.h).
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/event_payloads.h"

namespace irt::node {

using shared::ParticipantStatus;  // shared/event_payloads.h: the names the store and the events hold

struct VisitRecord {
  std::string visit;                // Visit::id
  std::string date;                 // YYYY-MM-DD
  std::vector<std::string> kits;    // kit numbers dispensed
  std::string deviation;            // window override reason; empty when inside the window
  std::string by;
  std::string missed_reason;        // non-empty: the visit did not happen (no kits)
  std::string order_reason;         // non-empty: dispensed before an earlier visit was done or missed
};

struct KitReplacement {
  std::string visit;
  std::string old_kit;
  std::string new_kit;
  std::string reason;
  std::string date;
  std::string by;
};

struct ParticipantRecord {
  std::int64_t id = 0;   // opaque row id
  std::string number;    // "101-004"
  ParticipantStatus status = ParticipantStatus::screened;
  std::map<std::string, std::string> factors;  // every factor the study needs, derived ones included
  std::vector<std::string> eligibility;        // "yes"/"no" per study question
  std::string cohort;                          // Cohort::id when the study defines cohorts, else empty
  std::string screen_failure_reason;
  std::string screened_on;
  std::string screened_by;

  std::string randomization_number;
  std::string randomized_on;
  std::string randomized_by;
  std::string arm;                       // reveals the allocation
  std::uint32_t stratum = 0;
  std::uint32_t slot = 0;                // 0 for minimization
  std::uint64_t stream_id = 0;           // minimization stream, 0 for slots
  nlohmann::json decision;               // offline minimization record (reveals the allocation)
  std::vector<VisitRecord> visits;
  std::vector<KitReplacement> replacements;

  bool unblinded = false;
  std::string unblinded_on;
  std::string unblinded_by;  // the user who broke the code
  std::string withdrawal_reason;
  std::string withdrawn_on;  // the date of the signed withdrawal
  std::string withdrawn_by;  // the user who signed it
  std::string transfer_to;         // the site a transfer was requested to (kept once it moved there)
  std::string transfer_reason;
  std::string transfer_decision;   // the hub's decision on the last request, as the site reads it
  std::string transferred_from;    // the site it came from, when a transfer brought it here
  int study_version = 0;           // the design version it was randomized under, when a transfer brought it; 0: this node's events say

  const VisitRecord* find_visit(const std::string& id) const;
};

void to_json(nlohmann::json& j, const ParticipantRecord& p);
void from_json(const nlohmann::json& j, ParticipantRecord& p);

}  // namespace irt::node
