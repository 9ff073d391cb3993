// The API's own routes: the index at /api/v1, login and logout, the session's user
// (/api/v1/me) and the current study (/api/v1/study), blinded as the reader's role requires.
#include <algorithm>

#include "hub/api_server.h"
#include "hub/audit.h"
#include "hub/sessions.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

json permissions_of(const shared::Role* role) {
  json out = json::array();
  if (role)
    for (auto p : role->permissions) out.push_back(shared::to_string(p));
  return out;
}

json me_view(const ApiCall& c) {
  return {{"user", c.user->name},
          {"role", c.user->role},
          {"sites", c.user->sites},
          {"blinded", c.blinded()},
          {"permissions", permissions_of(c.role)},
          {"expires_after_idle_s", session_idle_ms(c.hub.study()) / 1000}};
}

// The study as a reader may see it: for a blinded reader nothing names an arm
// or a kit type (a kit type maps to one arm), as on the node (node/api_views.cpp).
json study_view(const shared::Study& s, bool blinded) {
  json sites = json::array();
  for (const auto& site : s.sites)
    sites.push_back({{"id", site.id}, {"name", site.name}, {"country", site.country}, {"active", site.active}});
  json visits = json::array();
  for (const auto& v : s.visits)
    visits.push_back({{"id", v.id},
                      {"name", v.name},
                      {"day", v.day},
                      {"window_before", v.window_before},
                      {"window_after", v.window_after},
                      {"randomization", v.randomization},
                      {"dispenses", !v.dispense.empty()}});
  json roles = json::array();
  for (const auto& r : s.roles)
    roles.push_back({{"id", r.id}, {"name", r.name}, {"blinded", r.blinded}, {"permissions", permissions_of(&r)}});
  json depots = json::array();
  for (const auto& d : s.depots) depots.push_back({{"id", d.id}, {"name", d.name}, {"countries", d.countries}});
  json j = {{"id", s.id},
            {"name", s.name},
            {"version", s.version},
            {"blinding", shared::to_string(s.blinding)},
            {"randomization_method", shared::to_string(s.randomization.method)},
            {"sites", sites},
            {"depots", depots},
            {"visits", visits},
            {"roles", roles},
            {"session_idle_minutes", s.session_idle_minutes}};
  if (!blinded) {
    json arms = json::array();
    for (const auto& a : s.arms) arms.push_back({{"id", a.id}, {"name", a.name}, {"ratio", a.ratio}, {"closed", a.closed}});
    json kit_types = json::array();
    for (const auto& k : s.kit_types)
      kit_types.push_back({{"id", k.id}, {"name", k.name}, {"arm", k.arm}, {"units_per_kit", k.units_per_kit}});
    j["arms"] = arms;
    j["kit_types"] = kit_types;
  }
  return j;
}

shared::Result<json> index(ApiCall& c) {
  return json{{"service", "irt-hub"},
              {"study_id", c.hub.study().id},
              {"api", "/api/v1"},
              {"login", "POST /api/v1/login {\"user\", \"password\"}, then Authorization: Bearer TOKEN"},
              {"documentation", "docs/openapi-hub.yaml"},
              {"sync", "/sync/v1 (docs/sync-protocol.md)"},
              {"health", "/healthz"},
              {"dashboard", "/"}};
}

// Unknown user, wrong password and disabled user get one answer; the audit
// trail keeps which it was. The password hash runs without the server's lock.
shared::Result<json> login(ApiCall& c) {
  auto name = c.body.id("user");
  auto password = c.body.text("password");
  if (auto st = c.body.finish(); !st) return st.error();
  auto& db = c.hub.db();
  if (c.guard)
    if (auto st = c.guard->check(name, c.source, c.now_ms); !st) {
      record_audit(db, {c.now_ms, name, "hub.login_failed", name, "too many failed sign-ins", "", "", ""});
      return st.error();
    }
  auto user = find_user(db, name);
  const auto decoy = user ? "" : decoy_hash(db);
  bool matches = false;
  c.without_lock([&] { matches = password_matches(user, decoy, password); });
  if (c.guard) {
    if (matches) c.guard->succeeded(name);
    else c.guard->failed(name, c.source, c.now_ms);
  }
  const auto* role = user ? c.hub.study().find_role(user->role) : nullptr;
  std::string why = !user ? "unknown user" : !matches ? "wrong password" : user->disabled ? "user disabled"
                    : !role ? "role " + user->role + " is not in the current study" : "";
  if (!why.empty()) {
    record_audit(db, {c.now_ms, name, "hub.login_failed", name, why, "", "", ""});
    return make_error(Errc::unauthenticated, "login refused: unknown user or wrong password (or the account is "
                                             "disabled); check both and try again");
  }
  storage::Transaction tx(db);
  auto session = open_session(db, user->name, c.now_ms);
  record_audit(db, {c.now_ms, user->name, "hub.login", user->name, "POST /api/v1/login", "", "session opened", ""});
  tx.commit();
  c.user = user;
  c.role = role;
  auto j = me_view(c);
  j["token"] = session.token;
  return j;
}

shared::Result<json> logout(ApiCall& c) {
  if (auto st = c.body.finish(); !st) return st.error();
  auto& db = c.hub.db();
  storage::Transaction tx(db);
  end_session(db, c.session_id);
  record_audit(db, {c.now_ms, c.user->name, "hub.logout", c.user->name, "POST /api/v1/logout", "", "session ended", ""});
  tx.commit();
  return json{{"logged_out", true}};
}

}  // namespace

std::vector<ApiRoute> session_routes() {
  return {
      {"GET", "/api/v1", std::nullopt, index, true},
      {"POST", "/api/v1/login", std::nullopt, login, true},
      {"POST", "/api/v1/logout", std::nullopt, logout},
      {"GET", "/api/v1/me", std::nullopt, [](ApiCall& c) -> shared::Result<json> { return me_view(c); }},
      {"GET", "/api/v1/study", std::nullopt,
       [](ApiCall& c) -> shared::Result<json> { return study_view(c.hub.study(), c.blinded()); }},
  };
}

}  // namespace irt::hub
