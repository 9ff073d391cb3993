// The shipment routes of the hub's API (hub/shipments.h): the shipments and
// their kits (view_inventory; kit types, lots and expiry dates only for a
// reader whose role reads the allocation) and the signed steps of the
// lifecycle (manage_supply).
#include "hub/api_server.h"
#include "hub/shipments.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

shared::Result<json> list(ApiCall& c) {
  json out = json::array();
  for (const auto& s : list_shipments(c.hub.db(), c.query_value("status"))) out.push_back(to_json(s));
  return json{{"shipments", out}};
}

shared::Result<json> show(ApiCall& c) {
  auto s = find_shipment(c.hub.db(), c.param("shipment"));
  if (!s)
    return shared::make_error(shared::Errc::not_found, "shipment " + c.param("shipment") +
                                                           " is not a shipment from a depot at this hub");
  json j = to_json(*s);
  j["kit_list"] = kits_json(kits_of_shipment(c.hub.db(), s->shipment_id), !c.blinded());
  return json{{"shipment", j}};
}

shared::Result<json> step(ApiCall& c, ShipmentStep step) {
  ShipmentStepRequest request{step, "", "", ""};
  if (step == ShipmentStep::ship) {
    request.courier = c.body.id("courier");
    request.tracking = c.body.id("tracking");
  }
  request.reason = step == ShipmentStep::lose || step == ShipmentStep::cancel ? c.body.text("reason")
                                                                              : c.body.optional_text("reason").value_or("");
  auto signer = c.signature(Permission::manage_supply);
  if (!signer) return signer.error();
  auto done = step_shipment(c.hub, c.param("shipment"), request, *signer, c.now_ms);
  if (!done) return done.error();
  json j{{"shipment", to_json(done->shipment)}, {"kits_moved", done->kits}, {"signed_by", done->signed_by}};
  if (done->directive_seq) j["directive_seq"] = *done->directive_seq;
  return j;
}

}  // namespace

std::vector<ApiRoute> shipment_routes() {
  std::vector<ApiRoute> out = {
      {"GET", "/api/v1/shipments", Permission::view_inventory, list},
      {"GET", "/api/v1/shipments/{shipment}", Permission::view_inventory, show},
  };
  for (auto s : {ShipmentStep::approve, ShipmentStep::ship, ShipmentStep::deliver, ShipmentStep::lose,
                 ShipmentStep::cancel})
    out.push_back({"POST", "/api/v1/shipments/{shipment}/" + std::string(to_string(s)), Permission::manage_supply,
                   [s](ApiCall& c) { return step(c, s); }});
  return out;
}

}  // namespace irt::hub
