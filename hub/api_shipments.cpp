// The shipment routes of the hub's API (hub/shipments.h): the shipments and
// their kits (view_inventory; kit types, lots and expiry dates only for a
// reader whose role reads the allocation) and the signed steps of the
// lifecycle (manage_supply).
#include "hub/api_server.h"

#include <limits>

#include "hub/depot_shipments.h"
#include "hub/shipments.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

// A depot user sees only its depots' shipments (hub/depot_shipments.h depots_seen_by).
std::optional<std::vector<std::string>> shipments_seen_in(ApiCall& c) {
  return c.user ? depots_seen_by(c.hub, *c.user) : std::optional<std::vector<std::string>>();
}

shared::Result<json> shipment_list(ApiCall& c) {
  json out = json::array();
  const auto depots = shipments_seen_in(c);
  for (const auto& s : list_shipments(c.hub.db(), c.query_value("status")))
    if (shipment_seen(depots, s)) out.push_back(to_json(s));
  return json{{"shipments", out}};
}

shared::Result<json> show(ApiCall& c) {
  auto s = find_shipment(c.hub.db(), c.param("shipment"));
  // Another depot's shipment is answered as unknown: nothing of it is named.
  if (s && !shipment_seen(shipments_seen_in(c), *s)) s.reset();
  if (!s)
    return shared::make_error(shared::Errc::not_found, "shipment " + c.param("shipment") +
                                                           " is not a shipment from a depot at this hub");
  json j = to_json(*s);
  j["kit_list"] = kits_json(kits_of_shipment(c.hub.db(), s->shipment_id), !c.blinded());
  return json{{"shipment", j}};
}

// A depot's step is signed with manage_supply, or by a depot user with
// manage_depot (bound to the depot: checked by hub/depot_shipments.h).
Permission depot_step(const ApiCall& c) {
  return c.role && !c.role->can(Permission::manage_supply) && c.role->can(Permission::manage_depot)
             ? Permission::manage_depot
             : Permission::manage_supply;
}

shared::Result<json> transfer(ApiCall& c) {
  TransferRequest request;
  request.from_depot = c.body.id("from_depot");
  request.to_depot = c.body.id("to_depot");
  if (c.body.value().contains("kits")) request.kits = c.body.ids("kits");
  request.kit_type = c.body.value().contains("kit_type") ? c.body.id("kit_type") : "";
  request.count = static_cast<int>(c.body.optional_whole("count", 1, std::numeric_limits<int>::max()).value_or(0));
  request.reason = c.body.optional_text("reason").value_or("");
  auto signer = c.signature(depot_step(c));
  if (!signer) return signer.error();
  auto done = request_transfer(c.hub, request, *signer, c.now_ms);
  if (!done) return done.error();
  return json{{"shipment", to_json(*done)}, {"signed_by", signer->user}};
}

shared::Result<json> receive(ApiCall& c) {
  const auto* given = c.body.optional_value("kits");
  auto kits = depot_receipts_from_json(given ? *given : json());
  if (!kits) return kits.error();
  auto reason = c.body.optional_text("reason").value_or("");
  auto signer = c.signature(depot_step(c));
  if (!signer) return signer.error();
  auto done = receive_at_depot(c.hub, c.param("shipment"), *kits, reason, *signer, c.now_ms);
  if (!done) return done.error();
  return json{{"shipment", to_json(done->shipment)}, {"kits_reported", done->kits}, {"signed_by", done->signed_by}};
}

shared::Result<json> step(ApiCall& c, ShipmentStep step) {
  ShipmentStepRequest request{step, "", "", ""};
  if (step == ShipmentStep::ship) {
    request.courier = c.body.id("courier");
    request.tracking = c.body.id("tracking");
  }
  request.reason = step == ShipmentStep::lose || step == ShipmentStep::cancel ? c.body.text("reason")
                                                                              : c.body.optional_text("reason").value_or("");
  auto signer = c.signature(step == ShipmentStep::approve ? Permission::manage_supply : depot_step(c));
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
      {"GET", "/api/v1/shipments", Permission::view_inventory, shipment_list},
      {"GET", "/api/v1/shipments/{shipment}", Permission::view_inventory, show},
  };
  // Depot users sign these too: the role check is the signature's (depot_step).
  out.push_back({"POST", "/api/v1/shipments/transfers", std::nullopt, transfer});
  for (auto s : {ShipmentStep::approve, ShipmentStep::ship, ShipmentStep::deliver, ShipmentStep::lose,
                 ShipmentStep::cancel})
    out.push_back({"POST", "/api/v1/shipments/{shipment}/" + std::string(to_string(s)),
                   s == ShipmentStep::approve ? std::optional(Permission::manage_supply) : std::nullopt,
                   [s](ApiCall& c) { return step(c, s); }});
  out.push_back({"POST", "/api/v1/shipments/{shipment}/receive", std::nullopt, receive});
  return out;
}

}  // namespace irt::hub
