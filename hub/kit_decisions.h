// The hub's decisions about kits: quarantined kits released or rejected, and
// kits destroyed at a depot (docs/supply.md, "Quarantine, returns and
// destruction").
//
//   quarantine  what nodes report: each kit a "kit.excursion" (readings:
//               minimum, maximum, minutes outside the range, location) or a
//               "kit.quarantined" (a temperature) put in quarantine, recorded
//               by ingest (hub/consumption.h) beside the kit's status
//   release     a kit quarantined at the hub becomes usable again: "received"
//               at its node, "available" at its depot
//   reject      a kit quarantined, or in stock at a node or a depot (a recall,
//               an excursion the courier reported), becomes "rejected": never
//               dispensed or shipped again, only returned or destroyed
//   hold        every kit of a lot (or kits named) in stock at a node or a
//               depot becomes "quarantined" at the hub while a quality issue
//               is investigated, then released or rejected as above; listed
//               with the hold's reason and decision
//   destroy     at a depot: kits rejected, or in stock, become "destroyed"
//
// A decision is a critical action: the signature of a hub user holding
// release_quarantine (destroy: destroy_kits, with a witness holding
// destroy_kits or manage_supply), meaning "approved" ("performed" and
// "witnessed" for a destruction), a reason, one audit entry per kit with its
// old and new status. A decision on kits held by a node travels to it as a
// "kits.release", "kits.reject" or "kits.quarantine" directive
// (shared/directive_payloads.h), issued in the same transaction. Any kit that cannot take the decision
// (releasing a kit that is not quarantined, rejecting one already rejected)
// refuses the whole decision: nothing changes.
// Tables: hub_kit_quarantines, hub_kit_decisions, hub_kit_returns.
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/result.h"

namespace irt::hub {

shared::Status migrate_kit_decisions(storage::Database& db);

// ---- what ingest records (inside its transaction)

// Why a node quarantined a kit: an excursion's readings, or an older
// kit.quarantined event's temperature.
struct QuarantineReport {
  std::string location;
  std::optional<double> minimum_celsius;
  std::optional<double> maximum_celsius;
  std::optional<std::int64_t> duration_minutes;
  std::string reason;
};
void record_quarantine(storage::Database& db, const std::string& node_id, std::uint64_t seq, const std::string& kit,
                       const QuarantineReport& report, std::int64_t reported_ms);
// The units a participant brought back in a returned kit (compliance).
void record_return(storage::Database& db, const std::string& node_id, std::uint64_t seq, const shared::KitReturned& r);
// True when the hub rejected `kit` at its node: a quarantine the node reports
// afterwards (before it applied the rejection) leaves it rejected.
bool rejected_at_hub(storage::Database& db, const std::string& kit);

// The last decision on `kit` the hub sent to `node_id` (a rejection, a hold or
// a release): the directive's seq and type and its payload; nullopt when none.
struct SentKitDecision {
  std::uint64_t seq = 0;
  std::string_view type;  // shared::kKitsRejectDirective, kKitsReleaseDirective or kKitsQuarantineDirective
  shared::KitDecision decision;
};
std::optional<SentKitDecision> last_kit_decision(HubState& hub, const std::string& node_id, const std::string& kit);

// ---- reads

struct QuarantinedKit {
  std::string kit;
  std::string custody_kind;  // "node" or "depot"
  std::string custody_id;
  std::string site_id;       // of the node; "" at a depot
  std::string expiry;
  std::string kit_type;      // only for an unblinded reader
  std::uint64_t seq = 0;     // the node event that quarantined it (0: none recorded)
  std::int64_t hold = 0;     // or the hub's hold decision that did (0: none)
  std::int64_t reported_ms = 0;
  QuarantineReport report;
};
// Kits standing quarantined at the hub, by custodian then number.
std::vector<QuarantinedKit> quarantined_kits(HubState& hub, bool unblinded);
nlohmann::json to_json(const QuarantinedKit& k);

// Units returned per kit, for the reconciliation.
struct KitReturn {
  std::string participant;
  std::int64_t units_returned = 0;
  std::string visit;
};
std::optional<KitReturn> find_return(storage::Database& db, const std::string& kit);

// ---- decisions

inline constexpr const char* kKitDecisionMeaning = "approved";

struct KitDecisionDone {
  std::int64_t decision_id = 0;
  std::string signed_by;
  std::vector<std::string> kits;
  std::vector<std::pair<std::string, std::uint64_t>> directives;  // (node, directive seq) sent
  std::map<std::string, std::size_t> left_alone;  // hold: kits of the lot not in stock, by status
};

// release = true: release; false: reject. not_found for a kit the hub does not
// know; conflict for one that cannot take the decision; invalid_input for no
// kit, a kit listed twice, no reason.
shared::Result<KitDecisionDone> decide_kits(HubState& hub, bool release, const std::vector<std::string>& kits,
                                            const std::string& reason, const Signature& signer, std::int64_t now_ms);

// What a hold takes: every kit of `lot` (at the nodes of `site` only, when
// given), or the kits named; one of lot and kits.
struct HoldRequest {
  std::string lot;
  std::string site;
  std::vector<std::string> kits;
};
// The kits of the request in stock ("received" at a node, "available" at a
// depot) become "quarantined"; the others (dispensed, in transit, rejected,
// destroyed, already quarantined ...) are left alone and counted by status.
// not_found for an unknown lot, site or kit; conflict when nothing is in
// stock; invalid_input for a request naming both or neither, no reason.
// Signed as decide_kits (release_quarantine, "approved").
shared::Result<KitDecisionDone> hold_kits(HubState& hub, const HoldRequest& request, const std::string& reason,
                                          const Signature& signer, std::int64_t now_ms);

// Kits at depot `depot` (rejected, quarantined or available) destroyed,
// signed by `person` (destroy_kits, "performed") and `witness` (another user,
// destroy_kits or manage_supply, "witnessed").
shared::Result<KitDecisionDone> destroy_depot_kits(HubState& hub, const std::string& depot,
                                                   const std::vector<std::string>& kits, const std::string& reason,
                                                   const Signature& person, const Signature& witness,
                                                   std::int64_t now_ms);

}  // namespace irt::hub
