#include "hub/push_order.h"

#include <iostream>

#include "sync/hlc.h"

namespace irt::hub {

namespace {

// One row per push in progress, in any hub process. started_ms is the wall
// clock of the process that registered it: processes behind one load balancer
// keep their clocks in step (NTP); a skew only shortens or lengthens how long
// a dead process's row is honoured, never past the limit of the waiter.
const std::vector<storage::Migration> kPushOrderMigrations = {
    {1, R"sql(
CREATE TABLE hub_pushes_in_progress (
  id INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  started_ms INTEGER NOT NULL
);
CREATE INDEX hub_pushes_in_progress_node ON hub_pushes_in_progress(node_id, first_seq);
)sql"},
};

}  // namespace

shared::Status migrate_push_order(storage::Database& db) { return db.migrate("hub.push_order", kPushOrderMigrations); }

PushOrder::Ticket::Ticket(PushOrder& order, const std::string& node_id, std::uint64_t first) : order_(order) {
  auto& db = order_.db_;
  try {
    auto now = sync::system_millis();
    storage::Transaction tx(db, storage::Durability::deferred);
    db.prepare("DELETE FROM hub_pushes_in_progress WHERE started_ms < ?").bind(1, now - order_.limit_.count()).run();
    db.prepare("INSERT INTO hub_pushes_in_progress(node_id, first_seq, started_ms) VALUES (?, ?, ?)")
        .bind_all(node_id, static_cast<std::int64_t>(first), now)
        .run();
    id_ = db.last_insert_rowid();
    tx.commit();
  } catch (const storage::StorageError& e) {
    // Ordering is a courtesy to the node: without the row, its next push may
    // be refused as a gap and resent. The push itself goes on.
    std::cerr << "irt-hub: registering a push of node " << node_id << " failed: " << e.what() << "\n";
  }
}

PushOrder::Ticket::~Ticket() {
  if (id_ != 0) try {
      storage::Transaction tx(order_.db_, storage::Durability::deferred);
      order_.db_.prepare("DELETE FROM hub_pushes_in_progress WHERE id = ?").bind(1, id_).run();
      tx.commit();
    } catch (const storage::StorageError& e) {
      std::cerr << "irt-hub: a push ended but its row stays until it expires: " << e.what() << "\n";
    }
  order_.turn_.notify_all();
}

bool PushOrder::earlier_in_progress(const std::string& node_id, std::uint64_t first) {
  auto st = db_.prepare(
      "SELECT 1 FROM hub_pushes_in_progress WHERE node_id = ? AND first_seq < ? AND started_ms >= ? LIMIT 1");
  st.bind_all(node_id, static_cast<std::int64_t>(first), sync::system_millis() - limit_.count());
  return st.step();
}

void PushOrder::wait_for_predecessor(std::unique_lock<std::mutex>& lock, const std::string& node_id,
                                     std::uint64_t first, const std::function<std::uint64_t()>& acked_seq) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (first <= acked_seq() + 1) return;
    auto waited = std::chrono::steady_clock::now() - start;
    if ((waited >= grace_ && !earlier_in_progress(node_id, first)) || waited >= limit_) return;
    turn_.wait_for(lock, kPollInterval);
  }
}

}  // namespace irt::hub
