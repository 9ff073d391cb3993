// The node's sync agent: one round pushes the node's unacknowledged events,
// pulls and applies the hub's directives, then pushes the events that applying
// them recorded. Nothing is lost when a round fails part-way: the event cursor
// moves only on the hub's acknowledgement (sent after its durable commit), and
// each directive is applied exactly once with its cursor, so the next round
// resumes where this one stopped.
//
// A receipt (inclusion proof + signed checkpoint) comes with every
// acknowledgement; the agent verifies it against the hub's key before it moves
// the cursor, and keeps it.
//
// Thread-safety: one agent per thread. The node's log is shared with the
// node's other users (its API): the agent holds the host's state mutex only
// while it reads or writes the log and while a directive is applied, never
// across a Transport call or a signature check, so a hub that accepts the
// connection and never answers stalls the round, not the node.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "crypto/sign.h"
#include "shared/result.h"
#include "sync/node_log.h"
#include "sync/transport.h"
#include "sync/tuning.h"

namespace irt::sync {

struct NodeIdentity {
  std::string node_id;
  crypto::Bytes certificate;  // the hub-signed certificate record
  crypto::PublicKey hub_key;
};

struct RoundReport {
  std::uint64_t events_sent = 0;
  std::uint64_t acked_seq = 0;
  std::uint64_t already_recorded = 0;
  std::uint64_t directives_applied = 0;
  // Set when the hub asked again for events it had acknowledged (it was
  // restored from an older backup): the first seq it asked for, resent with
  // everything after it; 0 otherwise. The node says so (docs/operations.md).
  std::uint64_t resent_from = 0;
  std::uint64_t acked_before_resend = 0;  // what the node held acknowledged then
};

// A refusal by the hub that retrying cannot fix (sync/refusal.h,
// retry_can_fix): the node says so in its status until a push succeeds.
struct SyncRefusal {
  std::string code;  // the hub's wire_error code
  int http_status = 0;
  std::string message;  // the hub's own message
  std::int64_t at_ms = 0;
  // "sync refused by the hub: <message> [code, HTTP n]; <what to do>"
  std::string text() const;
};
std::string sync_refusal_to_json(const SyncRefusal& r);
shared::Result<SyncRefusal> sync_refusal_from_json(const std::string& json);  // invalid_input when malformed

struct AgentLimits {
  std::size_t batch_events = kPushBatchEvents;  // sync/tuning.h
  std::size_t batch_bytes = kPushBatchBytes;
  std::size_t pull_limit = kPullLimit;
};

// What the node running the agent offers it.
class AgentHost {
 public:
  virtual ~AgentHost() = default;
  // Guards the log, its database connection and the state derived from them.
  virtual std::mutex& state_mutex() = 0;
  // A directive's effect on the node's state, inside the log's transaction,
  // with state_mutex() held.
  virtual shared::Status apply(const SignedDirective& d) = 0;
  // Called with state_mutex() still held when a directive's transaction rolled
  // back (refused or thrown): state the node keeps in memory must match the
  // database again before anyone else sees it.
  virtual shared::Status rolled_back() = 0;
};

class SyncAgent {
 public:
  // `second`, when given, is another connection to the same hub: push then
  // keeps two batches in flight (docs/sync-protocol.md, "Push").
  SyncAgent(NodeLog& log, const crypto::SigningKey& key, NodeIdentity identity, AgentHost& host,
            Transport& transport, AgentLimits limits = {}, Transport* second = nullptr)
      : log_(log), key_(key), id_(std::move(identity)), host_(host), transport_(transport), second_(second),
        limits_(limits) {}

  shared::Result<RoundReport> run_round();
  shared::Status push(RoundReport& report);
  shared::Status pull(RoundReport& report);
  // Set when the last round ended on a refusal that retrying cannot fix.
  const std::optional<SyncRefusal>& refusal() const { return refusal_; }

 private:
  std::unique_lock<std::mutex> hold() { return std::unique_lock(host_.state_mutex()); }
  shared::Result<RoundReport> round();
  // Now by the hub's clock, as its last answer showed it; requests are timed by it.
  std::int64_t hub_now();
  void learn_hub_clock(const HttpResponse& r);
  shared::Status apply(const SignedDirective& d, RoundReport& report);
  shared::Error refused(const HttpResponse& r);

  NodeLog& log_;
  const crypto::SigningKey& key_;
  NodeIdentity id_;
  AgentHost& host_;
  Transport& transport_;
  Transport* second_;
  AgentLimits limits_;
  std::optional<SyncRefusal> refusal_;
  bool clock_refused_ = false;  // the last refusal was wire_error::kClockSkew
};

// Maps a hub refusal to an Error whose message is the hub's own, naming the code.
shared::Error refusal_error(const HttpResponse& r);

}  // namespace irt::sync
