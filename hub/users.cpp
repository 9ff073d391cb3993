#include "hub/users.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include <algorithm>

#include <map>
#include <optional>
#include <set>

#include "hub/audit.h"
#include "hub/sessions.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

const std::vector<storage::Migration> kUsersMigrations = {
    {1, R"sql(
CREATE TABLE hub_users (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL
);
CREATE TABLE hub_user_sites (
  name TEXT NOT NULL REFERENCES hub_users(name),
  site_id TEXT NOT NULL,
  PRIMARY KEY (name, site_id)
) WITHOUT ROWID;
CREATE INDEX hub_user_sites_by_site ON hub_user_sites(site_id);
)sql"},
    {2, R"sql(
ALTER TABLE hub_users ADD COLUMN disabled_ms INTEGER;
)sql"},
};

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '@';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> sites_of(storage::Database& db, const std::string& name) {
  auto st = db.prepare("SELECT site_id FROM hub_user_sites WHERE name = ? ORDER BY site_id");
  st.bind(1, name);
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

std::vector<User> select_users(storage::Database& db, const std::string& sql, const std::string* site) {
  auto st = db.prepare(sql);
  if (site) st.bind(1, *site);
  std::vector<User> out;
  while (st.step()) out.push_back({st.text(0), st.text(1), {}, st.text(2), st.int64(3), !st.is_null(4)});
  for (auto& u : out) u.sites = sites_of(db, u.name);
  return out;
}

}  // namespace

shared::Status migrate_users(storage::Database& db) { return db.migrate("hub.users", kUsersMigrations); }

std::vector<User> users_of_site(storage::Database& db, const std::string& site_id) {
  return select_users(db,
                      "SELECT u.name, u.role, u.password_hash, u.created_ms, u.disabled_ms FROM hub_users u "
                      "JOIN hub_user_sites s ON s.name = u.name WHERE s.site_id = ? ORDER BY u.name",
                      &site_id);
}

std::optional<User> find_user(storage::Database& db, const std::string& name) {
  auto users = select_users(db,
                            "SELECT name, role, password_hash, created_ms, disabled_ms FROM hub_users WHERE name = ?",
                            &name);
  if (users.empty()) return std::nullopt;
  return users.front();
}

std::vector<User> all_users(storage::Database& db) {
  return select_users(db, "SELECT name, role, password_hash, created_ms, disabled_ms FROM hub_users ORDER BY name",
                      nullptr);
}

std::vector<std::string> verify_users(storage::Database& db) {
  struct Rebuilt {
    std::string role, sites;
    bool disabled = false;
  };
  std::map<std::string, Rebuilt> rebuilt;
  std::vector<std::string> problems;
  for (const auto& e : audit_entries(db)) {
    if (e.action == "user.added") {
      // new_value: "role R, sites a,b" (or "sites (none)")
      const auto comma = e.new_value.find(", sites ");
      if (e.new_value.rfind("role ", 0) != 0 || comma == std::string::npos) {
        problems.push_back("user " + e.subject + ": its user.added audit entry does not read 'role R, sites S'");
        continue;
      }
      rebuilt[e.subject] = {e.new_value.substr(5, comma - 5), e.new_value.substr(comma + 8), false};
    } else if (e.action == "user.disabled" || e.action == "user.enabled" || e.action == "user.sites_set") {
      auto it = rebuilt.find(e.subject);
      if (it == rebuilt.end()) {
        problems.push_back("user " + e.subject + ": audit entry " + e.action + " comes before any user.added");
        continue;
      }
      if (e.action == "user.sites_set") it->second.sites = e.new_value;
      else it->second.disabled = e.action == "user.disabled";
    }
  }
  for (const auto& u : all_users(db)) {
    auto it = rebuilt.find(u.name);
    if (it == rebuilt.end()) {
      problems.push_back("hub_users: user " + u.name + " has no user.added audit entry");
      continue;
    }
    const auto& r = it->second;
    const std::string sites = u.sites.empty() ? "(none)" : shared::join(u.sites, ",");
    if (u.role != r.role)
      problems.push_back("hub_users: user " + u.name + " role is " + u.role + ", the audit trail says " + r.role);
    if (sites != r.sites)
      problems.push_back("hub_user_sites: user " + u.name + " sites are " + sites + ", the audit trail says " +
                         r.sites);
    if (u.disabled != r.disabled)
      problems.push_back(std::string("hub_users: user ") + u.name + " is " + (u.disabled ? "disabled" : "enabled") +
                         ", the audit trail says " + (r.disabled ? "disabled" : "enabled"));
    rebuilt.erase(it);
  }
  for (const auto& [name, r] : rebuilt)
    problems.push_back("hub_users: user " + name + " (role " + r.role + ") was added by the audit trail but is missing");
  return problems;
}

std::string roster_payload(HubState& hub, const std::string& site_id) {
  nlohmann::json users = nlohmann::json::array();
  for (const auto& u : users_of_site(hub.db(), site_id))
    if (!u.disabled)
      users.push_back({{"name", u.name}, {"role", u.role}, {"sites", u.sites}, {"password_hash", u.password_hash}});
  auto ledger_nodes = hub.ledger().nodes();
  std::sort(ledger_nodes.begin(), ledger_nodes.end(),
            [](const auto& x, const auto& y) { return x.node_id < y.node_id; });
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : ledger_nodes)
    if (n.site_id == site_id && n.status == sync::NodeStatus::active)
      nodes.push_back({{"node_id", n.node_id}, {"kind", n.kind}});
  nlohmann::json payload;
  payload["site_id"] = site_id;
  payload["users"] = std::move(users);
  payload["nodes"] = std::move(nodes);
  return payload.dump();
}

bool is_site_role(const shared::Role& role) {
  using P = shared::Permission;
  for (P p : {P::screen, P::randomize, P::dispense, P::unblind, P::receive_shipment, P::report_excursion,
              P::return_kits, P::withdraw})
    if (role.can(p)) return true;
  return false;
}


namespace {

using shared::Errc;
using shared::make_error;

shared::Status check_password_rule(const std::string& password) {
  if (password.size() < kMinPasswordLength)
    return make_error(Errc::invalid_input, "the password must be at least " + std::to_string(kMinPasswordLength) +
                                               " characters long");
  return {};
}

// The study's sites among `sites`, deduplicated; an unknown one is refused.
// A site role with no site is refused: its user could log in nowhere.
shared::Result<std::set<std::string>> check_sites(const shared::Study& study, const shared::Role& role,
                                                  const std::vector<std::string>& sites) {
  std::set<std::string> out;
  if (role.can(shared::Permission::manage_depot)) {
    // A depot role (hub/depot_shipments.h): its user is bound to depots.
    for (const auto& s : sites) {
      if (std::none_of(study.depots.begin(), study.depots.end(), [&](const shared::Depot& d) { return d.id == s; }))
        return make_error(Errc::invalid_input, "study " + study.id + " has no depot '" + s + "'; role " + role.id +
                                                   " works at depots: give the depot ids of the study file");
      out.insert(s);
    }
    if (out.empty())
      return make_error(Errc::invalid_input, "role " + role.id + " works at depots; give the user's depots "
                                                                 "(--sites D1,D2)");
    return out;
  }
  for (const auto& s : sites) {
    if (!study.find_site(s))
      return make_error(Errc::invalid_input,
                        "study " + study.id + " has no site '" + s + "'; use the site ids of the study file");
    out.insert(s);
  }
  if (out.empty() && is_site_role(role))
    return make_error(Errc::invalid_input, "role " + role.id + " works on a site's node; give the user's sites "
                                                               "(--sites S1,S2)");
  return out;
}

}  // namespace

std::size_t issue_rosters(HubState& hub, const std::set<std::string>& sites, const std::string& why,
                          const std::string& actor, std::int64_t now_ms, const std::string& except_node) {
  auto& db = hub.db();
  std::size_t issued = 0;
  for (const auto& s : sites) {
    std::string payload = roster_payload(hub, s);
    for (const auto& node : hub.ledger().nodes()) {
      if (node.site_id != s || node.status == sync::NodeStatus::revoked || node.node_id == except_node) continue;
      auto seq = hub.outbox().issue(node.node_id, kRosterDirective, payload, now_ms);
      record_audit(db, {now_ms, actor, "directive.issued", node.node_id, "roster changed: " + why, "",
                        "roster directive seq " + std::to_string(seq)});
      ++issued;
    }
  }
  return issued;
}

namespace {

bool has_users(storage::Database& db) { return db.prepare("SELECT 1 FROM hub_users LIMIT 1").step(); }

const shared::Error kHasUsers{Errc::unauthenticated,
                              "the hub has users: name the hub user adding this one with --user NAME (a role "
                              "holding manage_users), the password on the first line of standard input"};

shared::Result<UserAdded> insert_user(HubState& hub, const NewUser& user, const crypto::PwhashCost& cost,
                                      const std::string& actor, std::int64_t now_ms, bool first) {
  if (!valid_name(user.name))
    return make_error(Errc::invalid_input, "user name '" + user.name +
                                               "' must be 1-64 characters of letters, digits, '.', '_', "
                                               "'-' or '@'");
  const auto& study = hub.study();
  const auto* role = study.find_role(user.role);
  if (!role) {
    std::vector<std::string> roles;
    for (const auto& r : study.roles) roles.push_back(r.id);
    return make_error(Errc::invalid_input, "study " + study.id + " has no role '" + user.role +
                                               "'; use one of: " + shared::join(roles, ","));
  }
  if (first && has_users(hub.db())) return kHasUsers;
  if (first && !role->can(shared::Permission::manage_users)) {
    std::vector<std::string> admins;
    for (const auto& r : study.roles)
      if (r.can(shared::Permission::manage_users)) admins.push_back(r.id);
    return make_error(Errc::invalid_input, "the hub's first user adds every other, so the role needs manage_users; "
                                           "use one of: " + (admins.empty() ? std::string("(none in this study)")
                                                                            : shared::join(admins, ",")));
  }
  auto sites = check_sites(study, *role, user.sites);
  if (!sites) return sites.error();
  if (auto ok = check_password_rule(user.password); !ok) return ok.error();
  // Hash before taking the write lock: Argon2id takes a while on purpose.
  std::string hash = crypto::password_hash(user.password, cost);

  auto& db = hub.db();
  storage::Transaction tx(db);
  if (first && has_users(db)) return kHasUsers;  // again under the write lock: two setups at once
  if (find_user(db, user.name))
    return make_error(Errc::conflict, "user '" + user.name + "' already exists; choose another name");
  db.prepare("INSERT INTO hub_users(name, role, password_hash, created_ms, created_by) VALUES (?, ?, ?, ?, ?)")
      .bind_all(user.name, user.role, hash, now_ms, actor)
      .run();
  auto ins_site = db.prepare("INSERT INTO hub_user_sites(name, site_id) VALUES (?, ?)");
  for (const auto& s : *sites) {
    ins_site.reset();
    ins_site.bind_all(user.name, s).run();
  }
  std::vector<std::string> site_list(sites->begin(), sites->end());
  record_audit(db, {now_ms, actor, "user.added", user.name, "irt-hub user add", "",
                    "role " + user.role + ", sites " + (site_list.empty() ? "(none)" : shared::join(site_list, ","))});
  UserAdded out{issue_rosters(hub, *sites, "user " + user.name + " added", actor, now_ms)};
  tx.commit();
  return out;
}

}  // namespace

shared::Result<UserAdded> add_user(HubState& hub, const NewUser& user, const crypto::PwhashCost& cost,
                                   const std::string& actor, std::int64_t now_ms) {
  return insert_user(hub, user, cost, actor, now_ms, false);
}

shared::Result<UserAdded> add_first_user(HubState& hub, const NewUser& user, const crypto::PwhashCost& cost,
                                         const std::string& setup, std::int64_t now_ms) {
  return insert_user(hub, user, cost, setup, now_ms, true);
}

bool password_matches(const std::optional<User>& user, const std::string& decoy_hash, const std::string& password) {
  if (!user) {
    if (!decoy_hash.empty()) (void)crypto::password_verify(decoy_hash, password);
    return false;
  }
  return crypto::password_verify(user->password_hash, password);
}

std::string decoy_hash(storage::Database& db) {
  auto st = db.prepare("SELECT password_hash FROM hub_users ORDER BY name LIMIT 1");
  return st.step() ? st.text(0) : "";
}

shared::Result<User> check_signature(HubState& hub, const Signature& s, shared::Permission needed) {
  auto signer = find_user(hub.db(), s.user);
  if (!password_matches(signer, signer ? "" : decoy_hash(hub.db()), s.password))
    return make_error(Errc::unauthenticated, "the signature was refused: unknown hub user or wrong password; check "
                                             "the user's name and the password given on standard input");
  if (signer->disabled)
    return make_error(Errc::forbidden, "hub user " + s.user + " is disabled and cannot sign; ask a study admin");
  const auto* role = hub.study().find_role(signer->role);
  if (!role || !role->can(needed))
    return make_error(Errc::forbidden, "hub user " + s.user + " (role " + signer->role + ") may not " +
                                           "sign this change; it needs the permission " + shared::to_string(needed));
  return *signer;
}

namespace {

// The shared frame of a signed change to an existing user: checks the
// signature, finds the user, and within one transaction applies `change`
// (which returns the audit entry's old and new values), records the entry and
// re-issues the rosters of the user's sites before and after.
template <class Change>
shared::Result<RosterChange> change_user(HubState& hub, const std::string& name, const std::string& action,
                                         const std::string& reason, const Signature& signer, std::int64_t now_ms,
                                         Change&& change) {
  auto who = check_signature(hub, signer, shared::Permission::manage_users);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto user = find_user(db, name);
  if (!user) return make_error(Errc::not_found, "no hub user '" + name + "'; see irt-hub user list");
  std::set<std::string> sites(user->sites.begin(), user->sites.end());
  auto values = change(*user);
  if (!values) return values.error();
  auto now = find_user(db, name);
  sites.insert(now->sites.begin(), now->sites.end());
  AuditEntry entry{now_ms, who->name, action, name, reason, values->first, values->second, "approved"};
  record_audit(db, entry);
  RosterChange out{issue_rosters(hub, sites, action + " for user " + name, who->name, now_ms)};
  tx.commit();
  return out;
}

using Values = shared::Result<std::pair<std::string, std::string>>;

}  // namespace

shared::Result<RosterChange> set_user_disabled(HubState& hub, const std::string& name, bool disabled,
                                               const std::string& reason, const Signature& signer,
                                               std::int64_t now_ms) {
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  if (disabled && name == signer.user)
    return make_error(Errc::invalid_input, "a user cannot disable their own account; ask another admin to sign");
  auto& db = hub.db();
  return change_user(hub, name, disabled ? "user.disabled" : "user.enabled", reason, signer, now_ms,
                     [&](const User& u) -> Values {
                       if (u.disabled == disabled)
                         return make_error(Errc::conflict, "user " + name + " is already " +
                                                               (disabled ? "disabled" : "enabled") +
                                                               "; nothing was changed");
                       auto st = db.prepare("UPDATE hub_users SET disabled_ms = ? WHERE name = ?");
                       st.bind(1, disabled ? std::optional<std::int64_t>(now_ms) : std::nullopt).bind(2, name).run();
                       if (disabled) end_sessions_of(db, name);
                       return std::pair<std::string, std::string>(u.disabled ? "disabled" : "enabled",
                                                                  disabled ? "disabled" : "enabled");
                     });
}

shared::Result<RosterChange> set_user_password(HubState& hub, const std::string& name, const std::string& password,
                                               const crypto::PwhashCost& cost, const Signature& signer,
                                               std::int64_t now_ms, const std::string& keep_session) {
  if (auto ok = check_password_rule(password); !ok) return ok.error();
  std::string hash = crypto::password_hash(password, cost);
  auto& db = hub.db();
  // The values never hold the password or its hash.
  return change_user(hub, name, "user.password_set", "irt-hub user passwd", signer, now_ms,
                     [&](const User&) -> Values {
                       db.prepare("UPDATE hub_users SET password_hash = ? WHERE name = ?").bind_all(hash, name).run();
                       end_sessions_of(db, name, keep_session);
                       return std::pair<std::string, std::string>("(a password)", "(a new password)");
                     });
}

shared::Result<RosterChange> set_user_sites(HubState& hub, const std::string& name,
                                            const std::vector<std::string>& sites, const Signature& signer,
                                            std::int64_t now_ms) {
  auto& db = hub.db();
  return change_user(hub, name, "user.sites_set", "irt-hub user sites", signer, now_ms, [&](const User& u) -> Values {
    const auto* role = hub.study().find_role(u.role);
    if (!role) return make_error(Errc::integrity, "user " + name + " has role " + u.role + ", unknown to the study");
    auto checked = check_sites(hub.study(), *role, sites);
    if (!checked) return checked.error();
    db.prepare("DELETE FROM hub_user_sites WHERE name = ?").bind(1, name).run();
    auto ins = db.prepare("INSERT INTO hub_user_sites(name, site_id) VALUES (?, ?)");
    for (const auto& s : *checked) {
      ins.reset();
      ins.bind_all(name, s).run();
    }
    std::vector<std::string> now(checked->begin(), checked->end());
    return std::pair<std::string, std::string>(u.sites.empty() ? "(none)" : shared::join(u.sites, ","),
                                               now.empty() ? "(none)" : shared::join(now, ","));
  });
}

}  // namespace irt::hub
