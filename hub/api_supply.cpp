// The lots, kit history and site activation routes of the hub's API
// (hub/lots.h, hub/kit_history.h, hub/site_activation.h) and the on-demand
// resupply review (hub/resupply_runner.h, manage_supply). Lots are
// manage_supply, their release release_quarantine (the quality release of
// stock), a kit's history view_inventory. A blinded reader never gets a
// lot's kit types nor a kit's type or lot (docs/supply.md).
#include "hub/api_server.h"
#include "hub/audit.h"
#include "hub/kit_history.h"
#include "hub/lots.h"
#include "hub/resupply_runner.h"
#include "hub/site_activation.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

json lot_view(const Lot& l, bool blinded) {
  json j = {{"lot", l.id}, {"expiry", l.expiry}, {"released_in", l.released_in}, {"kits", l.kits}};
  if (!blinded) j["kit_types"] = l.kit_types;
  return j;
}

shared::Result<json> lots(ApiCall& c) {
  json out = json::array();
  for (const auto& l : list_lots(c.hub.db())) out.push_back(lot_view(l, c.blinded()));
  return json{{"lots", out}};
}

shared::Result<json> lot_add(ApiCall& c) {
  auto id = c.body.id("lot");
  auto expiry = c.body.id("expiry");
  auto reason = c.body.optional_text("reason");
  if (auto st = c.body.finish(); !st) return st.error();
  auto& db = c.hub.db();
  storage::Transaction tx(db);
  if (auto st = add_lot(db, id, expiry, reason.value_or("POST /api/v1/lots"), c.user->name, c.now_ms); !st)
    return st.error();
  auto lot = find_lot(db, id);
  tx.commit();
  return json{{"lot", lot_view(*lot, c.blinded())}};
}

shared::Result<json> lot_release(ApiCall& c) {
  auto countries = c.body.ids("countries");
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::release_quarantine);
  if (!signer) return signer.error();
  if (auto st = release_lot(c.hub, c.param("lot"), countries, reason, *signer, c.now_ms); !st) return st.error();
  auto lot = find_lot(c.hub.db(), c.param("lot"));
  return json{{"lot", lot_view(*lot, c.blinded())}, {"signed_by", signer->user}};
}

shared::Result<json> lot_relabel(ApiCall& c) {
  auto expiry = c.body.id("expiry");
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::manage_supply);
  if (!signer) return signer.error();
  auto done = relabel_lot(c.hub, c.param("lot"), expiry, reason, *signer, c.now_ms);
  if (!done) return done.error();
  auto lot = find_lot(c.hub.db(), c.param("lot"));
  return json{{"lot", lot_view(*lot, c.blinded())},
              {"old_expiry", done->old_expiry},
              {"kits", done->kits},
              {"nodes", done->nodes},
              {"signed_by", signer->user}};
}

shared::Result<json> history(ApiCall& c) {
  auto h = kit_history(c.hub, c.param("kit"), c.blinded());
  if (!h) return h.error();
  return to_json(*h, c.blinded());
}

shared::Result<json> site_activate(ApiCall& c) {
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::manage_supply);
  if (!signer) return signer.error();
  if (auto st = activate_site(c.hub, c.param("site"), reason, *signer, c.now_ms); !st) return st.error();
  return json{{"site", c.param("site")}, {"status", "active"}, {"signed_by", signer->user}};
}

// One site's review: counts only for a blinded reader (a kit type can name an arm).
json review_view(const SiteReview& r, bool blinded) {
  json j = {{"site", r.site_id}, {"node", r.node_id}, {"summary", describe(r)}};
  if (r.shipment) j["shipment"] = {{"shipment_id", r.shipment->shipment_id}, {"kits", r.shipment->kits.size()}};
  if (!r.problem.empty()) j["problem"] = r.problem;
  if (!blinded) {
    json order = json::object();
    for (const auto& l : r.order) order[l.kit_type] = l.count;
    j["order"] = order;
  }
  return j;
}

shared::Result<json> supply_run(ApiCall& c) {
  auto site = c.body.optional_text("site");
  if (auto st = c.body.finish(); !st) return st.error();
  auto reviews = run_resupply(c.hub, site, c.user->name, c.now_ms);
  if (!reviews) return reviews.error();
  json out = json::array();
  for (const auto& r : *reviews) out.push_back(review_view(r, c.blinded()));
  return json{{"reviews", out}};
}

}  // namespace

std::vector<ApiRoute> supply_routes() {
  return {
      {"GET", "/api/v1/lots", Permission::manage_supply, lots},
      {"POST", "/api/v1/lots", Permission::manage_supply, lot_add},
      {"POST", "/api/v1/lots/{lot}/release", Permission::release_quarantine, lot_release},
      {"POST", "/api/v1/lots/{lot}/relabel", Permission::manage_supply, lot_relabel},
      {"GET", "/api/v1/kits/{kit}/history", Permission::view_inventory, history},
      {"POST", "/api/v1/sites/{site}/activate", Permission::manage_supply, site_activate},
      {"POST", "/api/v1/supply/run", Permission::manage_supply, supply_run},
  };
}

}  // namespace irt::hub
