// The node's trial data: participants, the randomization slots and
// participant numbers it owns, the minimization stream and the allowances
// under arm and cohort caps it was granted, its shipments and the kits in its
// custody. Persisted in the node's SQLite file
// (migrations "node_domain") and mirrored in memory for fast reads.
//
// Encryption at rest (docs/architecture.md, "Trust"): every row's content that could
// identify a participant or reveal an allocation (participant numbers and
// records, slot arms, kit types and lots, the minimization stream, the cap
// allowances) is
// XChaCha20-Poly1305-sealed under the node's data key. The associated data is
// the row's identity plus its clear columns ("irt/node/<node>/kit/<number>/
// <shipment>/<status>/<expiry>/<participant>"), so a row moved, swapped or
// with an edited status fails to open and the store refuses to load. Clear
// columns hold only opaque ids, statuses, kit numbers and expiry dates (and a
// return shipment's depot, courier and tracking number: no allocation there).
// Participants are found by a keyed BLAKE2b tag of their number.
//
// Durability: every save_* writes inside the caller's storage::Transaction
// (the one that also appends the event recording the change) and updates the
// in-memory mirror at once; a caller whose transaction rolls back calls
// reload(). The apply_* functions carry out hub directives inside
// NodeLog::apply_directive's transaction.
// Thread-safety: one thread at a time (the node serialises access to its
// single connection).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "node/kit_custody.h"
#include "node/participant_record.h"
#include "shared/block_list.h"
#include "shared/directive_payloads.h"
#include "shared/result.h"
#include "shared/study.h"
#include "storage/database.h"
#include "sync/node_log.h"

namespace irt::node {

inline constexpr const char* kSlotFree = "free";
inline constexpr const char* kSlotUsed = "used";
inline constexpr const char* kSlotVoided = "voided";

struct SlotRecord {
  std::uint32_t stratum = 0;
  std::uint32_t slot = 0;
  std::uint32_t block = 0;
  std::uint32_t block_size = 0;
  std::string arm;               // reveals the allocation
  std::string state = kSlotFree;
  std::int64_t participant = 0;
  std::uint64_t grant_id = 0;
};

struct NumberRange {
  shared::NumberRangeGrant grant;
  std::uint32_t next = 0;  // next number to hand out; > last when used up
};

struct StreamState {
  shared::MinimizationStreamGrant grant;
  std::uint64_t position = 0;   // bytes of the stream consumed
  std::uint64_t decisions = 0;  // allocations made from it
};

// A shipment to this node (from a depot, or a handover from another node of
// the site), or a return shipment this node sent to a depot (kind "return":
// depot, courier and tracking set; its kits name it as their shipment).
struct ShipmentRecord {
  std::string id;
  std::string kind;
  std::string shipped_on;
  std::int64_t announced_ms = 0;
  std::string depot;
  std::string courier;
  std::string tracking;
  std::map<std::string, int> at_depot;  // a return shipment's kits as the depot found them: condition -> count
};

inline constexpr const char* kReturnShipmentKind = "return";
// The id the hub gives the return shipment of the node's event `event_seq`
// (kit.return_shipped): "RET-<node>-<seq>".
std::string return_shipment_id(const std::string& node_id, std::uint64_t event_seq);

class DomainStore {
 public:
  static shared::Result<std::unique_ptr<DomainStore>> open(storage::Database& db, sync::NodeLog& log,
                                                           const crypto::AeadKey& data_key, std::string node_id,
                                                           std::string site_id);

  // Re-reads everything from the database; integrity error naming the first
  // row that does not authenticate.
  shared::Status reload();

  const std::string& node_id() const { return node_id_; }
  const std::string& site_id() const { return site_id_; }
  const shared::Study* study() const { return study_ ? &*study_ : nullptr; }
  const std::string& study_document() const { return study_doc_; }
  const shared::Strata* strata() const { return strata_ ? &*strata_ : nullptr; }
  // The payload of a domain event this node records, with "study_version":
  // the configuration version it acted under (absent before the first
  // study.config). Every domain event's payload is made here
  // (docs/sync-protocol.md, "Events").
  crypto::Bytes event_payload(nlohmann::json payload) const;

  const std::map<std::int64_t, ParticipantRecord>& participants() const { return participants_; }
  const ParticipantRecord* find_participant(const std::string& number) const;
  const ParticipantRecord* participant_by_id(std::int64_t id) const;
  void save_participant(ParticipantRecord& p);  // inserts when p.id == 0 and sets it

  const std::map<std::string, KitRecord>& kits() const { return kits_; }
  const KitRecord* find_kit(const std::string& number) const;
  void save_kit(const KitRecord& k);

  const SlotRecord* next_free_slot(std::uint32_t stratum) const;
  std::size_t free_slots(std::uint32_t stratum) const;
  std::map<std::uint32_t, std::size_t> free_slots_by_stratum() const;
  void save_slot(const SlotRecord& s);

  // The next participant number this node may hand out; nullopt when its ranges are used up.
  std::optional<std::string> next_number() const;
  void consume_number();
  std::uint64_t numbers_left() const;

  const StreamState* stream() const { return stream_ ? &*stream_ : nullptr; }
  void save_stream(const StreamState& s);

  // Caps (docs/randomization.md, "Caps"): how many more participants this node
  // may randomize into a capped arm or cohort: what the hub granted
  // ("grant.cap_allowance") less this node's randomized participants counting
  // against the cap; 0 when nothing was granted; nullopt when the study does
  // not cap that arm or cohort. Arm allowances reveal allocations: stored
  // sealed like the slots, and never shown to a blinded role.
  std::optional<std::uint64_t> allowance_left(shared::CapScope scope, const std::string& id) const;
  // A slot or a minimization decision may put a participant with these factor
  // levels in this arm on this day (the node's date): the study version
  // applied does not close it there and then (a design change, Arm::closure)
  // and, when the arm is capped, its allowance is not used up.
  bool arm_open(const std::string& arm, const std::map<std::string, std::string>& factors, shared::Days day) const {
    return !(study_ && study_->arm_closed_for(arm, factors, day)) &&
           allowance_left(shared::CapScope::arm, arm).value_or(1) > 0;
  }
  // The first free slot of the stratum whose arm is open for the participant.
  const SlotRecord* next_open_slot(std::uint32_t stratum, const std::map<std::string, std::string>& factors,
                                   shared::Days day) const;

  const std::map<std::string, ShipmentRecord>& shipments() const { return shipments_; }
  // A return shipment this node sends (SiteOperations::ship_return), inside its transaction.
  void save_return_shipment(const ShipmentRecord& s);

  // The randomization lease the hub granted ("grant.lease"); nullopt before
  // the first (a node of a hub without leases randomizes as before).
  const std::optional<shared::RandomizationLease>& lease() const { return lease_; }

  // Hub directives (inside NodeLog::apply_directive's transaction).
  shared::Status apply_grant_slots(const shared::GrantSlots& g);
  shared::Status apply_number_range(const shared::NumberRangeGrant& g);
  shared::Status apply_minimization_stream(const shared::MinimizationStreamGrant& g);
  shared::Status apply_cap_allowance(const shared::CapAllowanceGrant& g);
  shared::Status apply_shipment(const shared::Shipment& s);
  // kits.release, kits.reject or kits.quarantine (`type`): the hub's decision
  // on the named kits this node still holds. A hold quarantines the kits in
  // stock (available); a kit dispensed or otherwise used meanwhile stays as
  // recorded (the hub raises a deviation).
  shared::Status apply_kit_decision(const shared::KitDecision& d, std::string_view type);
  // kits.relabel: the named kits still in hand take the lot's new expiry and
  // are marked for relabelling (KitRecord::relabel).
  shared::Status apply_kit_relabel(const shared::KitRelabel& r);
  // kits.handover: the hub's answer to this node's handover of kits to another
  // node of its site. "moved": the named kits still in transit leave this
  // node's records (the other node holds them now, and may hand them back as
  // a new shipment); "refused": they return to stock, available, with the
  // hub's reason as their note. A kit in any other status is left as it is.
  shared::Status apply_kit_handover(const shared::KitHandover& h);
  // kits.at_depot: the depot's report of this node's return shipment. The
  // named kits still "shipped" (sent back) leave this node's records: their
  // custody ended at the depot. A kit in any other status is left as it is.
  shared::Status apply_kits_at_depot(const shared::KitsAtDepot& d);
  // grant.lease: replaces the lease held when its id is greater; an older one
  // (a directive replayed) is ignored. Kept sealed beside the log.
  shared::Status apply_lease(const shared::RandomizationLease& l);
  // participant.transfer: the hub's decision on this node's transfer request.
  // "approved": the participant becomes "transferred" (this node no longer
  // serves it; its record stays, for the site's files) and the kits dispensed
  // to it leave this node's records with it; "rejected": it stays, the request
  // is cleared and the decision shown.
  shared::Status apply_participant_transfer(const shared::ParticipantTransferDecision& d);
  // participant.transfer_in: a participant moved here, with its record, visits
  // and dispensed kits. It is served here from now on; it does not count
  // against this node's cap allowances (the node that randomized it does).
  shared::Status apply_participant_transfer_in(const shared::ParticipantTransferIn& t);

 private:
  DomainStore(storage::Database& db, sync::NodeLog& log, const crypto::AeadKey& key, std::string node_id,
              std::string site_id);
  crypto::Bytes lookup_tag(const std::string& number) const;
  std::string participant_ad(std::int64_t id, const std::string& status) const;
  std::string kit_ad(const KitRecord& k) const;
  std::string slot_ad(const SlotRecord& s) const;
  std::string stream_ad(std::uint64_t id) const;
  std::string allowances_ad() const;
  void save_allowances();
  shared::Status load_study();

  storage::Database& db_;
  sync::NodeLog& log_;
  const crypto::AeadKey& key_;
  std::string node_id_;
  std::string site_id_;
  crypto::Bytes lookup_key_;

  std::string study_doc_;
  std::optional<shared::Study> study_;
  std::optional<shared::Strata> strata_;
  std::map<std::int64_t, ParticipantRecord> participants_;
  std::map<std::string, std::int64_t> by_number_;
  std::map<std::string, KitRecord> kits_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, SlotRecord> slots_;
  std::vector<NumberRange> ranges_;
  std::optional<StreamState> stream_;
  std::map<std::pair<shared::CapScope, std::string>, std::uint64_t> allowances_;  // granted in all, per cap
  std::map<std::string, ShipmentRecord> shipments_;
  std::optional<shared::RandomizationLease> lease_;
};

}  // namespace irt::node
