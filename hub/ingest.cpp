#include "hub/ingest.h"

#include <iostream>

#include "hub/consumption.h"
#include "hub/grants.h"
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
  try {
    storage::Savepoint part(hub_.db());
    if (consumption_recorded(node.node_id, now_ms, &events)) part.release();
  } catch (const std::exception& e) {
    report_consumption_failure(node.node_id, e.what());
  }
}

void Ingest::before_pull(const sync::LedgerNode& node, std::int64_t now_ms) {
  if (node.status != sync::NodeStatus::active) return;
  try {
    storage::Transaction tx(hub_.db());
    if (!consumption_recorded(node.node_id, now_ms)) return;
    auto granted = top_up_grants(hub_, node.node_id, now_ms);
    if (!granted) {
      std::cerr << "irt-hub: topping up node " << node.node_id << " failed: " << granted.error().message << "\n";
      return;
    }
    tx.commit();
  } catch (const std::exception& e) {
    report_consumption_failure(node.node_id, e.what());
  }
}

void Ingest::push_refused(const std::string& node_id, const sync::Refusal& r, std::uint64_t first,
                          std::int64_t now_ms) {
  namespace we = sync::wire_error;
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

}  // namespace irt::hub
