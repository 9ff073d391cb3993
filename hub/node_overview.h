// The central team's view of its nodes, one function for `irt-hub nodes` and
// the API: per node its site and kind, status, last contact, events
// acknowledged and chain head, the last receipt it holds, the clock skew seen,
// what it may still consume (slots per stratum, participant numbers), the kits
// in its custody by status (never by kit type: a kit type can name an arm),
// its open alerts and deviations.
//
// Contacts: the sync server records each node's last push (inside the
// append's transaction: one row upserted per batch, so pushes stay as fast)
// and last pull (inside the pull's top-up transaction). The skew is the
// node's clock minus the hub's, read from the pull's signed time_ms at each
// pull; a push carries no reading of the node's clock as it is now (its events
// may have been recorded offline hours before), so pushes do not measure it.
// Tables: hub_node_contacts. Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/hub_state.h"
#include "shared/result.h"
#include "sync/ledger.h"

namespace irt::hub {

shared::Status migrate_node_contacts(storage::Database& db);

// Inside the push's append transaction: the node's last event acknowledged in
// that push is the one its receipt covers.
void record_push_contact(storage::Database& db, const std::string& node_id, std::uint64_t receipt_seq,
                         std::int64_t now_ms);
// Inside a transaction the caller holds: a pull asking for directives after
// `after`, signed at `node_time_ms` by the node's clock.
void record_pull_contact(storage::Database& db, const std::string& node_id, std::uint64_t after,
                         std::optional<std::int64_t> node_time_ms, std::int64_t now_ms);

// The directive cursor of the node's last pull: it had applied every
// directive up to it. nullopt before its first pull.
std::optional<std::uint64_t> directives_pulled_after(storage::Database& db, const std::string& node_id);

struct StratumLeft {
  std::uint32_t stratum = 0;  // 0-based
  std::string label;          // "site=101;sex=F"
  std::size_t slots = 0;
};

struct NodeOverview {
  sync::LedgerNode node;  // id, site, kind, status, acked seq, chain head
  std::optional<std::int64_t> last_contact_ms, last_push_ms, last_pull_ms;
  std::optional<std::uint64_t> receipt_seq;  // the event its last push's receipt covers
  std::optional<std::uint64_t> directives_pulled_after;  // the directive cursor of its last pull
  std::uint64_t directives_issued = 0;
  std::optional<std::int64_t> skew_ms;  // node clock minus hub clock, at its last pull
  std::optional<std::int64_t> skew_seen_ms;
  std::optional<std::int64_t> lease_until_ms;  // the end of the newest lease granted (hub/leases.h)
  std::vector<StratumLeft> slots_left;  // strata where it ever held slots; empty without a list
  std::uint64_t numbers_left = 0;
  std::map<std::string, std::size_t> kits_by_status;
  std::vector<sync::Alert> open_alerts;
  std::size_t open_deviations = 0;
};

// Every node, or the one named (not_found when there is none).
shared::Result<std::vector<NodeOverview>> node_overview(HubState& hub, const std::string& only = "");
nlohmann::json to_json(const NodeOverview& o);

// How current the hub's picture of a node is at `now_ms`: seconds since its
// last contact (null before any), the directives it has not pulled yet, and
// whether it has been silent for longer than the study's expected offline
// period (supply.offline_days; a node never heard from counts from its
// enrollment). A revoked node is never overdue.
struct SyncState {
  std::optional<std::int64_t> since_contact_s;
  std::uint64_t directives_pending = 0;
  bool overdue = false;
};
SyncState sync_state(const NodeOverview& o, const shared::Study& study, std::int64_t now_ms);
nlohmann::json to_json(const SyncState& s);

}  // namespace irt::hub
