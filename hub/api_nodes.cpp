// The nodes, alerts and deviations routes of the hub's API: the nodes view
// (hub/node_overview.h) and the alerts (manage_nodes), the signed revoke and
// unfreeze (hub/node_decisions.h), the deviations (view_audit) and their
// signed acknowledgement (manage_study). A blinded reader gets an alert's
// message withheld when it names an arm or a kit type (hub/audit_trail.h), and
// never a deviation's unblinded part.
#include <charconv>

#include "hub/api_server.h"
#include "hub/audit.h"
#include "hub/audit_trail.h"
#include "hub/deviations.h"
#include "hub/node_decisions.h"
#include "hub/node_overview.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

json alert_view(const ApiCall& c, const sync::Alert& a) {
  auto or_null = [](const auto& v) { return v ? json(*v) : json(); };
  return {{"id", a.id},
          {"kind", a.kind},
          {"node_id", a.node_id},
          {"seq", or_null(a.seq)},
          {"message", readable_text(c.hub.study(), a.message, c.blinded())},
          {"created", utc_text(a.created_ms)},
          {"resolved_by", or_null(a.resolved_by)},
          {"resolved", a.resolved_ms ? json(utc_text(*a.resolved_ms)) : json()},
          {"resolution", a.resolution ? json(readable_text(c.hub.study(), *a.resolution, c.blinded())) : json()}};
}

shared::Result<json> overview(ApiCall& c, const std::string& only) {
  auto all = node_overview(c.hub, only);
  if (!all) return all.error();
  json out = json::array();
  for (auto& o : *all) {
    for (auto& a : o.open_alerts) a.message = readable_text(c.hub.study(), a.message, c.blinded());
    auto j = to_json(o);
    j.update(to_json(sync_state(o, c.hub.study(), c.now_ms)));
    out.push_back(j);
  }
  return out;
}

shared::Result<json> nodes(ApiCall& c) {
  auto all = overview(c, "");
  if (!all) return all.error();
  return json{{"nodes", *all}, {"offline_days", c.hub.study().supply.offline_days}};
}

shared::Result<json> node(ApiCall& c) {
  auto one = overview(c, c.param("id"));
  if (!one) return one.error();
  return json{{"node", one->at(0)}};
}

shared::Result<json> alerts(ApiCall& c) {
  auto open = c.query_value("open");
  if (!open.empty() && open != "true" && open != "false")
    return shared::make_error(shared::Errc::invalid_input, "open: true or false (got '" + open + "')");
  json out = json::array();
  for (const auto& a : c.hub.ledger().alerts(open != "false")) out.push_back(alert_view(c, a));
  return json{{"alerts", out}};
}

shared::Result<json> revoke(ApiCall& c) {
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::manage_nodes);
  if (!signer) return signer.error();
  auto voided = revoke_node(c.hub, c.param("id"), reason, *signer, c.now_ms);
  if (!voided) return voided.error();
  return json{{"node_id", c.param("id")},
              {"status", "revoked"},
              {"signed_by", signer->user},
              {"voided",
               {{"slots", voided->slots},
                {"numbers", voided->numbers},
                {"streams", voided->streams},
                {"kits_lost", voided->kits},
                {"cap_places", voided->cap_places}}}};
}

shared::Result<json> unfreeze(ApiCall& c) {
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::manage_nodes);
  if (!signer) return signer.error();
  if (auto st = unfreeze_node(c.hub, c.param("id"), reason, *signer, c.now_ms); !st) return st.error();
  return json{{"node_id", c.param("id")}, {"status", "active"}, {"signed_by", signer->user}};
}

// Deviations are read blinded unless the reader's role may see the allocation.
bool reads_unblinded(const ApiCall& c) { return !c.blinded() && c.role->can(Permission::view_unblinded); }

shared::Result<json> deviations_list(ApiCall& c) {
  auto open = c.query_value("open");
  if (!open.empty() && open != "true" && open != "false")
    return shared::make_error(shared::Errc::invalid_input, "open: true or false (got '" + open + "')");
  json out = json::array();
  for (const auto& d : deviations(c.hub, open == "true", reads_unblinded(c))) out.push_back(to_json(d));
  return json{{"deviations", out}};
}

shared::Result<json> acknowledge(ApiCall& c) {
  const auto& text = c.param("id");
  std::int64_t id = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || p != text.data() + text.size() || id < 1)
    return shared::make_error(shared::Errc::invalid_input, "id: a deviation number (got '" + text + "')");
  auto comment = c.body.text("comment");
  auto signer = c.signature(Permission::manage_study);
  if (!signer) return signer.error();
  auto done = acknowledge_deviation(c.hub, id, comment, *signer, c.now_ms);
  if (!done) return done.error();
  auto again = find_deviation(c.hub, id, reads_unblinded(c));
  return json{{"deviation", to_json(again ? *again : *done)}, {"signed_by", signer->user}};
}

}  // namespace

std::vector<ApiRoute> node_routes() {
  return {
      {"GET", "/api/v1/nodes", Permission::manage_nodes, nodes},
      {"GET", "/api/v1/nodes/{id}", Permission::manage_nodes, node},
      {"POST", "/api/v1/nodes/{id}/revoke", Permission::manage_nodes, revoke},
      {"POST", "/api/v1/nodes/{id}/unfreeze", Permission::manage_nodes, unfreeze},
      {"GET", "/api/v1/alerts", Permission::manage_nodes, alerts},
      {"GET", "/api/v1/deviations", Permission::view_audit, deviations_list},
      {"POST", "/api/v1/deviations/{id}/acknowledge", Permission::manage_study, acknowledge},
  };
}

}  // namespace irt::hub
