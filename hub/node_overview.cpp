#include "hub/node_overview.h"

#include "hub/audit.h"
#include "hub/deviations.h"
#include "hub/kit_inventory.h"
#include "hub/leases.h"
#include "hub/number_ranges.h"
#include "hub/randomization_store.h"

namespace irt::hub {

namespace {

const std::vector<storage::Migration> kNodeOverviewMigrations = {
    {1, R"sql(
CREATE TABLE hub_node_contacts (
  node_id TEXT PRIMARY KEY,
  last_push_ms INTEGER,
  receipt_seq INTEGER,
  last_pull_ms INTEGER,
  pulled_after INTEGER,
  skew_ms INTEGER,
  skew_seen_ms INTEGER
);
)sql"},
};

std::optional<std::int64_t> optional_int(const storage::Statement& st, int col) {
  if (st.is_null(col)) return std::nullopt;
  return st.int64(col);
}

nlohmann::json or_null(const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
nlohmann::json or_null(const std::optional<std::uint64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
nlohmann::json utc_or_null(const std::optional<std::int64_t>& ms) {
  return ms ? nlohmann::json(utc_text(*ms)) : nlohmann::json();
}

}  // namespace

shared::Status migrate_node_contacts(storage::Database& db) { return db.migrate("hub.node_contacts", kNodeOverviewMigrations); }

void record_push_contact(storage::Database& db, const std::string& node_id, std::uint64_t receipt_seq,
                         std::int64_t now_ms) {
  db.prepare("INSERT INTO hub_node_contacts(node_id, last_push_ms, receipt_seq) VALUES (?, ?, ?) "
             "ON CONFLICT(node_id) DO UPDATE SET last_push_ms = excluded.last_push_ms, "
             "receipt_seq = excluded.receipt_seq")
      .bind_all(node_id, now_ms, static_cast<std::int64_t>(receipt_seq))
      .run();
}

void record_pull_contact(storage::Database& db, const std::string& node_id, std::uint64_t after,
                         std::optional<std::int64_t> node_time_ms, std::int64_t now_ms) {
  std::optional<std::int64_t> skew;
  if (node_time_ms) skew = *node_time_ms - now_ms;
  // A pull without a clock reading keeps the last skew seen.
  db.prepare("INSERT INTO hub_node_contacts(node_id, last_pull_ms, pulled_after, skew_ms, skew_seen_ms) "
             "VALUES (?, ?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET last_pull_ms = excluded.last_pull_ms, "
             "pulled_after = excluded.pulled_after, "
             "skew_ms = COALESCE(excluded.skew_ms, hub_node_contacts.skew_ms), "
             "skew_seen_ms = COALESCE(excluded.skew_seen_ms, hub_node_contacts.skew_seen_ms)")
      .bind_all(node_id, now_ms, static_cast<std::int64_t>(after), skew,
                node_time_ms ? std::optional<std::int64_t>(now_ms) : std::nullopt)
      .run();
}

std::optional<std::uint64_t> directives_pulled_after(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare("SELECT pulled_after FROM hub_node_contacts WHERE node_id = ?");
  st.bind(1, node_id);
  if (!st.step() || st.is_null(0)) return std::nullopt;
  return static_cast<std::uint64_t>(st.int64(0));
}

shared::Result<std::vector<NodeOverview>> node_overview(HubState& hub, const std::string& only) {
  auto& db = hub.db();
  std::vector<sync::LedgerNode> nodes;
  if (only.empty()) {
    nodes = hub.ledger().nodes();
  } else if (auto n = hub.ledger().find_node(only)) {
    nodes.push_back(std::move(*n));
  } else {
    return shared::make_error(shared::Errc::not_found,
                              "no node " + only + " is enrolled; 'irt-hub nodes --data DIR' lists the enrolled nodes");
  }
  auto alerts = hub.ledger().alerts(true);
  std::vector<NodeOverview> out;
  for (auto& n : nodes) {
    NodeOverview o;
    auto contact = db.prepare(
        "SELECT last_push_ms, receipt_seq, last_pull_ms, pulled_after, skew_ms, skew_seen_ms FROM hub_node_contacts "
        "WHERE node_id = ?");
    contact.bind(1, n.node_id);
    if (contact.step()) {
      o.last_push_ms = optional_int(contact, 0);
      if (auto r = optional_int(contact, 1)) o.receipt_seq = static_cast<std::uint64_t>(*r);
      o.last_pull_ms = optional_int(contact, 2);
      if (auto a = optional_int(contact, 3)) o.directives_pulled_after = static_cast<std::uint64_t>(*a);
      o.skew_ms = optional_int(contact, 4);
      o.skew_seen_ms = optional_int(contact, 5);
    }
    o.last_contact_ms = o.last_push_ms;
    if (o.last_pull_ms && (!o.last_contact_ms || *o.last_pull_ms > *o.last_contact_ms))
      o.last_contact_ms = o.last_pull_ms;
    o.directives_issued = hub.outbox().last_seq(n.node_id);
    if (auto* store = hub.randomization()) {
      const auto& strata = store->list().strata;
      for (const auto& [stratum, left] : store->slices().free_slots_by_stratum(n.node_id))
        o.slots_left.push_back({stratum, strata.label(stratum), left});
    }
    o.numbers_left = numbers_left(db, n.node_id);
    if (auto lease = current_lease(db, n.node_id)) o.lease_until_ms = lease->until_ms;
    o.kits_by_status = kit_counts_by_status(db, "node", n.node_id);
    for (const auto& a : alerts)
      if (a.node_id == n.node_id) o.open_alerts.push_back(a);
    o.open_deviations = open_deviations_of(db, n.node_id);
    o.node = std::move(n);
    out.push_back(std::move(o));
  }
  return out;
}

nlohmann::json to_json(const NodeOverview& o) {
  const auto& n = o.node;
  nlohmann::json slots = nlohmann::json::array();
  for (const auto& s : o.slots_left) slots.push_back({{"stratum", s.stratum + 1}, {"label", s.label}, {"slots", s.slots}});
  nlohmann::json alerts = nlohmann::json::array();
  for (const auto& a : o.open_alerts)
    alerts.push_back({{"id", a.id}, {"kind", a.kind}, {"seq", or_null(a.seq)}, {"message", a.message},
                      {"created", utc_text(a.created_ms)}});
  nlohmann::json receipt;
  if (o.receipt_seq) receipt = {{"seq", *o.receipt_seq}, {"at", utc_or_null(o.last_push_ms)}};
  return {{"node_id", n.node_id},
          {"site_id", n.site_id},
          {"kind", n.kind},
          {"status", sync::to_string(n.status)},
          {"status_reason", n.status_reason},
          {"enrolled", utc_text(n.enrolled_ms)},
          {"public_key", n.public_key.hex()},
          {"last_contact", utc_or_null(o.last_contact_ms)},
          {"last_push", utc_or_null(o.last_push_ms)},
          {"last_pull", utc_or_null(o.last_pull_ms)},
          {"acked_seq", n.acked_seq},
          {"chain_head", n.acked_hash.hex()},
          {"last_receipt", receipt},
          {"directives_issued", o.directives_issued},
          {"directives_pulled_after", or_null(o.directives_pulled_after)},
          {"clock_skew_ms", or_null(o.skew_ms)},
          {"clock_skew_seen", utc_or_null(o.skew_seen_ms)},
          {"randomization_lease_until", utc_or_null(o.lease_until_ms)},
          {"slots_left", slots},
          {"numbers_left", o.numbers_left},
          {"kits_by_status", o.kits_by_status},
          {"open_alerts", alerts},
          {"open_deviations", o.open_deviations}};
}

}  // namespace irt::hub

namespace irt::hub {

SyncState sync_state(const NodeOverview& o, const shared::Study& study, std::int64_t now_ms) {
  SyncState s;
  if (o.last_contact_ms) s.since_contact_s = std::max<std::int64_t>(0, (now_ms - *o.last_contact_ms) / 1000);
  auto pulled = o.directives_pulled_after.value_or(0);
  s.directives_pending = o.directives_issued > pulled ? o.directives_issued - pulled : 0;
  const std::int64_t since = now_ms - o.last_contact_ms.value_or(o.node.enrolled_ms);
  s.overdue = o.node.status != sync::NodeStatus::revoked &&
              since > static_cast<std::int64_t>(study.supply.offline_days) * 24 * 3600 * 1000;
  return s;
}

nlohmann::json to_json(const SyncState& s) {
  return {{"since_contact_s", s.since_contact_s ? nlohmann::json(*s.since_contact_s) : nlohmann::json()},
          {"directives_pending", s.directives_pending},
          {"sync_overdue", s.overdue}};
}

}  // namespace irt::hub
