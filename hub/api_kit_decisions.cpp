// The quarantine and reconciliation routes of the hub's API: the kits
// quarantined and the drug accountability per site and depot (view_inventory;
// kit types only for a reader whose role reads the allocation), and the signed
// hold, release and rejection of kits (release_quarantine), hub/kit_decisions.h and
// hub/reconcile.h.
#include "hub/api_server.h"
#include "hub/depot_shipments.h"
#include "hub/kit_decisions.h"
#include "hub/reconcile.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

shared::Result<json> quarantine_list(ApiCall& c) {
  json out = json::array();
  const auto depots = c.user ? depots_seen_by(c.hub, *c.user) : std::nullopt;
  for (const auto& k : quarantined_kits(c.hub, !c.blinded()))
    if (custodian_seen(depots, k.custody_kind, k.custody_id)) out.push_back(to_json(k));
  return json{{"kits", out}};
}

shared::Result<json> quarantine_decision(ApiCall& c, bool release) {
  auto kits = c.body.ids("kits");
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::release_quarantine);
  if (!signer) return signer.error();
  auto done = decide_kits(c.hub, release, kits, reason, *signer, c.now_ms);
  if (!done) return done.error();
  json directives = json::array();
  for (const auto& [node, seq] : done->directives) directives.push_back({{"node_id", node}, {"directive_seq", seq}});
  return json{{"decision_id", done->decision_id},
              {"decision", release ? "release" : "reject"},
              {"kits", done->kits},
              {"signed_by", done->signed_by},
              {"directives", directives}};
}

// A lot (optionally at one site) or kits named put on hold.
shared::Result<json> quarantine_hold(ApiCall& c) {
  HoldRequest request{c.body.optional_text("lot").value_or(""), c.body.optional_text("site").value_or(""), {}};
  if (c.body.optional_value("kits")) request.kits = c.body.ids("kits");
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::release_quarantine);
  if (!signer) return signer.error();
  auto done = hold_kits(c.hub, request, reason, *signer, c.now_ms);
  if (!done) return done.error();
  json directives = json::array();
  for (const auto& [node, seq] : done->directives) directives.push_back({{"node_id", node}, {"directive_seq", seq}});
  return json{{"decision_id", done->decision_id},
              {"decision", "hold"},
              {"kits", done->kits},
              {"left_alone", done->left_alone},
              {"signed_by", done->signed_by},
              {"directives", directives}};
}

shared::Result<json> reconciliation(ApiCall& c) {
  auto site = c.query_value("site"), depot = c.query_value("depot");
  if (!site.empty() && !depot.empty())
    return shared::make_error(shared::Errc::invalid_input, "give site or depot, not both");
  auto all = reconcile(c.hub, site, depot, !c.blinded());
  if (!all) return all.error();
  // A depot user accounts for its own depots only.
  const auto depots = c.user ? depots_seen_by(c.hub, *c.user) : std::nullopt;
  json out = json::array();
  bool balanced = true;
  for (const auto& r : *all) {
    if (!custodian_seen(depots, r.kind, r.id)) continue;
    out.push_back(to_json(r));
    balanced = balanced && r.balanced();
  }
  return json{{"balanced", balanced}, {"custodians", out}};
}

}  // namespace

std::vector<ApiRoute> kit_decision_routes() {
  return {
      {"GET", "/api/v1/quarantine", Permission::view_inventory, quarantine_list},
      {"POST", "/api/v1/quarantine/release", Permission::release_quarantine,
       [](ApiCall& c) { return quarantine_decision(c, true); }},
      {"POST", "/api/v1/quarantine/reject", Permission::release_quarantine,
       [](ApiCall& c) { return quarantine_decision(c, false); }},
      {"POST", "/api/v1/quarantine/hold", Permission::release_quarantine, quarantine_hold},
      {"GET", "/api/v1/reconciliation", Permission::view_inventory, reconciliation},
  };
}

}  // namespace irt::hub
