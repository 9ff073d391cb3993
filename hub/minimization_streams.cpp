#include "hub/minimization_streams.h"

#include <nlohmann/json.hpp>

namespace irt::hub {

namespace {

// Every stream granted. `baseline` is the directive's baseline as JSON
// ([factor][level][arm] numbers). Migration 1 was part of the earlier
// "hub.grants" component; IF NOT EXISTS keeps it a no-op on a hub made then.
const std::vector<storage::Migration> kMinimizationStreamsMigrations = {
    {1, R"sql(
CREATE TABLE IF NOT EXISTS hub_minimization_streams (
  node_id TEXT NOT NULL,
  stream_id INTEGER NOT NULL,
  seed BLOB NOT NULL,
  allowance INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0,
  synced_participants INTEGER NOT NULL,
  baseline TEXT NOT NULL,
  issued_ms INTEGER NOT NULL,
  voided_ms INTEGER,
  PRIMARY KEY (node_id, stream_id)
);
)sql"},
};


// The stored baseline, or an empty one when it is not [[[number...]...]...].
shared::BaselineCells parse_baseline(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  shared::BaselineCells out;
  if (!j.is_array()) return {};
  for (const auto& f : j) {
    if (!f.is_array()) return {};
    auto& levels = out.emplace_back();
    for (const auto& l : f) {
      if (!l.is_array()) return {};
      auto& arms = levels.emplace_back();
      for (const auto& k : l) {
        if (!k.is_number()) return {};
        arms.push_back(k.get<double>());
      }
    }
  }
  return out;
}

}  // namespace

shared::Status migrate_minimization_streams(storage::Database& db) {
  return db.migrate("hub.minimization_streams", kMinimizationStreamsMigrations);
}

std::uint64_t next_stream_id(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare("SELECT coalesce(max(stream_id), 0) + 1 FROM hub_minimization_streams WHERE node_id = ?");
  st.bind(1, node_id);
  st.step();
  return static_cast<std::uint64_t>(st.int64(0));
}

std::uint64_t streams_granted(storage::Database& db) {
  auto st = db.prepare("SELECT count(*) FROM hub_minimization_streams");
  st.step();
  return static_cast<std::uint64_t>(st.int64(0));
}

void record_stream_grant(storage::Database& db, const std::string& node_id,
                         const shared::MinimizationStreamGrant& g, crypto::ByteView seed, std::int64_t now_ms) {
  nlohmann::json baseline_json = g.baseline;
  db.prepare("INSERT INTO hub_minimization_streams(node_id, stream_id, seed, allowance, synced_participants, "
             "baseline, issued_ms) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind_all(node_id, storage::sql_int(g.stream_id), storage::BlobView(seed), storage::sql_int(g.allowance), storage::sql_int(g.synced_participants),
                baseline_json.dump(), now_ms)
      .run();
}

std::optional<StreamGrantRecord> find_stream(storage::Database& db, const std::string& node_id,
                                             std::uint64_t stream_id) {
  auto st = db.prepare(
      "SELECT seed, allowance, used, synced_participants, baseline, voided_ms, issued_ms FROM hub_minimization_streams "
      "WHERE node_id = ? AND stream_id = ?");
  st.bind_all(node_id, storage::sql_int(stream_id));
  if (!st.step()) return std::nullopt;
  StreamGrantRecord r;
  r.stream_id = stream_id;
  auto seed = st.blob(0);
  r.seed_hex = crypto::to_hex(seed);
  crypto::secure_zero(seed.data(), seed.size());
  r.allowance = static_cast<std::uint64_t>(st.int64(1));
  r.used = static_cast<std::uint64_t>(st.int64(2));
  r.synced_participants = static_cast<std::uint64_t>(st.int64(3));
  r.baseline = parse_baseline(st.text(4));
  r.voided = !st.is_null(5);
  r.issued_ms = st.int64(6);
  return r;
}

std::optional<StreamGrantRecord> newest_stream(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare("SELECT max(stream_id) FROM hub_minimization_streams WHERE node_id = ?");
  st.bind(1, node_id);
  if (!st.step() || st.is_null(0)) return std::nullopt;
  return find_stream(db, node_id, static_cast<std::uint64_t>(st.int64(0)));
}

void record_stream_use(storage::Database& db, const std::string& node_id, std::uint64_t stream_id,
                       std::uint64_t decision_sequence) {
  db.prepare("UPDATE hub_minimization_streams SET used = CASE WHEN used > ? THEN used ELSE ? END "
             "WHERE node_id = ? AND stream_id = ?")
      .bind_all(storage::sql_int(decision_sequence), storage::sql_int(decision_sequence), node_id, storage::sql_int(stream_id))
      .run();
}

std::uint64_t void_node_streams(storage::Database& db, const std::string& node_id, std::int64_t now_ms) {
  db.prepare("UPDATE hub_minimization_streams SET voided_ms = ? WHERE node_id = ? AND voided_ms IS NULL")
      .bind_all(now_ms, node_id)
      .run();
  return static_cast<std::uint64_t>(db.changes());
}

}  // namespace irt::hub
