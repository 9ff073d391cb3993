// The node's background sync: rounds on a Boost.Asio timer in a thread of
// their own. After a successful round the next comes after `interval`; after a
// failure (hub unreachable) the delay doubles from `backoff_min` up to
// `backoff_max`, each delay multiplied by a random jitter in [0.5, 1.5) so
// nodes that lost the network together do not return together. poke() asks
// for a round now (after a local action); while offline it only shortens
// nothing, so a tablet with no network does not spin. A round the hub refused
// for a reason retrying cannot fix (a revoked node, a record it cannot accept)
// puts the service in the "refused" state, which backs off like "offline":
// the node keeps trying slowly, so it recovers by itself once someone acts.
// Thread-safety: start/stop/poke/status may be called from any thread; the
// round function runs only on the service thread.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "node/tuning.h"
#include "shared/result.h"

namespace irt::node {

struct SyncServiceOptions {
  std::chrono::milliseconds interval = kSyncInterval;  // node/tuning.h
  std::chrono::milliseconds backoff_min = kSyncBackoffMin;
  std::chrono::milliseconds backoff_max = kSyncBackoffMax;
};

enum class SyncState {
  online,   // the last round reached the hub (it may still have failed: see last_error)
  offline,  // the last round could not reach the hub, or the hub was unavailable
  refused,  // the hub refused the last round for a reason retrying cannot fix
};
const char* to_string(SyncState s);  // "online", "offline", "refused"

struct RoundOutcome {
  shared::Status status;
  bool refused = false;  // the failure is a hub refusal that retrying cannot fix
};

struct SyncStatus {
  SyncState state = SyncState::offline;
  bool online = false;           // state == online
  std::int64_t last_sync_ms = 0; // wall time of the last successful round (0: never)
  std::string last_error;        // empty after a success
  int consecutive_failures = 0;
  std::uint64_t rounds = 0;
};

class SyncService {
 public:
  using Round = std::function<RoundOutcome()>;
  SyncService(Round round, SyncServiceOptions options);
  ~SyncService();
  void start();
  void stop();
  void poke();
  // A round now whatever the state (a person pressed "Sync now"); the result
  // shows in status() once `rounds` has grown.
  void sync_now();
  SyncStatus status() const;

  // The delay after `failures` consecutive failures, before jitter.
  static std::chrono::milliseconds backoff(const SyncServiceOptions& o, int failures);

 private:
  void schedule(std::chrono::milliseconds delay);
  void round_now(bool even_offline);
  void run_round();

  Round round_;
  SyncServiceOptions options_;
  boost::asio::io_context io_;
  boost::asio::steady_timer timer_;
  std::thread thread_;
  mutable std::mutex mutex_;
  SyncStatus status_;
  std::atomic<bool> stopping_{false};
};

}  // namespace irt::node
