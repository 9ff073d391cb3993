// What site staff do on a node, offline or not: screen, randomize, dispense,
// withdraw, complete, request a transfer, break the code, receive shipments,
// quarantine, return and destroy kits.
//
// Every operation checks the actor's role (the study's roles and
// permissions), validates everything before changing anything, then in one
// storage::Transaction changes the domain store and appends the signed event
// that records it (who, when, why, and for critical actions the electronic
// signature: signer, time and meaning). The transaction is durable
// (synchronous=FULL) before the call returns, so what an operation returns has
// been recorded. Arm-revealing fields of an event's payload are sealed to the
// hub's unblinding key ("sealed", base64). Expected refusals are Error values
// whose messages name the problem and the fix and never reveal an arm.
//
// Order of checks in randomize and dispense: the actor's permission, then the
// request and the participant's state, then the electronic signature, and only
// then anything that depends on the allocation or the stock, so that a wrong
// password never learns about either. When the site's custody cannot cover
// the kits a visit needs, a blinded role receives one refusal that depends on
// nothing but the participant and the visit (no count, no kit label), the
// unblinded pharmacist the details; either way the shortage is recorded as a
// "supply.shortage" event (kit types and counts sealed to the hub) in its own
// transaction, so the hub alerts the supply team, and nothing else changes.
//
// Critical actions (randomize, code break, withdrawal, dispensing outside a
// visit window, replacing a kit, reporting damage, destroying a kit) need the
// actor's password again (`signature_password`). The caller checks it against the roster before it
// takes the node's lock (node/roster.h: find_user, then check_password with no
// lock held) and hands the operation the PasswordCheck; the operation confirms
// it where it needs the signature, so refusals come in the same order as ever.
// Login takes a PasswordCheck the same way.
// Thread-safety: one thread at a time, holding the NodeState's mutex().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node/domain_store.h"
#include "node/node_state.h"
#include "node/roster.h"
#include "node/sync_service.h"
#include "shared/event_payloads.h"
#include "shared/minimization.h"
#include "shared/result.h"
#include "sync/hlc.h"

namespace irt::node {

struct Actor {
  std::string user;
  std::string role;  // Role::id
};

struct ScreenRequest {
  std::map<std::string, std::string> factors;  // factor id -> level (derived "site"/"country" are filled in)
  std::vector<std::string> eligibility;        // "yes"/"no", one per study question
  std::string screen_failure_reason;           // non-empty: record a screen failure
  std::string cohort;                          // required when the study defines cohorts, else empty
};

struct DispenseRequest {
  std::string visit;
  std::string override_reason;    // dispensing outside the window: a deviation
  std::string replace_kit;        // replacing a kit dispensed at `visit`
  std::string replace_condition;  // "damaged" or "lost"
  std::string reason;             // why the kit is replaced
  PasswordCheck signature;        // of the actor's signature_password
  std::string order_reason;       // dispensing before an earlier visit was done or recorded as missed
};

struct KitReceipt {
  std::string kit;
  std::string condition;  // "received", "damaged", "missing"
};

// A temperature excursion (docs/openapi.yaml, POST /api/v1/excursions): the
// kits listed, or every kit in stock at `location`; exactly one of the two.
inline constexpr std::size_t kMaxLocationChars = 64;

struct ExcursionReport {
  std::vector<std::string> kits;
  std::string location;
  std::optional<double> minimum_celsius;
  std::optional<double> maximum_celsius;
  std::optional<std::int64_t> duration_minutes;
  std::string reason;
};

struct ExcursionOutcome {
  std::vector<std::string> kits;  // quarantined by this report
  std::uint64_t event_seq = 0;
};

struct OperationOutcome {
  ParticipantRecord participant;
  std::vector<std::string> kits;  // kits handed out by this operation
  std::uint64_t event_seq = 0;
  bool deviation = false;
};

class SiteOperations {
 public:
  explicit SiteOperations(NodeState& state, sync::WallClock clock = sync::system_millis);

  // A roster user with a role the study defines; the same refusal for an
  // unknown user and a wrong password.
  shared::Result<Actor> login(const PasswordCheck& password);
  const shared::Role* role_of(const Actor& a) const;
  // Whether the actor is kept from the allocation (arms, kit types, lots,
  // shortage details), by the study's blinding and the role: in an open study
  // nobody; in a single-blind study only the participant, so roles that
  // dispense (and unblinded roles) see it; in a double-blind study every role
  // but the unblinded ones ("blinded": false with view_unblinded).
  // docs/study-config.md, "Who sees the allocation".
  bool blinded(const Actor& a) const;
  bool can(const Actor& a, shared::Permission p) const;

  // ---- reads (node/site_reads.cpp)
  // What each API route answers, built here for the actor so that reads, like
  // writes, check the role's permission and the blinding in this one place:
  // a view for a blinded actor (blinded()) carries no arm, kit type, kit type
  // name or lot (node/api_views.h). Refusals are forbidden or not_found values.
  struct InventoryQuery {
    std::string status;           // only kits in this status
    std::string kit;              // only this kit number
    std::string expiring_before;  // YYYY-MM-DD: only kits expiring earlier
  };
  // Any role: user, role, blinded, permissions.
  nlohmann::json session_view(const Actor& a) const;
  // Any role: the node, its sync and what it has left (no arm in it).
  nlohmann::json status_view(const Actor& a, const SyncStatus& sync) const;
  // Any role: what the forms need; arms and kit types unless blinded.
  nlohmann::json study_view(const Actor& a) const;
  // view_participants or dispense.
  shared::Result<nlohmann::json> participants_view(const Actor& a, const std::string& status) const;
  shared::Result<nlohmann::json> participant_view(const Actor& a, const std::string& number) const;
  // view_inventory.
  shared::Result<nlohmann::json> inventory_view(const Actor& a, const InventoryQuery& q) const;
  // view_inventory or receive_shipment.
  shared::Result<nlohmann::json> shipments_view(const Actor& a) const;
  // view_participants or dispense: the visits of participants on treatment
  // that are overdue, due (window open today) or open within `days` days.
  shared::Result<nlohmann::json> visits_due_view(const Actor& a, int days) const;
  // The answers of the changing routes, for the actor who made the change.
  nlohmann::json outcome_view(const Actor& a, const OperationOutcome& o) const;
  nlohmann::json kit_answer(const Actor& a, const std::string& kit, std::uint64_t event_seq) const;
  nlohmann::json shipment_answer(const Actor& a, const std::string& shipment, std::uint64_t event_seq) const;
  // The code break shows the arm to whoever broke it, blinded or not.
  nlohmann::json code_break_answer(const OperationOutcome& o) const;

  shared::Result<OperationOutcome> screen(const Actor& a, const ScreenRequest& r);
  shared::Result<OperationOutcome> randomize(const Actor& a, const std::string& participant,
                                             const PasswordCheck& signature);
  shared::Result<OperationOutcome> dispense(const Actor& a, const std::string& participant, const DispenseRequest& r);
  // Signed (signature_password): withdrawal ends the participant's treatment here.
  shared::Result<OperationOutcome> withdraw(const Actor& a, const std::string& participant, const std::string& reason,
                                            const PasswordCheck& signature);
  shared::Result<OperationOutcome> complete(const Actor& a, const std::string& participant);
  shared::Result<OperationOutcome> request_transfer(const Actor& a, const std::string& participant,
                                                    const std::string& to_site, const std::string& reason);
  // A scheduled visit recorded without dispensing (Permission::dispense): as
  // done when it dispenses nothing, or as missed with `missed_reason` (then
  // nothing is dispensed for it). One record per visit.
  shared::Result<OperationOutcome> record_visit(const Actor& a, const std::string& participant,
                                                const std::string& visit, bool missed,
                                                const std::string& missed_reason);
  // The kits dispensing `visit` would hand out now, changing nothing: the
  // same checks and the same pick as dispense(); a shortage is refused with
  // the one blinded message and not recorded (dispensing records it).
  shared::Result<std::vector<std::string>> dispense_preview(const Actor& a, const std::string& participant,
                                                           const std::string& visit) const;
  // The code break: the returned participant carries the arm, whatever the role.
  shared::Result<OperationOutcome> unblind(const Actor& a, const std::string& participant, const std::string& reason,
                                           const PasswordCheck& signature);

  // `location`: where the kits received in good condition are stored ("" not said).
  shared::Result<std::uint64_t> receive_shipment(const Actor& a, const std::string& shipment,
                                                 const std::vector<KitReceipt>& kits,
                                                 const PasswordCheck& signature, const std::string& location = "");
  shared::Result<std::uint64_t> quarantine(const Actor& a, const std::string& kit, const std::string& reason,
                                           const std::optional<double>& temperature_celsius);
  // A dispensed kit the participant brings back (units_returned: the units
  // left in it, for compliance; `visit`: the visit it came back at, optional),
  // or a rejected kit the site sends back unused (units 0, no visit).
  shared::Result<std::uint64_t> return_kit(const Actor& a, const std::string& kit, int units_returned,
                                           const std::string& visit = "");
  // Signed by the actor and by a witness: another user of the site whose
  // role may destroy or return kits, with their own password.
  shared::Result<std::uint64_t> destroy_kit(const Actor& a, const std::string& kit, const std::string& reason,
                                            const PasswordCheck& signature, const PasswordCheck& witness = {});
  // Every kit of the report quarantined at once, in one "kit.excursion" event
  // (report_excursion); kits put in a storage location ("kit.stored").
  shared::Result<ExcursionOutcome> report_excursion(const Actor& a, const ExcursionReport& r);
  shared::Result<std::uint64_t> store_kits(const Actor& a, const std::vector<std::string>& kits,
                                           const std::string& location);
  // Hands kits of this node's stock (available) to another node of its site,
  // a nurse's tablet or the site node (Permission::dispense): at once the
  // kits are "shipped", in transit to that node, and never dispensed,
  // quarantined, returned or destroyed here; a kit.handover_requested event
  // records it. At the next sync the hub moves their custody (a kits.handover
  // directive here, a "handover" shipment the other node receives kit by kit)
  // or refuses, and the kits come back into stock. All or nothing.
  // A kit the hub asked to relabel (kits.relabel: KitRecord::relabel holds the
  // new expiry) now carries the new label (receive_shipment): recorded as a
  // kit.relabelled event, and the kit leaves the list of kits to relabel.
  shared::Result<std::uint64_t> confirm_relabel(const Actor& a, const std::string& kit);
  shared::Result<std::uint64_t> hand_over_kits(const Actor& a, const std::string& to_node,
                                               const std::vector<std::string>& kits, const std::string& reason);
  // A return shipment to a depot of the study (Permission::return_kits): kits
  // returned by participants, rejected, damaged, or unused and expired, at
  // once "shipped" here ("sent back to depot D") and never used again; a
  // kit.return_shipped event records it, and the hub moves them to the depot
  // at the next sync. A kit not held here, dispensed, or in stock and
  // usable refuses the whole shipment. Signed by the sender (its e-signature
  // is in the event). The node keeps the return shipment
  // (DomainStore::save_return_shipment) under the hub's id, RET-<node>-<seq>,
  // and its kits name it.
  struct ReturnShipment {
    std::string depot;
    std::vector<std::string> kits;
    std::string reason, courier, tracking;  // optional
  };
  shared::Result<std::uint64_t> ship_return(const Actor& a, const ReturnShipment& r, const PasswordCheck& password);

  // Runs `run` (one operation and the answer built from it) at most once per
  // (user, Idempotency-Key): the first time, in one transaction with the
  // memory of its answer (the operation's own transaction becomes a savepoint
  // inside it), durable before this returns; a repeat with the same route and
  // body returns the remembered answer (`replayed`) and changes nothing; the
  // same key with another route or body is refused (conflict). A refused run
  // is not remembered: it changed nothing (what a refusal records of its own,
  // such as a supply shortage, is kept as without a key), and may be tried again.
  struct Once {
    nlohmann::json answer;
    bool replayed = false;
  };
  shared::Result<Once> once(const RequestIdentity& request, const std::function<shared::Result<nlohmann::json>()>& run);

  // The refusal of an electronic signature that does not verify.
  static shared::Error signature_refused();

  shared::Days today() const;
  // The do-not-dispense window of `kit_type` in this node's country (shared::Study::expiry_windows).
  int do_not_dispense_days(const shared::Study& s, const std::string& kit_type) const;
  DomainStore& store() { return state_.domain(); }
  NodeState& state() { return state_; }

 private:
  shared::Status require(const Actor& a, shared::Permission p, const char* doing) const;
  shared::Result<const shared::Study*> study() const;
  shared::Result<const ParticipantRecord*> participant(const std::string& number) const;
  // The participant, when this node serves it: refused (conflict, naming its
  // new site) once a transfer moved it away.
  shared::Result<const ParticipantRecord*> serving(const std::string& number) const;
  shared::Result<shared::ESignature> esign(const Actor& a, const PasswordCheck& signature, const std::string& meaning);
  std::string seal_for_hub(const nlohmann::json& j) const;
  // Appends an event; `payload` is one of the structs of shared/event_payloads.h.
  shared::Result<std::uint64_t> record(const Actor& a, std::string_view type, const nlohmann::json& payload);
  // What a visit's dispensing lacks: one kit type, the kits it needs and those in custody that may be dispensed.
  struct Shortage {
    std::string kit_type;
    int needed = 0;
    std::size_t dispensable = 0;
  };
  struct VisitPick {
    std::vector<std::string> kits;
    std::vector<Shortage> shortages;  // empty: `kits` covers the visit
  };
  VisitPick pick_for_visit(const shared::Study& study, const shared::Visit& visit, const std::string& arm) const;
  // Records the shortage (committed on its own) and returns the refusal the actor sees.
  shared::Error refuse_shortage(const Actor& a, const std::string& operation, const std::string& participant,
                                const std::string& visit, const std::vector<Shortage>& shortages,
                                const std::string& replace_kit = "");
  // Caps: the refusal when the participant's cohort has no allowance left at
  // this node; the arms minimization may choose (in config order); the refusal
  // when none is open.
  shared::Status check_cohort_allowance(const ParticipantRecord& p) const;
  // A cohort opened by decision takes a participant only while the node holds
  // a place in it (docs/randomization.md, "Cohorts opened by decision"): the
  // refusal at screening when it holds none.
  shared::Status check_cohort_open(const shared::Study& s, const std::string& cohort) const;
  // The refusal when the node's lease (DomainStore::lease) has ended by its clock.
  shared::Status check_lease(const std::string& number) const;
  std::vector<bool> open_arms(const shared::MinimizationConfig& config,
                              const std::map<std::string, std::string>& factors) const;
  static shared::Error arms_closed();
  // A storage location as given, trimmed: at most kMaxLocationChars; "" allowed unless required.
  static shared::Result<std::string> storage_location(const std::string& given, bool required);
  // The witness's signature: another roster user of the site, whose role may destroy or return kits.
  shared::Result<shared::ESignature> witness_signature(const Actor& a, const PasswordCheck& witness,
                                                       const std::string& meaning);
  // Runs `change` in one transaction (a savepoint when once() already holds
  // one); on any failure the in-memory mirror is reloaded.
  template <class F>
  auto transact(F&& change) -> decltype(change());

  NodeState& state_;
  sync::WallClock clock_;
};

}  // namespace irt::node
