// The order of a node's pushes at the hub. A node may have two pushes in
// flight (docs/sync-protocol.md, "Push"), and behind a load balancer they may
// reach two hub processes sharing one PostgreSQL. Their signatures are checked
// in parallel, but they are appended in seq order: a push that arrived ahead
// of its predecessor waits until the node's events just before it are
// recorded, or no earlier push of the node is in progress and a short grace
// (for one still on the wire) has passed; past a hard limit it goes on and
// the ledger refuses it as a gap.
//
// Pushes in progress are rows of hub_pushes_in_progress, so every process
// sees every other's: a push registers (begin) before its signature check and
// removes its row when it ends, appended or refused. The wait polls the
// database (the node's acked seq and those rows) every kPollInterval; a push
// of this process that ends wakes its waiters at once. A row older than the
// limit is ignored and cleared by the next registration, so a process killed
// mid-push holds nobody back for longer than the limit. Registrations commit
// with deferred durability: after a crash they are stale anyway.
//
// Who calls it: hub/sync_server.cpp, for every push. Tables:
// hub_pushes_in_progress. Thread-safety: every call is made with the caller's
// mutex held (the one that guards `db`, passed to wait_for_predecessor); the
// wait releases it while it sleeps.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "hub/tuning.h"  // kPredecessorGrace, kPredecessorLimit
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

shared::Status migrate_push_order(storage::Database& db);

class PushOrder {
 public:
  // The database must hold the hub's schema (migrate_push_order).
  explicit PushOrder(storage::Database& db, std::chrono::milliseconds grace = kPredecessorGrace,
                     std::chrono::milliseconds limit = kPredecessorLimit)
      : db_(db), grace_(grace), limit_(limit) {}

  // A push in progress, from its registration to its end (appended or
  // refused). Destroy it with the caller's mutex held.
  class Ticket {
   public:
    Ticket(PushOrder& order, const std::string& node_id, std::uint64_t first);
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    PushOrder& order_;
    std::int64_t id_ = 0;  // its row; 0 if registering failed (the push then waits and is waited for less)
  };

  // Registers a push of `node_id` whose first event is `first`.
  Ticket begin(const std::string& node_id, std::uint64_t first) { return Ticket(*this, node_id, first); }

  // Returns once the push starting at `first` may be appended: when
  // acked_seq() + 1 >= first (its predecessor is recorded), or no earlier push
  // of the node is in progress in any process and the grace has passed, or
  // after the limit. `acked_seq` reads the node's last recorded seq; it is
  // called with `lock` held.
  void wait_for_predecessor(std::unique_lock<std::mutex>& lock, const std::string& node_id, std::uint64_t first,
                            const std::function<std::uint64_t()>& acked_seq);

  // Whether a push of `node_id` that starts before `first` is in progress, in
  // this process or another, and began less than the limit ago.
  bool earlier_in_progress(const std::string& node_id, std::uint64_t first);

  static constexpr std::chrono::milliseconds kPollInterval{20};

 private:
  storage::Database& db_;
  std::chrono::milliseconds grace_;
  std::chrono::milliseconds limit_;
  std::condition_variable turn_;  // a push of this process ended
};

}  // namespace irt::hub
