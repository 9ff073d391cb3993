// GET /api/v1/audit (view_audit): the trail of hub/audit_trail.h, with the
// filters of `irt-hub audit`, blinded as the reader's role requires.
#include "hub/api_server.h"
#include "hub/audit_trail.h"

namespace irt::hub {

namespace {

using nlohmann::json;

shared::Result<json> audit(ApiCall& c) {
  AuditFilter filter;
  if (auto since = c.query_value("since"); !since.empty()) {
    filter.since_ms = shared::parse_utc(since);
    if (!filter.since_ms)
      return shared::make_error(shared::Errc::invalid_input,
                                "since: a UTC date YYYY-MM-DD or time YYYY-MM-DDTHH:MM:SSZ (got '" + since + "')");
  }
  filter.actor = c.query_value("user");
  filter.subject = c.query_value("object");
  json entries = json::array();
  for (const auto& e : audit_trail(c.hub, filter, c.blinded())) entries.push_back(to_json(e));
  return json{{"entries", entries}, {"blinded", c.blinded()}};
}

}  // namespace

std::vector<ApiRoute> audit_routes() { return {{"GET", "/api/v1/audit", shared::Permission::view_audit, audit}}; }

}  // namespace irt::hub
