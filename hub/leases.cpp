#include "hub/leases.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/tuning.h"

namespace irt::hub {

namespace {

const std::vector<storage::Migration> kLeasesMigrations = {
    {1, R"sql(
CREATE TABLE hub_leases (
  node_id TEXT NOT NULL,
  lease_id INTEGER NOT NULL,
  until_ms INTEGER NOT NULL,
  issued_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  directive_seq INTEGER NOT NULL,
  PRIMARY KEY (node_id, lease_id)
);
CREATE TABLE hub_lease_bounds (
  bound_id INTEGER NOT NULL PRIMARY KEY,
  until_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  signer TEXT NOT NULL,
  made_ms INTEGER NOT NULL
);
)sql"},
};

// Issues lease `until_ms` to the node, records and audits it.
void grant_lease(HubState& hub, const std::string& node_id, std::int64_t until_ms, const std::string& reason,
                 const std::string& actor, std::int64_t now_ms) {
  auto& db = hub.db();
  auto held = current_lease(db, node_id);
  shared::RandomizationLease lease{held ? held->lease_id + 1 : 1, until_ms, reason};
  nlohmann::json payload = lease;
  auto seq = hub.outbox().issue(node_id, shared::kGrantLeaseDirective, payload.dump(), now_ms);
  db.prepare("INSERT INTO hub_leases(node_id, lease_id, until_ms, issued_ms, reason, directive_seq) "
             "VALUES (?, ?, ?, ?, ?, ?)")
      .bind_all(node_id, static_cast<std::int64_t>(lease.lease_id), until_ms, now_ms, reason,
                static_cast<std::int64_t>(seq))
      .run();
  record_audit(db, {now_ms, actor, "grant.lease", node_id, reason,
                    held ? "randomization until " + utc_text(held->until_ms) : "",
                    "randomization until " + utc_text(until_ms) + " (lease " + std::to_string(lease.lease_id) +
                        ", directive " + std::to_string(seq) + ")"});
}

}  // namespace

shared::Status migrate_leases(storage::Database& db) { return db.migrate("hub.leases", kLeasesMigrations); }

std::optional<shared::RandomizationLease> current_lease(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare("SELECT lease_id, until_ms, reason FROM hub_leases WHERE node_id = ? "
                       "ORDER BY lease_id DESC LIMIT 1");
  st.bind(1, node_id);
  if (!st.step()) return std::nullopt;
  return shared::RandomizationLease{static_cast<std::uint64_t>(st.int64(0)), st.int64(1), st.text(2)};
}

std::optional<std::int64_t> lease_bound(storage::Database& db, std::int64_t now_ms) {
  auto st = db.prepare("SELECT min(until_ms) FROM hub_lease_bounds WHERE until_ms > ?");
  st.bind(1, now_ms);
  if (!st.step() || st.is_null(0)) return std::nullopt;
  return st.int64(0);
}

std::int64_t lease_end(HubState& hub, std::int64_t now_ms) {
  std::int64_t end = now_ms + static_cast<std::int64_t>(hub.study().supply.offline_days) * kMillisPerDay;
  if (auto bound = lease_bound(hub.db(), now_ms)) end = std::min(end, *bound);
  return end;
}

bool renew_lease(HubState& hub, const std::string& node_id, std::int64_t now_ms) {
  const auto end = lease_end(hub, now_ms);
  auto held = current_lease(hub.db(), node_id);
  if (held && end < held->until_ms + kLeaseRenewStepMs && end >= held->until_ms) return false;
  grant_lease(hub, node_id, end, held ? "renewed at sync" : "first lease at enrollment", "hub", now_ms);
  return true;
}

shared::Result<LeasesShortened> shorten_leases(HubState& hub, std::int64_t until_ms, const std::string& reason,
                                               const Signature& signer, std::int64_t now_ms) {
  if (reason.empty())
    return shared::make_error(shared::Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  if (until_ms <= now_ms)
    return shared::make_error(shared::Errc::invalid_input,
                              "--until " + utc_text(until_ms) + " is not after now (" + utc_text(now_ms) +
                                  "); give a time to come: leases end then at the latest");
  auto who = check_signature(hub, signer, shared::Permission::manage_study);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  std::int64_t bound_id = 1;
  {
    auto next = db.prepare("SELECT coalesce(max(bound_id), 0) + 1 FROM hub_lease_bounds");
    if (next.step()) bound_id = next.int64(0);
  }
  const auto before = lease_bound(db, now_ms);
  db.prepare("INSERT INTO hub_lease_bounds(bound_id, until_ms, reason, signer, made_ms) VALUES (?, ?, ?, ?, ?)")
      .bind_all(bound_id, until_ms, reason, who->name, now_ms)
      .run();
  LeasesShortened out{until_ms, {}};
  for (const auto& node : hub.ledger().nodes()) {
    // A frozen node still pulls: it takes the shorter lease too.
    if (node.status == sync::NodeStatus::revoked) continue;
    auto held = current_lease(db, node.node_id);
    if (held && held->until_ms <= until_ms) continue;
    grant_lease(hub, node.node_id, until_ms, "shortened: " + reason, who->name, now_ms);
    out.nodes.push_back(node.node_id);
  }
  record_audit(db, {now_ms, who->name, "lease.shortened", "randomization leases", reason,
                    before ? "leases end by " + utc_text(*before) : "leases end offline_days after each sync",
                    "leases end by " + utc_text(until_ms) + " (bound " + std::to_string(bound_id) + "); " +
                        std::to_string(out.nodes.size()) + " node(s) given a shorter lease",
                    "approved"});
  tx.commit();
  return out;
}

std::vector<std::string> verify_leases(HubState& hub) {
  std::vector<std::string> problems;
  // (node, lease id) -> (until, directive seq), as signed.
  std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> signed_leases;
  for (const auto& node : hub.ledger().nodes())
    for (const auto& [seq, payload] : hub.outbox().payloads_of(node.node_id, shared::kGrantLeaseDirective)) {
      auto lease = shared::parse_lease(payload);
      if (!lease) {
        problems.push_back("hub_directives: node " + node.node_id + " directive " + std::to_string(seq) +
                           " is not a lease (" + lease.error().message + ")");
        continue;
      }
      signed_leases[{node.node_id, static_cast<std::int64_t>(lease->lease_id)}] = {lease->until_ms,
                                                                                   static_cast<std::int64_t>(seq)};
    }
  auto st = hub.db().prepare("SELECT node_id, lease_id, until_ms, directive_seq FROM hub_leases");
  while (st.step()) {
    const std::pair<std::string, std::int64_t> key{st.text(0), st.int64(1)};
    const std::string where = "hub_leases: node " + key.first + " lease " + std::to_string(key.second);
    auto it = signed_leases.find(key);
    if (it == signed_leases.end()) {
      problems.push_back(where + " has no grant.lease directive: it was added by hand");
      continue;
    }
    if (st.int64(2) != it->second.first)
      problems.push_back(where + ": ends " + utc_text(st.int64(2)) + ", its directive says " +
                         utc_text(it->second.first));
    if (st.int64(3) != it->second.second)
      problems.push_back(where + ": directive " + std::to_string(st.int64(3)) + ", it was directive " +
                         std::to_string(it->second.second));
    signed_leases.erase(it);
  }
  for (const auto& [key, v] : signed_leases)
    problems.push_back("hub_leases: node " + key.first + " lease " + std::to_string(key.second) +
                       " (directive " + std::to_string(v.second) + ") is missing");
  return problems;
}

}  // namespace irt::hub
