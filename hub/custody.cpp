#include "hub/custody.h"

#include <map>
#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/kit_decisions.h"
#include "hub/kit_inventory.h"
#include "shared/civil_date.h"
#include "shared/directive_payloads.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

const std::vector<storage::Migration> kCustodyMigrations = {
    {1, R"sql(
CREATE TABLE hub_kit_handovers (
  id INTEGER PRIMARY KEY,
  from_node TEXT NOT NULL,
  request_seq INTEGER NOT NULL,
  to_node TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('moved', 'refused')),
  shipment_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  kits INTEGER NOT NULL,
  decided_ms INTEGER NOT NULL,
  UNIQUE (from_node, request_seq)
);
)sql"},
};

// Why `to_node` cannot take kits from `from_node`, or "" when it can.
std::string receiver_problem(HubState& hub, const std::string& from_node, const std::string& to_node) {
  auto from = hub.ledger().find_node(from_node);
  auto to = hub.ledger().find_node(to_node);
  if (!to) return "node " + to_node + " is not enrolled at the hub";
  if (!from || to->site_id != from->site_id)
    return "node " + to_node + " belongs to site " + to->site_id + ", not to the site of node " + from_node;
  if (to->status != sync::NodeStatus::active)
    return "node " + to_node + " is " + sync::to_string(to->status) + " and cannot take kits";
  return "";
}

void keep(storage::Database& db, const HandoverRecord& r) {
  db.prepare("INSERT INTO hub_kit_handovers(from_node, request_seq, to_node, outcome, shipment_id, reason, kits, "
             "decided_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(r.from_node, static_cast<std::int64_t>(r.request_seq), r.to_node, r.outcome, r.shipment_id, r.reason,
                static_cast<std::int64_t>(r.kits), r.decided_ms)
      .run();
}

// A refused handover puts its kits back in the giving node's stock. A kit the
// hub rejected or put on hold while the request was on its way (the node
// applied the decision to a kit then in transit, and the hub refused the
// handover because of it) would come back usable there: its last decision is
// sent again after the refusal, so that the node applies it to the kit back
// in its stock.
void resend_decisions(HubState& hub, const std::string& node_id, const std::vector<std::string>& kits,
                      std::int64_t now_ms) {
  std::map<std::pair<std::string_view, std::uint64_t>, shared::KitDecision> again;  // by type and decision
  for (const auto& kit : kits) {
    auto sent = last_kit_decision(hub, node_id, kit);
    if (!sent || sent->type == shared::kKitsReleaseDirective) continue;
    auto& d = again[{sent->type, sent->decision.decision_id}];
    d.decision_id = sent->decision.decision_id;
    d.reason = sent->decision.reason;
    d.kits.push_back(kit);
  }
  for (const auto& [key, decision] : again) {
    nlohmann::json payload = decision;
    auto seq = hub.outbox().issue(node_id, key.first, payload.dump(), now_ms);
    record_audit(hub.db(), {now_ms, "hub", "directive.issued", node_id,
                            "kits decision " + std::to_string(decision.decision_id) + " sent again after a refused handover",
                            "", std::string(key.first) + " #" + std::to_string(seq) + ": " + shared::join(decision.kits)});
  }
}

}  // namespace

shared::Status migrate_custody(storage::Database& db) { return db.migrate("hub.custody", kCustodyMigrations); }

HandoverDecision decide_handover(HubState& hub, const std::string& from_node, std::uint64_t request_seq,
                                 const shared::KitHandoverRequested& request, std::int64_t now_ms) {
  auto& db = hub.db();
  {
    auto st = db.prepare("SELECT outcome, shipment_id, reason, kits FROM hub_kit_handovers "
                         "WHERE from_node = ? AND request_seq = ?");
    st.bind_all(from_node, static_cast<std::int64_t>(request_seq));
    if (st.step())
      return {st.text(0) == "moved", st.text(1), st.text(2), static_cast<std::size_t>(st.int64(3))};
  }
  HandoverRecord rec{from_node, request_seq, request.to_node, "refused", "", "", request.kits.size(), now_ms};
  const std::string shipment_id = "HND-" + from_node + "-" + std::to_string(request_seq);
  std::string problem = receiver_problem(hub, from_node, request.to_node);
  std::vector<HubKit> moved;
  if (problem.empty()) {
    auto m = move_node_kits(db, from_node, request.to_node, request.kits,
                            "handover requested by node " + from_node + " (event " + std::to_string(request_seq) + ")",
                            now_ms);
    if (m) moved = std::move(m).value();
    else problem = m.error().message;
  }
  shared::KitHandover answer{request_seq, request.to_node, request.kits, "moved", ""};
  const std::string asked = "handover requested by node " + from_node + " (event " + std::to_string(request_seq) +
                            ")" + (request.reason.empty() ? "" : ": " + request.reason);
  if (!problem.empty()) {
    answer.outcome = "refused";
    answer.reason = problem + "; the kits are back in the stock of node " + from_node;
    rec.reason = answer.reason;
    record_audit(db, {now_ms, "hub", "kit.handover_refused", from_node, asked, "", answer.reason});
  } else {
    rec.outcome = "moved";
    rec.shipment_id = shipment_id;
    shared::Shipment shipment{shipment_id, "handover", shared::format_date(shared::day_of_millis(now_ms)), {}};
    for (const auto& k : moved) {
      shipment.kits.push_back({k.number, k.kit_type, k.lot, k.expiry});
      // Kit numbers and node ids only: a blinded reader may read every hop.
      record_audit(db, {now_ms, "hub", "kit.custody_moved", k.number, asked, "node " + from_node,
                        "node " + request.to_node + ", in transit (shipment " + shipment_id + ")"});
    }
    nlohmann::json payload = shipment;
    hub.outbox().issue(request.to_node, shared::kShipmentDirective, payload.dump(), now_ms);
  }
  nlohmann::json payload = answer;
  hub.outbox().issue(from_node, shared::kKitsHandoverDirective, payload.dump(), now_ms);
  if (!problem.empty()) resend_decisions(hub, from_node, request.kits, now_ms);
  keep(db, rec);
  return {rec.outcome == "moved", rec.shipment_id, rec.reason, rec.kits};
}

std::vector<HandoverRecord> handovers(storage::Database& db) {
  auto st = db.prepare("SELECT from_node, request_seq, to_node, outcome, shipment_id, reason, kits, decided_ms "
                       "FROM hub_kit_handovers ORDER BY id");
  std::vector<HandoverRecord> out;
  while (st.step())
    out.push_back({st.text(0), static_cast<std::uint64_t>(st.int64(1)), st.text(2), st.text(3), st.text(4),
                   st.text(5), static_cast<std::size_t>(st.int64(6)), st.int64(7)});
  return out;
}

}  // namespace irt::hub
