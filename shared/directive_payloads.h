// The JSON payloads of the hub directives that hand a node what it may
// consume (docs/architecture.md, "The one-owner invariant") and the hub's decisions about its kits. The
// hub produces them with to_json, the node reads them with the parse_*
// functions, which check every field; docs/directives.md gives each shape
// byte for byte.
//
//   "grant.slots"               GrantSlots: whole blocks per stratum, slot arms included
//   "grant.numbers"             NumberRangeGrant: a range of participant numbers
//   "grant.minimization_stream" MinimizationStreamGrant: seed and baseline for offline minimization
//   "grant.cap_allowance"       CapAllowanceGrant: how many participants the node may still put in a
//                               capped arm or cohort (arm ids included)
//   "shipment"                  Shipment: kits sent to the node's site, with kit type, lot, expiry
//   "kits.release"/"kits.reject" KitDecision: the hub's decision on quarantined kits
//   "kits.quarantine"           KitDecision: kits of the node's stock the hub put on hold (a lot
//                               held everywhere while a quality issue is investigated)
//   "kits.relabel"              KitRelabel: a lot's new expiry for the node's kits of it
//   "grant.lease"               RandomizationLease: until when the node may randomize from what it
//                               holds (docs/randomization.md, "The lease")
//   "kits.handover"             KitHandover: the hub's answer to a node's handover of kits to
//                               another node of its site (the receiving node gets a "shipment"
//                               of kind "handover")
//   "kits.at_depot"             KitsAtDepot: kits the node sent back to a depot, as the depot
//                               reported them (received, damaged, missing): they leave the node's records
//   "participant.transfer"      ParticipantTransferDecision: the hub's decision on a node's request to
//                               move a participant to another site (approved: it left this node)
//   "participant.transfer_in"   ParticipantTransferIn: a participant moved to this node, with its
//                               record (arm included), its visits done and its kits dispensed
//
// Slot arms and kit types reveal the allocation: they travel only inside the
// signed directive over TLS, and the node stores them encrypted. Parse errors
// name the field, never a value of an arm field.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/event_payloads.h"
#include "shared/result.h"
#include "shared/slot_slice.h"
#include "shared/study.h"

namespace irt::shared {

inline constexpr std::string_view kGrantSlotsDirective = "grant.slots";
inline constexpr std::string_view kGrantNumbersDirective = "grant.numbers";
inline constexpr std::string_view kGrantMinimizationStreamDirective = "grant.minimization_stream";
inline constexpr std::string_view kGrantCapAllowanceDirective = "grant.cap_allowance";
inline constexpr std::string_view kShipmentDirective = "shipment";
inline constexpr std::string_view kKitsReleaseDirective = "kits.release";
inline constexpr std::string_view kKitsRejectDirective = "kits.reject";
inline constexpr std::string_view kKitsQuarantineDirective = "kits.quarantine";
inline constexpr std::string_view kKitsRelabelDirective = "kits.relabel";
inline constexpr std::string_view kKitsHandoverDirective = "kits.handover";
inline constexpr std::string_view kKitsAtDepotDirective = "kits.at_depot";
inline constexpr std::string_view kGrantLeaseDirective = "grant.lease";
inline constexpr std::string_view kParticipantTransferDirective = "participant.transfer";
inline constexpr std::string_view kParticipantTransferInDirective = "participant.transfer_in";

struct GrantSlots {
  int study_version = 0;             // the study version whose list the slots come from
  std::vector<SlotGrant> grants;     // whole blocks, per stratum
  std::vector<SlotVoid> voids;       // slots withdrawn from the node, never to be used
};

// Participant numbers PREFIX-NNN for first <= N <= last, N zero-padded to
// `digits` (shared/numbering.h formats them).
struct NumberRangeGrant {
  std::uint64_t range_id = 0;  // increasing per node
  std::string prefix;          // the site id
  std::uint32_t first = 1;
  std::uint32_t last = 0;
  int digits = 3;
};

struct MinimizationStreamGrant {
  std::uint64_t stream_id = 0;        // increasing per node; replaces the previous stream
  std::string seed_hex;               // 64 hex digits: the DeterministicStream seed
  std::uint64_t allowance = 0;        // allocations the node may make from this stream (caps)
  std::uint64_t synced_participants = 0;  // study-wide allocations at the time of the grant
  // share-weighted totals: [factor][level][arm], factors in the study's
  // minimization_factors order, levels in factor order, arms in study order.
  std::vector<std::vector<std::vector<double>>> baseline;
};

// One capped arm or cohort. `granted` is the total the hub has granted this
// node for that cap since its enrollment (it only grows); the node may still
// randomize granted - (its own randomized participants counting against the
// cap) into it. A cap the node holds no allowance for is closed at the node.
struct CapAllowance {
  CapScope scope = CapScope::arm;  // arm or cohort, never stratum
  std::string id;                  // arm id (sealed at rest) or cohort id
  std::uint64_t granted = 0;
};

struct CapAllowanceGrant {
  std::vector<CapAllowance> allowances;  // each (scope, id) at most once; absent caps keep their total
};

struct ShipmentKit {
  std::string kit_number;  // decimal digits, as printed on the label
  std::string kit_type;    // KitType::id (reveals the arm: stored encrypted)
  std::string lot;
  std::string expiry;      // "YYYY-MM-DD", the last day the kit may be used
};

struct Shipment {
  std::string shipment_id;  // "SHP-000123"
  std::string kind;         // "initial" (later: "resupply")
  std::string shipped_on;   // "YYYY-MM-DD"
  std::vector<ShipmentKit> kits;
};

struct KitDecision {
  std::uint64_t decision_id = 0;
  std::vector<std::string> kits;  // kit numbers
  std::string reason;
};

void to_json(nlohmann::json& j, const GrantSlots& g);
void to_json(nlohmann::json& j, const NumberRangeGrant& g);
void to_json(nlohmann::json& j, const MinimizationStreamGrant& g);
void to_json(nlohmann::json& j, const CapAllowanceGrant& g);
void to_json(nlohmann::json& j, const ShipmentKit& k);
void to_json(nlohmann::json& j, const Shipment& s);
void to_json(nlohmann::json& j, const KitDecision& d);

// invalid_input naming the field ("shipment.kits[3].expiry: not a date YYYY-MM-DD").
Result<GrantSlots> parse_grant_slots(std::string_view json_text);
Result<NumberRangeGrant> parse_number_range(std::string_view json_text);
Result<MinimizationStreamGrant> parse_minimization_stream(std::string_view json_text);
Result<CapAllowanceGrant> parse_cap_allowance(std::string_view json_text);
Result<Shipment> parse_shipment(std::string_view json_text);
Result<KitDecision> parse_kit_decision(std::string_view json_text);

// A lot relabelled at the hub (hub/lots.h): the node's kits of it take the
// new expiry and are marked for relabelling at the site.
struct KitRelabel {
  std::string lot;
  std::string expiry;             // "YYYY-MM-DD", the new last day of use
  std::vector<std::string> kits;  // the node's kits of the lot
  std::string reason;
};
void to_json(nlohmann::json& j, const KitRelabel& r);
Result<KitRelabel> parse_kit_relabel(std::string_view json_text);

// The hub's answer to a kit.handover_requested event (the node's event seq
// `request_seq`): "moved" (custody is now `to_node`'s: the kits leave this
// node's records) or "refused" (the kits come back into this node's stock;
// `reason` says why).
struct KitHandover {
  std::uint64_t request_seq = 0;
  std::string to_node;
  std::vector<std::string> kits;
  std::string outcome;  // "moved" or "refused"
  std::string reason;
};
void to_json(nlohmann::json& j, const KitHandover& h);
Result<KitHandover> parse_kit_handover(std::string_view json_text);

// The depot's report of kits a node sent back in return shipment
// `shipment_id` ("RET-<node>-<event seq>"): each received, damaged or missing
// at `depot`. The node's custody of them ends there: they leave its records,
// and their fate stays in the hub's kit history.
struct KitsAtDepot {
  std::string shipment_id;
  std::string depot;
  std::vector<KitCondition> kits;  // condition: received, damaged or missing
};
void to_json(nlohmann::json& j, const KitsAtDepot& d);
Result<KitsAtDepot> parse_kits_at_depot(std::string_view json_text);

// The node may randomize (from its slots or its minimization stream) while
// its clock reads before `until_ms`; after it, randomization waits for a sync,
// and every other action goes on. A lease replaces the one held when its
// `lease_id` is greater (ids grow per node at the hub).
struct RandomizationLease {
  std::uint64_t lease_id = 0;
  std::int64_t until_ms = 0;  // Unix milliseconds
  std::string reason;         // the hub's reason: renewed at a sync, or a shortening's reason
};
void to_json(nlohmann::json& j, const RandomizationLease& l);
Result<RandomizationLease> parse_lease(std::string_view json_text);
// The hub's decision on a participant.transfer_requested event (the node's
// event seq `request_seq`), to the node that asked: "approved" (the
// participant is served by `to_node` of `to_site` from now on; `kits`, the
// kits dispensed to it, left this node's custody with it) or "rejected" (it
// stays here; `reason` says why).
struct ParticipantTransferDecision {
  std::uint64_t transfer_id = 0;
  std::uint64_t request_seq = 0;
  std::string participant;
  std::string to_site;
  std::string outcome;  // "approved" or "rejected"
  std::string to_node;  // approved only
  std::vector<std::string> kits;
  std::string reason;
  std::string decided_by;
};
void to_json(nlohmann::json& j, const ParticipantTransferDecision& d);
Result<ParticipantTransferDecision> parse_participant_transfer(std::string_view json_text);

// A participant moved to the node receiving it, as the hub rebuilt its record
// from the facts its nodes recorded. `arm` reveals the allocation: the node
// stores it encrypted and never shows it to a blinded role.
struct TransferredVisit {
  std::string visit;
  std::string date;  // "YYYY-MM-DD"
  std::vector<std::string> kits;
  std::string deviation;      // window override reason
  std::string missed_reason;  // non-empty: missed
  std::string by;
  std::string order_reason;  // non-empty: dispensed before an earlier visit
};
struct TransferredKit {
  std::string kit_number;
  std::string kit_type;  // reveals the allocation
  std::string lot;
  std::string expiry;
  std::string visit;     // the visit it was dispensed at
};
struct ParticipantTransferIn {
  std::uint64_t transfer_id = 0;
  std::string participant;
  std::string from_site;
  std::string from_node;
  ParticipantStatus status = ParticipantStatus::screened;  // screened or randomized
  std::map<std::string, std::string> factors;
  std::vector<std::string> eligibility;
  std::string cohort;
  std::string screened_on, screened_by;
  int study_version = 0;  // the design version it was randomized (else screened) under; 0 unknown
  std::string randomization_number, randomized_on, randomized_by;
  std::string arm;  // "" before randomization
  std::optional<std::uint32_t> stratum;
  std::vector<TransferredVisit> visits;
  std::vector<TransferredKit> kits;  // dispensed to it and not returned
  bool unblinded = false;
  std::string unblinded_on, unblinded_by;
  std::string reason;  // why it moved (the request's reason)
};
void to_json(nlohmann::json& j, const ParticipantTransferIn& t);
Result<ParticipantTransferIn> parse_participant_transfer_in(std::string_view json_text);

}  // namespace irt::shared
