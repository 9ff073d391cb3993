// The users routes of the hub's API (manage_users): list and add, and the
// signed changes to an existing user, each calling its hub/users.h function.
// A password is read from the body and never echoed.
#include "hub/api_server.h"
#include "hub/audit.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Permission;

json user_view(const User& u) {
  return {{"name", u.name},
          {"role", u.role},
          {"sites", u.sites},
          {"status", u.disabled ? "disabled" : "enabled"},
          {"created", utc_text(u.created_ms)}};
}

shared::Result<json> changed(ApiCall& c, const shared::Result<RosterChange>& r, const Signature& signer) {
  if (!r) return r.error();
  auto user = find_user(c.hub.db(), c.param("name"));
  return json{{"user", user ? user_view(*user) : json(nullptr)},
              {"signed_by", signer.user},
              {"rosters_issued", r->rosters_issued}};
}

shared::Result<json> list_users(ApiCall& c) {
  json out = json::array();
  for (const auto& u : all_users(c.hub.db())) out.push_back(user_view(u));
  return json{{"users", out}};
}

shared::Result<json> add(ApiCall& c) {
  NewUser u;
  u.name = c.body.id("name");
  u.role = c.body.id("role");
  u.sites = c.body.ids("sites");
  u.password = c.body.text("password");
  if (auto st = c.body.finish(); !st) return st.error();
  auto added = add_user(c.hub, u, crypto::kInteractive, c.user->name, c.now_ms);
  crypto::secure_zero(u.password.data(), u.password.size());
  if (!added) return added.error();
  auto user = find_user(c.hub.db(), u.name);
  return json{{"user", user_view(*user)}, {"rosters_issued", added->rosters_issued}};
}

ApiHandler set_disabled(bool disabled) {
  return [disabled](ApiCall& c) -> shared::Result<json> {
    auto reason = c.body.text("reason");
    auto signer = c.signature(Permission::manage_users);
    if (!signer) return signer.error();
    return changed(c, set_user_disabled(c.hub, c.param("name"), disabled, reason, *signer, c.now_ms), *signer);
  };
}

shared::Result<json> password(ApiCall& c) {
  auto password = c.body.text("password");
  auto signer = c.signature(Permission::manage_users);
  if (!signer) return signer.error();
  auto r = set_user_password(c.hub, c.param("name"), password, crypto::kInteractive, *signer, c.now_ms, c.session_id);
  crypto::secure_zero(password.data(), password.size());
  return changed(c, r, *signer);
}

shared::Result<json> sites(ApiCall& c) {
  auto list = c.body.ids("sites");
  auto signer = c.signature(Permission::manage_users);
  if (!signer) return signer.error();
  return changed(c, set_user_sites(c.hub, c.param("name"), list, *signer, c.now_ms), *signer);
}

}  // namespace

std::vector<ApiRoute> user_routes() {
  const auto p = Permission::manage_users;
  return {
      {"GET", "/api/v1/users", p, list_users},
      {"POST", "/api/v1/users", p, add},
      {"POST", "/api/v1/users/{name}/disable", p, set_disabled(true)},
      {"POST", "/api/v1/users/{name}/enable", p, set_disabled(false)},
      {"POST", "/api/v1/users/{name}/password", p, password},
      {"POST", "/api/v1/users/{name}/sites", p, sites},
  };
}

}  // namespace irt::hub
