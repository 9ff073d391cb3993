#include "node/site_operations.h"

#include <algorithm>
#include <set>
#include <cstdio>
#include <optional>

#include "crypto/seal.h"
#include "node/roster.h"
#include "shared/civil_date.h"
#include "shared/event_payloads.h"
#include "shared/minimization.h"
#include "shared/numbering.h"
#include "shared/offline_minimization.h"
#include "shared/random_source.h"
#include "sync/seeded_source.h"

namespace irt::node {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;
using shared::Permission;
using shared::to_string;

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string trimmed(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A kit's status as a refusal names it: a kit handed to another node says
// where it is going, a kit announced by a shipment that it must be received first.
std::string kit_state(const KitRecord& k) {
  if (k.status == KitStatus::shipped && k.note.rfind("sent back to depot", 0) == 0) return k.note;
  if (k.status == KitStatus::shipped)
    return k.note + " (handed over: the hub moves its custody at the next sync)";
  if (k.status == KitStatus::expected)
    return "expected: its shipment " + k.shipment + " is not yet received at this node (receive it first)";
  return to_string(k.status);
}

shared::Error missing_reason(const std::string& field, const std::string& what) {
  return make_error(Errc::invalid_input, field + " is required: " + what);
}

shared::Error missing_signature(const std::string& action) {
  return make_error(Errc::invalid_input, action +
                                             " needs your electronic signature: re-enter your password in "
                                             "signature_password");
}

// A participant's cohort: required at screening (a screen failure may leave
// it out) when the study defines cohorts, refused when it defines none.
shared::Result<std::string> screening_cohort(const shared::Study& s, const std::string& given, bool screen_failure) {
  std::vector<std::string> ids;
  for (const auto& c : s.cohorts) ids.push_back(c.id);
  if (ids.empty()) {
    if (given.empty()) return std::string();
    return make_error(Errc::invalid_input, "cohort: this study defines no cohorts; leave cohort out");
  }
  if (given.empty()) {
    if (screen_failure) return std::string();
    return make_error(Errc::invalid_input, "cohort: required, this study enrolls every participant in a cohort; use "
                                           "one of " + join(ids));
  }
  if (!s.find_cohort(given))
    return make_error(Errc::invalid_input, "cohort: '" + given + "' is not a cohort of this study; use one of " + join(ids));
  return given;
}

std::string permission_words(Permission p) {
  switch (p) {
    case Permission::screen: return "screen participants";
    case Permission::randomize: return "randomize";
    case Permission::dispense: return "dispense kits";
    case Permission::unblind: return "break the code";
    case Permission::receive_shipment: return "receive shipments";
    case Permission::report_excursion: return "report temperature excursions";
    case Permission::return_kits: return "record returned kits";
    case Permission::destroy_kits: return "destroy kits";
    case Permission::withdraw: return "change a participant's participation";
    case Permission::view_participants: return "view participants";
    case Permission::view_inventory: return "view the inventory";
    default: return shared::to_string(p);
  }
}

}  // namespace

SiteOperations::SiteOperations(NodeState& state, sync::WallClock clock) : state_(state), clock_(std::move(clock)) {}

// The device's date, never before the latest time the hub signed that this
// node has seen: a clock set back cannot reopen an expired kit or a visit
// window that has passed (docs/sync-protocol.md, "Clocks").
shared::Days SiteOperations::today() const {
  return shared::day_of_millis(std::max(clock_(), state_.log().hub_time_seen_ms()));
}

template <class F>
auto SiteOperations::transact(F&& change) -> decltype(change()) {
  // Inside once() the change joins its transaction, which commits it together
  // with the memory of the answer.
  std::optional<storage::Transaction> tx;
  std::optional<storage::Savepoint> part;
  if (state_.db().in_transaction()) part.emplace(state_.db());
  else tx.emplace(state_.db());
  // The mirror is read back after the rollback, not from the half-done change.
  auto undo = [&] {
    part.reset();
    tx.reset();
    (void)store().reload();
  };
  try {
    auto result = change();
    if (!result) {
      undo();
    } else if (part) {
      part->release();
    } else {
      tx->commit();
    }
    return result;
  } catch (...) {
    undo();
    throw;
  }
}

// The simplest design that keeps "applied" and "remembered" atomic: the
// answer is built from the operation's outcome after the operation returns,
// so the memory cannot be written inside the operation's own transaction;
// instead one transaction spans the look-up, the operation (whose transact()
// becomes a savepoint) and the memory, and commits (synchronous=FULL) before
// the answer leaves. The node's lock is held throughout, so two copies of one
// request cannot interleave.
shared::Result<SiteOperations::Once> SiteOperations::once(const RequestIdentity& request,
                                                          const std::function<shared::Result<json>()>& run) {
  std::optional<storage::Transaction> tx(std::in_place, state_.db());
  // Whatever ran is rolled back with the transaction; then the mirror follows.
  auto undo = [&] {
    tx.reset();
    (void)store().reload();
  };
  try {
    auto seen = state_.requests().find(request.user, request.key, clock_());
    if (!seen) return seen.error();
    if (*seen) {
      if ((*seen)->route != request.route || (*seen)->body_hash != request.body_hash)
        return make_error(Errc::conflict,
                          "this Idempotency-Key was already used for another request (a different route or body) "
                          "in the last 24 hours; nothing was changed; send a new key for each new action");
      auto answer = json::parse((*seen)->answer, nullptr, false);
      if (answer.is_discarded())
        return make_error(Errc::integrity, "the node's memory of this Idempotency-Key is not JSON; nothing was "
                                           "changed; report it");
      return Once{std::move(answer), true};
    }
    auto answer = run();
    if (!answer) {
      // The operation undid its own change; what it recorded of the refusal
      // (a supply shortage) is kept, as without a key. Nothing is remembered.
      tx->commit();
      return answer.error();
    }
    state_.requests().remember(request, answer->dump(), clock_());
    tx->commit();
    return Once{std::move(*answer), false};
  } catch (...) {
    undo();
    throw;
  }
}

shared::Result<Actor> SiteOperations::login(const PasswordCheck& password) {
  auto u = confirm(state_.log(), state_.enrollment().site_id, password);
  if (!u) return u.error();
  const auto* s = store().study();
  if (!s)
    return make_error(Errc::conflict, "this node has no study configuration yet; sync with the hub, then log in");
  if (!s->find_role(u->role))
    return make_error(Errc::forbidden, "user " + u->name + " has role '" + u->role +
                                           "', which the study does not define; ask the study admin");
  return Actor{u->name, u->role};
}

const shared::Role* SiteOperations::role_of(const Actor& a) const {
  const auto* s = state_.domain().study();
  return s ? s->find_role(a.role) : nullptr;
}

bool SiteOperations::blinded(const Actor& a) const {
  const auto* s = state_.domain().study();
  return !s || shared::reads_blinded(*s, role_of(a));
}

bool SiteOperations::can(const Actor& a, Permission p) const {
  const auto* r = role_of(a);
  return r && r->can(p);
}

shared::Status SiteOperations::require(const Actor& a, Permission p, const char* doing) const {
  if (can(a, p)) return {};
  return make_error(Errc::forbidden, "role " + a.role + " may not " + permission_words(p) + " (" + doing +
                                         "); ask a colleague whose role may");
}

shared::Result<const shared::Study*> SiteOperations::study() const {
  const auto* s = state_.domain().study();
  if (!s) return make_error(Errc::conflict, "this node has no study configuration yet; sync with the hub");
  return s;
}

shared::Result<const ParticipantRecord*> SiteOperations::participant(const std::string& number) const {
  const auto* p = state_.domain().find_participant(number);
  if (!p)
    return make_error(Errc::not_found, "participant " + number +
                                           " is not known at this node; check the number (as printed, e.g. " +
                                           state_.enrollment().site_id + "-001), or sync if it was screened elsewhere");
  return p;
}

shared::Result<const ParticipantRecord*> SiteOperations::serving(const std::string& number) const {
  auto p = participant(number);
  if (!p || (*p)->status != ParticipantStatus::transferred) return p;
  return make_error(Errc::conflict, "participant " + number + " moved to site " + (*p)->transfer_to +
                                        " (transfer approved at the hub) and is served by that site's node now; "
                                        "nothing was changed");
}

shared::Error SiteOperations::signature_refused() {
  return make_error(Errc::unauthenticated,
                    "the electronic signature did not verify: re-enter your own password to sign; nothing was changed");
}

shared::Result<shared::ESignature> SiteOperations::esign(const Actor& a, const PasswordCheck& signature,
                                                           const std::string& meaning) {
  auto u = confirm(state_.log(), state_.enrollment().site_id, signature);
  if (!u || u->name != a.user) return signature_refused();
  return shared::ESignature{a.user, a.role, clock_(), meaning};
}

std::string SiteOperations::seal_for_hub(const json& j) const {
  auto plain = j.dump();
  return crypto::to_base64(crypto::seal_to(state_.enrollment().hub_unblinding_key, crypto::as_bytes(plain)));
}

shared::Result<std::uint64_t> SiteOperations::record(const Actor& a, std::string_view type, const json& payload) {
  auto e = state_.log().append(state_.key(), a.user, std::string(type), state_.domain().event_payload(payload));
  if (!e) return e.error();
  return e->body.seq;
}

// ---- screen

shared::Result<OperationOutcome> SiteOperations::screen(const Actor& a, const ScreenRequest& r) {
  if (auto st = require(a, Permission::screen, "screening"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  const auto& s = **sr;
  // Factors the study asks for at randomization: strata and minimization factors.
  std::vector<std::string> needed;
  for (const auto& f : s.randomization.strata)
    if (!shared::is_derived_factor(f)) needed.push_back(f);
  for (const auto& m : s.randomization.minimization_factors)
    if (!shared::is_derived_factor(m.factor) &&
        std::find(needed.begin(), needed.end(), m.factor) == needed.end())
      needed.push_back(m.factor);
  std::map<std::string, std::string> factors;
  for (const auto& [id, level] : r.factors) {
    const auto* f = s.find_factor(id);
    if (!f || shared::is_derived_factor(id)) {
      std::string known;
      for (const auto& f2 : s.factors)
        if (!shared::is_derived_factor(f2.id)) known += (known.empty() ? "" : ", ") + f2.id;
      return make_error(Errc::invalid_input, "factors." + id + ": the study has no such factor; use " +
                                                 (known.empty() ? std::string("none") : known));
    }
    if (std::find(f->levels.begin(), f->levels.end(), level) == f->levels.end())
      return make_error(Errc::invalid_input, "factors." + id + ": '" + level + "' is not a level of '" + f->name +
                                                 "'; use one of " + join(f->levels));
    factors[id] = level;
  }
  std::string failure = trimmed(r.screen_failure_reason);
  if (r.eligibility.size() != s.eligibility.size())
    return make_error(Errc::invalid_input, "eligibility: the study asks " + std::to_string(s.eligibility.size()) +
                                               " questions, " + std::to_string(r.eligibility.size()) +
                                               " answers were given; answer each with yes or no");
  int first_no = -1;
  for (std::size_t i = 0; i < r.eligibility.size(); ++i) {
    const auto& ans = r.eligibility[i];
    if (ans != "yes" && ans != "no")
      return make_error(Errc::invalid_input, "eligibility[" + std::to_string(i) + "]: answer yes or no (got '" + ans + "')");
    if (ans == "no" && first_no < 0) first_no = static_cast<int>(i);
  }
  if (first_no >= 0 && failure.empty())
    return make_error(Errc::invalid_input, "eligibility[" + std::to_string(first_no) + "] (\"" +
                                               s.eligibility[static_cast<std::size_t>(first_no)] +
                                               "\") is no: the participant is not eligible; record a screen "
                                               "failure with screen_failure_reason");
  if (failure.empty())
    for (const auto& f : needed)
      if (!factors.count(f)) {
        const auto* fac = s.find_factor(f);
        return make_error(Errc::invalid_input, "factors." + f + ": required for randomization; use one of " +
                                                   join(fac->levels));
      }
  auto cohort = screening_cohort(s, trimmed(r.cohort), !failure.empty());
  if (!cohort) return cohort.error();
  if (failure.empty())
    if (auto st = check_cohort_open(s, *cohort); !st) return st.error();
  const auto* site = s.find_site(state_.enrollment().site_id);
  factors[std::string(shared::kSiteFactor)] = state_.enrollment().site_id;
  if (site) factors[std::string(shared::kCountryFactor)] = site->country;

  auto number = store().next_number();
  if (!number)
    return make_error(Errc::exhausted, "no participant numbers left at this node: its number ranges are used up; "
                                       "sync with the hub to receive a new range");
  ParticipantRecord p;
  p.number = *number;
  p.status = failure.empty() ? ParticipantStatus::screened : ParticipantStatus::screen_failed;
  p.factors = factors;
  p.eligibility = r.eligibility;
  p.cohort = *cohort;
  p.screen_failure_reason = failure;
  p.screened_on = shared::format_date(today());
  p.screened_by = a.user;
  return transact([&]() -> shared::Result<OperationOutcome> {
    store().consume_number();
    store().save_participant(p);
    const shared::Screened event{p.number, p.status, p.factors, p.eligibility, a.role, failure, p.cohort};
    auto seq = record(a, failure.empty() ? shared::kScreenedEvent : shared::kScreenFailedEvent, event);
    if (!seq) return seq.error();
    return OperationOutcome{p, {}, *seq, false};
  });
}

// ---- randomize

int SiteOperations::do_not_dispense_days(const shared::Study& s, const std::string& kit_type) const {
  return s.expiry_windows(kit_type, s.country_of(state_.enrollment().site_id)).do_not_dispense_days;
}

SiteOperations::VisitPick SiteOperations::pick_for_visit(const shared::Study& s, const shared::Visit& visit,
                                                        const std::string& arm) const {
  VisitPick out;
  for (const auto& d : visit.dispense) {
    if (d.arm != arm) continue;
    auto pick = pick_kits(state_.domain().kits(), d.kit_type, d.count, today(), do_not_dispense_days(s, d.kit_type),
                          out.kits);
    if (static_cast<int>(pick.kits.size()) < d.count)
      out.shortages.push_back({d.kit_type, d.count, pick.usable});
    else
      out.kits.insert(out.kits.end(), pick.kits.begin(), pick.kits.end());
  }
  return out;
}

shared::Error SiteOperations::refuse_shortage(const Actor& a, const std::string& operation, const std::string& number,
                                              const std::string& visit, const std::vector<Shortage>& shortages,
                                              const std::string& replace_kit) {
  // The fact, for the hub's supply alert: kit types and counts reveal the arm
  // (of the participant, or of the stratum's next slot) and travel sealed. Its
  // own transaction: the refusal below changes nothing else.
  shared::ShortageSealed details;
  for (const auto& sh : shortages)
    details.shortages.push_back({sh.kit_type, sh.needed, static_cast<std::int64_t>(sh.dispensable)});
  const shared::SupplyShortage event{number, visit, operation, replace_kit, seal_for_hub(details)};
  (void)transact([&]() -> shared::Status {
    if (auto seq = record(a, shared::kSupplyShortageEvent, event); !seq) return seq.error();
    return {};
  });

  // What a blinded role reads depends on nothing but the participant and the
  // visit: a count or a label would tell the arm apart (with one code break,
  // other participants' too).
  std::string what = replace_kit.empty() ? "no dispensable kit for participant " + number
                                         : "no dispensable kit to replace kit " + replace_kit + " of participant " + number;
  std::string message = what + " at visit " + visit + " in this site's custody";
  if (!blinded(a)) {
    const auto* s = store().study();
    std::string missing, windows;
    std::set<int> days;
    for (const auto& sh : shortages) {
      const auto* kt = s ? s->find_kit_type(sh.kit_type) : nullptr;
      missing += (missing.empty() ? "" : ", ") + std::to_string(sh.needed) + " of '" +
                 (kt ? kt->name : sh.kit_type) + "' (" + sh.kit_type + ") needed, " + std::to_string(sh.dispensable) +
                 " dispensable";
      const int d = s ? do_not_dispense_days(*s, sh.kit_type) : 0;
      days.insert(d);
      windows += (windows.empty() ? "" : ", ") + sh.kit_type + ": " + std::to_string(d);
    }
    // One window for every short kit type (the usual case) reads as one number.
    message += " (" + missing + "; expired, quarantined and damaged kits and kits within " +
               (days.size() == 1 ? std::to_string(*days.begin()) : "their type's (" + windows + ")") +
               " days of expiry do not count)";
  }
  if (operation == "randomize") message += ", so the participant is not randomized";
  return make_error(Errc::exhausted, message + "; nothing was changed; the shortage is recorded and the supply team "
                                               "is alerted at the next sync");
}

shared::Result<OperationOutcome> SiteOperations::randomize(const Actor& a, const std::string& number,
                                                           const PasswordCheck& password) {
  if (auto st = require(a, Permission::randomize, "randomization"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  const auto& s = **sr;
  auto pr = serving(number);
  if (!pr) return pr.error();
  ParticipantRecord p = **pr;
  if (p.status == ParticipantStatus::randomized || !p.randomization_number.empty())
    return make_error(Errc::conflict, "participant " + number + " is already randomized (" + p.randomization_number +
                                          "); nothing was changed");
  if (p.status != ParticipantStatus::screened)
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) +
                                          " and cannot be randomized; only a screened, eligible participant can");
  if (auto st = check_cohort_allowance(p); !st) return st.error();
  if (auto st = check_lease(number); !st) return st.error();
  if (!password.given) return missing_signature("randomization");
  // Signed before anything that depends on the allocation or the stock.
  auto signature = esign(a, password, "I confirm the randomization of participant " + number);
  if (!signature) return signature.error();

  const shared::Visit* visit = nullptr;
  for (const auto& v : s.visits)
    if (v.randomization) visit = &v;

  std::string arm;
  SlotRecord slot;
  std::optional<StreamState> stream;
  std::optional<shared::OfflineDecisionRecord> decision;
  std::string stratum_label;
  if (s.randomization.method == shared::Method::minimization) {
    const auto* held = store().stream();
    if (!held || held->decisions >= held->grant.allowance)
      return make_error(Errc::exhausted, "no minimization allowance left at this node (" +
                                             std::string(held ? "the granted stream is used up" : "none granted yet") +
                                             "); nothing was changed; sync with the hub to receive more");
    auto config = shared::minimization_config(s);
    if (!config) return config.error();
    auto levels = shared::minimization_levels(*config, p.factors);
    if (!levels) return levels.error();
    std::vector<shared::OwnAllocation> own;
    for (const auto& [id, other] : store().participants())
      if (other.stream_id == held->grant.stream_id && !other.arm.empty()) own.push_back({other.factors, other.arm});
    auto inputs = shared::offline_inputs(*config, held->grant.baseline, held->grant.synced_participants, own, *levels);
    if (!inputs) return inputs.error();
    inputs->open_arms = open_arms(*config, p.factors);
    if (std::none_of(inputs->open_arms.begin(), inputs->open_arms.end(), [](bool open) { return open; }))
      return arms_closed();
    auto seed = sync::parse_seed_hex(held->grant.seed_hex);
    if (!seed) return make_error(Errc::integrity, "the granted minimization stream's seed is damaged; sync with the hub");
    sync::SeededSource source(*seed);
    source.seek(held->position);
    auto rec = shared::decide_offline(*config, *inputs, source, held->position, held->decisions + 1);
    arm = config->allocation.arms[rec.arm];
    decision = rec;
    stream = *held;
    stream->position = rec.stream_end;
    stream->decisions = rec.sequence;
    p.randomization_number = shared::minimization_randomization_number(held->grant.stream_id, rec.sequence);
    p.stream_id = held->grant.stream_id;
  } else {
    std::map<std::string, std::string> strata_values;
    for (const auto& f : store().strata()->factors) {
      auto it = p.factors.find(f.id);
      if (it == p.factors.end())
        return make_error(Errc::conflict, "participant " + number + " has no value for factor " + f.id +
                                              "; it was screened under another study version; ask the central team");
      strata_values[f.id] = it->second;
    }
    auto stratum = store().strata()->index_of(strata_values);
    if (!stratum) return stratum.error();
    stratum_label = store().strata()->label(*stratum);
    // Slots of an arm closed at this node (closed by an amendment, or its cap allowance used up) are skipped
    // and stay free.
    const auto* free = store().next_open_slot(static_cast<std::uint32_t>(*stratum), p.factors, today());
    if (!free)
      return make_error(Errc::exhausted, "no randomization slots left at this node for stratum " + stratum_label +
                                             "; nothing was changed; sync with the hub to receive more slots");
    slot = *free;
    arm = slot.arm;
    p.randomization_number = shared::list_randomization_number(slot.stratum, slot.slot);
    p.stratum = slot.stratum;
    p.slot = slot.slot;
  }
  std::vector<std::string> kits;
  if (visit && !visit->dispense.empty()) {
    auto picked = pick_for_visit(s, *visit, arm);
    if (!picked.shortages.empty()) return refuse_shortage(a, "randomize", number, visit->id, picked.shortages);
    kits = std::move(picked.kits);
  }

  auto today_text = shared::format_date(today());
  p.status = ParticipantStatus::randomized;
  p.arm = arm;
  if (decision) p.decision = *decision;
  p.randomized_on = today_text;
  p.randomized_by = a.user;
  if (visit) p.visits.push_back({visit->id, today_text, kits, "", a.user});
  return transact([&]() -> shared::Result<OperationOutcome> {
    shared::RandomizedSealed sealed{arm, {}, decision};
    for (const auto& k : kits) {
      auto kit = *store().find_kit(k);
      sealed.kit_types[k] = kit.kit_type;
      kit.status = KitStatus::dispensed;
      kit.participant = p.id;
      kit.visit = visit ? visit->id : "";
      store().save_kit(kit);
    }
    shared::Randomized event;
    event.participant = p.number;
    event.randomization_number = p.randomization_number;
    event.visit = visit ? visit->id : "";
    event.kits = kits;
    event.esignature = *signature;
    if (stream) {
      store().save_stream(*stream);
      event.stream_id = stream->grant.stream_id;
      event.decision_sequence = stream->decisions;
    } else {
      slot.state = kSlotUsed;
      slot.participant = p.id;
      store().save_slot(slot);
      event.stratum = slot.stratum;
      event.stratum_label = stratum_label;
      event.slot = slot.slot;
    }
    store().save_participant(p);
    event.sealed = seal_for_hub(sealed);
    auto seq = record(a, shared::kRandomizedEvent, event);
    if (!seq) return seq.error();
    return OperationOutcome{p, kits, *seq, false};
  });
}

// ---- the lease (docs/randomization.md, "The lease")

shared::Status SiteOperations::check_lease(const std::string& number) const {
  const auto& lease = state_.domain().lease();
  if (!lease || clock_() < lease->until_ms) return {};
  return make_error(Errc::exhausted,
                    "this node may not randomize until it syncs: its randomization lease ended at " +
                        shared::utc_text(lease->until_ms) +
                        " (a node randomizes offline only for a limited time after its last sync, so that changes "
                        "to the study's design reach it); participant " + number +
                        " was not randomized and nothing was changed; sync with the hub, then randomize again. "
                        "Dispensing, visits and every other action go on as usual");
}

// ---- caps (docs/randomization.md, "Caps")

shared::Status SiteOperations::check_cohort_open(const shared::Study& s, const std::string& cohort) const {
  const auto* c = s.find_cohort(cohort);
  if (!c || !c->opens_by_decision || state_.domain().allowance_left(shared::CapScope::cohort, cohort).value_or(0) > 0)
    return {};
  return make_error(Errc::exhausted, "cohort '" + cohort + "' is not open for enrollment at this node: the study team "
                                     "opens and closes it after a safety review, and this node holds no place in it. "
                                     "Nothing was recorded; sync with the hub to learn whether it has opened, or ask "
                                     "the study team which cohort to screen the participant into");
}

shared::Status SiteOperations::check_cohort_allowance(const ParticipantRecord& p) const {
  if (p.cohort.empty() || state_.domain().allowance_left(shared::CapScope::cohort, p.cohort).value_or(1) > 0) return {};
  if (const auto* s = state_.domain().study(); s && s->find_cohort(p.cohort) && s->find_cohort(p.cohort)->opens_by_decision)
    return make_error(Errc::exhausted, "cohort '" + p.cohort + "' is not open for enrollment at this node (the study "
                                       "team opens and closes it after a safety review), so participant " + p.number +
                                       " cannot be randomized now; nothing was changed; sync with the hub, and if the "
                                       "cohort stays closed ask the study team");
  return make_error(Errc::exhausted, "cohort '" + p.cohort + "' has no enrollment place left at this node, so participant " +
                                         p.number + " cannot be randomized now; nothing was changed; sync with the "
                                         "hub to receive more places, and if none come the cohort is full: ask the "
                                         "study team");
}

std::vector<bool> SiteOperations::open_arms(const shared::MinimizationConfig& config,
                                            const std::map<std::string, std::string>& factors) const {
  std::vector<bool> open;
  const auto day = today();
  for (const auto& arm : config.allocation.arms) open.push_back(state_.domain().arm_open(arm, factors, day));
  return open;
}

// Names no arm: every arm is closed, so the refusal is the same whichever they are.
shared::Error SiteOperations::arms_closed() {
  return make_error(Errc::exhausted, "no treatment group can take another participant at this node until it syncs "
                                     "(the places the hub granted under the study's arm caps are used up, or the "
                                     "study's design leaves none open here); nothing was changed; sync with the hub "
                                     "to receive more");
}

// ---- dispense

shared::Result<OperationOutcome> SiteOperations::dispense(const Actor& a, const std::string& number,
                                                          const DispenseRequest& r) {
  if (auto st = require(a, Permission::dispense, "dispensing"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  const auto& s = **sr;
  auto pr = serving(number);
  if (!pr) return pr.error();
  ParticipantRecord p = **pr;
  if (p.status != ParticipantStatus::randomized)
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) +
                                          "; kits are dispensed only to randomized participants on treatment");
  const auto* visit = s.find_visit(r.visit);
  std::vector<std::string> dispensing;
  for (const auto& v : s.visits)
    if (!v.dispense.empty() && !v.randomization) dispensing.push_back(v.id);
  if (!visit)
    return make_error(Errc::not_found, "visit '" + r.visit + "' is not in the schedule; use one of " +
                                           join(dispensing));
  if (visit->dispense.empty())
    return make_error(Errc::invalid_input, "visit " + visit->id + " dispenses no kits; use one of " + join(dispensing));
  const auto* done = p.find_visit(visit->id);
  auto today_text = shared::format_date(today());

  if (!r.replace_kit.empty()) {
    // Replacement of a lost or damaged kit handed out at this visit.
    if (!done || std::find(done->kits.begin(), done->kits.end(), r.replace_kit) == done->kits.end())
      return make_error(Errc::not_found, "kit " + r.replace_kit + " was not dispensed to participant " + number +
                                             " at visit " + visit->id + "; check the kit number");
    const auto* old = store().find_kit(r.replace_kit);
    if (!old || old->status != KitStatus::dispensed)
      return make_error(Errc::conflict, "kit " + r.replace_kit + " is " + (old ? to_string(old->status) : "unknown") +
                                            " and cannot be replaced");
    std::string condition = r.replace_condition.empty() ? "damaged" : r.replace_condition;
    if (condition != "damaged" && condition != "lost")
      return make_error(Errc::invalid_input, "replace_condition: use damaged or lost (got '" + condition + "')");
    const KitStatus old_status = condition == "lost" ? KitStatus::lost : KitStatus::damaged;
    std::string reason = trimmed(r.reason);
    if (reason.empty()) return missing_reason("reason", "say why kit " + r.replace_kit + " is replaced");
    if (!r.signature.given) return missing_signature("replacing a " + condition + " kit");
    auto signature = esign(a, r.signature,
                           "I confirm that kit " + r.replace_kit + " of participant " + number + " is " + condition +
                               " and is replaced");
    if (!signature) return signature.error();
    auto pick = pick_kits(store().kits(), old->kit_type, 1, today(), do_not_dispense_days(s, old->kit_type));
    if (pick.kits.empty())
      return refuse_shortage(a, "replace", number, visit->id, {{old->kit_type, 1, pick.usable}}, r.replace_kit);
    std::string new_kit = pick.kits.front();
    for (auto& v : p.visits)
      if (v.visit == visit->id) std::replace(v.kits.begin(), v.kits.end(), r.replace_kit, new_kit);
    p.replacements.push_back({visit->id, r.replace_kit, new_kit, condition + ": " + reason, today_text, a.user});
    return transact([&]() -> shared::Result<OperationOutcome> {
      auto o = *old;
      o.status = old_status;
      o.note = reason;
      store().save_kit(o);
      auto n = *store().find_kit(new_kit);
      n.status = KitStatus::dispensed;
      n.participant = p.id;
      n.visit = visit->id;
      store().save_kit(n);
      store().save_participant(p);
      const shared::KitReplaced event{number,     visit->id, r.replace_kit, new_kit,
                                      old_status, reason,    *signature,
                                      seal_for_hub(shared::KitTypesSealed{{{new_kit, n.kit_type}}})};
      auto seq = record(a, shared::kKitReplacedEvent, event);
      if (!seq) return seq.error();
      return OperationOutcome{p, {new_kit}, *seq, false};
    });
  }

  if (visit->randomization)
    return make_error(Errc::conflict, "visit " + visit->id + "'s kits are dispensed at randomization; use " +
                                          (dispensing.empty() ? std::string("a later visit") : join(dispensing)));
  if (done && !done->missed_reason.empty())
    return make_error(Errc::conflict, "visit " + visit->id + " of participant " + number + " was recorded as missed on " +
                                          done->date + "; dispense at the next visit");
  if (done)
    return make_error(Errc::conflict, "visit " + visit->id + " was already dispensed to participant " + number +
                                          " (kits " + join(done->kits) +
                                          "); to replace a lost or damaged kit give replace_kit and a reason");
  // Out of order: an earlier visit of the schedule is neither done nor missed.
  std::vector<std::string> skipped;
  for (const auto& v : s.visits) {
    if (&v == visit) break;
    if (v.day >= 0 && !v.randomization && !p.find_visit(v.id)) skipped.push_back(v.id);
  }
  std::string order_reason = skipped.empty() ? "" : trimmed(r.order_reason);
  if (!skipped.empty() && order_reason.empty())
    return missing_reason("order_reason", "visit " + join(skipped) + " of participant " + number +
                                              " comes before " + visit->id + " and is neither done nor recorded "
                                              "as missed; record it first, or say why " + visit->id +
                                              " is dispensed out of order");
  auto randomized = shared::parse_date(p.randomized_on);
  auto offset = today() - (randomized ? *randomized : today());
  auto lo = visit->day - visit->window_before, hi = visit->day + visit->window_after;
  bool deviation = offset < lo || offset > hi;
  std::string override_reason = trimmed(r.override_reason);
  std::optional<shared::ESignature> signature;
  if (deviation) {
    if (override_reason.empty())
      return make_error(Errc::conflict, "visit " + visit->id + " is outside its window: today is day " +
                                            std::to_string(offset) + " after randomization, the window is days " +
                                            std::to_string(lo) + " to " + std::to_string(hi) +
                                            "; to dispense anyway give override_reason (recorded as a protocol "
                                            "deviation) and your electronic signature");
    if (!r.signature.given) return missing_signature("overriding the visit window");
  }
  if (deviation) {
    auto sig = esign(a, r.signature,
                     "I confirm dispensing visit " + visit->id + " to participant " + number +
                         " outside its window: " + override_reason);
    if (!sig) return sig.error();
    signature = *sig;
  }
  auto picked = pick_for_visit(s, *visit, p.arm);
  if (!picked.shortages.empty()) return refuse_shortage(a, "dispense", number, visit->id, picked.shortages);
  auto kits = std::move(picked.kits);
  p.visits.push_back({visit->id, today_text, kits, deviation ? override_reason : "", a.user, "", order_reason});
  return transact([&]() -> shared::Result<OperationOutcome> {
    shared::KitTypesSealed sealed;
    for (const auto& k : kits) {
      auto kit = *store().find_kit(k);
      sealed.kit_types[k] = kit.kit_type;
      kit.status = KitStatus::dispensed;
      kit.participant = p.id;
      kit.visit = visit->id;
      store().save_kit(kit);
    }
    store().save_participant(p);
    const shared::Dispensed event{number,    visit->id, kits, offset, lo, hi, deviation ? override_reason : "",
                                  signature, seal_for_hub(sealed), order_reason};
    auto seq = record(a, shared::kDispensedEvent, event);
    if (!seq) return seq.error();
    return OperationOutcome{p, kits, *seq, deviation};
  });
}

// ---- participation

shared::Result<OperationOutcome> SiteOperations::withdraw(const Actor& a, const std::string& number,
                                                          const std::string& reason_in, const PasswordCheck& password) {
  if (auto st = require(a, Permission::withdraw, "withdrawal"); !st) return st.error();
  auto pr = serving(number);
  if (!pr) return pr.error();
  ParticipantRecord p = **pr;
  if (p.status != ParticipantStatus::screened && p.status != ParticipantStatus::randomized)
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) + " and cannot be withdrawn");
  std::string reason = trimmed(reason_in);
  if (reason.empty()) return missing_reason("reason", "say why participant " + number + " is withdrawn");
  if (!password.given) return missing_signature("withdrawal");
  auto signature = esign(a, password, "I confirm the withdrawal of participant " + number + " from the study");
  if (!signature) return signature.error();
  p.status = ParticipantStatus::withdrawn;
  p.withdrawal_reason = reason;
  p.withdrawn_on = shared::format_date(today());
  p.withdrawn_by = a.user;
  return transact([&]() -> shared::Result<OperationOutcome> {
    store().save_participant(p);
    auto seq = record(a, shared::kWithdrawnEvent, shared::Withdrawn{number, reason, a.role, *signature});
    if (!seq) return seq.error();
    return OperationOutcome{p, {}, *seq, false};
  });
}

shared::Result<OperationOutcome> SiteOperations::record_visit(const Actor& a, const std::string& number,
                                                              const std::string& visit_id, bool missed,
                                                              const std::string& reason_in) {
  if (auto st = require(a, Permission::dispense, "recording a visit"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  auto pr = serving(number);
  if (!pr) return pr.error();
  ParticipantRecord p = **pr;
  if (p.status != ParticipantStatus::randomized)
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) +
                                          "; visits are recorded only for randomized participants on treatment");
  std::vector<std::string> later;
  for (const auto& v : (*sr)->visits)
    if (v.day >= 0 && !v.randomization) later.push_back(v.id);
  const auto* visit = (*sr)->find_visit(visit_id);
  if (!visit || visit->day < 0 || visit->randomization)
    return make_error(Errc::not_found, "visit '" + visit_id + "' is not a visit after randomization; use one of " +
                                           join(later));
  if (const auto* done = p.find_visit(visit->id))
    return make_error(Errc::conflict, "visit " + visit->id + " of participant " + number + " was already recorded on " +
                                          done->date + (done->missed_reason.empty() ? "" : " as missed"));
  std::string reason = trimmed(reason_in);
  if (missed && reason.empty()) return missing_reason("reason", "say why visit " + visit->id + " was missed");
  if (!missed && !visit->dispense.empty())
    return make_error(Errc::invalid_input, "visit " + visit->id + " dispenses kits: it is recorded by dispensing; if "
                                           "it did not happen, record it as missed with the reason");
  p.visits.push_back({visit->id, shared::format_date(today()), {}, "", a.user, missed ? reason : ""});
  return transact([&]() -> shared::Result<OperationOutcome> {
    store().save_participant(p);
    auto seq = record(a, shared::kVisitRecordedEvent,
                      shared::VisitRecorded{number, visit->id, missed ? "missed" : "done", missed ? reason : "", a.role});
    if (!seq) return seq.error();
    return OperationOutcome{p, {}, *seq, false};
  });
}

shared::Result<std::vector<std::string>> SiteOperations::dispense_preview(const Actor& a, const std::string& number,
                                                                          const std::string& visit_id) const {
  if (auto st = require(a, Permission::dispense, "dispensing"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  auto pr = serving(number);
  if (!pr) return pr.error();
  const auto& p = **pr;
  if (p.status != ParticipantStatus::randomized)
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) +
                                          "; kits are dispensed only to randomized participants on treatment");
  const auto* visit = (*sr)->find_visit(visit_id);
  if (!visit || visit->dispense.empty() || visit->randomization)
    return make_error(Errc::not_found, "visit '" + visit_id + "' is not a visit that dispenses after randomization");
  if (p.find_visit(visit->id))
    return make_error(Errc::conflict, "visit " + visit->id + " of participant " + number + " is already recorded");
  auto picked = pick_for_visit(**sr, *visit, p.arm);
  if (!picked.shortages.empty())
    return make_error(Errc::exhausted, "the site's stock cannot cover visit " + visit->id + " of participant " + number +
                                           " now; dispensing would be refused and the supply team alerted");
  return picked.kits;
}

shared::Result<OperationOutcome> SiteOperations::complete(const Actor& a, const std::string& number) {
  if (auto st = require(a, Permission::withdraw, "completion"); !st) return st.error();
  auto pr = serving(number);
  if (!pr) return pr.error();
  ParticipantRecord p = **pr;
  if (p.status != ParticipantStatus::randomized)
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) +
                                          "; only a randomized participant on treatment completes the study");
  p.status = ParticipantStatus::completed;
  return transact([&]() -> shared::Result<OperationOutcome> {
    store().save_participant(p);
    auto seq = record(a, shared::kCompletedEvent, shared::Completed{number, a.role});
    if (!seq) return seq.error();
    return OperationOutcome{p, {}, *seq, false};
  });
}

shared::Result<OperationOutcome> SiteOperations::request_transfer(const Actor& a, const std::string& number,
                                                                  const std::string& to_site,
                                                                  const std::string& reason_in) {
  if (auto st = require(a, Permission::withdraw, "transfer request"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  auto pr = serving(number);
  if (!pr) return pr.error();
  ParticipantRecord p = **pr;
  const auto* site = (*sr)->find_site(to_site);
  if (!site || to_site == state_.enrollment().site_id)
    return make_error(Errc::invalid_input, "to_site: '" + to_site + "' is not another site of the study; use a site id");
  if (p.status != ParticipantStatus::screened && p.status != ParticipantStatus::randomized)
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) +
                                          " and cannot be transferred");
  if (!p.transfer_to.empty())
    return make_error(Errc::conflict, "a transfer of participant " + number + " to site " + p.transfer_to +
                                          " is already requested; the hub decides it");
  std::string reason = trimmed(reason_in);
  if (reason.empty()) return missing_reason("reason", "say why participant " + number + " moves to site " + to_site);
  p.transfer_to = to_site;
  p.transfer_reason = reason;
  return transact([&]() -> shared::Result<OperationOutcome> {
    store().save_participant(p);
    auto seq = record(a, shared::kTransferRequestedEvent, shared::TransferRequested{number, to_site, reason, a.role});
    if (!seq) return seq.error();
    return OperationOutcome{p, {}, *seq, false};
  });
}

shared::Result<OperationOutcome> SiteOperations::unblind(const Actor& a, const std::string& number,
                                                         const std::string& reason_in, const PasswordCheck& password) {
  if (auto st = require(a, Permission::unblind, "code break"); !st) return st.error();
  auto pr = serving(number);
  if (!pr) return pr.error();
  ParticipantRecord p = **pr;
  if (p.arm.empty())
    return make_error(Errc::conflict, "participant " + number + " is " + to_string(p.status) +
                                          " and was never randomized: there is no code to break");
  std::string reason = trimmed(reason_in);
  if (reason.empty()) return missing_reason("reason", "give the medical reason for breaking the code");
  if (!password.given) return missing_signature("the code break");
  auto signature = esign(a, password, "I confirm the emergency unblinding of participant " + number);
  if (!signature) return signature.error();
  p.unblinded = true;
  p.unblinded_on = shared::format_date(today());
  p.unblinded_by = a.user;
  return transact([&]() -> shared::Result<OperationOutcome> {
    store().save_participant(p);
    auto seq = record(a, shared::kUnblindedEvent,
                      shared::Unblinded{number, reason, *signature, seal_for_hub(shared::ArmSealed{p.arm})});
    if (!seq) return seq.error();
    return OperationOutcome{p, {}, *seq, false};
  });
}

// ---- inventory

shared::Result<std::uint64_t> SiteOperations::receive_shipment(const Actor& a, const std::string& shipment,
                                                               const std::vector<KitReceipt>& kits,
                                                               const PasswordCheck& password,
                                                               const std::string& location_in) {
  if (auto st = require(a, Permission::receive_shipment, "shipment receipt"); !st) return st.error();
  if (!store().shipments().count(shipment))
    return make_error(Errc::not_found, "shipment " + shipment +
                                           " is not expected at this node; check the number on the packing list, or "
                                           "sync to receive the hub's shipment notice");
  if (kits.empty()) return make_error(Errc::invalid_input, "kits: list the kits of the shipment with their condition");
  int received = 0, damaged = 0, missing = 0;
  std::vector<std::string> seen;
  for (const auto& k : kits) {
    const auto* kit = store().find_kit(k.kit);
    if (!kit || kit->shipment != shipment)
      return make_error(Errc::not_found, "kit " + k.kit + " is not part of shipment " + shipment +
                                             "; check the kit number; nothing was changed");
    if (std::find(seen.begin(), seen.end(), k.kit) != seen.end())
      return make_error(Errc::invalid_input, "kit " + k.kit + " is listed twice; list each kit once");
    seen.push_back(k.kit);
    if (kit->status != KitStatus::expected)
      return make_error(Errc::conflict, "kit " + k.kit + " was already recorded (" + to_string(kit->status) +
                                            "); nothing was changed");
    if (k.condition == "received") ++received;
    else if (k.condition == "damaged") ++damaged;
    else if (k.condition == "missing") ++missing;
    else
      return make_error(Errc::invalid_input, "kit " + k.kit + ": condition must be received, damaged or missing (got '" +
                                                 k.condition + "')");
  }
  auto location = storage_location(location_in, false);
  if (!location) return location.error();
  std::optional<shared::ESignature> signature;
  if (damaged > 0) {
    if (!password.given) return missing_signature("reporting damaged kits");
    auto sig = esign(a, password, "I confirm receipt of shipment " + shipment + ": " + std::to_string(received) +
                                      " received, " + std::to_string(damaged) + " damaged, " +
                                      std::to_string(missing) + " missing");
    if (!sig) return sig.error();
    signature = *sig;
  }
  return transact([&]() -> shared::Result<std::uint64_t> {
    shared::ShipmentReceived event{shipment, {}, signature, *location};
    for (const auto& k : kits) {
      const auto condition = *shared::parse_kit_status(k.condition);  // received, damaged or missing: checked above
      auto kit = *store().find_kit(k.kit);
      kit.status = condition == KitStatus::received ? KitStatus::available : condition;
      if (condition == KitStatus::received) kit.location = *location;
      store().save_kit(kit);
      event.kits.push_back({k.kit, condition});
    }
    return record(a, shared::kShipmentReceivedEvent, event);
  });
}

shared::Result<std::uint64_t> SiteOperations::quarantine(const Actor& a, const std::string& number,
                                                         const std::string& reason_in,
                                                         const std::optional<double>& temperature) {
  if (auto st = require(a, Permission::report_excursion, "temperature excursion"); !st) return st.error();
  const auto* kit = store().find_kit(number);
  if (!kit) return make_error(Errc::not_found, "kit " + number + " is not in this site's custody; check the number");
  if (kit->status != KitStatus::available)
    return make_error(Errc::conflict, "kit " + number + " is " + kit_state(*kit) +
                                          "; only kits available in stock are quarantined");
  std::string reason = trimmed(reason_in);
  if (reason.empty()) return missing_reason("reason", "describe the temperature excursion");
  return transact([&]() -> shared::Result<std::uint64_t> {
    auto k = *kit;
    k.status = KitStatus::quarantined;
    k.note = reason;
    store().save_kit(k);
    return record(a, shared::kKitQuarantinedEvent, shared::KitQuarantined{number, reason, temperature});
  });
}

shared::Result<std::uint64_t> SiteOperations::return_kit(const Actor& a, const std::string& number, int units,
                                                         const std::string& visit) {
  if (auto st = require(a, Permission::return_kits, "kit return"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  const auto* kit = store().find_kit(number);
  if (!kit) return make_error(Errc::not_found, "kit " + number + " is not in this site's custody; check the number");
  // A rejected kit goes back to the depot unused: no participant, no units.
  const bool unused = kit->status == KitStatus::rejected;
  if (kit->status != KitStatus::dispensed && !unused)
    return make_error(Errc::conflict, "kit " + number + " is " + kit_state(*kit) +
                                          "; only a dispensed kit (brought back by its participant) or a kit the hub "
                                          "rejected is returned");
  const auto* kt = (*sr)->find_kit_type(kit->kit_type);
  int max_units = unused ? 0 : kt ? kt->units_per_kit : 0;
  if (units < 0 || units > max_units)
    return make_error(Errc::invalid_input, unused ? "units_returned must be 0: kit " + number +
                                                        " was rejected in stock and goes back unused"
                                                  : "units_returned must be 0 to " + std::to_string(max_units) +
                                                        " (the units in one kit)");
  if (!visit.empty() && (unused || !(*sr)->find_visit(visit)))
    return make_error(Errc::invalid_input, unused ? "visit: a kit returned unused was not brought back at a visit; "
                                                    "leave visit out"
                                                  : "visit: '" + visit + "' is not a visit of this study");
  const auto* p = store().participant_by_id(kit->participant);
  return transact([&]() -> shared::Result<std::uint64_t> {
    auto k = *kit;
    k.status = KitStatus::returned;
    k.units_returned = units;
    store().save_kit(k);
    return record(a, shared::kKitReturnedEvent, shared::KitReturned{number, p ? p->number : "", units, visit});
  });
}

shared::Result<std::uint64_t> SiteOperations::destroy_kit(const Actor& a, const std::string& number,
                                                          const std::string& reason_in, const PasswordCheck& password,
                                                          const PasswordCheck& witness) {
  if (auto st = require(a, Permission::destroy_kits, "kit destruction"); !st) return st.error();
  const auto* kit = store().find_kit(number);
  if (!kit) return make_error(Errc::not_found, "kit " + number + " is not in this site's custody; check the number");
  static constexpr KitStatus kDestroyable[] = {KitStatus::returned, KitStatus::damaged, KitStatus::rejected,
                                               KitStatus::available};
  if (std::find(std::begin(kDestroyable), std::end(kDestroyable), kit->status) == std::end(kDestroyable))
    return make_error(Errc::conflict, "kit " + number + " is " + kit_state(*kit) +
                                          "; only returned, damaged, rejected or stock kits are destroyed");
  std::string reason = trimmed(reason_in);
  if (reason.empty()) return missing_reason("reason", "say why kit " + number + " is destroyed");
  if (!password.given) return missing_signature("destroying a kit");
  if (!witness.given)
    return make_error(Errc::invalid_input, "destroying a kit needs a witness: another user of this site whose role may "
                                           "destroy or return kits, with their name in witness and their password in "
                                           "witness_password");
  auto signature = esign(a, password, "I confirm the destruction of kit " + number);
  if (!signature) return signature.error();
  auto seen_by = witness_signature(a, witness, "I witnessed the destruction of kit " + number);
  if (!seen_by) return seen_by.error();
  return transact([&]() -> shared::Result<std::uint64_t> {
    auto k = *kit;
    k.status = KitStatus::destroyed;
    k.note = reason;
    store().save_kit(k);
    return record(a, shared::kKitDestroyedEvent, shared::KitDestroyed{number, reason, *signature, *seen_by});
  });
}

// ---- excursions, storage locations, witnesses

shared::Result<std::string> SiteOperations::storage_location(const std::string& given, bool required) {
  std::string location = trimmed(given);
  if (location.empty()) {
    if (required) return missing_reason("location", "the storage location (a fridge's name, e.g. FRIDGE-1)");
    return std::string();
  }
  if (location.size() > kMaxLocationChars)
    return make_error(Errc::invalid_input, "location: at most " + std::to_string(kMaxLocationChars) +
                                               " characters (a fridge's name, e.g. FRIDGE-1)");
  return location;
}

shared::Result<shared::ESignature> SiteOperations::witness_signature(const Actor& a, const PasswordCheck& witness,
                                                                      const std::string& meaning) {
  auto w = confirm(state_.log(), state_.enrollment().site_id, witness);
  if (!w)
    return make_error(Errc::unauthenticated, "the witness's signature does not verify: check the witness's user name "
                                             "and password; nothing was changed");
  if (w->name == a.user)
    return make_error(Errc::invalid_input, "the witness must be another person than " + a.user +
                                               "; ask a colleague to witness and sign");
  const auto* s = state_.domain().study();
  const auto* role = s ? s->find_role(w->role) : nullptr;
  if (!role || !(role->can(Permission::destroy_kits) || role->can(Permission::return_kits)))
    return make_error(Errc::forbidden, "witness " + w->name + " (role " + w->role +
                                           ") may not witness a destruction: the witness's role must "
                                           "be allowed to destroy or return kits");
  return shared::ESignature{w->name, w->role, clock_(), meaning};
}

shared::Result<ExcursionOutcome> SiteOperations::report_excursion(const Actor& a, const ExcursionReport& r) {
  if (auto st = require(a, Permission::report_excursion, "temperature excursion"); !st) return st.error();
  if (r.kits.empty() == trimmed(r.location).empty())
    return make_error(Errc::invalid_input, "name the kits (kits) or their storage location (location), one of the two");
  auto location = storage_location(r.location, false);
  if (!location) return location.error();
  if (!r.minimum_celsius || !r.maximum_celsius)
    return missing_reason(!r.minimum_celsius ? "minimum_celsius" : "maximum_celsius",
                          "the lowest and highest temperature the logger recorded, in degrees Celsius");
  if (*r.maximum_celsius < *r.minimum_celsius)
    return make_error(Errc::invalid_input, "maximum_celsius is below minimum_celsius; check the logger's readings");
  if (!r.duration_minutes || *r.duration_minutes < 1)
    return make_error(Errc::invalid_input, "duration_minutes is required: the whole minutes the kits were outside "
                                           "their storage range, from 1");
  std::string reason = trimmed(r.reason);
  if (reason.empty()) return missing_reason("reason", "describe the temperature excursion");
  ExcursionOutcome out;
  if (location->empty()) {
    for (const auto& number : r.kits) {
      const auto* kit = store().find_kit(number);
      if (!kit)
        return make_error(Errc::not_found, "kit " + number + " is not in this site's custody; check the number; "
                                                             "nothing was quarantined");
      if (std::find(out.kits.begin(), out.kits.end(), number) != out.kits.end())
        return make_error(Errc::invalid_input, "kit " + number + " is listed twice; list each kit once");
      if (kit->status != KitStatus::available)
        return make_error(Errc::conflict, "kit " + number + " is " + kit_state(*kit) +
                                              "; only kits available in stock are quarantined; nothing was "
                                              "quarantined");
      out.kits.push_back(number);
    }
  } else {
    for (const auto& [number, kit] : store().kits())
      if (kit.status == KitStatus::available && kit.location == *location) out.kits.push_back(number);
    if (out.kits.empty())
      return make_error(Errc::not_found, "no kit in stock is stored at " + *location +
                                             "; check the location's name (kits get one at receipt or with POST "
                                             "/api/v1/kits/location)");
  }
  auto seq = transact([&]() -> shared::Result<std::uint64_t> {
    for (const auto& number : out.kits) {
      auto k = *store().find_kit(number);
      k.status = KitStatus::quarantined;
      k.note = reason;
      store().save_kit(k);
    }
    return record(a, shared::kTemperatureExcursionEvent,
                  shared::TemperatureExcursion{out.kits, *location, *r.minimum_celsius, *r.maximum_celsius,
                                               *r.duration_minutes, reason});
  });
  if (!seq) return seq.error();
  out.event_seq = *seq;
  return out;
}

shared::Result<std::uint64_t> SiteOperations::store_kits(const Actor& a, const std::vector<std::string>& kits,
                                                         const std::string& location_in) {
  if (auto st = require(a, Permission::receive_shipment, "storing kits"); !st) return st.error();
  auto location = storage_location(location_in, true);
  if (!location) return location.error();
  if (kits.empty()) return make_error(Errc::invalid_input, "kits: list the kits put in " + *location);
  std::vector<std::string> seen;
  for (const auto& number : kits) {
    const auto* kit = store().find_kit(number);
    if (!kit) return make_error(Errc::not_found, "kit " + number + " is not in this site's custody; check the number");
    if (std::find(seen.begin(), seen.end(), number) != seen.end())
      return make_error(Errc::invalid_input, "kit " + number + " is listed twice; list each kit once");
    seen.push_back(number);
    if (kit->status != KitStatus::available && kit->status != KitStatus::quarantined &&
        kit->status != KitStatus::rejected)
      return make_error(Errc::conflict, "kit " + number + " is " + kit_state(*kit) +
                                            "; only kits in stock (available, quarantined or rejected) are stored; "
                                            "nothing was moved");
  }
  return transact([&]() -> shared::Result<std::uint64_t> {
    for (const auto& number : kits) {
      auto k = *store().find_kit(number);
      k.location = *location;
      store().save_kit(k);
    }
    return record(a, shared::kKitsStoredEvent, shared::KitsStored{kits, *location});
  });
}

shared::Result<std::uint64_t> SiteOperations::confirm_relabel(const Actor& a, const std::string& number) {
  if (auto st = require(a, Permission::receive_shipment, "relabelling kits"); !st) return st.error();
  const auto* kit = store().find_kit(number);
  if (!kit) return make_error(Errc::not_found, "kit " + number + " is not in this site's custody; check the number");
  if (kit->relabel.empty())
    return make_error(Errc::conflict, "kit " + number + " has no new label to print: the hub asked for no relabelling "
                                      "of it, or it was already confirmed");
  return transact([&]() -> shared::Result<std::uint64_t> {
    auto k = *kit;
    const std::string expiry = k.relabel;
    k.relabel.clear();
    store().save_kit(k);
    return record(a, shared::kKitRelabelledEvent, shared::KitRelabelled{number, expiry, a.role});
  });
}

shared::Result<std::uint64_t> SiteOperations::hand_over_kits(const Actor& a, const std::string& to_node_in,
                                                             const std::vector<std::string>& kits,
                                                             const std::string& reason_in) {
  if (auto st = require(a, Permission::dispense, "handing kits to another node"); !st) return st.error();
  const std::string to_node = trimmed(to_node_in);
  if (to_node.empty())
    return make_error(Errc::invalid_input, "to_node: name the node of this site that takes the kits (its node id)");
  if (to_node == state_.enrollment().node_id)
    return make_error(Errc::invalid_input, "to_node: '" + to_node + "' is this node; name another node of site " +
                                               state_.enrollment().site_id);
  if (kits.empty()) return make_error(Errc::invalid_input, "kits: list the kit numbers handed over");
  std::vector<std::string> seen;
  for (const auto& number : kits) {
    if (std::find(seen.begin(), seen.end(), number) != seen.end())
      return make_error(Errc::invalid_input, "kit " + number + " is listed twice; list each kit once");
    seen.push_back(number);
    const auto* kit = store().find_kit(number);
    if (!kit)
      return make_error(Errc::not_found, "kit " + number + " is not in this node's custody; check the number; "
                                                            "nothing was handed over");
    if (kit->status != KitStatus::available)
      return make_error(Errc::conflict, "kit " + number + " is " + kit_state(*kit) +
                                            "; only kits available in stock are handed over; nothing was handed over");
  }
  const std::string reason = trimmed(reason_in);
  return transact([&]() -> shared::Result<std::uint64_t> {
    for (const auto& number : kits) {
      auto k = *store().find_kit(number);
      k.status = KitStatus::shipped;
      k.note = "in transit to node " + to_node;
      store().save_kit(k);
    }
    return record(a, shared::kKitHandoverRequestedEvent, shared::KitHandoverRequested{to_node, kits, reason, a.role});
  });
}

shared::Result<std::uint64_t> SiteOperations::ship_return(const Actor& a, const ReturnShipment& r,
                                                          const PasswordCheck& password) {
  if (auto st = require(a, Permission::return_kits, "sending kits back to a depot"); !st) return st.error();
  auto sr = study();
  if (!sr) return sr.error();
  const std::string depot = trimmed(r.depot);
  std::string depots;
  bool known = false;
  for (const auto& d : (*sr)->depots) {
    depots += (depots.empty() ? "" : ", ") + d.id;
    known = known || d.id == depot;
  }
  if (!known)
    return make_error(Errc::invalid_input, "depot: '" + depot + "' is not a depot of the study; use one of: " + depots);
  if (r.kits.empty()) return make_error(Errc::invalid_input, "kits: list the kit numbers sent back");
  const auto today_text = shared::format_date(today());
  std::vector<std::string> seen;
  for (const auto& number : r.kits) {
    if (std::find(seen.begin(), seen.end(), number) != seen.end())
      return make_error(Errc::invalid_input, "kit " + number + " is listed twice; list each kit once");
    seen.push_back(number);
    const auto* kit = store().find_kit(number);
    if (!kit)
      return make_error(Errc::not_found, "kit " + number + " is not in this site's custody; check the number; "
                                                            "nothing was sent back");
    const bool expired = kit->status == KitStatus::available && kit->expiry < today_text;
    if (kit->status == KitStatus::dispensed)
      return make_error(Errc::conflict, "kit " + number + " is dispensed to a participant; record its return "
                                                          "first (POST /api/v1/kits/" + number + "/return); nothing "
                                                          "was sent back");
    if (kit->status != KitStatus::returned && kit->status != KitStatus::rejected &&
        kit->status != KitStatus::damaged && !expired)
      return make_error(Errc::conflict, "kit " + number + " is " + kit_state(*kit) +
                                            "; only returned, rejected, damaged or expired unused kits go back to a "
                                            "depot; nothing was sent back");
  }
  if (!password.given) return missing_signature("sending kits back to a depot");
  std::string listed;
  for (const auto& number : r.kits) listed += (listed.empty() ? "" : ", ") + number;
  auto signature = esign(a, password, "I confirm the return of kits " + listed + " to depot " + depot);
  if (!signature) return signature.error();
  const std::string courier = trimmed(r.courier), tracking = trimmed(r.tracking);
  return transact([&]() -> shared::Result<std::uint64_t> {
    auto seq = record(a, shared::kKitsReturnShippedEvent,
                      shared::KitsReturnShipped{depot, r.kits, trimmed(r.reason), courier, tracking, a.role,
                                                *signature});
    if (!seq) return seq;
    // The node lists the return shipment under the id the hub gives it.
    const auto id = return_shipment_id(state_.enrollment().node_id, *seq);
    store().save_return_shipment({id, kReturnShipmentKind, today_text, clock_(), depot, courier, tracking});
    for (const auto& number : r.kits) {
      auto k = *store().find_kit(number);
      k.status = KitStatus::shipped;
      k.shipment = id;
      k.note = "sent back to depot " + depot + " (return shipment " + id + ")";
      store().save_kit(k);
    }
    return seq;
  });
}

}  // namespace irt::node

