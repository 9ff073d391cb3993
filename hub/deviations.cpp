#include "hub/deviations.h"

#include <map>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "crypto/seal.h"
#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/kit_decisions.h"
#include "hub/kit_inventory.h"
#include "shared/civil_date.h"
#include "shared/directive_payloads.h"
#include "sync/event.h"

namespace irt::hub {

namespace {

using shared::Errc;
using shared::make_error;

const std::vector<storage::Migration> kDeviationsMigrations = {
    {1, R"sql(
CREATE TABLE hub_deviations (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  site_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  event_type TEXT NOT NULL,
  summary TEXT NOT NULL,
  sealed TEXT NOT NULL,
  raised_ms INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged')),
  acknowledged_by TEXT NOT NULL DEFAULT '',
  acknowledged_ms INTEGER,
  comment TEXT NOT NULL DEFAULT '',
  UNIQUE (kind, node_id, seq, subject)
);
CREATE INDEX hub_deviations_open ON hub_deviations(status, node_id);
)sql"},
};

const char* kColumns =
    "id, kind, node_id, seq, site_id, subject, event_type, summary, sealed, raised_ms, status, acknowledged_by, "
    "acknowledged_ms, comment";

Deviation read_row(HubState& hub, const storage::Statement& st, bool unblinded) {
  Deviation d;
  d.id = st.int64(0);
  d.kind = st.text(1);
  d.node_id = st.text(2);
  d.seq = static_cast<std::uint64_t>(st.int64(3));
  d.site_id = st.text(4);
  d.subject = st.text(5);
  d.event_type = st.text(6);
  d.summary = st.text(7);
  if (auto sealed = st.text(8); unblinded && !sealed.empty()) {
    auto box = crypto::from_base64(sealed);
    auto plain = box ? crypto::open_sealed(hub.unblinding_key(), *box) : std::nullopt;
    d.unblinded = plain ? std::string(plain->begin(), plain->end())
                        : std::string("(the sealed part does not open with the hub's unblinding key)");
  }
  d.raised_ms = st.int64(9);
  d.status = st.text(10);
  d.acknowledged_by = st.text(11);
  if (!st.is_null(12)) d.acknowledged_ms = st.int64(12);
  d.comment = st.text(13);
  return d;
}

}  // namespace

shared::Status migrate_deviations(storage::Database& db) { return db.migrate("hub.deviations", kDeviationsMigrations); }

std::optional<std::int64_t> raise_deviation(HubState& hub, const NewDeviation& d, std::int64_t now_ms) {
  auto& db = hub.db();
  if (d.kind == deviation_kind::kRevokedNode) {  // one open per node, however often it retries
    auto open = db.prepare("SELECT 1 FROM hub_deviations WHERE kind = ? AND node_id = ? AND status = 'open'");
    open.bind_all(d.kind, d.node_id);
    if (open.step()) return std::nullopt;
  }
  auto node = hub.ledger().find_node(d.node_id);
  std::string sealed;
  if (!d.unblinded.empty())
    sealed = crypto::to_base64(crypto::seal_to(hub.unblinding_key().public_key(), crypto::as_bytes(d.unblinded)));
  db.prepare("INSERT INTO hub_deviations(kind, node_id, seq, site_id, subject, event_type, summary, sealed, "
             "raised_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open') "
             "ON CONFLICT(kind, node_id, seq, subject) DO NOTHING")
      .bind_all(d.kind, d.node_id, static_cast<std::int64_t>(d.seq), node ? node->site_id : std::string(), d.subject,
                d.event_type, d.summary, sealed, now_ms)
      .run();
  if (db.changes() == 0) return std::nullopt;
  auto id = db.last_insert_rowid();
  record_audit(db, {now_ms, "hub", "deviation.raised", "deviation " + std::to_string(id), d.summary, "",
                    std::string(d.kind) + " from event " + std::to_string(d.seq) + " of node " + d.node_id});
  return id;
}

std::vector<Deviation> deviations(HubState& hub, bool open_only, bool unblinded) {
  auto st = hub.db().prepare(std::string("SELECT ") + kColumns + " FROM hub_deviations" +
                             (open_only ? " WHERE status = 'open'" : "") + " ORDER BY id");
  std::vector<Deviation> out;
  while (st.step()) out.push_back(read_row(hub, st, unblinded));
  return out;
}

std::vector<std::string> verify_deviations(HubState& hub) {
  std::map<std::string, AuditEntry> raised, acknowledged;  // by subject "deviation N"
  for (auto& e : audit_entries(hub.db())) {
    if (e.action == "deviation.raised") raised[e.subject] = std::move(e);
    else if (e.action == "deviation.acknowledged") acknowledged[e.subject] = std::move(e);
  }
  std::vector<std::string> problems;
  for (const auto& d : deviations(hub, false, false)) {
    const std::string subject = "deviation " + std::to_string(d.id);
    const std::string where = "hub_deviations: " + subject;
    auto differs = [&](const std::string& field, const std::string& stored, const std::string& audited) {
      if (stored != audited)
        problems.push_back(where + ": " + field + " is '" + stored + "', the audit trail says '" + audited + "'");
    };
    auto r = raised.find(subject);
    if (r == raised.end()) {
      problems.push_back(where + " (" + d.kind + ", node " + d.node_id + ") has no deviation.raised audit entry");
      continue;
    }
    differs("what it is", d.kind + " from event " + std::to_string(d.seq) + " of node " + d.node_id,
            r->second.new_value);
    differs("summary", d.summary, r->second.reason);
    differs("raised", utc_text(d.raised_ms), utc_text(r->second.at_ms));
    raised.erase(r);
    auto a = acknowledged.find(subject);
    if (a == acknowledged.end()) {
      differs("status", d.status, "open");
      continue;
    }
    differs("status", d.status, "acknowledged");
    differs("acknowledged by", d.acknowledged_by, a->second.actor);
    differs("comment", d.comment, a->second.reason);
    acknowledged.erase(a);
  }
  for (const auto& [subject, e] : raised)
    problems.push_back("hub_deviations: " + subject + " (" + e.new_value + ", raised " + utc_text(e.at_ms) +
                       ") is missing");
  return problems;
}

std::optional<Deviation> find_deviation(HubState& hub, std::int64_t id, bool unblinded) {
  auto st = hub.db().prepare(std::string("SELECT ") + kColumns + " FROM hub_deviations WHERE id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return read_row(hub, st, unblinded);
}

std::size_t open_deviations_of(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare("SELECT count(*) FROM hub_deviations WHERE status = 'open' AND node_id = ?");
  st.bind(1, node_id);
  st.step();
  return static_cast<std::size_t>(st.int64(0));
}

shared::Result<Deviation> acknowledge_deviation(HubState& hub, std::int64_t id, const std::string& comment,
                                                const Signature& signer, std::int64_t now_ms) {
  if (comment.empty())
    return make_error(Errc::invalid_input, "give a comment saying what was reviewed and decided (--comment TEXT)");
  auto who = check_signature(hub, signer, shared::Permission::manage_study);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto d = find_deviation(hub, id, false);
  if (!d)
    return make_error(Errc::not_found,
                      "no deviation #" + std::to_string(id) + "; 'irt-hub deviations --data DIR' lists them");
  if (d->status != "open")
    return make_error(Errc::conflict, "deviation #" + std::to_string(id) + " was already acknowledged by " +
                                          d->acknowledged_by + " at " + utc_text(*d->acknowledged_ms) +
                                          "; nothing was changed");
  db.prepare("UPDATE hub_deviations SET status = 'acknowledged', acknowledged_by = ?, acknowledged_ms = ?, "
             "comment = ? WHERE id = ?")
      .bind_all(who->name, now_ms, comment, id)
      .run();
  record_audit(db, {now_ms, who->name, "deviation.acknowledged", "deviation " + std::to_string(id), comment, "open",
                    "acknowledged", "reviewed"});
  tx.commit();
  d->status = "acknowledged";
  d->acknowledged_by = who->name;
  d->acknowledged_ms = now_ms;
  d->comment = comment;
  return *d;
}

// ---- rules

std::optional<std::string> visit_window_deviation(const shared::Study& study, const shared::Dispensed& d,
                                                  std::int64_t day) {
  std::int64_t from = d.window_from, to = d.window_to;
  if (const auto* v = study.find_visit(d.visit)) {
    from = v->day - v->window_before;
    to = v->day + v->window_after;
  }
  if (day >= from && day <= to && d.deviation_reason.empty()) return std::nullopt;
  std::string text = "participant " + d.participant + " was dispensed visit " + d.visit + " on day " +
                     std::to_string(day) + " after randomization, ";
  text += day >= from && day <= to ? "within" : "outside";
  text += " the visit's window (days " + std::to_string(from) + " to " + std::to_string(to) + ")";
  if (!d.deviation_reason.empty()) {
    text += "; the site recorded a deviation: " + d.deviation_reason;
    if (d.esignature) text += " (signed by " + d.esignature->signer + ")";
  }
  return text;
}

std::optional<std::int64_t> days_since_randomization(HubState& hub, const std::string& participant,
                                                     std::int64_t at_ms) {
  auto where = allocation_event(hub.db(), participant);
  if (!where) return std::nullopt;
  auto randomized = event_device_time_ms(hub, where->first, where->second);
  if (!randomized) return std::nullopt;
  return shared::day_of_millis(at_ms) - shared::day_of_millis(*randomized);
}

std::optional<std::int64_t> event_device_time_ms(HubState& hub, const std::string& node_id, std::uint64_t seq) {
  if (seq == 0) return std::nullopt;
  auto records = hub.ledger().records_after(node_id, seq - 1, 1);
  if (records.empty()) return std::nullopt;
  auto e = sync::parse_event(records.front());
  if (!e) return std::nullopt;
  return e->body.device_time_ms;
}

std::optional<std::string> kit_decision_deviation(HubState& hub, const std::string& node_id, const std::string& kit,
                                                  std::uint64_t directive_seq) {
  const auto sent = last_kit_decision(hub, node_id, kit);
  const std::uint64_t decided = sent ? sent->seq : 0;
  const std::string_view last = sent ? sent->type : std::string_view();
  const std::string cursor = " (the event carries directive cursor " + std::to_string(directive_seq) + ")";
  if (decided > 0 && last != shared::kKitsReleaseDirective)
    return "node " + node_id + " dispensed kit " + kit + ", which the hub had " +
           (last == shared::kKitsRejectDirective ? "rejected" : "put on hold (quarantined)") + " in directive " +
           std::to_string(decided) + "; the node " +
           (directive_seq >= decided ? "had already applied that decision" : "had not yet received that decision") +
           cursor;
  auto k = find_kit(hub.db(), kit);
  if (k && k->status == shared::KitStatus::quarantined && !(decided > 0 && directive_seq >= decided))
    return "node " + node_id + " dispensed kit " + kit + " while it stood quarantined at the hub" +
           (decided > 0 ? ", before the node had received its release in directive " + std::to_string(decided)
                        : std::string(", with no release decided")) +
           cursor;
  return std::nullopt;
}

nlohmann::json to_json(const Deviation& d) {
  nlohmann::json j{{"id", d.id},
                   {"kind", d.kind},
                   {"node_id", d.node_id},
                   {"seq", d.seq},
                   {"site_id", d.site_id},
                   {"event_type", d.event_type},
                   {"summary", d.summary},
                   {"raised", utc_text(d.raised_ms)},
                   {"status", d.status},
                   {"acknowledged_by", d.acknowledged_by.empty() ? nlohmann::json() : nlohmann::json(d.acknowledged_by)},
                   {"acknowledged", d.acknowledged_ms ? nlohmann::json(utc_text(*d.acknowledged_ms)) : nlohmann::json()},
                   {"comment", d.comment}};
  if (d.unblinded) j["unblinded"] = *d.unblinded;
  return j;
}

}  // namespace irt::hub
