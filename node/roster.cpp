#include "node/roster.h"

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "crypto/password.h"

namespace irt::node {

namespace {

struct Roster {
  std::vector<RosterUser> users;
  std::vector<SiteNode> nodes;
};

Roster parse_roster(const std::string& text) {
  Roster out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("users")) return out;
  for (const auto& u : j["users"]) {
    RosterUser r;
    r.name = u.value("name", "");
    r.role = u.value("role", "");
    r.password_hash = u.value("password_hash", "");
    if (u.contains("sites"))
      for (const auto& s : u["sites"]) r.sites.push_back(s.get<std::string>());
    out.users.push_back(std::move(r));
  }
  // Absent in rosters from a hub that did not list the site's nodes yet.
  if (j.contains("nodes") && j["nodes"].is_array())
    for (const auto& n : j["nodes"])
      if (n.is_object()) out.nodes.push_back({n.value("node_id", ""), n.value("kind", "")});
  return out;
}

// The roster as last parsed, by its exact text. Every password check and
// e-signature reads the roster twice (find_user, then confirm), and parsing it
// cost more than the rest of an operation's bookkeeping; keyed by content, a
// new roster (or one rolled back) is parsed afresh, so it can never be stale.
struct ParsedRoster {
  std::mutex mutex;
  std::string text;
  Roster roster;
};
ParsedRoster& parsed() {
  static ParsedRoster p;
  return p;
}

// Calls use(roster) with the node's roster; a roster that fails authentication
// is returned as its error, never read as empty.
template <class F>
auto with_roster(sync::NodeLog& log, F&& use) -> shared::Result<decltype(use(Roster{}))> {
  auto bytes = log.get_sealed("roster");
  if (!bytes) return bytes.error();
  std::string text = *bytes ? crypto::to_string(**bytes) : std::string();
  auto& p = parsed();
  std::lock_guard lock(p.mutex);
  if (text != p.text) {
    p.roster = parse_roster(text);
    p.text = std::move(text);
  }
  return use(p.roster);
}

shared::Result<std::optional<RosterUser>> find_in_roster(sync::NodeLog& log, const std::string& name) {
  return with_roster(log, [&](const Roster& roster) -> std::optional<RosterUser> {
    for (const auto& u : roster.users)
      if (u.name == name) return u;
    return std::nullopt;
  });
}

}  // namespace

shared::Result<std::vector<RosterUser>> load_roster(sync::NodeLog& log) {
  return with_roster(log, [](const Roster& roster) { return roster.users; });
}

shared::Result<std::vector<SiteNode>> load_site_nodes(sync::NodeLog& log) {
  return with_roster(log, [](const Roster& roster) { return roster.nodes; });
}

std::optional<RosterUser> find_user(sync::NodeLog& log, const std::string& name) {
  auto found = find_in_roster(log, name);
  return found ? *found : std::nullopt;  // confirm() reports the damage
}

std::string decoy_hash(sync::NodeLog& log) {
  auto users = load_roster(log);
  return users && !users->empty() ? users->front().password_hash : "";
}

PasswordCheck check_password(std::optional<RosterUser> entry, const std::string& name, const std::string& password,
                             const std::string& decoy) {
  PasswordCheck c{name, std::move(entry), !password.empty(), false};
  if (!c.entry && c.given && !decoy.empty()) (void)crypto::password_verify(decoy, password);
  c.matches = c.entry && c.given && crypto::password_verify(c.entry->password_hash, password);
  return c;
}

shared::Result<RosterUser> confirm(sync::NodeLog& log, const std::string& site_id, const PasswordCheck& check) {
  auto refused = shared::make_error(shared::Errc::unauthenticated,
                                    "unknown user or wrong password; check both, or sync if the user was added "
                                    "at the hub recently");
  // A roster that does not authenticate is damage, told to everyone alike, never "unknown user".
  auto current = find_in_roster(log, check.user);
  if (!current) return current.error();
  if (!check.matches) return refused;
  auto& now = *current;
  // Removed from the roster, or given a new password, since the check.
  if (!now || now->password_hash != check.entry->password_hash) return refused;
  if (std::find(now->sites.begin(), now->sites.end(), site_id) == now->sites.end())
    return shared::make_error(shared::Errc::forbidden,
                              "user " + check.user + " has no access to site " + site_id + "; ask the study admin");
  return *now;
}

shared::Result<RosterUser> authenticate(sync::NodeLog& log, const std::string& site_id, const std::string& name,
                                        const std::string& password) {
  auto entry = find_user(log, name);
  return confirm(log, site_id, check_password(entry, name, password, entry ? "" : decoy_hash(log)));
}

}  // namespace irt::node
