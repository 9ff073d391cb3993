// The hub's side of a sync, between the protocol (hub/sync_server.cpp) and
// the tables: what a node's accepted events consumed, the grants that brings
// due before its pull is answered, and the alert raised when its pushes are
// refused for a reason retrying cannot fix.
//
//   push   sync::Ledger::append calls appended() inside the append's
//          transaction, before the commit: record_consumption
//          (hub/consumption.h) in a savepoint of its own, so the events are
//          recorded and acknowledged even if that fails; it is retried at the
//          node's next push or pull, since the consumption cursor advances only
//          with what it recorded. Then the EDC webhooks' deliveries
//          (hub/webhooks.h), not contained: a failure there fails the push,
//          so no event commits without its deliveries.
//          Before all that, the directive cursor the events carry: a node
//          that applied directives this hub no longer holds (it was restored
//          from an older backup) gets its next directive numbered above them
//          and raises one alert (directives_lost; docs/operations.md).
//   pull   before_pull(), in one transaction: the node's contact and clock
//          skew (hub/node_overview.h), the pull's directive cursor as a push's
//          (directives_lost), then for an active node what its
//          events consumed not yet recorded, then top_up_grants
//          (hub/grants.h), then the resupply review of its site
//          (hub/resupply_runner.h, in a savepoint of its own: a failure
//          there is logged and undone alone). A failure is logged and rolls
//          that transaction back; it never fails the pull.
//
// Thread-safety: as HubState; the sync server serialises calls.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "sync/ledger.h"

namespace irt::hub {

class Ingest : public sync::AppendObserver {
 public:
  explicit Ingest(HubState& hub) : hub_(hub) {}

  void appended(const sync::LedgerNode& node, const std::vector<sync::SignedEvent>& events,
                std::int64_t now_ms) override;

  // Records the pull's contact (hub/node_overview.h) for any node it
  // answers; the rest for an active node only.
  void before_pull(const sync::PullRequest& pull, std::int64_t now_ms);

  // A deviation (hub/deviations.h) in the ledger's transaction.
  void equivocation(const sync::LedgerNode& node, std::uint64_t seq, const std::string& message,
                    std::int64_t now_ms) override;

  // A push by an authenticated node was refused. A refusal that retrying
  // cannot fix leaves the node unable to sync until someone acts, so it
  // raises an alert: one open alert per node and refusal code
  // ("push.refused.<code>"), however often the node retries. Bad signatures,
  // broken chains and equivocation raise their own alerts in the ledger, and a
  // frozen node already has one. `first` is the batch's first seq (0: none).
  // A revoked node's push also raises a deviation (one open per node).
  void push_refused(const std::string& node_id, const sync::Refusal& refusal, std::uint64_t first,
                    std::int64_t now_ms);

  // A revoked node's push (the lost tablet come back): its events the ledger
  // does not hold are kept as evidence ("revoked_node", sync::Ledger
  // keep_evidence), never appended, so they consume nothing; push_refused
  // raises the one deviation. The request proved the node's key over the batch.
  void keep_revoked_events(const std::string& node_id, const std::vector<crypto::Bytes>& records,
                           std::int64_t now_ms);

  // A pull signed by a revoked node (sync::Ledger::authenticate_pull checks
  // the signature first) raises the same deviation as its push.
  void revoked_pull(const std::string& node_id, std::int64_t now_ms) { revoked_attempt(node_id, 0, now_ms); }

 private:
  bool consumption_recorded(const std::string& node_id, std::int64_t now_ms,
                            const std::vector<sync::SignedEvent>* fresh = nullptr);
  void contained(const std::string& what, const std::function<void()>& step);
  void revoked_attempt(const std::string& node_id, std::uint64_t first, std::int64_t now_ms);
  void directives_lost(const std::string& node_id, std::uint64_t applied, std::int64_t now_ms);

  HubState& hub_;
};

}  // namespace irt::hub
