// The JSON payloads of the events a node records: the contract between the
// node that writes them and the hub that reads them (facts, never rejected:
// docs/architecture.md). The node builds each payload from its struct with
// to_json; the hub reads it with the matching parse_* function, which checks
// every field and names the first one that is missing or mistyped
// ("kit.dispensed.kits[1]: must be a string"). docs/sync-protocol.md lists
// every type with its fields.
//
// Fields that reveal an allocation (an arm, a kit's type) never travel in
// clear: they sit in `sealed`, base64 of a box sealed to the hub's unblinding
// key, whose plain text is one of the *Sealed structs below. Parse errors name
// fields, never values, so an error message cannot leak what a field held.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/offline_minimization.h"
#include "shared/result.h"

namespace irt::shared {

inline constexpr std::string_view kNodeEnrolledEvent = "node.enrolled";
inline constexpr std::string_view kDirectiveAppliedEvent = "directive.applied";
inline constexpr std::string_view kSiteNoteEvent = "site.note";
inline constexpr std::string_view kScreenedEvent = "participant.screened";
inline constexpr std::string_view kScreenFailedEvent = "participant.screen_failed";
inline constexpr std::string_view kRandomizedEvent = "participant.randomized";
inline constexpr std::string_view kWithdrawnEvent = "participant.withdrawn";
inline constexpr std::string_view kCompletedEvent = "participant.completed";
inline constexpr std::string_view kTransferRequestedEvent = "participant.transfer_requested";
inline constexpr std::string_view kUnblindedEvent = "participant.unblinded";
inline constexpr std::string_view kDispensedEvent = "kit.dispensed";
inline constexpr std::string_view kKitReplacedEvent = "kit.replaced";
inline constexpr std::string_view kShipmentReceivedEvent = "shipment.received";
inline constexpr std::string_view kKitQuarantinedEvent = "kit.quarantined";
inline constexpr std::string_view kKitReturnedEvent = "kit.returned";
inline constexpr std::string_view kKitDestroyedEvent = "kit.destroyed";
inline constexpr std::string_view kSupplyShortageEvent = "supply.shortage";
inline constexpr std::string_view kVisitRecordedEvent = "visit.recorded";
inline constexpr std::string_view kTemperatureExcursionEvent = "kit.excursion";
inline constexpr std::string_view kKitsStoredEvent = "kit.stored";
inline constexpr std::string_view kKitHandoverRequestedEvent = "kit.handover_requested";
inline constexpr std::string_view kKitRelabelledEvent = "kit.relabelled";
inline constexpr std::string_view kKitsReturnShippedEvent = "kit.return_shipped";

// Every domain event's payload (all of the above but node.enrolled and
// directive.applied, which the sync layer records) carries "study_version":
// the study configuration version the node acted under, a whole number from 1.
// Each parse_* checks it when present; an event recorded before the node's
// first study.config has none.
inline constexpr const char* kEventStudyVersionField = "study_version";

// ---- statuses shared by node and hub
//
// Their names (to_string) are what the node's and the hub's databases store
// and what payloads carry: never rename one.

// transferred: at the node the participant left, after the hub approved its
// transfer to another site (it is served there now).
enum class ParticipantStatus { screened, screen_failed, randomized, withdrawn, completed, transferred };

// A kit's status. At the node: expected (announced by a shipment), then
// available, damaged or missing at receipt; quarantined, then available or
// rejected by the hub's decision; dispensed, then lost, damaged (replaced) or
// returned; destroyed. At the hub: available at a depot; shipped to a node,
// then what the node reports (received, damaged, missing, quarantined,
// dispensed, lost, returned, destroyed); lost_with_node when the node is
// revoked.
enum class KitStatus { expected, shipped, received, available, damaged, missing, lost, quarantined, rejected, dispensed,
                       returned, destroyed, lost_with_node };

const char* to_string(ParticipantStatus s);
const char* to_string(KitStatus s);
std::optional<ParticipantStatus> parse_participant_status(std::string_view name);
std::optional<KitStatus> parse_kit_status(std::string_view name);
// As JSON a status is its name; reading an unknown name throws
// nlohmann::json::type_error, for stores that treat that as damage.
void to_json(nlohmann::json& j, ParticipantStatus s);
void to_json(nlohmann::json& j, KitStatus s);
void from_json(const nlohmann::json& j, ParticipantStatus& s);
void from_json(const nlohmann::json& j, KitStatus& s);

// ---- parts

// An electronic signature by re-authentication: who signed, as what role, when, and what it means.
struct ESignature {
  std::string signer;
  std::string role;
  std::int64_t signed_ms = 0;
  std::string meaning;
};

// A kit and the condition it arrived in: received, damaged or missing.
struct KitCondition {
  std::string kit;
  KitStatus condition = KitStatus::received;
};

// ---- payloads

struct NodeEnrolled {
  std::string node_id, site_id, kind, study_id, hub_url, hub_fingerprint, public_key;
};

struct DirectiveApplied {
  std::uint64_t directive_seq = 0;
  std::string type;
  std::string hash;  // hash_domain("irt/directive/v1", record), hex
};

struct SiteNote {
  std::string text;
  std::string role;
  std::string site_id;
};

// participant.screened and participant.screen_failed (status tells which).
struct Screened {
  std::string participant;
  ParticipantStatus status = ParticipantStatus::screened;
  std::map<std::string, std::string> factors;  // factor id -> level, "site"/"country" included
  std::vector<std::string> eligibility;        // "yes"/"no", one per study question
  std::string role;
  std::string screen_failure_reason;  // non-empty exactly for a screen failure
  std::string cohort;                 // a cohort id when the study defines cohorts, else empty (absent)
};

struct Randomized {
  std::string participant;
  std::string randomization_number;
  std::string visit;              // the randomization visit ("" if the schedule has none)
  std::vector<std::string> kits;  // dispensed at randomization
  ESignature esignature;
  // Block designs: the list slot used.
  std::optional<std::uint32_t> stratum;
  std::string stratum_label;
  std::optional<std::uint32_t> slot;
  // Minimization: the granted stream and the decision's number in it.
  std::optional<std::uint64_t> stream_id;
  std::optional<std::uint64_t> decision_sequence;
  std::string sealed;  // RandomizedSealed
};
struct RandomizedSealed {
  std::string arm;
  std::map<std::string, std::string> kit_types;  // kit number -> kit type id
  std::optional<OfflineDecisionRecord> decision;  // minimization only
};

struct Dispensed {
  std::string participant;
  std::string visit;
  std::vector<std::string> kits;
  std::int64_t day = 0;                    // days since randomization
  std::int64_t window_from = 0, window_to = 0;  // the visit's window, in the same days
  std::string deviation_reason;            // non-empty: dispensed outside the window (a protocol deviation)
  std::optional<ESignature> esignature;    // present with a deviation
  std::string sealed;                      // KitTypesSealed
  std::string order_reason;                // non-empty: dispensed before an earlier visit was done or missed
};

struct KitReplaced {
  std::string participant;
  std::string visit;
  std::string old_kit;
  std::string new_kit;
  KitStatus condition = KitStatus::damaged;  // of the old kit: damaged or lost
  std::string reason;
  ESignature esignature;
  std::string sealed;  // KitTypesSealed of the new kit
};
struct KitTypesSealed {
  std::map<std::string, std::string> kit_types;  // kit number -> kit type id
};

struct Withdrawn {
  std::string participant;
  std::string reason;
  std::string role;
  std::optional<ESignature> esignature;  // absent in events before withdrawals were signed
};

struct Completed {
  std::string participant;
  std::string role;
};

struct TransferRequested {
  std::string participant;
  std::string to_site;
  std::string reason;
  std::string role;
};

struct Unblinded {
  std::string participant;
  std::string reason;
  ESignature esignature;
  std::string sealed;  // ArmSealed
};
struct ArmSealed {
  std::string arm;
};

struct ShipmentReceived {
  std::string shipment;
  std::vector<KitCondition> kits;
  std::optional<ESignature> esignature;  // present when a kit arrived damaged
  std::string location;                  // where the received kits are stored ("" absent: not said)
};

struct KitQuarantined {
  std::string kit;
  std::string reason;
  std::optional<double> temperature_celsius;
};

struct KitReturned {
  std::string kit;
  std::string participant;  // "" when the kit's participant is not known at the node
  std::int64_t units_returned = 0;
  // The visit at which the participant brought the kit back ("" absent: not
  // said, or a kit the site returns unused, such as a rejected one).
  std::string visit;
};

struct KitDestroyed {
  std::string kit;
  std::string reason;
  ESignature esignature;
  std::optional<ESignature> witness;  // the second person who saw it done (absent in events before witnesses)
};

// A randomization, dispensing or replacement refused for want of kits: the
// one event that records a refusal (docs/sync-protocol.md).
struct SupplyShortage {
  std::string participant;
  std::string visit;
  std::string operation;    // "randomize", "dispense" or "replace"
  std::string replace_kit;  // "replace" only
  std::string sealed;       // ShortageSealed
};
struct KitShortage {
  std::string kit_type;
  std::int64_t needed = 0;
  std::int64_t dispensable = 0;
};
struct ShortageSealed {
  std::vector<KitShortage> shortages;
};

// A scheduled visit recorded without dispensing: "done" (a visit that
// dispenses nothing) or "missed" (with the reason).
struct VisitRecorded {
  std::string participant;
  std::string visit;
  std::string outcome;  // "done" or "missed"
  std::string reason;   // why it was missed; empty when done
  std::string role;
};

// A temperature excursion reported at the site: every kit it concerns is
// quarantined at once, in one event. The kits were listed one by one, or are
// every kit in stock at a storage location (a fridge) when `location` is set.
// Readings: the lowest and highest temperature seen and how long the kits
// were outside their storage range.
struct TemperatureExcursion {
  std::vector<std::string> kits;  // non-empty
  std::string location;           // "" (absent) when the kits were listed
  double minimum_celsius = 0;
  double maximum_celsius = 0;     // >= minimum_celsius
  std::int64_t duration_minutes = 0;  // >= 1
  std::string reason;             // what happened
};

// Kits put in a storage location (a fridge, a cupboard): where an excursion
// "for a location" finds them.
struct KitsStored {
  std::vector<std::string> kits;  // non-empty
  std::string location;           // non-empty
};

void to_json(nlohmann::json& j, const ESignature& v);
void to_json(nlohmann::json& j, const NodeEnrolled& v);
void to_json(nlohmann::json& j, const DirectiveApplied& v);
void to_json(nlohmann::json& j, const SiteNote& v);
void to_json(nlohmann::json& j, const Screened& v);
void to_json(nlohmann::json& j, const Randomized& v);
void to_json(nlohmann::json& j, const RandomizedSealed& v);
void to_json(nlohmann::json& j, const Dispensed& v);
void to_json(nlohmann::json& j, const KitReplaced& v);
void to_json(nlohmann::json& j, const KitTypesSealed& v);
void to_json(nlohmann::json& j, const Withdrawn& v);
void to_json(nlohmann::json& j, const Completed& v);
void to_json(nlohmann::json& j, const TransferRequested& v);
void to_json(nlohmann::json& j, const Unblinded& v);
void to_json(nlohmann::json& j, const ArmSealed& v);
void to_json(nlohmann::json& j, const ShipmentReceived& v);
void to_json(nlohmann::json& j, const KitQuarantined& v);
void to_json(nlohmann::json& j, const KitReturned& v);
void to_json(nlohmann::json& j, const KitDestroyed& v);
void to_json(nlohmann::json& j, const SupplyShortage& v);
void to_json(nlohmann::json& j, const ShortageSealed& v);
void to_json(nlohmann::json& j, const VisitRecorded& v);
void to_json(nlohmann::json& j, const TemperatureExcursion& v);
void to_json(nlohmann::json& j, const KitsStored& v);

// invalid_input naming the event type and the field, never a field's value.
// The study version a domain event was recorded under; nullopt when it has none.
Result<std::optional<int>> parse_event_study_version(std::string_view json_text);
Result<NodeEnrolled> parse_node_enrolled(std::string_view json_text);
Result<DirectiveApplied> parse_directive_applied(std::string_view json_text);
Result<SiteNote> parse_site_note(std::string_view json_text);
Result<Screened> parse_screened(std::string_view json_text);
Result<Randomized> parse_randomized(std::string_view json_text);
Result<RandomizedSealed> parse_randomized_sealed(std::string_view json_text);
// The offline minimization decision record alone, as the sealed part carries it.
Result<OfflineDecisionRecord> parse_decision_record(std::string_view json_text);
Result<Dispensed> parse_dispensed(std::string_view json_text);
Result<KitReplaced> parse_kit_replaced(std::string_view json_text);
Result<KitTypesSealed> parse_kit_types_sealed(std::string_view json_text);
Result<Withdrawn> parse_withdrawn(std::string_view json_text);
Result<Completed> parse_completed(std::string_view json_text);
Result<TransferRequested> parse_transfer_requested(std::string_view json_text);
Result<Unblinded> parse_unblinded(std::string_view json_text);
Result<ArmSealed> parse_arm_sealed(std::string_view json_text);
Result<ShipmentReceived> parse_shipment_received(std::string_view json_text);
Result<KitQuarantined> parse_kit_quarantined(std::string_view json_text);
Result<KitReturned> parse_kit_returned(std::string_view json_text);
Result<KitDestroyed> parse_kit_destroyed(std::string_view json_text);
Result<SupplyShortage> parse_supply_shortage(std::string_view json_text);
Result<ShortageSealed> parse_shortage_sealed(std::string_view json_text);
Result<VisitRecorded> parse_visit_recorded(std::string_view json_text);
Result<TemperatureExcursion> parse_temperature_excursion(std::string_view json_text);
Result<KitsStored> parse_kits_stored(std::string_view json_text);

// A node hands kits in its stock to another node of its site (a site node to
// one of its nurse tablets, a tablet back to its site node). The kits leave
// the node's stock at once ("in transit to node N"); the hub moves their
// custody at the next sync (docs/supply.md, "Custody between nodes").
struct KitHandoverRequested {
  std::string to_node;
  std::vector<std::string> kits;  // kit numbers, each once
  std::string reason;             // may be empty
  std::string role;
};
void to_json(nlohmann::json& j, const KitHandoverRequested& v);
Result<KitHandoverRequested> parse_kit_handover_requested(std::string_view json_text);

// A kit the hub asked to relabel (the kits.relabel directive: its lot's new
// expiry) now carries the new label: the site confirms it kit by kit.
struct KitRelabelled {
  std::string kit;
  std::string expiry;  // YYYY-MM-DD, the expiry printed on the new label
  std::string role;
};
void to_json(nlohmann::json& j, const KitRelabelled& v);
Result<KitRelabelled> parse_kit_relabelled(std::string_view json_text);

// A site's return shipment to a depot (docs/supply.md, "Returns to a depot"):
// kits returned by participants, rejected, damaged or expired leave the
// node's stock at once ("in transit to depot D"); the hub moves their custody
// to the depot at the next sync (shipment RET-<node>-<event seq>), where a
// depot user receives them kit by kit.
struct KitsReturnShipped {
  std::string depot;              // a depot of the study
  std::vector<std::string> kits;  // kit numbers, each once
  std::string reason;             // may be empty
  std::string courier;            // may be empty
  std::string tracking;           // may be empty
  std::string role;
  std::optional<ESignature> esignature;  // absent in events before returns were signed
};
void to_json(nlohmann::json& j, const KitsReturnShipped& v);
Result<KitsReturnShipped> parse_kits_return_shipped(std::string_view json_text);

}  // namespace irt::shared
