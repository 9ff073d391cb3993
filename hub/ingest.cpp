#include "hub/ingest.h"

#include <algorithm>
#include <iostream>

#include "hub/audit.h"
#include "hub/consumption.h"
#include "hub/deviations.h"
#include "hub/grants.h"
#include "hub/node_overview.h"
#include "hub/resupply_runner.h"
#include "hub/users.h"
#include "hub/webhooks.h"
#include "sync/event.h"
#include "sync/protocol.h"

namespace irt::hub {

namespace {

void report_consumption_failure(const std::string& node_id, const std::string& why) {
  std::cerr << "irt-hub: recording what node " << node_id << " consumed failed: " << why << "\n";
}

}  // namespace

// record_consumption, with a failure logged; the caller keeps or undoes its transaction.
bool Ingest::consumption_recorded(const std::string& node_id, std::int64_t now_ms,
                                  const std::vector<sync::SignedEvent>* fresh) {
  auto used = record_consumption(hub_, node_id, now_ms, fresh);
  if (!used) report_consumption_failure(node_id, used.error().message);
  return used.ok();
}

void Ingest::appended(const sync::LedgerNode& node, const std::vector<sync::SignedEvent>& events,
                      std::int64_t now_ms) {
  std::uint64_t applied = 0;
  for (const auto& e : events) applied = std::max(applied, e.body.directive_seq);
  contained("learning the directive cursor of node " + node.node_id,
            [&] { directives_lost(node.node_id, applied, now_ms); });
  try {
    storage::Savepoint part(hub_.db());
    if (consumption_recorded(node.node_id, now_ms, &events)) part.release();
  } catch (const std::exception& e) {
    report_consumption_failure(node.node_id, e.what());
  }
  if (!events.empty()) contained("recording the contact of node " + node.node_id, [&] {
    record_push_contact(hub_.db(), node.node_id, events.back().body.seq, now_ms);
  });
  // Not contained: the events commit with their webhook deliveries or the
  // push fails and the node sends them again (hub/webhooks.h).
  record_webhook_deliveries(hub_, node, events, now_ms);
}

void Ingest::equivocation(const sync::LedgerNode& node, std::uint64_t seq, const std::string& message,
                          std::int64_t now_ms) {
  contained("raising a deviation for node " + node.node_id, [&] {
    raise_deviation(hub_, {deviation_kind::kEquivocation, node.node_id, seq, "", "", message + "; both events are "
                           "kept as evidence and the node is frozen until 'irt-hub unfreeze'"}, now_ms);
  });
  // The site's other nodes no longer offer the frozen node for a handover.
  contained("sending node " + node.node_id + "'s site a roster without it", [&] {
    issue_rosters(hub_, {node.site_id}, "node " + node.node_id + " frozen (equivocation at seq " +
                                            std::to_string(seq) + ")",
                  "hub", now_ms);
  });
}

// Runs `step` in a savepoint of its own: a failure is logged and undone
// alone, never failing the push or pull around it.
void Ingest::contained(const std::string& what, const std::function<void()>& step) {
  try {
    storage::Savepoint part(hub_.db());
    step();
    part.release();
  } catch (const std::exception& e) {
    std::cerr << "irt-hub: " << what << " failed: " << e.what() << "\n";
  }
}

void Ingest::before_pull(const sync::PullRequest& pull, std::int64_t now_ms) {
  const auto& node = pull.node;
  try {
    storage::Transaction tx(hub_.db());
    contained("recording the contact of node " + node.node_id,
              [&] {
                record_pull_contact(hub_.db(), node.node_id, pull.after, pull.clock_ms ? pull.clock_ms : pull.time_ms,
                                    now_ms);
              });
    contained("learning the directive cursor of node " + node.node_id,
              [&] { directives_lost(node.node_id, pull.after, now_ms); });
    if (node.status != sync::NodeStatus::active) {
      tx.commit();
      return;
    }
    if (!consumption_recorded(node.node_id, now_ms)) return;
    auto granted = top_up_grants(hub_, node.node_id, now_ms);
    if (!granted) {
      std::cerr << "irt-hub: topping up node " << node.node_id << " failed: " << granted.error().message << "\n";
      return;
    }
    contained("reviewing the resupply of node " + node.node_id + "'s site",
              [&] { review_after_sync(hub_, node.node_id, now_ms); });
    tx.commit();
  } catch (const std::exception& e) {
    report_consumption_failure(node.node_id, e.what());
  }
}

void Ingest::push_refused(const std::string& node_id, const sync::Refusal& r, std::uint64_t first,
                          std::int64_t now_ms) {
  namespace we = sync::wire_error;
  if (r.code == we::kRevoked) revoked_attempt(node_id, first, now_ms);
  if (sync::retry_can_fix(r.code, r.http_status) || r.code == we::kBadSignature || r.code == we::kBrokenChain ||
      r.code == we::kEquivocation || r.code == we::kFrozen)
    return;
  try {
    auto seq = r.seq ? r.seq : first ? std::optional<std::uint64_t>(first) : std::nullopt;
    storage::Transaction tx(hub_.db());
    hub_.ledger().raise_node_alert(node_id, "push.refused." + r.code, seq,
                                   "node " + node_id + " cannot sync: the hub refuses its pushes (" + r.code +
                                       "): " + r.message,
                                   now_ms);
    tx.commit();
  } catch (const std::exception& e) {
    std::cerr << "irt-hub: raising an alert for node " << node_id << " failed: " << e.what() << "\n";
  }
}

// The node applied directives up to `applied`; those beyond what the outbox
// holds were issued by this hub before it was restored from an older backup.
void Ingest::directives_lost(const std::string& node_id, std::uint64_t applied, std::int64_t now_ms) {
  const auto held = hub_.outbox().continue_above(node_id, applied);
  if (applied <= held) return;
  const std::string lost = applied == held + 1 ? std::to_string(applied)
                                               : std::to_string(held + 1) + " to " + std::to_string(applied);
  hub_.ledger().raise_node_alert(
      node_id, "directives.lost", std::nullopt,
      "node " + node_id + " applied hub directives up to " + std::to_string(applied) + " but this hub holds them up to " +
          std::to_string(held) + ": it was restored from a backup older than directive " + lost +
          ". Those are lost from the hub (grants, custody, decisions it sent); its next directive to the node is " +
          std::to_string(applied + 1) + ". Review the node's slots, numbers and kits (irt-hub nodes --node " + node_id +
          ") against what it reports (docs/operations.md)",
      now_ms);
  record_audit(hub_.db(), {now_ms, "hub", "directives.continued", node_id,
                           "the node applied directives this hub no longer holds (restored from an older backup)",
                           std::to_string(held), std::to_string(applied), ""});
}

void Ingest::keep_revoked_events(const std::string& node_id, const std::vector<crypto::Bytes>& records,
                                 std::int64_t now_ms) {
  try {
    storage::Transaction tx(hub_.db());
    const auto acked = hub_.ledger().acked_seq(node_id).value_or(0);
    for (const auto& r : records)
      if (auto e = sync::parse_event(r, sync::EventLimits::ignored); e && e->body.seq > acked)
        hub_.ledger().keep_evidence(node_id, e->body.seq, deviation_kind::kRevokedNode, r, now_ms);
    tx.commit();
  } catch (const std::exception& e) {
    std::cerr << "irt-hub: keeping the events of revoked node " << node_id << " as evidence failed: " << e.what()
              << "\n";
  }
}

void Ingest::revoked_attempt(const std::string& node_id, std::uint64_t first, std::int64_t now_ms) {
  try {
    storage::Transaction tx(hub_.db());
    raise_deviation(hub_, {deviation_kind::kRevokedNode, node_id, first, "", "",
                           "node " + node_id + ", revoked, tried to " +
                               (first ? "push events from seq " + std::to_string(first) : std::string("sync")) +
                               "; it was refused and the events it sent are kept as evidence, not recorded. Find the device and "
                               "what it recorded since its revocation"},
                    now_ms);
    tx.commit();
  } catch (const std::exception& e) {
    std::cerr << "irt-hub: raising a deviation for node " << node_id << " failed: " << e.what() << "\n";
  }
}

}  // namespace irt::hub
