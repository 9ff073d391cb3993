// The participant transfer routes of the hub's API (hub/transfers.h): the
// requests the nodes sent (view_participants; nothing in them names an arm)
// and the signed approval or rejection of one (manage_study).
#include "hub/api_server.h"
#include "hub/transfers.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

shared::Result<json> transfer_list(ApiCall& c) {
  auto status = c.query_value("status");
  if (!status.empty() && status != "requested" && status != "approved" && status != "rejected")
    return shared::make_error(shared::Errc::invalid_input, "status: use requested, approved or rejected");
  json out = json::array();
  for (const auto& t : transfers(c.hub.db(), status)) out.push_back(to_json(t));
  return json{{"transfers", out}};
}

shared::Result<json> transfer_decision(ApiCall& c, bool approve) {
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::manage_study);
  if (!signer) return signer.error();
  auto done = decide_transfer(c.hub, c.param("participant"), approve, reason, *signer, c.now_ms);
  if (!done) return done.error();
  json directives = json::array();
  for (const auto& [node, seq] : done->directives) directives.push_back({{"node_id", node}, {"directive_seq", seq}});
  auto out = to_json(done->transfer);
  out["directives"] = directives;
  return out;
}

}  // namespace

std::vector<ApiRoute> transfer_routes() {
  return {
      {"GET", "/api/v1/transfers", Permission::view_participants, transfer_list},
      {"POST", "/api/v1/transfers/{participant}/approve", Permission::manage_study,
       [](ApiCall& c) { return transfer_decision(c, true); }},
      {"POST", "/api/v1/transfers/{participant}/reject", Permission::manage_study,
       [](ApiCall& c) { return transfer_decision(c, false); }},
  };
}

}  // namespace irt::hub
