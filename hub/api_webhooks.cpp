// The EDC webhooks of hub/webhooks.h over the API, for a role holding manage_nodes:
//   GET /api/v1/webhooks              the subscriptions (never a secret); ?all=true with removed ones
//   GET /api/v1/webhooks/deliveries   the delivery log, newest first: status, attempts, last error
// Adding and removing a webhook is `irt-hub webhook add|remove` (the secret is read from a file).
#include "hub/api_server.h"
#include "hub/webhooks.h"

namespace irt::hub {

namespace {

using nlohmann::json;

shared::Result<json> list_webhooks(ApiCall& c) {
  json out = json::array();
  for (const auto& w : webhooks(c.hub.db(), c.query_value("all") == "true")) out.push_back(to_json(w));
  return json{{"webhooks", out}};
}

shared::Result<json> deliveries(ApiCall& c) {
  json out = json::array();
  for (const auto& d : webhook_deliveries(c.hub.db())) out.push_back(to_json(d));
  return json{{"deliveries", out}};
}

}  // namespace

std::vector<ApiRoute> webhook_routes() {
  return {{"GET", "/api/v1/webhooks", shared::Permission::manage_nodes, list_webhooks},
          {"GET", "/api/v1/webhooks/deliveries", shared::Permission::manage_nodes, deliveries}};
}

}  // namespace irt::hub
