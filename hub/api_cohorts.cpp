// The cohort routes of the hub's API (hub/cohort_decisions.h): each cohort's
// state and counts (view_participants), and the signed decisions that open
// and close a cohort opened by decision (manage_study).
#include "hub/api_server.h"
#include "hub/cohort_decisions.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

shared::Result<json> cohorts_list(ApiCall& c) {
  json out = json::array();
  for (const auto& s : cohort_standing(c.hub)) out.push_back(to_json(s));
  return json{{"cohorts", out}};
}

shared::Result<json> cohort_decide(ApiCall& c, bool open) {
  auto reason = c.body.text("reason");
  auto signer = c.signature(Permission::manage_study);
  if (!signer) return signer.error();
  auto done = decide_cohort(c.hub, c.param("id"), open, reason, *signer, c.now_ms);
  if (!done) return done.error();
  json directives = json::array();
  for (const auto& [node, seq] : done->directives) directives.push_back({{"node_id", node}, {"directive_seq", seq}});
  return json{{"decision_id", done->decision_id},
              {"cohort", done->cohort},
              {"old_state", to_string(done->from)},
              {"state", to_string(done->to)},
              {"signed_by", done->signed_by},
              {"places_voided", done->places_voided},
              {"directives", directives}};
}

}  // namespace

std::vector<ApiRoute> cohort_routes() {
  return {
      {"GET", "/api/v1/cohorts", Permission::view_participants, cohorts_list},
      {"POST", "/api/v1/cohorts/{id}/open", Permission::manage_study, [](ApiCall& c) { return cohort_decide(c, true); }},
      {"POST", "/api/v1/cohorts/{id}/close", Permission::manage_study,
       [](ApiCall& c) { return cohort_decide(c, false); }},
  };
}

}  // namespace irt::hub
