#include "hub/transfers.h"

#include <algorithm>

#include "crypto/bytes.h"
#include "crypto/seal.h"
#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/kit_inventory.h"
#include "hub/tuning.h"
#include "shared/civil_date.h"
#include "shared/directive_payloads.h"
#include "sync/event.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;
using shared::ParticipantStatus;

const std::vector<storage::Migration> kTransfersMigrations = {
    {1, R"sql(
CREATE TABLE hub_participant_transfers (
  id INTEGER PRIMARY KEY,
  participant TEXT NOT NULL,
  from_node TEXT NOT NULL,
  request_seq INTEGER NOT NULL,
  from_site TEXT NOT NULL,
  to_site TEXT NOT NULL,
  reason TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  requested_ms INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected')),
  to_node TEXT NOT NULL DEFAULT '',
  decided_by TEXT NOT NULL DEFAULT '',
  decision_reason TEXT NOT NULL DEFAULT '',
  decided_ms INTEGER NOT NULL DEFAULT 0,
  kits INTEGER NOT NULL DEFAULT 0,
  record TEXT NOT NULL DEFAULT '',
  UNIQUE (from_node, request_seq)
);
CREATE INDEX hub_participant_transfers_participant ON hub_participant_transfers(participant);
)sql"},
};

constexpr const char* kColumns =
    "id, participant, from_node, request_seq, from_site, to_site, reason, requested_by, requested_ms, status, "
    "to_node, decided_by, decision_reason, decided_ms, kits";

TransferRecord row(const storage::Statement& st) {
  TransferRecord t;
  t.id = st.int64(0);
  t.participant = st.text(1);
  t.from_node = st.text(2);
  t.request_seq = static_cast<std::uint64_t>(st.int64(3));
  t.from_site = st.text(4);
  t.to_site = st.text(5);
  t.reason = st.text(6);
  t.requested_by = st.text(7);
  t.requested_ms = st.int64(8);
  t.status = st.text(9);
  t.to_node = st.text(10);
  t.decided_by = st.text(11);
  t.decision_reason = st.text(12);
  t.decided_ms = st.int64(13);
  t.kits = static_cast<std::size_t>(st.int64(14));
  return t;
}

std::string date_of(std::int64_t ms) { return shared::format_date(shared::day_of_millis(ms)); }

// The site node that takes participants at `site`: its first active node of kind "site".
std::optional<sync::LedgerNode> site_node(HubState& hub, const std::string& site) {
  std::optional<sync::LedgerNode> best;
  for (auto& n : hub.ledger().nodes())
    if (n.site_id == site && n.kind == "site" && n.status == sync::NodeStatus::active &&
        (!best || n.enrolled_ms < best->enrolled_ms))
      best = std::move(n);
  return best;
}

// The participant's record as node `home` recorded it, on top of `base` (what
// an earlier transfer brought to that node). Reads the home node's events
// about the participant from the ledger; a payload that does not parse was
// alerted at ingest and is skipped here.
class Rebuild {
 public:
  Rebuild(HubState& hub, shared::ParticipantTransferIn base) : hub_(hub), p_(std::move(base)) {}

  shared::ParticipantTransferIn run(const std::string& home) {
    std::uint64_t cursor = 0;
    for (;;) {
      auto records = hub_.ledger().records_after(home, cursor, kConsumptionChunk);
      if (records.empty()) break;
      for (const auto& r : records) {
        auto e = sync::parse_event(r);
        if (!e) continue;
        cursor = e->body.seq;
        event(*e);
      }
    }
    return p_;
  }

 private:
  void event(const sync::SignedEvent& e) {
    const std::string_view text(reinterpret_cast<const char*>(e.body.payload.data()), e.body.payload.size());
    // Only events that may name the participant are parsed.
    if (text.find("\"" + p_.participant + "\"") == std::string_view::npos) return;
    const auto& type = e.body.type;
    const auto date = date_of(e.body.device_time_ms);
    auto version = [&] {
      auto v = shared::parse_event_study_version(text);
      return v && *v ? **v : 0;
    };
    if (type == shared::kScreenedEvent || type == shared::kScreenFailedEvent) {
      auto s = shared::parse_screened(text);
      if (!s || s->participant != p_.participant) return;
      p_.status = s->status;
      p_.factors = s->factors;
      p_.eligibility = s->eligibility;
      p_.cohort = s->cohort;
      p_.screened_on = date;
      p_.screened_by = e.body.actor;
      p_.study_version = version();
    } else if (type == shared::kRandomizedEvent) {
      auto r = shared::parse_randomized(text);
      if (!r || r->participant != p_.participant) return;
      auto box = crypto::from_base64(r->sealed);
      auto plain = box ? crypto::open_sealed(hub_.unblinding_key(), *box) : std::nullopt;
      auto sealed = plain ? shared::parse_randomized_sealed(crypto::to_string(*plain))
                          : shared::Result<shared::RandomizedSealed>(make_error(Errc::integrity, "sealed"));
      if (!sealed) return;
      p_.status = ParticipantStatus::randomized;
      p_.arm = sealed->arm;
      p_.randomization_number = r->randomization_number;
      p_.randomized_on = date;
      p_.randomized_by = e.body.actor;
      p_.stratum = r->stratum;
      p_.study_version = version();
      if (!r->visit.empty()) p_.visits.push_back({r->visit, date, r->kits, "", "", e.body.actor});
    } else if (type == shared::kDispensedEvent) {
      auto d = shared::parse_dispensed(text);
      if (!d || d->participant != p_.participant) return;
      p_.visits.push_back({d->visit, date, d->kits, d->deviation_reason, "", e.body.actor, d->order_reason});
    } else if (type == shared::kVisitRecordedEvent) {
      auto v = shared::parse_visit_recorded(text);
      if (!v || v->participant != p_.participant) return;
      p_.visits.push_back({v->visit, date, {}, "", v->outcome == "missed" ? v->reason : "", e.body.actor});
    } else if (type == shared::kKitReplacedEvent) {
      auto r = shared::parse_kit_replaced(text);
      if (!r || r->participant != p_.participant) return;
      for (auto& v : p_.visits)
        if (v.visit == r->visit) std::replace(v.kits.begin(), v.kits.end(), r->old_kit, r->new_kit);
    } else if (type == shared::kWithdrawnEvent) {
      auto w = shared::parse_withdrawn(text);
      if (w && w->participant == p_.participant) p_.status = ParticipantStatus::withdrawn;
    } else if (type == shared::kCompletedEvent) {
      auto c = shared::parse_completed(text);
      if (c && c->participant == p_.participant) p_.status = ParticipantStatus::completed;
    } else if (type == shared::kUnblindedEvent) {
      auto u = shared::parse_unblinded(text);
      if (!u || u->participant != p_.participant) return;
      p_.unblinded = true;
      p_.unblinded_on = date;
      p_.unblinded_by = u->esignature.signer;
    }
  }

  HubState& hub_;
  shared::ParticipantTransferIn p_;
};

// What the participant's earlier approved transfer brought to its node; an
// empty record (number only) when it never moved.
shared::ParticipantTransferIn base_record(storage::Database& db, const std::string& participant) {
  auto st = db.prepare("SELECT record FROM hub_participant_transfers WHERE participant = ? AND status = 'approved' "
                       "ORDER BY id DESC LIMIT 1");
  st.bind(1, participant);
  if (st.step())
    if (auto t = shared::parse_participant_transfer_in(st.text(0))) return *t;
  shared::ParticipantTransferIn t;
  t.participant = participant;
  return t;
}

// Moves the participant of transfer `t` from t.from_node to `target`: its
// record rebuilt from the ledger, its dispensed kits (each hop audited), where
// the hub serves it, and the transfer_in directive. Sets t.to_node and t.kits.
// Inside the caller's transaction; conflict when the participant is not at
// t.from_node or is neither screened nor randomized there.
struct MovedParticipant {
  std::string record_text;
  std::vector<std::string> kits;
  std::uint64_t directive_seq = 0;
};
shared::Result<MovedParticipant> move_to_node(HubState& hub, TransferRecord& t, const sync::LedgerNode& target,
                                              const std::string& actor, const std::string& why, std::int64_t now_ms) {
  auto& db = hub.db();
  const auto& participant = t.participant;
  auto home = participant_home(db, participant);
  if (!home || home->first != t.from_node)
    return make_error(Errc::conflict, "participant " + participant + " is not served by node " + t.from_node +
                                          ", which asked for the transfer" +
                                          (home ? " (it is at node " + home->first + " now)" : "") +
                                          "; reject the request; nothing was changed");
  auto rec = Rebuild(hub, base_record(db, participant)).run(t.from_node);
  if (rec.status != ParticipantStatus::screened && rec.status != ParticipantStatus::randomized)
    return make_error(Errc::conflict, "participant " + participant + " is " + shared::to_string(rec.status) +
                                          " at node " + t.from_node + " and cannot be transferred; reject the "
                                          "request; nothing was changed");
  rec.transfer_id = static_cast<std::uint64_t>(t.id);
  rec.from_site = t.from_site;
  rec.from_node = t.from_node;
  rec.reason = t.reason;
  MovedParticipant out;
  const auto moved = move_participant_kits(db, t.from_node, target.node_id, participant, actor, why, now_ms);
  rec.kits.clear();  // what an earlier transfer brought is among them, if still dispensed
  for (const auto& k : moved) {
    std::string visit;
    for (const auto& v : rec.visits)
      if (std::find(v.kits.begin(), v.kits.end(), k.number) != v.kits.end()) visit = v.visit;
    rec.kits.push_back({k.number, k.kit_type, k.lot, k.expiry, visit});
    out.kits.push_back(k.number);
    // Kit numbers, nodes and the transfer only: a blinded reader may read every hop.
    record_audit(db, {now_ms, actor, "kit.custody_moved", k.number, why, "node " + t.from_node,
                      "node " + target.node_id + ", dispensed (transfer " + std::to_string(t.id) + ")",
                      kTransferDecisionMeaning});
  }
  move_participant(db, participant, target.node_id, t.to_site);
  t.to_node = target.node_id;
  t.kits = moved.size();
  out.record_text = json(rec).dump();
  out.directive_seq = hub.outbox().issue(target.node_id, shared::kParticipantTransferInDirective, out.record_text, now_ms);
  return out;
}

}  // namespace

shared::Status migrate_transfers(storage::Database& db) { return db.migrate("hub.transfers", kTransfersMigrations); }

void record_transfer_request(HubState& hub, const std::string& node_id, std::uint64_t seq,
                             const shared::TransferRequested& r, const std::string& requested_by,
                             std::int64_t requested_ms) {
  auto node = hub.ledger().find_node(node_id);
  hub.db()
      .prepare("INSERT INTO hub_participant_transfers(participant, from_node, request_seq, from_site, to_site, reason, "
               "requested_by, requested_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'requested') "
               "ON CONFLICT (from_node, request_seq) DO NOTHING")
      .bind_all(r.participant, node_id, static_cast<std::int64_t>(seq), node ? node->site_id : "", r.to_site, r.reason,
                requested_by, requested_ms)
      .run();
}

std::vector<TransferRecord> transfers(storage::Database& db, const std::string& status) {
  auto st = db.prepare(std::string("SELECT ") + kColumns +
                       " FROM hub_participant_transfers WHERE ? = '' OR status = ? ORDER BY id");
  st.bind_all(status, status);
  std::vector<TransferRecord> out;
  while (st.step()) out.push_back(row(st));
  return out;
}

json to_json(const TransferRecord& t) {
  json j{{"id", t.id},
         {"participant", t.participant},
         {"from_site", t.from_site},
         {"from_node", t.from_node},
         {"request_seq", t.request_seq},
         {"to_site", t.to_site},
         {"reason", t.reason},
         {"requested_by", t.requested_by},
         {"requested", utc_text(t.requested_ms)},
         {"status", t.status}};
  if (t.status != "requested") {
    j["decided_by"] = t.decided_by;
    j["decision_reason"] = t.decision_reason;
    j["decided"] = utc_text(t.decided_ms);
  }
  if (t.status == "approved") {
    j["to_node"] = t.to_node;
    j["kits_moved"] = t.kits;
  }
  return j;
}

shared::Result<TransferDone> decide_transfer(HubState& hub, const std::string& participant, bool approve,
                                             const std::string& reason, const Signature& signer, std::int64_t now_ms) {
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  auto who = check_signature(hub, signer, shared::Permission::manage_study);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  std::optional<TransferRecord> found;
  {
    auto st = db.prepare(std::string("SELECT ") + kColumns +
                         " FROM hub_participant_transfers WHERE participant = ? ORDER BY id DESC LIMIT 1");
    st.bind(1, participant);
    if (st.step()) found = row(st);
  }
  if (!found)
    return make_error(Errc::not_found, "no transfer of participant " + participant +
                                           " was requested (a request reaches the hub when its node syncs); check "
                                           "the number with 'irt-hub transfer list'");
  TransferRecord t = *found;
  if (t.status != "requested")
    return make_error(Errc::conflict, "the transfer of participant " + participant + " to site " + t.to_site +
                                          " was already " + t.status + " by " + t.decided_by + " at " +
                                          utc_text(t.decided_ms) + "; nothing was changed");
  TransferDone done;
  const std::string verb = approve ? "approved" : "rejected";
  shared::ParticipantTransferDecision answer{static_cast<std::uint64_t>(t.id), t.request_seq, participant, t.to_site,
                                             verb, "", {}, reason, who->name};
  std::string record_text;
  if (approve) {
    const auto* site = hub.study().find_site(t.to_site);
    if (!site)
      return make_error(Errc::conflict, "site " + t.to_site + " is not a site of the study; reject the request; "
                                        "nothing was changed");
    auto target = site_node(hub, t.to_site);
    if (!target)
      return make_error(Errc::conflict, "site " + t.to_site + " has no active site node to take participant " +
                                            participant + "; enroll one (irt-hub invite --site " + t.to_site +
                                            " --kind site), let it sync, then approve again; nothing was changed");
    auto moved = move_to_node(hub, t, *target, who->name, "participant transfer " + std::to_string(t.id) + " approved",
                              now_ms);
    if (!moved) return moved.error();
    answer.kits = moved->kits;
    answer.to_node = target->node_id;
    record_text = moved->record_text;
    done.directives.emplace_back(target->node_id, moved->directive_seq);
  }
  auto seq = hub.outbox().issue(t.from_node, shared::kParticipantTransferDirective, json(answer).dump(), now_ms);
  done.directives.insert(done.directives.begin(), std::make_pair(t.from_node, seq));
  t.status = verb;
  t.decided_by = who->name;
  t.decision_reason = reason;
  t.decided_ms = now_ms;
  db.prepare("UPDATE hub_participant_transfers SET status = ?, to_node = ?, decided_by = ?, decision_reason = ?, "
             "decided_ms = ?, kits = ?, record = ? WHERE id = ?")
      .bind_all(t.status, t.to_node, t.decided_by, t.decision_reason, t.decided_ms, static_cast<std::int64_t>(t.kits),
                record_text, t.id)
      .run();
  record_audit(db, {now_ms, who->name, approve ? "participant.transfer_approved" : "participant.transfer_rejected",
                    participant, reason + " (request " + std::to_string(t.request_seq) + " of node " + t.from_node + ")",
                    "site " + t.from_site + " (node " + t.from_node + ")",
                    approve ? "site " + t.to_site + " (node " + t.to_node + "), " + std::to_string(t.kits) +
                                  " dispensed kits moved with it"
                            : "stays at site " + t.from_site,
                    kTransferDecisionMeaning});
  for (const auto& [node, s] : done.directives)
    record_audit(db, {now_ms, who->name, "directive.issued", node, "participant transfer " + std::to_string(t.id), "",
                      std::string(node == t.from_node ? shared::kParticipantTransferDirective
                                                      : shared::kParticipantTransferInDirective) +
                          " #" + std::to_string(s) + (answer.kits.empty() || node != t.from_node ? "" : ": kits " + shared::join(answer.kits))});
  tx.commit();
  done.transfer = t;
  return done;
}

shared::Result<RehomeDone> rehome_participants(HubState& hub, const std::string& from_node, const std::string& to_node,
                                               const std::string& reason, const Signature& signer,
                                               std::int64_t now_ms) {
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  auto who = check_signature(hub, signer, shared::Permission::manage_study);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto from = hub.ledger().find_node(from_node);
  if (!from || from->status != sync::NodeStatus::revoked)
    return make_error(Errc::conflict, "node " + from_node + (from ? " is " + std::string(sync::to_string(from->status))
                                                                   : std::string(" is not enrolled")) +
                                          "; re-home the participants of a revoked node only (irt-hub revoke "
                                          "first); nothing was changed");
  auto target = hub.ledger().find_node(to_node);
  if (!target || target->status != sync::NodeStatus::active || target->kind != "site" ||
      target->site_id != from->site_id)
    return make_error(Errc::conflict, "node " + to_node + " is not an active site node of site " + from->site_id +
                                          "; enroll the replacement there (irt-hub invite --site " + from->site_id +
                                          "), let it sync, then re-home; nothing was changed");
  RehomeDone done;
  std::uint64_t request_seq = from->acked_seq;
  for (const auto& participant : participants_served_by(db, from_node)) {
    db.prepare("INSERT INTO hub_participant_transfers(participant, from_node, request_seq, from_site, to_site, reason, "
               "requested_by, requested_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'requested')")
        .bind_all(participant, from_node, static_cast<std::int64_t>(++request_seq), from->site_id, from->site_id,
                  "node " + from_node + " revoked: " + reason, who->name, now_ms)
        .run();
    TransferRecord t;
    {
      auto st = db.prepare(std::string("SELECT ") + kColumns + " FROM hub_participant_transfers WHERE id = ?");
      st.bind(1, db.last_insert_rowid());
      st.step();
      t = row(st);
    }
    auto moved = move_to_node(hub, t, *target, who->name, "node " + from_node + " revoked, participants re-homed",
                              now_ms);
    if (!moved) return moved.error();
    t.status = "approved";
    t.decided_by = who->name;
    t.decision_reason = reason;
    t.decided_ms = now_ms;
    db.prepare("UPDATE hub_participant_transfers SET status = 'approved', to_node = ?, decided_by = ?, "
               "decision_reason = ?, decided_ms = ?, kits = ?, record = ? WHERE id = ?")
        .bind_all(t.to_node, t.decided_by, t.decision_reason, t.decided_ms, static_cast<std::int64_t>(t.kits),
                  moved->record_text, t.id)
        .run();
    record_audit(db, {now_ms, who->name, "participant.rehomed", participant, reason,
                      "node " + from_node + " (revoked)",
                      "node " + to_node + ", " + std::to_string(t.kits) + " dispensed kits moved with it",
                      kTransferDecisionMeaning});
    record_audit(db, {now_ms, who->name, "directive.issued", to_node, "participant re-homed from node " + from_node, "",
                      std::string(shared::kParticipantTransferInDirective) + " #" +
                          std::to_string(moved->directive_seq)});
    done.directives.emplace_back(to_node, moved->directive_seq);
    done.moved.push_back(std::move(t));
  }
  tx.commit();
  return done;
}

}  // namespace irt::hub
