// The order of a node's pushes at the hub. A node may have two pushes in
// flight (docs/sync-protocol.md, "Push"): the sync server checks their
// signatures in parallel, outside its lock, but appends them in seq order. A
// push that arrived ahead of its predecessor waits, without the lock, until
// the node's events just before it are recorded, or no earlier push of the
// node is in progress and a short grace (for one still on the wire) has
// passed; past a hard limit it goes on and the ledger refuses it as a gap.
//
// Who calls it: hub/sync_server.cpp, for every push. Thread-safety: every
// call is made with the caller's mutex held (the one passed to
// wait_for_predecessor); the wait releases it while it sleeps.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "hub/tuning.h"  // kPredecessorGrace, kPredecessorLimit

namespace irt::hub {

class PushOrder {
 public:
  explicit PushOrder(std::chrono::milliseconds grace = kPredecessorGrace,
                     std::chrono::milliseconds limit = kPredecessorLimit)
      : grace_(grace), limit_(limit) {}

  // A push in progress, from its registration to its end (appended or
  // refused). Destroy it with the caller's mutex held.
  class Ticket {
   public:
    Ticket(PushOrder& order, std::string node_id, std::uint64_t first);
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    PushOrder& order_;
    std::string node_id_;
    std::multiset<std::uint64_t>::iterator it_;
  };

  // Registers a push of `node_id` whose first event is `first`.
  Ticket begin(const std::string& node_id, std::uint64_t first) { return Ticket(*this, node_id, first); }

  // Returns once the push starting at `first` may be appended: when
  // acked_seq() + 1 >= first (its predecessor is recorded), or no earlier push
  // of the node is in progress and the grace has passed, or after the limit.
  // `acked_seq` reads the node's last recorded seq; it is called with `lock` held.
  void wait_for_predecessor(std::unique_lock<std::mutex>& lock, const std::string& node_id, std::uint64_t first,
                            const std::function<std::uint64_t()>& acked_seq);

  // Whether a push of `node_id` that starts before `first` is in progress.
  bool earlier_in_progress(const std::string& node_id, std::uint64_t first) const;

 private:
  std::chrono::milliseconds grace_;
  std::chrono::milliseconds limit_;
  std::condition_variable turn_;  // a push ended
  std::map<std::string, std::multiset<std::uint64_t>> pushing_;  // node -> first seq of each push in progress
};

}  // namespace irt::hub
