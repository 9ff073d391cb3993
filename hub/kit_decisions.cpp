#include "hub/kit_decisions.h"

#include <algorithm>
#include <map>

#include "hub/audit.h"
#include "hub/depot_shipments.h"
#include "hub/kit_inventory.h"
#include "shared/directive_payloads.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::KitStatus;
using shared::make_error;
using shared::to_string;

const std::vector<storage::Migration> kKitDecisionsMigrations = {
    {1, R"sql(
CREATE TABLE hub_kit_quarantines (
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kit_number TEXT NOT NULL,
  location TEXT NOT NULL,
  minimum_celsius REAL,
  maximum_celsius REAL,
  duration_minutes INTEGER,
  reason TEXT NOT NULL,
  reported_ms INTEGER NOT NULL,
  PRIMARY KEY (node_id, seq, kit_number)
);
CREATE INDEX hub_kit_quarantines_kit ON hub_kit_quarantines(kit_number);
CREATE TABLE hub_kit_decisions (
  id INTEGER PRIMARY KEY,
  decision TEXT NOT NULL,
  kits INTEGER NOT NULL,
  reason TEXT NOT NULL,
  signed_by TEXT NOT NULL,
  witness TEXT NOT NULL DEFAULT '',
  decided_ms INTEGER NOT NULL
);
CREATE TABLE hub_kit_returns (
  kit_number TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  participant TEXT NOT NULL,
  units_returned INTEGER NOT NULL,
  visit TEXT NOT NULL
);
)sql"},
    // A hold's reason is kept beside the nodes' reports: node_id "hub", seq
    // and hold_decision the decision's id.
    {2, "ALTER TABLE hub_kit_quarantines ADD COLUMN hold_decision INTEGER"},
};

// The kits of a request: at least one, each once.
shared::Status check_list(const std::vector<std::string>& kits, const std::string& reason) {
  if (kits.empty()) return make_error(Errc::invalid_input, "name at least one kit (--kit K, or \"kits\")");
  for (std::size_t i = 0; i < kits.size(); ++i)
    if (std::find(kits.begin(), kits.begin() + static_cast<std::ptrdiff_t>(i), kits[i]) !=
        kits.begin() + static_cast<std::ptrdiff_t>(i))
      return make_error(Errc::invalid_input, "kit " + kits[i] + " is listed twice; list each kit once");
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  return {};
}

std::int64_t new_decision(storage::Database& db, const std::string& decision, std::size_t kits,
                          const std::string& reason, const std::string& signer, const std::string& witness,
                          std::int64_t now_ms) {
  db.prepare("INSERT INTO hub_kit_decisions(decision, kits, reason, signed_by, witness, decided_ms) "
             "VALUES (?, ?, ?, ?, ?, ?)")
      .bind_all(decision, static_cast<std::int64_t>(kits), reason, signer, witness, now_ms)
      .run();
  return db.last_insert_rowid();
}

}  // namespace

shared::Status migrate_kit_decisions(storage::Database& db) { return db.migrate("hub.kit_decisions", kKitDecisionsMigrations); }

void record_quarantine(storage::Database& db, const std::string& node_id, std::uint64_t seq, const std::string& kit,
                       const QuarantineReport& r, std::int64_t reported_ms) {
  // An event read again (a replayed cursor) records nothing new.
  db.prepare("INSERT INTO hub_kit_quarantines(node_id, seq, kit_number, location, minimum_celsius, maximum_celsius, "
             "duration_minutes, reason, reported_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
             "ON CONFLICT (node_id, seq, kit_number) DO NOTHING")
      .bind_all(node_id, static_cast<std::int64_t>(seq), kit, r.location, r.minimum_celsius, r.maximum_celsius,
                r.duration_minutes, r.reason, reported_ms)
      .run();
}

void record_return(storage::Database& db, const std::string& node_id, std::uint64_t seq, const shared::KitReturned& r) {
  db.prepare("INSERT INTO hub_kit_returns(kit_number, node_id, seq, participant, units_returned, visit) "
             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kit_number) DO NOTHING")
      .bind_all(r.kit, node_id, static_cast<std::int64_t>(seq), r.participant, r.units_returned, r.visit)
      .run();
}

bool rejected_at_hub(storage::Database& db, const std::string& kit) {
  auto k = find_kit(db, kit);
  return k && k->status == KitStatus::rejected;
}

std::optional<KitReturn> find_return(storage::Database& db, const std::string& kit) {
  auto st = db.prepare("SELECT participant, units_returned, visit FROM hub_kit_returns WHERE kit_number = ?");
  st.bind(1, kit);
  if (!st.step()) return std::nullopt;
  return KitReturn{st.text(0), st.int64(1), st.text(2)};
}

std::vector<QuarantinedKit> quarantined_kits(HubState& hub, bool unblinded) {
  auto& db = hub.db();
  // The latest report naming each kit.
  auto report = db.prepare("SELECT node_id, seq, location, minimum_celsius, maximum_celsius, duration_minutes, reason, "
                           "reported_ms, hold_decision FROM hub_kit_quarantines WHERE kit_number = ? ORDER BY reported_ms DESC, "
                           "seq DESC LIMIT 1");
  std::vector<QuarantinedKit> out;
  for (const auto& k : all_kits(db)) {
    if (k.status != KitStatus::quarantined) continue;
    QuarantinedKit q;
    q.kit = k.number;
    q.custody_kind = k.custody_kind;
    q.custody_id = k.custody_id;
    if (k.custody_kind == "node")
      if (auto n = hub.ledger().find_node(k.custody_id)) q.site_id = n->site_id;
    q.expiry = k.expiry;
    if (unblinded) q.kit_type = k.kit_type;
    report.reset();
    report.bind(1, k.number);
    if (report.step()) {
      if (report.is_null(8)) q.seq = static_cast<std::uint64_t>(report.int64(1));
      else q.hold = report.int64(8);
      q.report.location = report.text(2);
      if (!report.is_null(3)) q.report.minimum_celsius = report.real(3);
      if (!report.is_null(4)) q.report.maximum_celsius = report.real(4);
      if (!report.is_null(5)) q.report.duration_minutes = report.int64(5);
      q.report.reason = report.text(6);
      q.reported_ms = report.int64(7);
    }
    out.push_back(std::move(q));
  }
  std::stable_sort(out.begin(), out.end(), [](const QuarantinedKit& a, const QuarantinedKit& b) {
    return std::tie(a.custody_kind, a.custody_id) < std::tie(b.custody_kind, b.custody_id);
  });
  return out;
}

json to_json(const QuarantinedKit& k) {
  auto or_null = [](const auto& v) { return v ? json(*v) : json(); };
  json j{{"kit", k.kit},
         {"custody_kind", k.custody_kind},
         {"custody_id", k.custody_id},
         {"site_id", k.site_id.empty() ? json() : json(k.site_id)},
         {"expiry", k.expiry},
         {"event_seq", k.seq ? json(k.seq) : json()},
         {"hold_decision", k.hold ? json(k.hold) : json()},
         {"reported", k.reported_ms ? json(utc_text(k.reported_ms)) : json()},
         {"location", k.report.location.empty() ? json() : json(k.report.location)},
         {"minimum_celsius", or_null(k.report.minimum_celsius)},
         {"maximum_celsius", or_null(k.report.maximum_celsius)},
         {"duration_minutes", or_null(k.report.duration_minutes)},
         {"reason", k.report.reason}};
  if (!k.kit_type.empty()) j["kit_type"] = k.kit_type;
  return j;
}

shared::Result<KitDecisionDone> decide_kits(HubState& hub, bool release, const std::vector<std::string>& kits,
                                            const std::string& reason, const Signature& signer, std::int64_t now_ms) {
  if (auto st = check_list(kits, reason); !st) return st.error();
  auto who = check_signature(hub, signer, shared::Permission::release_quarantine);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  std::vector<HubKit> found;
  for (const auto& number : kits) {
    auto k = find_kit(db, number);
    if (!k)
      return make_error(Errc::not_found, "kit " + number + " is not in the hub's kit list; check the number; nothing "
                                                           "was changed");
    const bool in_stock = (k->custody_kind == "node" && k->status == KitStatus::received) ||
                          (k->custody_kind == "depot" && k->status == KitStatus::available);
    if (release && k->status != KitStatus::quarantined)
      return make_error(Errc::conflict, "kit " + number + " is " + to_string(k->status) +
                                            ", not quarantined: only a quarantined kit is released (if its node "
                                            "reported it, sync that node first); nothing was changed");
    if (!release && k->status == KitStatus::rejected)
      return make_error(Errc::conflict, "kit " + number + " was already rejected; nothing was changed");
    // In transit between custodians (to a site, a depot or a nurse's tablet),
    // a kit is in nobody's hands to set aside: it is decided once received.
    if (!release && k->status == KitStatus::shipped)
      return make_error(Errc::conflict,
                        "kit " + number + " is in transit" +
                            (k->shipment_id.empty() ? "" : " (shipment " + k->shipment_id + ")") + " to " +
                            k->custody_kind + " " + k->custody_id +
                            "; reject it after its receipt there (the receiver reports it received, then the hub "
                            "rejects it). Nothing was changed");
    if (!release && k->status != KitStatus::quarantined && !in_stock)
      return make_error(Errc::conflict, "kit " + number + " is " + to_string(k->status) +
                                            ": only a kit quarantined or in stock is rejected; nothing was changed");
    found.push_back(std::move(*k));
  }
  const std::string decision = release ? "release" : "reject";
  KitDecisionDone done;
  done.signed_by = who->name;
  done.kits = kits;
  done.decision_id = new_decision(db, decision, kits.size(), reason, who->name, "", now_ms);
  std::map<std::string, std::vector<std::string>> by_node;
  for (const auto& k : found) {
    const KitStatus to = !release                    ? KitStatus::rejected
                         : k.custody_kind == "node" ? KitStatus::received
                                                    : KitStatus::available;
    set_kit_status(db, k.number, to, who->name, decision + " decision " + std::to_string(done.decision_id), now_ms);
    if (k.custody_kind == "node") by_node[k.custody_id].push_back(k.number);
    record_audit(db, {now_ms, who->name, release ? "kit.released" : "kit.rejected", k.number,
                      reason + " (decision " + std::to_string(done.decision_id) + ")", to_string(k.status),
                      to_string(to), kKitDecisionMeaning});
  }
  for (const auto& [node, numbers] : by_node) {
    json payload = shared::KitDecision{static_cast<std::uint64_t>(done.decision_id), numbers, reason};
    auto seq = hub.outbox().issue(node, release ? shared::kKitsReleaseDirective : shared::kKitsRejectDirective,
                                  payload.dump(), now_ms);
    done.directives.emplace_back(node, seq);
    record_audit(db, {now_ms, who->name, "directive.issued", node,
                      "kits " + decision + " decision " + std::to_string(done.decision_id), "",
                      std::string(release ? shared::kKitsReleaseDirective : shared::kKitsRejectDirective) + " #" +
                          std::to_string(seq) + ": " + shared::join(numbers)});
  }
  tx.commit();
  return done;
}

std::optional<SentKitDecision> last_kit_decision(HubState& hub, const std::string& node_id, const std::string& kit) {
  std::optional<SentKitDecision> last;
  for (auto type : {shared::kKitsRejectDirective, shared::kKitsReleaseDirective, shared::kKitsQuarantineDirective})
    for (const auto& [seq, payload] : hub.outbox().payloads_of(node_id, type)) {
      auto decision = shared::parse_kit_decision(payload);
      if (!decision || (last && seq < last->seq)) continue;
      if (std::find(decision->kits.begin(), decision->kits.end(), kit) == decision->kits.end()) continue;
      last = SentKitDecision{seq, type, std::move(*decision)};
    }
  return last;
}

shared::Result<KitDecisionDone> hold_kits(HubState& hub, const HoldRequest& request, const std::string& reason,
                                          const Signature& signer, std::int64_t now_ms) {
  if (request.lot.empty() == request.kits.empty())
    return make_error(Errc::invalid_input, "name a lot (--lot L, or \"lot\") or kits (--kit K, or \"kits\"), not both");
  if (!request.site.empty() && request.lot.empty())
    return make_error(Errc::invalid_input, "a site narrows a lot's hold; give --lot with --site");
  if (!request.kits.empty())
    if (auto st = check_list(request.kits, reason); !st) return st.error();
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  if (!request.site.empty() && !hub.study().find_site(request.site))
    return make_error(Errc::not_found, "site " + request.site + " is not a site of the study; check --site");
  auto who = check_signature(hub, signer, shared::Permission::release_quarantine);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  std::vector<HubKit> named;
  if (request.lot.empty()) {
    for (const auto& number : request.kits) {
      auto k = find_kit(db, number);
      if (!k)
        return make_error(Errc::not_found, "kit " + number + " is not in the hub's kit list; check the number; "
                                                             "nothing was changed");
      named.push_back(std::move(*k));
    }
  } else {
    for (auto& k : all_kits(db)) {
      if (k.lot != request.lot) continue;
      if (!request.site.empty()) {
        auto n = k.custody_kind == "node" ? hub.ledger().find_node(k.custody_id) : std::nullopt;
        if (!n || n->site_id != request.site) continue;
      }
      named.push_back(std::move(k));
    }
    if (named.empty())
      return make_error(Errc::not_found, "no kit of lot " + request.lot +
                                             (request.site.empty() ? "" : " is at site " + request.site) +
                                             "; check the lot (irt-hub lot list) and the site");
  }
  KitDecisionDone done;
  done.signed_by = who->name;
  std::vector<HubKit> held;
  for (auto& k : named) {
    const bool in_stock = (k.custody_kind == "node" && k.status == KitStatus::received) ||
                          (k.custody_kind == "depot" && k.status == KitStatus::available);
    if (in_stock) held.push_back(std::move(k));
    else ++done.left_alone[to_string(k.status)];
  }
  const std::string what = request.lot.empty() ? "the kits named" : "lot " + request.lot;
  if (held.empty())
    return make_error(Errc::conflict, "nothing of " + what + " is in stock at a node or a depot (all dispensed, in "
                                          "transit, quarantined, rejected or gone); nothing was held");
  done.decision_id = new_decision(db, "hold", held.size(), reason, who->name, "", now_ms);
  const std::string because = reason + " (hold decision " + std::to_string(done.decision_id) + ")";
  std::map<std::string, std::vector<std::string>> by_node;
  auto keep = db.prepare("INSERT INTO hub_kit_quarantines(node_id, seq, kit_number, location, reason, reported_ms, "
                         "hold_decision) VALUES ('hub', ?, ?, '', ?, ?, ?)");
  for (const auto& k : held) {
    set_kit_status(db, k.number, KitStatus::quarantined, who->name, "hold decision " + std::to_string(done.decision_id),
                   now_ms);
    keep.reset();
    keep.bind_all(done.decision_id, k.number, reason, now_ms, done.decision_id).run();
    if (k.custody_kind == "node") by_node[k.custody_id].push_back(k.number);
    done.kits.push_back(k.number);
    // The kit's entry never names its lot: a lot can reveal a kit type.
    record_audit(db, {now_ms, who->name, "kit.held", k.number, because, to_string(k.status),
                      to_string(KitStatus::quarantined), kKitDecisionMeaning});
  }
  if (!request.lot.empty())
    record_audit(db, {now_ms, who->name, "lot.held", request.lot, because, "",
                      std::to_string(held.size()) + " kits quarantined" +
                          (request.site.empty() ? "" : " at site " + request.site),
                      kKitDecisionMeaning});
  for (const auto& [node, numbers] : by_node) {
    json payload = shared::KitDecision{static_cast<std::uint64_t>(done.decision_id), numbers, reason};
    auto seq = hub.outbox().issue(node, shared::kKitsQuarantineDirective, payload.dump(), now_ms);
    done.directives.emplace_back(node, seq);
    record_audit(db, {now_ms, who->name, "directive.issued", node, "kits hold decision " + std::to_string(done.decision_id),
                      "", std::string(shared::kKitsQuarantineDirective) + " #" + std::to_string(seq) + ": " +
                              shared::join(numbers)});
  }
  tx.commit();
  return done;
}

shared::Result<KitDecisionDone> destroy_depot_kits(HubState& hub, const std::string& depot,
                                                   const std::vector<std::string>& kits, const std::string& reason,
                                                   const Signature& person, const Signature& witness,
                                                   std::int64_t now_ms) {
  if (auto st = check_list(kits, reason); !st) return st.error();
  const auto& depots = hub.study().depots;
  if (std::none_of(depots.begin(), depots.end(), [&](const shared::Depot& d) { return d.id == depot; }))
    return make_error(Errc::not_found, "depot " + depot + " is not a depot of the study; check --depot");
  auto who = check_signature(hub, person, shared::Permission::destroy_kits);
  if (!who) return who.error();
  if (witness.user == person.user)
    return make_error(Errc::invalid_input, "the witness must be another person than " + person.user +
                                               "; name a colleague with --witness");
  auto seen_by = check_signature(hub, witness, shared::Permission::destroy_kits);
  if (!seen_by && seen_by.error().code == Errc::forbidden)
    seen_by = check_signature(hub, witness, shared::Permission::manage_supply);
  if (!seen_by)
    return make_error(seen_by.error().code, "the witness's signature was refused: " + seen_by.error().message);
  // A depot user destroys and witnesses at its own depots only.
  for (const auto* u : {&*who, &*seen_by}) {
    const auto* role = hub.study().find_role(u->role);
    if (role && is_depot_role(*role))
      if (auto st = acts_for_depot(hub, *u, depot); !st) return st.error();
  }
  auto& db = hub.db();
  storage::Transaction tx(db);
  std::vector<HubKit> found;
  for (const auto& number : kits) {
    auto k = find_kit(db, number);
    if (!k || k->custody_kind != "depot" || k->custody_id != depot)
      return make_error(Errc::not_found, "kit " + number + " is not at depot " + depot +
                                             "; check the number (a kit at a site is destroyed at its node); nothing "
                                             "was destroyed");
    if (k->status != KitStatus::rejected && k->status != KitStatus::available && k->status != KitStatus::quarantined &&
        k->status != KitStatus::returned && k->status != KitStatus::damaged)
      return make_error(Errc::conflict, "kit " + number + " is " + to_string(k->status) +
                                            ": only a rejected, quarantined, returned, damaged or available kit is "
                                            "destroyed; nothing was destroyed");
    found.push_back(std::move(*k));
  }
  KitDecisionDone done;
  done.signed_by = who->name;
  done.kits = kits;
  done.decision_id = new_decision(db, "destroy", kits.size(), reason, who->name, seen_by->name, now_ms);
  for (const auto& k : found) {
    set_kit_status(db, k.number, KitStatus::destroyed, who->name,
                   "destroy decision " + std::to_string(done.decision_id) + " at depot " + depot, now_ms);
    record_audit(db, {now_ms, who->name, "kit.destroyed", k.number,
                      reason + " (depot " + depot + ", witnessed by " + seen_by->name + ", decision " +
                          std::to_string(done.decision_id) + ")",
                      to_string(k.status), to_string(KitStatus::destroyed), "performed"});
    record_audit(db, {now_ms, seen_by->name, "kit.destruction_witnessed", k.number, reason, "", "destroyed at depot " + depot,
                      "witnessed"});
  }
  tx.commit();
  return done;
}

}  // namespace irt::hub
