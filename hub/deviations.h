// Deviations: what the hub learns from the nodes' reports that the central
// team must review, each naming the node event that caused it (node, seq) and
// the site. Facts are never rejected (docs/architecture.md): the event is kept
// and the deviation says what about it contradicts the protocol or a hub
// decision.
//
//   code_break          participant.unblinded: who broke the code, when, why;
//                       the arm only for unblinded readers
//   visit_window        kit.dispensed outside the study's window for the visit,
//                       counted in days from the participant's randomization
//   kit_after_decision  a kit dispensed that the hub had rejected or put on
//                       hold (a kits.reject or kits.quarantine directive) or
//                       that stood quarantined at the hub, judged by the
//                       directive cursor the event carries:
//                       the node had, or had not yet, applied the decision
//   slice_exhausted     the node used the last slot of its slice in a stratum
//   numbers_exhausted   the node used the last participant number it held
//   supply_shortage     the node refused a randomization, dispensing or
//                       replacement for want of kits (supply.shortage)
//   equivocation        two different events with one (node, seq)
//   revoked_node        a revoked node tried to push (one open per node)
//   event_unreadable    a payload, or its sealed part, the hub could not read
//   closed_cohort       a participant screened into a cohort opened by decision
//                       after it was closed, by a node that had not synced
//                       since (hub/cohort_decisions.h); subject: the participant
//   old_design          a randomization made under a study version older than
//                       a design change (an arm closed), after the change was
//                       made: one per change missed, subject "version N"
//                       (hub/design_changes.h); the arm only for unblinded readers
//
// Who raises them: hub/consumption.h while it records a node's events, and
// hub/ingest.h for equivocation and a revoked node's push, each inside the
// transaction that records the causing event (or its evidence), so the
// deviation commits with it. Raising is idempotent: one deviation per (kind,
// node, seq, subject), so an event read again (a retried push, a replayed
// cursor) never raises twice. Raising one is audited (actor "hub").
//
// Blinding: `summary` never names an arm, a kit type or anything from which
// one can be inferred; what would (the arm of a code break, the kit types
// short) is kept apart, sealed to the hub's unblinding key, and opened only
// for a reader whose role is unblinded (read with `unblinded = true`).
//
// Acknowledging is a critical action: the signature of a hub user holding
// manage_study, meaning "reviewed", a comment, one audit entry with the old and
// new status. Acknowledging twice is refused.
// Tables: hub_deviations. Thread-safety: as HubState.
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

namespace deviation_kind {
inline constexpr const char* kCodeBreak = "code_break";
inline constexpr const char* kVisitWindow = "visit_window";
inline constexpr const char* kKitAfterDecision = "kit_after_decision";
inline constexpr const char* kSliceExhausted = "slice_exhausted";
inline constexpr const char* kNumbersExhausted = "numbers_exhausted";
inline constexpr const char* kSupplyShortage = "supply_shortage";
inline constexpr const char* kEquivocation = "equivocation";
inline constexpr const char* kRevokedNode = "revoked_node";
inline constexpr const char* kEventUnreadable = "event_unreadable";
inline constexpr const char* kOldDesign = "old_design";
inline constexpr const char* kClosedCohort = "closed_cohort";
}  // namespace deviation_kind

shared::Status migrate_deviations(storage::Database& db);

// What ingest found. `subject` tells apart two deviations of one kind from one
// event (two kits); `unblinded` is what only unblinded readers may see.
struct NewDeviation {
  std::string kind;
  std::string node_id;
  std::uint64_t seq = 0;
  std::string subject;
  std::string event_type;
  std::string summary;
  std::string unblinded;
};

struct Deviation {
  std::int64_t id = 0;
  std::string kind;
  std::string node_id;
  std::uint64_t seq = 0;
  std::string site_id;
  std::string subject;
  std::string event_type;
  std::string summary;
  std::optional<std::string> unblinded;  // set only when read for an unblinded reader and there is something
  std::int64_t raised_ms = 0;
  std::string status;  // "open" or "acknowledged"
  std::string acknowledged_by;
  std::optional<std::int64_t> acknowledged_ms;
  std::string comment;
};

// Inside a transaction the caller holds. The id, or nullopt when that
// deviation was raised before. The site is the node's.
std::optional<std::int64_t> raise_deviation(HubState& hub, const NewDeviation& d, std::int64_t now_ms);

// Oldest first.
std::vector<Deviation> deviations(HubState& hub, bool open_only, bool unblinded);
std::optional<Deviation> find_deviation(HubState& hub, std::int64_t id, bool unblinded);
// For `irt-hub deviations --json` and the API; "unblinded" only when it was read so.
nlohmann::json to_json(const Deviation& d);
// Each deviation against the deviation.raised audit entry written with it
// (kind, node, seq, summary, time) and its status against the
// deviation.acknowledged entry (who, when, comment); each such entry against
// its deviation. One problem per difference (irt-hub verify); the sealed part
// (what only unblinded readers see) is not in the trail and not checked.
std::vector<std::string> verify_deviations(HubState& hub);
// Open deviations per node id.
std::size_t open_deviations_of(storage::Database& db, const std::string& node_id);

// Signed by a user with manage_study ("reviewed"); not_found for an unknown
// id, conflict when it was acknowledged before; the comment is required.
shared::Result<Deviation> acknowledge_deviation(HubState& hub, std::int64_t id, const std::string& comment,
                                                const Signature& signer, std::int64_t now_ms);

// ---- the rules, for hub/consumption.h: each returns the deviation's summary
// when the event deviates.

// A dispensing against the study's window for its visit: `day` is the days
// from the participant's randomization date to the dispensing's (the hub's
// count when it knows both events, else the node's). The node's own
// deviation_reason counts too.
std::optional<std::string> visit_window_deviation(const shared::Study& study, const shared::Dispensed& d,
                                                  std::int64_t day);
// The days from the participant's randomization (its event's device date) to
// `at_ms`, or nullopt when the hub holds no randomization for it.
std::optional<std::int64_t> days_since_randomization(HubState& hub, const std::string& participant,
                                                     std::int64_t at_ms);
// When a node event was recorded, by the node's clock (its device time);
// nullopt when the hub holds no such event.
std::optional<std::int64_t> event_device_time_ms(HubState& hub, const std::string& node_id, std::uint64_t seq);
// A kit a node dispensed although the hub had rejected it or put it on hold (a
// kits.reject or kits.quarantine directive to that node naming it, not
// followed by a kits.release) or it stood
// quarantined at the hub; `directive_seq` is the cursor the event carries.
// Call before the dispensing is recorded.
std::optional<std::string> kit_decision_deviation(HubState& hub, const std::string& node_id, const std::string& kit,
                                                  std::uint64_t directive_seq);

}  // namespace irt::hub
