#include "node/roster.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "crypto/password.h"

namespace irt::node {

shared::Result<std::vector<RosterUser>> load_roster(sync::NodeLog& log) {
  std::vector<RosterUser> out;
  auto bytes = log.get_sealed("roster");
  if (!bytes) return bytes.error();
  if (!*bytes) return out;
  auto j = nlohmann::json::parse(crypto::to_string(**bytes), nullptr, false);
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

std::optional<RosterUser> find_user(sync::NodeLog& log, const std::string& name) {
  auto roster = load_roster(log);
  if (!roster) return std::nullopt;  // confirm() reports the damage
  for (auto& u : *roster)
    if (u.name == name) return std::move(u);
  return std::nullopt;
}

PasswordCheck check_password(std::optional<RosterUser> entry, const std::string& name, const std::string& password) {
  PasswordCheck c{name, std::move(entry), !password.empty(), false};
  c.matches = c.entry && c.given && crypto::password_verify(c.entry->password_hash, password);
  return c;
}

shared::Result<RosterUser> confirm(sync::NodeLog& log, const std::string& site_id, const PasswordCheck& check) {
  auto refused = shared::make_error(shared::Errc::unauthenticated,
                                    "unknown user or wrong password; check both, or sync if the user was added "
                                    "at the hub recently");
  // A roster that does not authenticate is damage, told to everyone alike, never "unknown user".
  auto roster = load_roster(log);
  if (!roster) return roster.error();
  if (!check.matches) return refused;
  auto now = std::find_if(roster->begin(), roster->end(), [&](const RosterUser& u) { return u.name == check.user; });
  // Removed from the roster, or given a new password, since the check.
  if (now == roster->end() || now->password_hash != check.entry->password_hash) return refused;
  if (std::find(now->sites.begin(), now->sites.end(), site_id) == now->sites.end())
    return shared::make_error(shared::Errc::forbidden,
                              "user " + check.user + " has no access to site " + site_id + "; ask the study admin");
  return *now;
}

shared::Result<RosterUser> authenticate(sync::NodeLog& log, const std::string& site_id, const std::string& name,
                                        const std::string& password) {
  return confirm(log, site_id, check_password(find_user(log, name), name, password));
}

}  // namespace irt::node
