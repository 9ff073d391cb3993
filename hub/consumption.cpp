#include "hub/consumption.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "crypto/seal.h"
#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/cap_allowances.h"
#include "hub/cohort_decisions.h"
#include "hub/custody.h"
#include "hub/depot_shipments.h"
#include "hub/design_changes.h"
#include "hub/deviations.h"
#include "hub/kit_decisions.h"
#include "hub/kit_inventory.h"
#include "hub/minimization_streams.h"
#include "hub/number_ranges.h"
#include "hub/shipments.h"
#include "hub/randomization_store.h"
#include "hub/transfers.h"
#include "hub/tuning.h"
#include "sync/seeded_source.h"
#include "shared/event_payloads.h"
#include "shared/offline_minimization.h"
#include "sync/event.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::KitStatus;

const std::vector<storage::Migration> kConsumptionMigrations = {
    {1, R"sql(
CREATE TABLE hub_consumption_cursor (
  node_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
);
)sql"},
};

class Intake {
 public:
  Intake(HubState& hub, std::string node_id, std::int64_t now) : hub_(hub), db_(hub.db()), node_(std::move(node_id)), now_(now) {
    if (auto n = hub.ledger().find_node(node_)) site_ = n->site_id;
  }

  void alert(std::uint64_t seq, const std::string& kind, const std::string& message) {
    hub_.ledger().raise_alert(node_, seq, kind, message, now_);
    ++report.alerts;
  }

  // A deviation about the event being read (see hub/deviations.h).
  void deviation(const char* kind, const std::string& subject, const std::string& summary,
                 const std::string& unblinded = "") {
    raise_deviation(hub_, {kind, node_, event_->body.seq, subject, event_->body.type, summary, unblinded}, now_);
  }

  void kit(std::uint64_t seq, const std::string& number, KitStatus status, const std::string& participant) {
    if (status == KitStatus::dispensed)
      if (auto why = kit_decision_deviation(hub_, node_, number, event_->body.directive_seq))
        deviation(deviation_kind::kKitAfterDecision, number, *why);
    if (auto problem = record_kit_event(db_, node_, number, status, participant,
                                        event_->body.type + " event " + std::to_string(seq) + " of node " + node_, now_))
      alert(seq, "kit.not_in_custody", *problem);
    else
      ++report.kits;
  }

  // A kit the node quarantined, with why (hub/kit_decisions.h). A kit the hub
  // rejected stays rejected: the node reported it before it applied the
  // rejection, which takes quarantined kits too.
  void quarantined(std::uint64_t seq, const std::string& number, const QuarantineReport& why) {
    record_quarantine(db_, node_, seq, number, why, event_->body.device_time_ms);
    if (rejected_at_hub(db_, number)) {
      ++report.kits;
      return;
    }
    kit(seq, number, KitStatus::quarantined, "");
  }

  // Every payload is read through its parser in shared/event_payloads.h. One
  // that does not parse is kept (facts are never rejected) and raises
  // "event.unreadable" naming the event, its seq and the field.
  void event(const sync::SignedEvent& e) {
    event_ = &e;
    const auto& type = e.body.type;
    const auto seq = e.body.seq;
    const std::string_view text(reinterpret_cast<const char*>(e.body.payload.data()), e.body.payload.size());
    if (type == shared::kScreenedEvent || type == shared::kScreenFailedEvent) {
      if (auto p = read(type, seq, shared::parse_screened(text))) screened(seq, *p);
    } else if (type == shared::kRandomizedEvent) {
      if (auto p = read(type, seq, shared::parse_randomized(text))) {
        auto version = shared::parse_event_study_version(text);
        randomized(seq, *p, version ? *version : std::nullopt);
      }
    } else if (type == shared::kDispensedEvent) {
      if (auto p = read(type, seq, shared::parse_dispensed(text))) {
        auto version = shared::parse_event_study_version(text);  // checked by parse_dispensed
        dispensed_at_visit(*p, version ? *version : std::nullopt);
        for (const auto& k : p->kits) kit(seq, k, KitStatus::dispensed, p->participant);
      }
    } else if (type == shared::kWithdrawnEvent) {
      if (auto p = read(type, seq, shared::parse_withdrawn(text)))
        record_participant_status(db_, p->participant, shared::ParticipantStatus::withdrawn);
    } else if (type == shared::kCompletedEvent) {
      if (auto p = read(type, seq, shared::parse_completed(text)))
        record_participant_status(db_, p->participant, shared::ParticipantStatus::completed);
    } else if (type == shared::kUnblindedEvent) {
      if (auto p = read(type, seq, shared::parse_unblinded(text))) code_break(seq, *p);
    } else if (type == shared::kKitReplacedEvent) {
      if (auto p = read(type, seq, shared::parse_kit_replaced(text))) {
        kit(seq, p->old_kit, p->condition, "");
        kit(seq, p->new_kit, KitStatus::dispensed, p->participant);
      }
    } else if (type == shared::kShipmentReceivedEvent) {
      if (auto p = read(type, seq, shared::parse_shipment_received(text))) {
        for (const auto& k : p->kits) kit(seq, k.kit, k.condition, "");
        note_receipt(db_, p->shipment, now_);
      }
    } else if (type == shared::kKitQuarantinedEvent) {
      if (auto p = read(type, seq, shared::parse_kit_quarantined(text)))
        quarantined(seq, p->kit, {"", p->temperature_celsius, p->temperature_celsius, std::nullopt, p->reason});
    } else if (type == shared::kKitReturnedEvent) {
      if (auto p = read(type, seq, shared::parse_kit_returned(text))) {
        kit(seq, p->kit, KitStatus::returned, "");
        record_return(db_, node_, seq, *p);
      }
    } else if (type == shared::kKitDestroyedEvent) {
      if (auto p = read(type, seq, shared::parse_kit_destroyed(text))) kit(seq, p->kit, KitStatus::destroyed, "");
    } else if (type == shared::kSupplyShortageEvent) {
      if (auto p = read(type, seq, shared::parse_supply_shortage(text))) shortage(seq, *p);
    } else if (type == shared::kTemperatureExcursionEvent) {
      if (auto p = read(type, seq, shared::parse_temperature_excursion(text)))
        for (const auto& k : p->kits)
          quarantined(seq, k, {p->location, p->minimum_celsius, p->maximum_celsius, p->duration_minutes, p->reason});
    } else if (type == shared::kTransferRequestedEvent) {
      if (auto p = read(type, seq, shared::parse_transfer_requested(text)))
        record_transfer_request(hub_, node_, seq, *p, e.body.actor, e.body.device_time_ms);
    } else if (type == shared::kKitHandoverRequestedEvent) {
      if (auto p = read(type, seq, shared::parse_kit_handover_requested(text)))
        report.kits += decide_handover(hub_, node_, seq, *p, now_).moved ? p->kits.size() : 0;
    } else if (type == shared::kKitsReturnShippedEvent) {
      if (auto p = read(type, seq, shared::parse_kits_return_shipped(text))) {
        // One alert per event (the ledger keeps one per node, event and kind), naming every kit.
        std::string problems;
        for (const auto& problem : record_return_shipment(hub_, node_, seq, *p, now_))
          problems += (problems.empty() ? "" : "; ") + problem;
        if (!problems.empty()) alert(seq, "kit.not_in_custody", problems);
        if (auto s = find_shipment(db_, return_shipment_id(node_, seq))) report.kits += s->kits;
      }
    }
  }

  ConsumptionReport report;

 private:
  template <class T>
  std::optional<T> read(const std::string& type, std::uint64_t seq, shared::Result<T> parsed) {
    if (parsed) return std::move(parsed).value();
    unreadable(seq, type + " event " + std::to_string(seq) + " of node " + node_ + " is unreadable (" +
                        parsed.error().message + "); the event is kept. Check the node's version");
    return std::nullopt;
  }

  // The part of an event sealed to the hub's unblinding key, read by `parse`.
  template <class T>
  std::optional<T> open_sealed(const std::string& type, std::uint64_t seq, const std::string& base64,
                               shared::Result<T> (*parse)(std::string_view)) {
    auto box = crypto::from_base64(base64);
    auto plain = box ? crypto::open_sealed(hub_.unblinding_key(), *box) : std::nullopt;
    if (!plain) {
      unreadable(seq, "the sealed part of " + type + " event " + std::to_string(seq) + " of node " + node_ +
                          " does not open with the hub's unblinding key; the event is kept. Check the node's "
                          "enrollment");
      return std::nullopt;
    }
    return read(type, seq, parse(std::string_view(reinterpret_cast<const char*>(plain->data()), plain->size())));
  }

  void unreadable(std::uint64_t seq, const std::string& message) {
    alert(seq, "event.unreadable", message);
    deviation(deviation_kind::kEventUnreadable, "", message);
  }

  // A code break: who, when and why in the clear; the arm only in the part
  // sealed for unblinded readers.
  void code_break(std::uint64_t seq, const shared::Unblinded& p) {
    auto sealed = open_sealed(std::string(shared::kUnblindedEvent), seq, p.sealed, shared::parse_arm_sealed);
    const auto& sig = p.esignature;
    std::string summary = "code break at site " + site_ + " (node " + node_ + "): participant " + p.participant +
                          " unblinded by " + sig.signer + " (" + sig.role + ") at " + utc_text(sig.signed_ms) +
                          "; reason: " + p.reason;
    std::string arm;
    if (sealed) {
      const auto* a = hub_.study().find_arm(sealed->arm);
      arm = "arm " + sealed->arm + (a ? " (" + a->name + ")" : std::string());
    }
    deviation(deviation_kind::kCodeBreak, p.participant, summary, arm);
  }

  // The hub's count of days since the participant's randomization when it
  // holds both events' dates, else the node's; the window of the study
  // version the node acted under (a node offline through an amendment keeps
  // its version's windows until its next sync).
  void dispensed_at_visit(const shared::Dispensed& p, std::optional<int> study_version) {
    auto day = days_since_randomization(hub_, p.participant, event_->body.device_time_ms).value_or(p.day);
    if (auto why = visit_window_deviation(hub_.study_at(study_version), p, day))
      deviation(deviation_kind::kVisitWindow, p.participant + "/" + p.visit, "site " + site_ + ": " + *why);
  }

  void screened(std::uint64_t seq, const shared::Screened& p) {
    const auto& number = p.participant;
    if (record_number_use(db_, node_, number)) {
      ++report.numbers;
      if (numbers_left(db_, node_) == 0)
        deviation(deviation_kind::kNumbersExhausted, "",
                  "site " + site_ + " (node " + node_ + ") used its last participant number (" + number +
                      "); it cannot screen again until it syncs and receives a new range");
    } else
      alert(seq, "number.not_granted", "node " + node_ + " screened participant " + number +
                                           " with a number it was not granted; the event is kept. Check the "
                                           "site's number ranges");
    if (record_screening(db_, {number, node_, site_, json(p.factors).dump(), p.status, seq})) {
      record_cohort(db_, node_, number, p.cohort);
      if (p.status == shared::ParticipantStatus::screened)
        if (auto why = closed_cohort_deviation(hub_, p.cohort, event_->body.device_time_ms))
          deviation(deviation_kind::kClosedCohort, number,
                    "site " + site_ + " (node " + node_ + "): participant " + number + " " + *why);
    } else
      alert(seq, "number.duplicate", "participant number " + number + " was screened again by node " + node_ +
                                         "; the event is kept. Reconcile the two records");
  }

  void randomized(std::uint64_t seq, const shared::Randomized& p, std::optional<int> study_version) {
    const auto& number = p.participant;
    auto sealed = open_sealed(std::string(shared::kRandomizedEvent), seq, p.sealed, shared::parse_randomized_sealed);
    if (!sealed) return;
    const auto& arm = sealed->arm;
    std::optional<std::int64_t> stratum, slot, stream_id, decision_sequence;
    if (p.slot) {  // the parser guarantees a list slot or a minimization decision
      stratum = *p.stratum;
      slot = *p.slot;
      slot_used(seq, number, *p.stratum, *p.slot, arm);
    } else {
      stream_id = static_cast<std::int64_t>(*p.stream_id);
      decision_sequence = static_cast<std::int64_t>(*p.decision_sequence);
      decision(seq, number, *p.stream_id, sealed->decision, arm, study_version);
    }
    if (record_allocation(db_, {number, node_, seq, p.randomization_number, stratum, slot, stream_id,
                                decision_sequence, arm, now_})) {
      record_cap_use(db_, node_, number, arm);
      cap_uses_ = true;
      if (!design_changes_) design_changes_ = design_changes(hub_);
      for (const auto& d : old_design_deviations(*design_changes_, number, node_, study_version,
                                                 event_->body.device_time_ms, arm))
        deviation(deviation_kind::kOldDesign, d.subject, d.summary, d.unblinded);
    } else {
      alert(seq, "participant.randomized_twice", "participant " + number + " was randomized again by node " + node_ +
                                                     "; the event is kept. Reconcile the two randomizations");
    }
    for (const auto& k : p.kits) kit(seq, k, KitStatus::dispensed, number);
  }

  // A dispensing the site's custody could not cover. The alert names the kit
  // types (arm-revealing, for the unblinded supply team) but not the
  // participant, so the alert list does not pair a participant with an arm.
  void shortage(std::uint64_t seq, const shared::SupplyShortage& event) {
    auto sealed = open_sealed(std::string(shared::kSupplyShortageEvent), seq, event.sealed, shared::parse_shortage_sealed);
    const auto& op = event.operation;
    std::string doing = op == "randomize" ? "randomize a participant" : op == "replace" ? "replace a kit" : "dispense";
    std::string summary = "site " + site_ + " (node " + node_ + ") could not " + doing + " at visit " + event.visit +
                          " for want of kits";
    if (!sealed) return deviation(deviation_kind::kSupplyShortage, "", summary);
    std::string missing;
    for (const auto& sh : sealed->shortages) {
      const auto* kt = hub_.study().find_kit_type(sh.kit_type);
      missing += (missing.empty() ? "" : ", ") + std::to_string(sh.needed) + " of '" +
                 (kt ? kt->name : sh.kit_type) + "' (" + sh.kit_type + ") needed, " +
                 std::to_string(sh.dispensable) + " dispensable";
    }
    deviation(deviation_kind::kSupplyShortage, "", summary, "short: " + missing);
    alert(seq, "supply.shortage", "site " + site_ + " (node " + node_ + ") could not " + doing + " at visit " +
                                      event.visit + " for want of kits: " + missing +
                                      "; ship kits of that type to the site");
  }

  void slot_used(std::uint64_t seq, const std::string& number, std::uint32_t stratum, std::uint32_t slot,
                 const std::string& arm) {
    auto* store = hub_.randomization();
    if (!store) {
      alert(seq, "slot.not_owned", "node " + node_ + " randomized participant " + number +
                                       " from a list slot, but this study has no list; the event is kept");
      return;
    }
    auto st = store->slices().record_use(node_, stratum, slot);
    if (!st) {
      alert(seq, "slot.not_owned", st.error().message);
      return;
    }
    if (store->slices().free_slots(node_, stratum) == 0)
      deviation(deviation_kind::kSliceExhausted, std::to_string(stratum),
                "site " + site_ + " (node " + node_ + ") used the last slot of its slice in stratum " +
                    store->list().strata.label(stratum) +
                    "; it cannot randomize there again until it syncs and receives more");
    const auto& list = store->list();
    const auto i = list.stratum_begin[stratum] + slot - 1;
    if (list.allocation.arms[list.slots[i].arm] != arm)
      alert(seq, "slot.mismatch", "the allocation node " + node_ + " recorded for participant " + number +
                                      " differs from slot " + std::to_string(slot) + " of stratum " +
                                      list.strata.label(stratum) + " in the list; the event is kept. Investigate");
    ++report.slots;
  }

  // Replayed under the study version the node decided it under (a ratio
  // change takes effect at each node when it applies the version).
  void decision(std::uint64_t seq, const std::string& number, std::uint64_t stream_id,
                const std::optional<shared::OfflineDecisionRecord>& recorded, const std::string& arm,
                std::optional<int> study_version) {
    auto fail = [&](const std::string& why) {
      alert(seq, "minimization.replay", "the minimization decision for participant " + number + " (node " + node_ +
                                            ", stream " + std::to_string(stream_id) + ") does not replay: " + why +
                                            "; the event is kept. Investigate the node");
    };
    auto stream = find_stream(db_, node_, stream_id);
    if (!stream) return fail("the hub never granted that stream to this node");
    if (!recorded) return fail("the event carries no decision record");
    const auto& record = *recorded;
    auto config = shared::minimization_config(hub_.study_at(study_version));
    if (!config) return fail(config.error().message);
    const auto factors = participant_factors(db_, number);
    auto levels = shared::minimization_levels(*config, factors);
    if (!levels) return fail("the hub holds no screening record with the participant's factor levels");
    auto inputs = shared::offline_inputs(*config, stream->baseline, stream->synced_participants,
                                         stream_allocations(db_, node_, stream_id, record.sequence), *levels);
    if (!inputs) return fail("the stream's baseline at the hub does not fit the study");
    // The node closes an arm only when an amendment closed it for the
    // participant's levels (closures are never loosened, so the current
    // version's holds; a closure from a date is accepted on any date, the node
    // applying it by its own date) or its allowance under that arm's cap is used up.
    inputs->open_arms = shared::open_arms_of(record);
    const auto any_day = std::numeric_limits<shared::Days>::max();
    for (std::size_t k = 0; k < inputs->open_arms.size() && k < config->allocation.size(); ++k)
      if (!inputs->open_arms[k] && !hub_.study().arm_closed_for(config->allocation.arms[k], factors, any_day) &&
          !std::any_of(hub_.study().caps.begin(), hub_.study().caps.end(), [&](const auto& c) {
            return c.scope == shared::CapScope::arm && c.arm == config->allocation.arms[k];
          }))
        return fail("the decision closed an arm that has no cap and that no amendment closed");
    auto seed = sync::parse_seed_hex(stream->seed_hex);
    if (!seed) return fail("the stream's seed is damaged at the hub");
    sync::SeededSource source(*seed);
    crypto::secure_zero(seed->data(), seed->size());
    if (record.stream_start > record.stream_end || record.stream_end > crypto::DeterministicStream::kMaxPosition)
      return fail("the recorded stream position is invalid");
    source.seek(record.stream_start);
    if (auto st = shared::verify_offline_decision(*config, *inputs, record, source); !st)
      return fail(st.error().message);
    if (record.arm >= config->allocation.arms.size() || config->allocation.arms[record.arm] != arm)
      return fail("the recorded allocation differs from the decision record");
    record_stream_use(db_, node_, stream_id, record.sequence);
    ++report.decisions;
  }

 public:
  bool cap_uses_ = false;  // a randomization counted against arm and cohort caps

 private:
  HubState& hub_;
  storage::Database& db_;
  std::optional<std::vector<DesignChange>> design_changes_;  // read at the first randomization
  const sync::SignedEvent* event_ = nullptr;  // the event being read
  std::string node_;
  std::string site_;
  std::int64_t now_;
};

}  // namespace

shared::Status migrate_consumption(storage::Database& db) { return db.migrate("hub.consumption", kConsumptionMigrations); }

shared::Result<ConsumptionReport> record_consumption(HubState& hub, const std::string& node_id, std::int64_t now_ms,
                                                     const std::vector<sync::SignedEvent>* fresh) {
  auto& db = hub.db();
  std::uint64_t cursor = 0;
  {
    auto st = db.prepare("SELECT seq FROM hub_consumption_cursor WHERE node_id = ?");
    st.bind(1, node_id);
    if (st.step()) cursor = static_cast<std::uint64_t>(st.int64(0));
  }
  Intake intake(hub, node_id, now_ms);
  const std::uint64_t start = cursor;
  if (fresh && !fresh->empty() && fresh->front().body.seq == cursor + 1) {
    for (const auto& e : *fresh) intake.event(e);
    cursor = fresh->back().body.seq;
    intake.report.events += fresh->size();
  }
  for (;;) {
    auto records = hub.ledger().records_after(node_id, cursor, kConsumptionChunk);
    if (records.empty()) break;
    for (const auto& r : records) {
      auto e = sync::parse_event(r);
      if (!e) return shared::make_error(shared::Errc::integrity, "a stored event of node " + node_id +
                                                                     " no longer parses; run 'irt-hub verify'");
      intake.event(*e);
      cursor = e->body.seq;
      ++intake.report.events;
    }
  }
  if (cursor == start) return intake.report;
  if (intake.cap_uses_)
    if (auto exceeded = caps_exceeded(hub)) {
      hub.ledger().raise_node_alert(node_id, "cap.exceeded", std::nullopt, *exceeded, now_ms);
      ++intake.report.alerts;
    }
  db.prepare("INSERT INTO hub_consumption_cursor(node_id, seq) VALUES (?, ?) "
             "ON CONFLICT(node_id) DO UPDATE SET seq = excluded.seq")
      .bind_all(node_id, static_cast<std::int64_t>(cursor))
      .run();
  const auto& r = intake.report;
  if (r.numbers + r.slots + r.decisions + r.kits + r.alerts > 0)
    record_audit(db, {now_ms, "hub", "consumption.recorded", node_id, "events " + std::to_string(start + 1) + " to " +
                                                                          std::to_string(cursor) + " ingested",
                      "", std::to_string(r.numbers) + " numbers, " + std::to_string(r.slots) + " slots, " +
                              std::to_string(r.decisions) + " minimization decisions verified, " +
                              std::to_string(r.kits) + " kit events, " + std::to_string(r.alerts) + " alerts"});
  return intake.report;
}

}  // namespace irt::hub
