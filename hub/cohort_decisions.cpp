#include "hub/cohort_decisions.h"

#include <algorithm>

#include "hub/audit.h"
#include "hub/cap_allowances.h"

namespace irt::hub {

namespace {

using shared::Errc;
using shared::make_error;

// One row per decision; a cohort has at most one "open" and one "close".
const std::vector<storage::Migration> kCohortDecisionsMigrations = {
    {1, R"sql(
CREATE TABLE hub_cohort_decisions (
  id INTEGER PRIMARY KEY,
  cohort TEXT NOT NULL,
  decision TEXT NOT NULL,
  reason TEXT NOT NULL,
  signed_by TEXT NOT NULL,
  decided_ms INTEGER NOT NULL,
  UNIQUE (cohort, decision)
);
)sql"},
};

struct CohortDecisionRow {
  std::int64_t at_ms = 0;
  std::string signed_by;
};

std::optional<CohortDecisionRow> cohort_decision_row(storage::Database& db, const std::string& cohort,
                                                     const char* decision) {
  auto st = db.prepare("SELECT decided_ms, signed_by FROM hub_cohort_decisions WHERE cohort = ? AND decision = ?");
  st.bind_all(cohort, std::string(decision));
  if (!st.step()) return std::nullopt;
  return CohortDecisionRow{st.int64(0), st.text(1)};
}

// Why the decision cannot be taken now, or nothing when it can.
shared::Status cohort_decision_in_order(storage::Database& db, const shared::Study& study, const shared::Cohort& c,
                                        bool open) {
  const auto state = cohort_state(db, c);
  const std::string name = "cohort " + c.id;
  if (!c.opens_by_decision)
    return make_error(Errc::conflict, name + " is open from the start (the study gives it no \"opens\": "
                                             "\"by_decision\"), so it is not opened or closed by a decision; "
                                             "amend the study to have it open by decision. Nothing was changed");
  if (open && state == CohortState::open)
    return make_error(Errc::conflict, name + " is already open; nothing was changed");
  if (open && state == CohortState::closed)
    return make_error(Errc::conflict, name + " was closed by a decision and does not open again; nothing was changed");
  if (!open && state == CohortState::not_opened)
    return make_error(Errc::conflict, name + " was never opened, so it cannot be closed; open it first (irt-hub "
                                             "cohort open). Nothing was changed");
  if (!open && state == CohortState::closed)
    return make_error(Errc::conflict, name + " is already closed; nothing was changed");
  if (open && !c.after.empty()) {
    const auto* before = study.find_cohort(c.after);
    if (before && cohort_state(db, *before) != CohortState::closed)
      return make_error(Errc::conflict, name + " opens only after cohort " + c.after +
                                            " has been closed by a decision (its review), and cohort " + c.after +
                                            " is " + to_string(cohort_state(db, *before)) + "; close cohort " +
                                            c.after + " first. Nothing was changed");
  }
  return {};
}

}  // namespace

shared::Status migrate_cohort_decisions(storage::Database& db) {
  return db.migrate("hub.cohort_decisions", kCohortDecisionsMigrations);
}

std::string to_string(CohortState s) {
  switch (s) {
    case CohortState::not_opened: return "not_opened";
    case CohortState::open: return "open";
    case CohortState::closed: return "closed";
  }
  return "open";
}

CohortState cohort_state(storage::Database& db, const shared::Cohort& cohort) {
  if (!cohort.opens_by_decision) return CohortState::open;
  if (cohort_decision_row(db, cohort.id, "close")) return CohortState::closed;
  if (cohort_decision_row(db, cohort.id, "open")) return CohortState::open;
  return CohortState::not_opened;
}

std::vector<CohortStanding> cohort_standing(HubState& hub) {
  auto& db = hub.db();
  const auto counts = cohort_counts(db);
  const auto caps = cap_standing(hub);
  std::vector<CohortStanding> out;
  for (const auto& c : hub.study().cohorts) {
    CohortStanding s;
    s.id = c.id;
    s.name = c.name;
    s.opens_by_decision = c.opens_by_decision;
    s.after = c.after;
    s.state = cohort_state(db, c);
    if (auto o = cohort_decision_row(db, c.id, "open")) s.opened_ms = o->at_ms, s.opened_by = o->signed_by;
    if (auto o = cohort_decision_row(db, c.id, "close")) s.closed_ms = o->at_ms, s.closed_by = o->signed_by;
    if (auto it = counts.find(c.id); it != counts.end()) s.screened = it->second.screened, s.randomized = it->second.randomized;
    for (const auto& cap : caps)
      if (cap.scope == shared::CapScope::cohort && cap.id == c.id) s.limit = cap.limit, s.outstanding = cap.outstanding;
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json to_json(const CohortStanding& c) {
  using nlohmann::json;
  return json{{"id", c.id},
              {"name", c.name},
              {"opens", c.opens_by_decision ? "by_decision" : "at_start"},
              {"after", c.after.empty() ? json() : json(c.after)},
              {"state", to_string(c.state)},
              {"opened", c.opened_ms ? json(utc_text(c.opened_ms)) : json()},
              {"opened_by", c.opened_by.empty() ? json() : json(c.opened_by)},
              {"closed", c.closed_ms ? json(utc_text(c.closed_ms)) : json()},
              {"closed_by", c.closed_by.empty() ? json() : json(c.closed_by)},
              {"screened", c.screened},
              {"randomized", c.randomized},
              {"limit", c.limit ? json(*c.limit) : json()},
              {"places_outstanding", c.outstanding}};
}

shared::Result<CohortDecisionDone> decide_cohort(HubState& hub, const std::string& cohort, bool open,
                                                 const std::string& reason, const Signature& signer,
                                                 std::int64_t now_ms) {
  const auto& study = hub.study();
  const auto* c = study.find_cohort(cohort);
  if (!c) {
    std::string ids;
    for (const auto& o : study.cohorts) ids += (ids.empty() ? "" : ", ") + o.id;
    return make_error(Errc::not_found, "cohort '" + cohort + "' is not a cohort of the study" +
                                           (ids.empty() ? " (it defines none)" : "; use one of " + ids) +
                                           ". Nothing was changed");
  }
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  auto& db = hub.db();
  if (auto st = cohort_decision_in_order(db, study, *c, open); !st) return st.error();
  auto who = check_signature(hub, signer, shared::Permission::manage_study);
  if (!who) return who.error();
  storage::Transaction tx(db);
  // Checked again inside the transaction: two decisions racing take one turn each.
  if (auto st = cohort_decision_in_order(db, study, *c, open); !st) return st.error();
  CohortDecisionDone done;
  done.cohort = cohort;
  done.from = cohort_state(db, *c);
  done.to = open ? CohortState::open : CohortState::closed;
  done.signed_by = who->name;
  db.prepare("INSERT INTO hub_cohort_decisions(cohort, decision, reason, signed_by, decided_ms) VALUES (?, ?, ?, ?, ?)")
      .bind_all(cohort, std::string(open ? "open" : "close"), reason, who->name, now_ms)
      .run();
  done.decision_id = db.last_insert_rowid();
  std::string effect = open ? "nodes are granted places at their next sync" : "";
  if (!open) {
    auto voided = void_cohort_allowances(hub, cohort, who->name, reason, now_ms);
    done.places_voided = voided.places;
    done.directives = std::move(voided.directives);
    effect = std::to_string(voided.places) + " unused place(s) voided at " + std::to_string(done.directives.size()) +
             " node(s)";
  }
  record_audit(db, {now_ms, who->name, open ? "cohort.opened" : "cohort.closed", cohort,
                    reason + " (decision " + std::to_string(done.decision_id) + ")", to_string(done.from),
                    to_string(done.to) + "; " + effect, kCohortDecisionMeaning});
  tx.commit();
  return done;
}

std::optional<std::string> closed_cohort_deviation(HubState& hub, const std::string& cohort,
                                                   std::int64_t device_time_ms) {
  const auto* c = hub.study().find_cohort(cohort);
  if (!c || !c->opens_by_decision) return std::nullopt;
  // Only after a close: a node holds places in the cohort only once it has
  // synced after the opening, so an earlier screening is a clock's skew.
  auto closed = cohort_decision_row(hub.db(), cohort, "close");
  if (closed && device_time_ms >= closed->at_ms)
    return "screened into cohort " + cohort + " at " + utc_text(device_time_ms) + ", after the cohort was closed at " +
           utc_text(closed->at_ms) + " by " + closed->signed_by +
           " (the node had not synced since); the screening is kept. Review whether the participant stays in the "
           "cohort";
  return std::nullopt;
}

}  // namespace irt::hub
