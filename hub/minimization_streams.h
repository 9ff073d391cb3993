// The minimization streams the hub granted to nodes (docs/randomization.md):
// each a secret seed, an allowance of decisions, the baseline sent with it and
// how many of its decisions the node reported. A node uses its newest stream;
// a new one replaces it at a top-up. The seeds are secret: nothing here
// prints them.
//
// Who calls it: hub/grants.h (grant, top-up, caps, revocation) and
// hub/consumption.h (a decision replayed). Every function runs inside a
// transaction the caller holds.
// Tables: hub_minimization_streams. Thread-safety: as storage::Database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "shared/directive_payloads.h"
#include "shared/offline_minimization.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

shared::Status migrate_minimization_streams(storage::Database& db);

struct StreamGrantRecord {
  std::uint64_t stream_id = 0;
  std::string seed_hex;
  std::uint64_t allowance = 0;
  std::uint64_t used = 0;
  std::uint64_t synced_participants = 0;
  shared::BaselineCells baseline;  // empty when the stored baseline is damaged
  std::int64_t issued_ms = 0;
  bool voided = false;
};

// The id the node's next stream gets (1 for its first).
std::uint64_t next_stream_id(storage::Database& db, const std::string& node_id);
// Streams granted study-wide, to every node (picks the arm a new grant leans against).
std::uint64_t streams_granted(storage::Database& db);
// Records a stream granted with `seed` (grant.seed_hex is not read).
void record_stream_grant(storage::Database& db, const std::string& node_id,
                         const shared::MinimizationStreamGrant& grant, crypto::ByteView seed, std::int64_t now_ms);

std::optional<StreamGrantRecord> find_stream(storage::Database& db, const std::string& node_id,
                                             std::uint64_t stream_id);
std::optional<StreamGrantRecord> newest_stream(storage::Database& db, const std::string& node_id);
// A decision of the stream was reported (decision sequences grow from 1).
void record_stream_use(storage::Database& db, const std::string& node_id, std::uint64_t stream_id,
                       std::uint64_t decision_sequence);
// Revocation: voids the node's streams; returns how many were still live.
std::uint64_t void_node_streams(storage::Database& db, const std::string& node_id, std::int64_t now_ms);

}  // namespace irt::hub
