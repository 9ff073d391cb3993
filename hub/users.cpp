#include "hub/users.h"

#include <nlohmann/json.hpp>

#include <set>

#include "hub/audit.h"

namespace irt::hub {

namespace {

const std::vector<storage::Migration> kMigrations = {
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
  while (st.step()) out.push_back({st.text(0), st.text(1), {}, st.text(2), st.int64(3)});
  for (auto& u : out) u.sites = sites_of(db, u.name);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

shared::Status migrate_users(storage::Database& db) { return db.migrate("hub.users", kMigrations); }

std::vector<User> users_of_site(storage::Database& db, const std::string& site_id) {
  return select_users(db,
                      "SELECT u.name, u.role, u.password_hash, u.created_ms FROM hub_users u "
                      "JOIN hub_user_sites s ON s.name = u.name WHERE s.site_id = ? ORDER BY u.name",
                      &site_id);
}

std::vector<User> all_users(storage::Database& db) {
  return select_users(db, "SELECT name, role, password_hash, created_ms FROM hub_users ORDER BY name", nullptr);
}

std::string roster_payload(storage::Database& db, const std::string& site_id) {
  nlohmann::json users = nlohmann::json::array();
  for (const auto& u : users_of_site(db, site_id))
    users.push_back({{"name", u.name}, {"role", u.role}, {"sites", u.sites}, {"password_hash", u.password_hash}});
  nlohmann::json payload;
  payload["site_id"] = site_id;
  payload["users"] = std::move(users);
  return payload.dump();
}

shared::Result<UserAdded> add_user(HubState& hub, const NewUser& user, const crypto::PwhashCost& cost,
                                   const std::string& actor, std::int64_t now_ms) {
  using shared::Errc;
  if (!valid_name(user.name))
    return shared::make_error(Errc::invalid_input, "user name '" + user.name +
                                                       "' must be 1-64 characters of letters, digits, '.', '_', "
                                                       "'-' or '@'");
  const auto& study = hub.study();
  if (!study.find_role(user.role)) {
    std::vector<std::string> roles;
    for (const auto& r : study.roles) roles.push_back(r.id);
    return shared::make_error(Errc::invalid_input, "study " + study.id + " has no role '" + user.role +
                                                       "'; use one of: " + joined(roles));
  }
  std::set<std::string> sites;
  for (const auto& s : user.sites) {
    if (!study.find_site(s))
      return shared::make_error(Errc::invalid_input,
                                "study " + study.id + " has no site '" + s + "'; use the site ids of the study file");
    sites.insert(s);
  }
  if (user.password.size() < kMinPasswordLength)
    return shared::make_error(Errc::invalid_input, "the password must be at least " +
                                                       std::to_string(kMinPasswordLength) + " characters long");
  // Hash before taking the write lock: Argon2id takes a while on purpose.
  std::string hash = crypto::password_hash(user.password, cost);

  auto& db = hub.db();
  storage::Transaction tx(db);
  auto exists = db.prepare("SELECT 1 FROM hub_users WHERE name = ?");
  exists.bind(1, user.name);
  if (exists.step())
    return shared::make_error(Errc::conflict, "user '" + user.name + "' already exists; choose another name");
  db.prepare("INSERT INTO hub_users(name, role, password_hash, created_ms, created_by) VALUES (?, ?, ?, ?, ?)")
      .bind_all(user.name, user.role, hash, now_ms, actor)
      .run();
  auto ins_site = db.prepare("INSERT INTO hub_user_sites(name, site_id) VALUES (?, ?)");
  for (const auto& s : sites) {
    ins_site.reset();
    ins_site.bind_all(user.name, s).run();
  }
  std::vector<std::string> site_list(sites.begin(), sites.end());
  record_audit(db, {now_ms, actor, "user.added", user.name, "irt-hub user add", "",
                    "role " + user.role + ", sites " + (site_list.empty() ? "(none)" : joined(site_list))});

  UserAdded out;
  for (const auto& s : sites) {
    std::string payload = roster_payload(db, s);
    for (const auto& node : hub.ledger().nodes()) {
      if (node.site_id != s || node.status == sync::NodeStatus::revoked) continue;
      auto seq = hub.outbox().issue(node.node_id, kRosterDirective, payload, now_ms);
      record_audit(db, {now_ms, actor, "directive.issued", node.node_id, "roster changed: user " + user.name + " added",
                        "", "roster directive seq " + std::to_string(seq)});
      ++out.rosters_issued;
    }
  }
  tx.commit();
  return out;
}

}  // namespace irt::hub
