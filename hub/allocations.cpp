#include "hub/allocations.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "crypto/seal.h"
#include "hub/hub_state.h"
#include "sync/event.h"

namespace irt::hub {

namespace {

using nlohmann::json;

// Migration 1 was part of the earlier "hub.consumption" component; IF NOT
// EXISTS keeps it a no-op on a hub made then.
const std::vector<storage::Migration> kAllocationsMigrations = {
    {1, R"sql(
CREATE TABLE IF NOT EXISTS hub_participants (
  number TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  site_id TEXT NOT NULL,
  factors TEXT NOT NULL,
  status TEXT NOT NULL,
  seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hub_allocations (
  participant TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  randomization_number TEXT NOT NULL,
  stratum INTEGER,
  slot INTEGER,
  stream_id INTEGER,
  decision_sequence INTEGER,
  arm TEXT NOT NULL,
  recorded_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hub_allocations_stream ON hub_allocations(node_id, stream_id, decision_sequence);
)sql"},
};

std::optional<std::size_t> arm_index(const shared::MinimizationConfig& config, const std::string& arm) {
  auto it = std::find(config.allocation.arms.begin(), config.allocation.arms.end(), arm);
  if (it == config.allocation.arms.end()) return std::nullopt;
  return static_cast<std::size_t>(it - config.allocation.arms.begin());
}

}  // namespace

shared::Status migrate_allocations(storage::Database& db) { return db.migrate("hub.allocations", kAllocationsMigrations); }

bool record_screening(storage::Database& db, const Screening& s) {
  db.prepare("INSERT INTO hub_participants(number, node_id, site_id, factors, status, seq) VALUES (?, ?, ?, ?, ?, ?) "
             "ON CONFLICT(number) DO NOTHING")
      .bind_all(s.number, s.node_id, s.site_id, s.factors_json, shared::to_string(s.status), static_cast<std::int64_t>(s.seq))
      .run();
  return db.changes() != 0;
}

void record_participant_status(storage::Database& db, const std::string& number, shared::ParticipantStatus status) {
  db.prepare("UPDATE hub_participants SET status = ? WHERE number = ?").bind_all(shared::to_string(status), number).run();
}

bool record_allocation(storage::Database& db, const Allocation& a) {
  db.prepare(
        "INSERT INTO hub_allocations(participant, node_id, seq, randomization_number, stratum, slot, stream_id, "
        "decision_sequence, arm, recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(participant) DO NOTHING")
      .bind_all(a.participant, a.node_id, static_cast<std::int64_t>(a.seq), a.randomization_number, a.stratum, a.slot,
                a.stream_id, a.decision_sequence, a.arm, a.recorded_ms)
      .run();
  return db.changes() != 0;
}

std::optional<std::pair<std::string, std::string>> participant_home(storage::Database& db, const std::string& number) {
  auto st = db.prepare("SELECT node_id, site_id FROM hub_participants WHERE number = ?");
  st.bind(1, number);
  if (!st.step()) return std::nullopt;
  return std::make_pair(st.text(0), st.text(1));
}

bool move_participant(storage::Database& db, const std::string& number, const std::string& node_id,
                      const std::string& site_id) {
  db.prepare("UPDATE hub_participants SET node_id = ?, site_id = ? WHERE number = ?")
      .bind_all(node_id, site_id, number)
      .run();
  return db.changes() == 1;
}

std::vector<std::string> participants_served_by(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare(
      "SELECT number FROM hub_participants WHERE node_id = ? AND status IN ('screened', 'randomized') ORDER BY number");
  st.bind(1, node_id);
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

bool arm_has_allocations(storage::Database& db, const std::string& arm) {
  return db.prepare("SELECT 1 FROM hub_allocations WHERE arm = ? LIMIT 1").bind_all(arm).step();
}

bool site_has_participants(storage::Database& db, const std::string& site_id) {
  return db.prepare("SELECT 1 FROM hub_participants WHERE site_id = ? LIMIT 1").bind_all(site_id).step();
}

bool any_allocation(storage::Database& db) { return db.prepare("SELECT 1 FROM hub_allocations LIMIT 1").step(); }

namespace {
std::map<std::string, std::string> factors_of(const std::string& text) {
  std::map<std::string, std::string> out;
  auto j = json::parse(text, nullptr, false);
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  return out;
}
}  // namespace

std::map<std::string, std::string> participant_factors(storage::Database& db, const std::string& number) {
  auto st = db.prepare("SELECT factors FROM hub_participants WHERE number = ?");
  st.bind(1, number);
  return st.step() ? factors_of(st.text(0)) : std::map<std::string, std::string>{};
}

std::vector<AllocatedParticipant> allocated_participants(storage::Database& db) {
  auto st = db.prepare(
      "SELECT a.participant, p.site_id, p.factors, a.arm, a.node_id, a.seq FROM hub_allocations a "
      "JOIN hub_participants p ON p.number = a.participant ORDER BY a.participant");
  std::vector<AllocatedParticipant> out;
  while (st.step())
    out.push_back({st.text(0), st.text(1), factors_of(st.text(2)), st.text(3), st.text(4),
                   static_cast<std::uint64_t>(st.int64(5))});
  return out;
}

std::vector<shared::OwnAllocation> stream_allocations(storage::Database& db, const std::string& node_id,
                                                      std::uint64_t stream_id, std::uint64_t before) {
  std::vector<shared::OwnAllocation> out;
  auto own = db.prepare(
      "SELECT participant, arm FROM hub_allocations WHERE node_id = ? AND stream_id = ? AND decision_sequence < ?");
  own.bind_all(node_id, static_cast<std::int64_t>(stream_id), static_cast<std::int64_t>(before));
  while (own.step()) out.push_back({participant_factors(db, own.text(0)), own.text(1)});
  return out;
}

std::pair<shared::MarginalTotals, std::uint64_t> allocation_totals(storage::Database& db,
                                                                   const shared::MinimizationConfig& config,
                                                                   std::int64_t streams_from_ms) {
  shared::MarginalTotals totals(config);
  std::uint64_t n = 0;
  auto st = streams_from_ms == 0
                ? db.prepare("SELECT participant, arm FROM hub_allocations")
                : db.prepare("SELECT a.participant, a.arm FROM hub_allocations a JOIN hub_minimization_streams s "
                             "ON s.node_id = a.node_id AND s.stream_id = a.stream_id WHERE s.issued_ms >= ?");
  if (streams_from_ms != 0) st.bind(1, streams_from_ms);
  while (st.step()) {
    ++n;
    auto levels = shared::minimization_levels(config, participant_factors(db, st.text(0)));
    auto k = arm_index(config, st.text(1));
    if (levels && k) totals.add(*levels, *k);
  }
  return {totals, n};
}

std::uint64_t allocations_matching(storage::Database& db, const std::map<std::string, std::string>& levels) {
  std::uint64_t n = 0;
  auto st = db.prepare("SELECT participant FROM hub_allocations");
  while (st.step()) {
    auto f = participant_factors(db, st.text(0));
    bool all = true;
    for (const auto& [k, v] : levels) {
      auto it = f.find(k);
      all = all && it != f.end() && it->second == v;
    }
    n += all;
  }
  return n;
}

std::vector<SiteAllocation> site_allocations(storage::Database& db, const std::string& site_id) {
  auto st = db.prepare(
      "SELECT a.participant, a.arm, p.status FROM hub_allocations a JOIN hub_participants p ON p.number = a.participant "
      "WHERE p.site_id = ? ORDER BY a.participant");
  st.bind(1, site_id);
  std::vector<SiteAllocation> out;
  const auto withdrawn = shared::to_string(shared::ParticipantStatus::withdrawn);
  const auto completed = shared::to_string(shared::ParticipantStatus::completed);
  while (st.step()) out.push_back({st.text(0), st.text(1), st.text(2) != withdrawn && st.text(2) != completed});
  return out;
}

std::uint64_t site_allocation_count(storage::Database& db, const std::string& site_id) {
  auto st = db.prepare(
      "SELECT count(*) FROM hub_allocations a JOIN hub_participants p ON p.number = a.participant WHERE p.site_id = ?");
  st.bind(1, site_id);
  st.step();
  return static_cast<std::uint64_t>(st.int64(0));
}

std::optional<std::pair<std::string, std::uint64_t>> allocation_event(storage::Database& db, const std::string& number) {
  auto st = db.prepare("SELECT node_id, seq FROM hub_allocations WHERE participant = ?");
  st.bind(1, number);
  if (!st.step()) return std::nullopt;
  return std::make_pair(st.text(0), static_cast<std::uint64_t>(st.int64(1)));
}

std::vector<std::string> verify_allocations(HubState& hub) {
  struct Randomization {
    std::string participant;
    std::optional<std::string> arm;  // nullopt when the sealed part does not open
  };
  std::map<std::pair<std::string, std::uint64_t>, Randomization> events;
  std::set<std::string> randomized;
  for (const auto& node : hub.ledger().nodes())
    for (const auto& record : hub.ledger().records_after(node.node_id, 0, node.acked_seq)) {
      auto e = sync::parse_event(record);
      if (!e || e->body.type != shared::kRandomizedEvent) continue;
      auto p = shared::parse_randomized(crypto::to_string(e->body.payload));
      if (!p) continue;  // consumption kept it as unreadable and raised its alert
      Randomization r{p->participant, std::nullopt};
      auto box = crypto::from_base64(p->sealed);
      auto plain = box ? crypto::open_sealed(hub.unblinding_key(), *box) : std::nullopt;
      if (plain)
        if (auto sealed = shared::parse_randomized_sealed(crypto::to_string(*plain))) r.arm = sealed->arm;
      if (r.arm) randomized.insert(r.participant);
      events[{node.node_id, e->body.seq}] = std::move(r);
    }
  std::vector<std::string> problems;
  for (const auto& a : allocated_participants(hub.db())) {
    const std::string where = "hub_allocations: participant " + a.participant;
    auto it = events.find({a.node_id, a.seq});
    if (it == events.end()) {
      problems.push_back(where + " names event " + std::to_string(a.seq) + " of node " + a.node_id +
                         ", which is not a randomization in the ledger");
      continue;
    }
    if (it->second.participant != a.participant)
      problems.push_back(where + ": event " + std::to_string(a.seq) + " of node " + a.node_id + " randomized " +
                         it->second.participant + ", not " + a.participant);
    else if (it->second.arm != a.arm)
      problems.push_back(where + ": the arm differs from the one sealed in event " + std::to_string(a.seq) +
                         " of node " + a.node_id);
    randomized.erase(a.participant);
  }
  for (const auto& number : randomized)
    problems.push_back("hub_allocations: participant " + number +
                       " was randomized in the ledger but has no allocation (or no screening) at the hub");
  return problems;
}

}  // namespace irt::hub
