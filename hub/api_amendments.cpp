// The amendment routes (hub/amendments.h), both for roles with manage_study:
//   POST /api/v1/amendments      {"document", "reason", "signature", "dry_run"}: a new
//                                study version checked, and unless dry_run loaded (signed)
//   GET  /api/v1/study/versions  every version the hub holds: when, by whom, why
//   GET  /api/v1/design-changes  per design change, which nodes applied it and the
//                                randomizations made under the older design after it
//                                (hub/design_changes.h); the closed arms to unblinded roles only
// For a blinded reader the diff and the refusals withhold what concerns arms
// and kit types (each kit type treats one arm): their lines are counted, not shown.
#include "hub/amendments.h"
#include "hub/api_server.h"
#include "hub/audit.h"
#include "hub/design_changes.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

json lines_for(const ApiCall& c, const std::vector<std::string>& lines) {
  return amendment_lines_for(lines, c.blinded());
}

// Lines as one message; `lines` may hold several lines each (an error's message).
std::string joined_for(const ApiCall& c, const std::vector<std::string>& lines) {
  return shared::join(amendment_lines_for(lines, c.blinded()), "\n", "");
}

shared::Result<json> post_amendment(ApiCall& c) {
  auto document = c.body.document("document");
  auto dry_run = c.body.optional_flag("dry_run").value_or(false);
  auto reason = dry_run ? c.body.optional_text("reason").value_or("") : c.body.text("reason");
  if (c.body.value().contains("signature")) c.body.signature_password();  // read here, checked when signing
  if (auto st = c.body.finish(); !st) return st.error();
  const int current = c.hub.study().version;
  auto plan = plan_amendment(c.hub, document);
  if (!plan.study)
    return make_error(Errc::invalid_input, "document: the study does not load:\n" + joined_for(c, plan.errors));
  if (!plan.refusals.empty())
    return make_error(Errc::conflict, "the amendment was refused; nothing was changed:\n" + joined_for(c, plan.refusals));
  json out{{"study_id", plan.study->id},
           {"from_version", current},
           {"to_version", plan.study->version},
           {"changes", lines_for(c, plan.changes)},
           {"dry_run", dry_run}};
  if (dry_run) {
    out["verdict"] = "acceptable";
    return out;
  }
  auto signer = c.signature(shared::Permission::manage_study);
  if (!signer) return signer.error();
  auto done = amend(c.hub, document, reason, *signer, c.now_ms);
  if (!done) {
    if (done.error().code == Errc::conflict || done.error().code == Errc::invalid_input)
      return make_error(done.error().code, "the amendment was refused; nothing was changed:\n" +
                                               joined_for(c, {done.error().message}));
    return done.error();
  }
  out["approved_by"] = signer->user;
  out["approved_at"] = utc_text(c.now_ms);
  out["directives"] = done->directives;
  out["list"] = done->list == ListChange::extended   ? "extended"
                : done->list == ListChange::replaced ? "replaced"
                : done->list == ListChange::segment  ? "segment"
                                                     : "unchanged";
  out["slots_voided"] = done->slots_voided;
  out["kits_made"] = done->kits_made;
  return out;
}

shared::Result<json> get_versions(ApiCall& c) {
  if (auto st = c.body.finish(); !st) return st.error();
  auto versions = study_versions(c.hub.db());
  json out = json::array();
  for (const auto& v : versions)
    out.push_back({{"version", v.version},
                   {"study_id", v.study_id},
                   {"loaded", utc_text(v.loaded_ms)},
                   {"loaded_by", v.loaded_by},
                   {"reason", v.reason},
                   {"current", &v == &versions.back()}});
  return json{{"versions", out}};
}

shared::Result<json> get_design_changes(ApiCall& c) {
  if (auto st = c.body.finish(); !st) return st.error();
  json out = json::array();
  for (const auto& r : design_change_report(c.hub)) out.push_back(to_json(r, !c.blinded()));
  return json{{"design_changes", out}};
}

}  // namespace

std::vector<ApiRoute> amendment_routes() {
  return {
      {"POST", "/api/v1/amendments", shared::Permission::manage_study, post_amendment},
      {"GET", "/api/v1/study/versions", shared::Permission::manage_study, get_versions},
      {"GET", "/api/v1/design-changes", shared::Permission::manage_study, get_design_changes},
  };
}

}  // namespace irt::hub
