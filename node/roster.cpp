#include "node/roster.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "crypto/password.h"

namespace irt::node {

std::vector<RosterUser> load_roster(sync::NodeLog& log) {
  std::vector<RosterUser> out;
  auto bytes = log.get_sealed("roster");
  if (!bytes) return out;
  auto j = nlohmann::json::parse(crypto::to_string(*bytes), nullptr, false);
  if (j.is_discarded() || !j.contains("users")) return out;
  for (const auto& u : j["users"]) {
    RosterUser r;
    r.name = u.value("name", "");
    r.role = u.value("role", "");
    r.password_hash = u.value("password_hash", "");
    if (u.contains("sites"))
      for (const auto& s : u["sites"]) r.sites.push_back(s.get<std::string>());
    out.push_back(std::move(r));
  }
  return out;
}

shared::Result<RosterUser> authenticate(sync::NodeLog& log, const std::string& site_id, const std::string& name,
                                        const std::string& password) {
  auto refused = shared::make_error(shared::Errc::unauthenticated,
                                    "unknown user or wrong password; check both, or sync if the user was added "
                                    "at the hub recently");
  for (auto& u : load_roster(log)) {
    if (u.name != name) continue;
    if (!crypto::password_verify(u.password_hash, password)) return refused;
    if (std::find(u.sites.begin(), u.sites.end(), site_id) == u.sites.end())
      return shared::make_error(shared::Errc::forbidden,
                                "user " + name + " has no access to site " + site_id + "; ask the study admin");
    return u;
  }
  return refused;
}

}  // namespace irt::node
