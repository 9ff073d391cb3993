#include "hub/cap_allowances.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "hub/audit.h"
#include "hub/cohort_decisions.h"
#include "shared/directive_payloads.h"

namespace irt::hub {

namespace {

using shared::CapScope;
using shared::CapTracker;

// hub_cap_allowances: per node and capped arm or cohort, the total granted
// (it only grows) and, once the node is revoked, when it was voided.
// hub_cap_uses: every participant the hub learnt of, its cohort from the
// screening and its arm once randomized (NULL before), and the node that
// randomized it.
const std::vector<storage::Migration> kCapAllowancesMigrations = {
    {1, R"sql(
CREATE TABLE hub_cap_allowances (
  node_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  cap_id TEXT NOT NULL,
  granted INTEGER NOT NULL,
  voided_ms INTEGER,
  PRIMARY KEY (node_id, scope, cap_id)
);
CREATE TABLE hub_cap_uses (
  participant TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  cohort TEXT NOT NULL,
  arm TEXT
);
CREATE INDEX hub_cap_uses_node ON hub_cap_uses(node_id, arm, cohort);
)sql"},
};

struct CapRef {
  CapScope scope;
  std::string id;
  long limit;
};

std::vector<CapRef> allowance_caps(const shared::Study& study) {
  std::vector<CapRef> out;
  for (const auto& c : study.caps) {
    if (c.scope == CapScope::arm) out.push_back({c.scope, c.arm, c.limit});
    if (c.scope == CapScope::cohort) out.push_back({c.scope, c.cohort, c.limit});
  }
  return out;
}

// The caps' counts over the randomized participants of one node, or of all
// nodes when node_id is empty: CapTracker's rule, fed from hub_cap_uses.
CapTracker count_uses(HubState& hub, const std::string& node_id) {
  const auto& study = hub.study();
  auto tracker = CapTracker::create(study);
  if (!tracker) throw std::logic_error("a loaded study has invalid caps: " + tracker.error().message);
  auto st = hub.db().prepare(node_id.empty()
                                 ? "SELECT arm, cohort, count(*) FROM hub_cap_uses WHERE arm IS NOT NULL "
                                   "GROUP BY arm, cohort"
                                 : "SELECT arm, cohort, count(*) FROM hub_cap_uses WHERE node_id = ? AND arm IS NOT "
                                   "NULL GROUP BY arm, cohort");
  if (!node_id.empty()) st.bind(1, node_id);
  while (st.step()) {
    auto arm = st.text(0);
    auto it = std::find_if(study.arms.begin(), study.arms.end(), [&](const auto& a) { return a.id == arm; });
    // An arm the study does not define counts against no arm cap (its cohort still counts).
    tracker->record({}, st.text(1), static_cast<std::size_t>(it - study.arms.begin()), st.int64(2));
  }
  return std::move(tracker).value();
}

long used_of(const CapTracker& t, const CapRef& c) { return c.limit - t.remaining(c.scope, c.id); }

std::optional<long> granted_to(storage::Database& db, const std::string& node_id, const CapRef& c) {
  auto st = db.prepare(
      "SELECT granted FROM hub_cap_allowances WHERE node_id = ? AND scope = ? AND cap_id = ? AND voided_ms IS NULL");
  st.bind_all(node_id, shared::to_string(c.scope), c.id);
  if (!st.step()) return std::nullopt;
  return static_cast<long>(st.int64(0));
}

// Granted and not yet used, per node not revoked, for one cap.
class Outstanding {
 public:
  explicit Outstanding(HubState& hub) : hub_(hub) {}

  long of(const std::string& node_id, const CapRef& c) {
    auto granted = granted_to(hub_.db(), node_id, c);
    if (!granted) return 0;
    return std::max(0L, *granted - used_of(uses(node_id), c));
  }

  long elsewhere(const std::string& node_id, const CapRef& c) {
    auto st = hub_.db().prepare(
        "SELECT node_id FROM hub_cap_allowances WHERE scope = ? AND cap_id = ? AND voided_ms IS NULL AND node_id != ?");
    st.bind_all(shared::to_string(c.scope), c.id, node_id);
    std::vector<std::string> nodes;
    while (st.step()) nodes.push_back(st.text(0));
    long total = 0;
    for (const auto& n : nodes) total += of(n, c);
    return total;
  }

  long everywhere(const CapRef& c) { return elsewhere("", c); }

 private:
  const CapTracker& uses(const std::string& node_id) {
    auto it = by_node_.find(node_id);
    if (it == by_node_.end()) it = by_node_.emplace(node_id, count_uses(hub_, node_id)).first;
    return it->second;
  }
  HubState& hub_;
  std::map<std::string, CapTracker> by_node_;
};

}  // namespace

shared::Status migrate_cap_allowances(storage::Database& db) { return db.migrate("hub.cap_allowances", kCapAllowancesMigrations); }

bool has_allowance_caps(const shared::Study& study) { return !allowance_caps(study).empty(); }

std::uint64_t allowance_increment(const CapRoom& room, std::uint64_t target, double share) {
  if (!(share > 0.0) || share > 1.0) share = 1.0;
  const long free = room.remaining - room.outstanding_elsewhere;  // this node's room, what it holds included
  if (free <= room.held) return 0;
  // The epsilon keeps 3 x (1/3) from rounding up to 2.
  const long fair = static_cast<long>(std::ceil(static_cast<double>(free) * share - 1e-9));
  const long want = std::min(static_cast<long>(std::min<std::uint64_t>(target, static_cast<std::uint64_t>(free))), fair);
  return want > room.held ? static_cast<std::uint64_t>(want - room.held) : 0;
}

shared::Result<std::uint64_t> grant_cap_allowances(HubState& hub, const std::string& node_id,
                                                   const AllowanceSizing& sizing, std::int64_t now_ms) {
  const auto caps = allowance_caps(hub.study());
  if (caps.empty()) return std::uint64_t{0};
  auto& db = hub.db();
  const auto all = count_uses(hub, "");
  Outstanding outstanding(hub);
  shared::CapAllowanceGrant g;
  std::string cohorts;
  std::size_t arms = 0;
  for (const auto& c : caps) {
    // An arm an amendment closed for every stratum takes no one: no more places are granted for it.
    if (c.scope == CapScope::arm && hub.study().arm_closed_everywhere(c.id, shared::day_of_millis(now_ms))) continue;
    // A cohort opened by decision takes places only while it is open (hub/cohort_decisions.h).
    if (c.scope == CapScope::cohort && cohort_state(db, *hub.study().find_cohort(c.id)) != CohortState::open) continue;
    const long held = outstanding.of(node_id, c);
    if (held >= static_cast<long>(sizing.top_up_below)) continue;
    CapRoom room{all.remaining(c.scope, c.id), outstanding.elsewhere(node_id, c), held};
    const auto more = allowance_increment(room, sizing.target, sizing.share);
    if (more == 0) continue;
    const long granted = granted_to(db, node_id, c).value_or(0) + static_cast<long>(more);
    db.prepare("INSERT INTO hub_cap_allowances(node_id, scope, cap_id, granted) VALUES (?, ?, ?, ?) "
               "ON CONFLICT(node_id, scope, cap_id) DO UPDATE SET granted = excluded.granted")
        .bind_all(node_id, shared::to_string(c.scope), c.id, static_cast<std::int64_t>(granted))
        .run();
    g.allowances.push_back({c.scope, c.id, static_cast<std::uint64_t>(granted)});
    if (c.scope == CapScope::cohort)
      cohorts += (cohorts.empty() ? "" : ", ") + c.id + " " + std::to_string(granted);
    else
      ++arms;
  }
  if (g.allowances.empty()) return std::uint64_t{0};
  nlohmann::json payload = g;
  auto seq = hub.outbox().issue(node_id, shared::kGrantCapAllowanceDirective, payload.dump(), now_ms);
  // An arm's allowance follows from the participants already in the arm: the
  // trail counts arm allowances and names no arm and no amount.
  std::string text = cohorts.empty() ? "" : "cohorts (granted in all): " + cohorts;
  if (arms > 0) text += (text.empty() ? "" : "; ") + std::to_string(arms) + " arm allowance(s), not shown";
  record_audit(db, {now_ms, "hub", "grant.cap_allowance", node_id, "allowance under the arm and cohort caps", "",
                    text + " (directive " + std::to_string(seq) + ")"});
  return std::uint64_t{1};
}

namespace {

// The void path, at revocation and at a cohort's close: the node's unused
// allowance under `caps` no longer counts as outstanding. Returns how much.
std::uint64_t void_unused_allowances(HubState& hub, const std::string& node_id, const std::vector<CapRef>& caps,
                                     std::int64_t now_ms) {
  Outstanding outstanding(hub);
  std::uint64_t left = 0;
  auto voided = hub.db().prepare(
      "UPDATE hub_cap_allowances SET voided_ms = ? WHERE node_id = ? AND scope = ? AND cap_id = ? AND voided_ms IS NULL");
  for (const auto& c : caps) {
    left += static_cast<std::uint64_t>(outstanding.of(node_id, c));
    voided.reset();
    voided.bind_all(now_ms, node_id, shared::to_string(c.scope), c.id).run();
  }
  return left;
}

}  // namespace

std::uint64_t void_cap_allowances(HubState& hub, const std::string& node_id, const std::string& actor,
                                  std::int64_t now_ms) {
  const auto caps = allowance_caps(hub.study());
  if (caps.empty()) return 0;
  const auto left = void_unused_allowances(hub, node_id, caps, now_ms);
  if (left > 0)
    record_audit(hub.db(), {now_ms, actor, "grant.cap_allowance_voided", node_id, "node revoked", "granted",
                            std::to_string(left) +
                                " unused places under arm and cohort caps voided: they return to the other nodes"});
  return left;
}

CohortAllowancesVoided void_cohort_allowances(HubState& hub, const std::string& cohort, const std::string& actor,
                                              const std::string& reason, std::int64_t now_ms) {
  CohortAllowancesVoided out;
  std::vector<CapRef> caps;
  for (const auto& c : allowance_caps(hub.study()))
    if (c.scope == CapScope::cohort && c.id == cohort) caps.push_back(c);
  if (caps.empty()) return out;
  const auto& cap = caps.front();
  std::vector<std::string> nodes;
  {
    auto st = hub.db().prepare(
        "SELECT node_id FROM hub_cap_allowances WHERE scope = ? AND cap_id = ? AND voided_ms IS NULL ORDER BY node_id");
    st.bind_all(shared::to_string(CapScope::cohort), cohort);
    while (st.step()) nodes.push_back(st.text(0));
  }
  for (const auto& node : nodes) {
    const auto left = void_unused_allowances(hub, node, caps, now_ms);
    out.places += left;
    // The node's total becomes what it used as far as the hub knows; it
    // holds no place then, whatever it used offline since.
    const auto used = static_cast<std::uint64_t>(std::max(0L, used_of(count_uses(hub, node), cap)));
    shared::CapAllowanceGrant g;
    g.allowances.push_back({CapScope::cohort, cohort, used});
    nlohmann::json payload = g;
    auto seq = hub.outbox().issue(node, shared::kGrantCapAllowanceDirective, payload.dump(), now_ms);
    out.directives.emplace_back(node, seq);
    record_audit(hub.db(), {now_ms, actor, "grant.cap_allowance_voided", node, "cohort " + cohort + " closed: " + reason,
                            "granted",
                            std::to_string(left) + " unused place(s) in cohort " + cohort + " voided; total " +
                                std::to_string(used) + " (directive " + std::to_string(seq) + ")"});
  }
  return out;
}

void record_cohort(storage::Database& db, const std::string& node_id, const std::string& participant,
                   const std::string& cohort) {
  db.prepare("INSERT INTO hub_cap_uses(participant, node_id, cohort) VALUES (?, ?, ?) "
             "ON CONFLICT(participant) DO NOTHING")
      .bind_all(participant, node_id, cohort)
      .run();
}

void record_cap_use(storage::Database& db, const std::string& node_id, const std::string& participant,
                    const std::string& arm) {
  db.prepare("UPDATE hub_cap_uses SET arm = ?, node_id = ? WHERE participant = ? AND arm IS NULL")
      .bind_all(arm, node_id, participant)
      .run();
  if (db.changes() > 0) return;
  // No screening record (the participant is alerted elsewhere): it still counts
  // against its arm; a second randomization does not count twice.
  db.prepare("INSERT INTO hub_cap_uses(participant, node_id, cohort, arm) VALUES (?, ?, '', ?) "
             "ON CONFLICT(participant) DO NOTHING")
      .bind_all(participant, node_id, arm)
      .run();
}

std::optional<std::string> caps_exceeded(HubState& hub) {
  const auto caps = allowance_caps(hub.study());
  if (caps.empty()) return std::nullopt;
  const auto all = count_uses(hub, "");
  std::string cohorts;
  std::size_t arms = 0;
  for (const auto& c : caps) {
    if (all.remaining(c.scope, c.id) >= 0) continue;
    if (c.scope == CapScope::arm) {
      ++arms;
      continue;
    }
    cohorts += (cohorts.empty() ? "" : ", ") + std::string("cohort '") + c.id + "' has " +
               std::to_string(used_of(all, c)) + " randomized participants for a cap of " + std::to_string(c.limit);
  }
  if (cohorts.empty() && arms == 0) return std::nullopt;
  std::string text = cohorts;
  if (arms > 0)
    text += (text.empty() ? "" : "; ") + std::to_string(arms) +
            " arm cap(s) exceeded (not named, to keep the blind)";
  return "randomizations pushed by this node took caps over their limits: " + text +
         "; the events are kept. Review with the unblinded team how the caps were overshot";
}

std::vector<std::string> capped_out_arms(HubState& hub, const std::string& node_id) {
  std::vector<std::string> out;
  Outstanding outstanding(hub);
  for (const auto& c : allowance_caps(hub.study()))
    if (c.scope == CapScope::arm && outstanding.of(node_id, c) == 0) out.push_back(c.id);
  return out;
}

std::vector<CapStanding> cap_standing(HubState& hub) {
  std::vector<CapStanding> out;
  const auto all = count_uses(hub, "");
  Outstanding outstanding(hub);
  for (const auto& c : allowance_caps(hub.study()))
    out.push_back({c.scope, c.id, c.limit, used_of(all, c), outstanding.everywhere(c)});
  return out;
}

std::map<std::string, CohortCount> cohort_counts(storage::Database& db) {
  std::map<std::string, CohortCount> out;
  auto st = db.prepare("SELECT cohort, count(*), count(arm) FROM hub_cap_uses GROUP BY cohort");
  while (st.step()) out[st.text(0)] = {st.int64(1), st.int64(2)};
  return out;
}

long allowance_left(HubState& hub, const std::string& node_id, shared::CapScope scope, const std::string& id) {
  for (const auto& c : allowance_caps(hub.study()))
    if (c.scope == scope && c.id == id) return Outstanding(hub).of(node_id, c);
  return 0;
}

}  // namespace irt::hub
