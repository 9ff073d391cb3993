// Hub users and the roster directives that carry them to the nodes of their sites.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/enrollment.h"
#include "hub/node_decisions.h"
#include "hub/users.h"
#include "sync/directive.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using test::HubFixture;
using test::kHour;
using test::kHubNow;

namespace {

std::string enroll_node(HubFixture& f, const std::string& site, const std::string& kind = "site") {
  auto inv = hub::invite(*f.hub, site, kind, hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  auto key = crypto::SigningKey::generate();
  auto done = hub::enroll(*f.hub, {inv->token, key.public_key().hex(), ""}, kHubNow);
  REQUIRE(done.ok());
  test::remember_node_key(done->certificate.node_id, key);
  return done->certificate.node_id;
}

hub::NewUser user(const std::string& name, const std::string& role, std::vector<std::string> sites) {
  return {name, role, std::move(sites), "a long enough password"};
}

nlohmann::json last_roster(HubFixture& f, const std::string& node_id) {
  auto records = f.hub->outbox().after(node_id, 0, 100);
  REQUIRE_FALSE(records.empty());
  auto d = sync::parse_directive(records.back());
  REQUIRE(d.ok());
  REQUIRE(d->body.type == "roster");
  return nlohmann::json::parse(test::opened_payload(*d));
}

}  // namespace

TEST_CASE("adding a user sends a fresh roster to the nodes of the user's sites only") {
  HubFixture f;
  auto a = enroll_node(f, "101");
  auto b = enroll_node(f, "102");
  auto added = hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow);
  REQUIRE_MESSAGE(added.ok(), added.error().message);
  CHECK(added->rosters_issued == 1);
  // Enrollment issued 6 directives (configuration, roster, 3 grants, the lease); a's roster is the 7th.
  CHECK(f.hub->outbox().last_seq(a) == 7);
  CHECK(f.hub->outbox().last_seq(b) == 6);

  auto roster = last_roster(f, a);
  REQUIRE(roster["users"].size() == 1);
  const auto& u = roster["users"][0];
  CHECK(u["name"] == "jane");
  CHECK(u["role"] == "coordinator");
  CHECK(u["sites"] == nlohmann::json::array({"101"}));
  CHECK(crypto::password_verify(u["password_hash"].get<std::string>(), "a long enough password"));
  CHECK_FALSE(crypto::password_verify(u["password_hash"].get<std::string>(), "another password"));

  // A second user at both sites: each site's roster lists everyone of that site.
  REQUIRE(hub::add_user(*f.hub, user("omar", "investigator", {"101", "102"}), crypto::kTest, "admin", kHubNow).ok());
  CHECK(last_roster(f, a)["users"].size() == 2);
  CHECK(last_roster(f, b)["users"].size() == 1);
  CHECK(last_roster(f, b)["users"][0]["name"] == "omar");
}

TEST_CASE("a revoked node receives no roster") {
  HubFixture f;
  auto a = enroll_node(f, "101");
  REQUIRE(f.hub->ledger().revoke(a, "lost", "admin", kHubNow).ok());
  auto added = hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow);
  REQUIRE(added.ok());
  CHECK(added->rosters_issued == 0);
  CHECK(f.hub->outbox().last_seq(a) == 6);
}

TEST_CASE("a site's roster lists its nodes not revoked, sent again to the others at each enrollment and revocation") {
  HubFixture f("packaging/examples/study-minimization.json");  // site 402 has nurses' tablets
  auto site_node = enroll_node(f, "402");
  auto other_site = enroll_node(f, "401");
  // The site's nodes in `node_id`'s latest roster, as "id:kind".
  auto nodes_of = [&](const std::string& node_id) {
    std::vector<std::string> out;
    nlohmann::json roster;
    for (const auto& r : f.hub->outbox().after(node_id, 0, 100)) {
      auto d = sync::parse_directive(r);
      REQUIRE(d.ok());
      if (d->body.type == "roster") roster = nlohmann::json::parse(test::opened_payload(*d));
    }
    for (const auto& n : roster["nodes"]) out.push_back(n["node_id"].get<std::string>() + ":" + n["kind"].get<std::string>());
    return out;
  };
  CHECK(nodes_of(site_node) == std::vector<std::string>{site_node + ":site"});
  const auto before = f.hub->outbox().last_seq(site_node);
  const auto other_before = f.hub->outbox().last_seq(other_site);
  auto tablet = enroll_node(f, "402", "nurse");
  // The site node hears of the tablet at once, the other site hears nothing.
  CHECK(f.hub->outbox().last_seq(site_node) == before + 1);
  CHECK(f.hub->outbox().last_seq(other_site) == other_before);
  CHECK(nodes_of(site_node) == std::vector<std::string>{site_node + ":site", tablet + ":nurse"});
  // The tablet's own roster, issued at its enrollment, lists both too.
  CHECK(nodes_of(tablet) == std::vector<std::string>{site_node + ":site", tablet + ":nurse"});
  CHECK(nodes_of(other_site) == std::vector<std::string>{other_site + ":site"});
  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "directive.issued" && e.subject == site_node && e.reason.find(tablet + " enrolled") != std::string::npos)
      audited = true;
  CHECK(audited);

  // Revoked, the tablet leaves the site node's list.
  REQUIRE(hub::add_user(*f.hub, user("kim", "admin", {}), crypto::kTest, "admin", kHubNow).ok());
  auto revoked = hub::revoke_node(*f.hub, tablet, "tablet lost", {"kim", "a long enough password"}, kHubNow);
  REQUIRE_MESSAGE(revoked.ok(), revoked.error().message);
  CHECK(nodes_of(site_node) == std::vector<std::string>{site_node + ":site"});
}

TEST_CASE("a user with an unknown role or site, a short password or a taken name is refused") {
  HubFixture f;
  auto role = hub::add_user(*f.hub, user("jane", "astronaut", {"101"}), crypto::kTest, "admin", kHubNow);
  REQUIRE_FALSE(role.ok());
  CHECK(role.error().code == shared::Errc::invalid_input);
  CHECK(role.error().message.find("coordinator") != std::string::npos);  // lists the roles that exist
  auto site = hub::add_user(*f.hub, user("jane", "coordinator", {"101", "999"}), crypto::kTest, "admin", kHubNow);
  REQUIRE_FALSE(site.ok());
  CHECK(site.error().message.find("999") != std::string::npos);
  auto pw = hub::add_user(*f.hub, {"jane", "coordinator", {"101"}, "short"}, crypto::kTest, "admin", kHubNow);
  REQUIRE_FALSE(pw.ok());
  auto name = hub::add_user(*f.hub, user("jane smith", "coordinator", {}), crypto::kTest, "admin", kHubNow);
  REQUIRE_FALSE(name.ok());
  CHECK(hub::all_users(f.hub->db()).empty());

  REQUIRE(hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow).ok());
  auto dup = hub::add_user(*f.hub, user("jane", "monitor", {}), crypto::kTest, "admin", kHubNow);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == shared::Errc::conflict);
  CHECK(hub::all_users(f.hub->db()).size() == 1);
}

TEST_CASE("the audit trail records a new user without the password or its hash") {
  HubFixture f;
  REQUIRE(hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow).ok());
  auto hash = hub::all_users(f.hub->db()).at(0).password_hash;
  bool found = false;
  for (const auto& e : hub::audit_entries(f.hub->db())) {
    for (const auto& v : {e.reason, e.old_value, e.new_value}) {
      CHECK(v.find("a long enough password") == std::string::npos);
      CHECK(v.find(hash) == std::string::npos);
    }
    if (e.action == "user.added" && e.subject == "jane") {
      found = true;
      CHECK(e.actor == "admin");
      CHECK(e.new_value.find("coordinator") != std::string::npos);
    }
  }
  CHECK(found);
}

namespace {

// An admin (manage_users, no site) who signs the changes below.
const hub::Signature kUsersAdmin{"ada", "the admin's own password"};

void add_admin(HubFixture& f) {
  REQUIRE(hub::add_user(*f.hub, {"ada", "admin", {}, kUsersAdmin.password}, crypto::kTest, "operator", kHubNow).ok());
}

std::vector<std::string> roster_names(HubFixture& f, const std::string& node_id) {
  std::vector<std::string> out;
  auto roster = last_roster(f, node_id);
  for (const auto& u : roster["users"]) out.push_back(u["name"]);
  return out;
}

}  // namespace

TEST_CASE("a site role needs a site, a central role does not") {
  HubFixture f;
  auto none = hub::add_user(*f.hub, user("jane", "coordinator", {}), crypto::kTest, "admin", kHubNow);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == shared::Errc::invalid_input);
  CHECK(none.error().message.find("--sites") != std::string::npos);
  CHECK(hub::add_user(*f.hub, user("mo", "monitor", {}), crypto::kTest, "admin", kHubNow).ok());
  CHECK(hub::is_site_role(*f.hub->study().find_role("nurse")));
  CHECK_FALSE(hub::is_site_role(*f.hub->study().find_role("supply-manager")));
}

TEST_CASE("a disabled user leaves the rosters of the user's sites and comes back when enabled, each change signed") {
  HubFixture f;
  auto a = enroll_node(f, "101");
  auto b = enroll_node(f, "102");
  add_admin(f);
  REQUIRE(hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow).ok());
  REQUIRE(hub::add_user(*f.hub, user("omar", "investigator", {"101"}), crypto::kTest, "admin", kHubNow).ok());
  auto before_b = f.hub->outbox().last_seq(b);

  auto off = hub::set_user_disabled(*f.hub, "jane", true, "left the study", kUsersAdmin, kHubNow + kHour);
  REQUIRE_MESSAGE(off.ok(), off.error().message);
  CHECK(off->rosters_issued == 1);
  CHECK(roster_names(f, a) == std::vector<std::string>{"omar"});
  CHECK(f.hub->outbox().last_seq(b) == before_b);  // not jane's site
  auto listed = hub::all_users(f.hub->db());
  CHECK(std::count_if(listed.begin(), listed.end(), [](const auto& u) { return u.disabled; }) == 1);

  auto again = hub::set_user_disabled(*f.hub, "jane", true, "again", kUsersAdmin, kHubNow + kHour);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == shared::Errc::conflict);

  REQUIRE(hub::set_user_disabled(*f.hub, "jane", false, "back from leave", kUsersAdmin, kHubNow + 2 * kHour).ok());
  CHECK(roster_names(f, a) == std::vector<std::string>{"jane", "omar"});

  int signed_entries = 0;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "user.disabled" || e.action == "user.enabled") {
      ++signed_entries;
      CHECK(e.actor == "ada");
      CHECK(e.signature == "approved");
      CHECK(e.subject == "jane");
      CHECK_FALSE(e.reason.empty());
    }
  CHECK(signed_entries == 2);
}

TEST_CASE("a change to a user is refused without a valid signature of a user who may manage users") {
  HubFixture f;
  enroll_node(f, "101");
  add_admin(f);
  REQUIRE(hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow).ok());
  REQUIRE(hub::add_user(*f.hub, user("mo", "monitor", {}), crypto::kTest, "admin", kHubNow).ok());
  auto audit_size = hub::audit_entries(f.hub->db()).size();

  auto wrong = hub::set_user_disabled(*f.hub, "jane", true, "r", {"ada", "not it at all"}, kHubNow);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == shared::Errc::unauthenticated);
  auto unknown = hub::set_user_disabled(*f.hub, "jane", true, "r", {"nobody", "whatever it is"}, kHubNow);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message == wrong.error().message);  // unknown user and wrong password alike
  auto monitor = hub::set_user_disabled(*f.hub, "jane", true, "r", {"mo", "a long enough password"}, kHubNow);
  REQUIRE_FALSE(monitor.ok());
  CHECK(monitor.error().code == shared::Errc::forbidden);
  CHECK(monitor.error().message.find("manage_users") != std::string::npos);
  auto no_reason = hub::set_user_disabled(*f.hub, "jane", true, "", kUsersAdmin, kHubNow);
  REQUIRE_FALSE(no_reason.ok());
  auto self = hub::set_user_disabled(*f.hub, "ada", true, "r", kUsersAdmin, kHubNow);
  REQUIRE_FALSE(self.ok());
  auto missing = hub::set_user_disabled(*f.hub, "zed", true, "r", kUsersAdmin, kHubNow);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == shared::Errc::not_found);
  CHECK(hub::audit_entries(f.hub->db()).size() == audit_size);  // nothing recorded

  // A disabled signer signs nothing.
  REQUIRE(hub::add_user(*f.hub, {"bea", "admin", {}, "bea's long password"}, crypto::kTest, "op", kHubNow).ok());
  REQUIRE(hub::set_user_disabled(*f.hub, "bea", true, "left", kUsersAdmin, kHubNow).ok());
  auto disabled = hub::set_user_disabled(*f.hub, "jane", true, "r", {"bea", "bea's long password"}, kHubNow);
  REQUIRE_FALSE(disabled.ok());
  CHECK(disabled.error().code == shared::Errc::forbidden);
}

TEST_CASE("a new password and new sites reach the rosters of the old and the new sites") {
  HubFixture f;
  auto a = enroll_node(f, "101");
  auto b = enroll_node(f, "102");
  add_admin(f);
  REQUIRE(hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow).ok());

  auto pw = hub::set_user_password(*f.hub, "jane", "a brand new password", crypto::kTest, kUsersAdmin, kHubNow);
  REQUIRE_MESSAGE(pw.ok(), pw.error().message);
  auto hash = last_roster(f, a)["users"][0]["password_hash"].get<std::string>();
  CHECK(crypto::password_verify(hash, "a brand new password"));
  CHECK_FALSE(hub::set_user_password(*f.hub, "jane", "short", crypto::kTest, kUsersAdmin, kHubNow).ok());

  auto moved = hub::set_user_sites(*f.hub, "jane", {"102"}, kUsersAdmin, kHubNow);
  REQUIRE_MESSAGE(moved.ok(), moved.error().message);
  CHECK(moved->rosters_issued == 2);  // 101 loses her, 102 gains her
  CHECK(roster_names(f, a).empty());
  CHECK(roster_names(f, b) == std::vector<std::string>{"jane"});
  auto none = hub::set_user_sites(*f.hub, "jane", {}, kUsersAdmin, kHubNow);
  REQUIRE_FALSE(none.ok());  // a coordinator needs a site
  CHECK_FALSE(hub::set_user_sites(*f.hub, "jane", {"999"}, kUsersAdmin, kHubNow).ok());

  for (const auto& e : hub::audit_entries(f.hub->db())) {
    CHECK(e.old_value.find("a brand new password") == std::string::npos);
    CHECK(e.new_value.find(hash) == std::string::npos);
    if (e.action == "user.sites_set") {
      CHECK(e.old_value == "101");
      CHECK(e.new_value == "102");
    }
  }
}

TEST_CASE("the audit trail filters by time, user and object") {
  HubFixture f;
  add_admin(f);
  REQUIRE(hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "op", kHubNow + kHour).ok());
  REQUIRE(hub::set_user_disabled(*f.hub, "jane", true, "left", kUsersAdmin, kHubNow + 2 * kHour).ok());
  auto all = hub::audit_entries(f.hub->db());
  auto since = hub::audit_entries(f.hub->db(), {kHubNow + kHour, "", ""});
  CHECK(since.size() == 2);  // jane added, jane disabled (no node: no roster)
  CHECK(since.size() < all.size());
  auto by_ada = hub::audit_entries(f.hub->db(), {std::nullopt, "ada", ""});
  REQUIRE(by_ada.size() == 1);
  CHECK(by_ada[0].action == "user.disabled");
  auto about_ada = hub::audit_entries(f.hub->db(), {std::nullopt, "", "ada"});
  REQUIRE(about_ada.size() == 1);
  CHECK(about_ada[0].action == "user.added");
  CHECK(hub::audit_entries(f.hub->db(), {kHubNow + kHour, "op", "jane"}).size() == 1);
}

TEST_CASE("a hub's first user is added at setup only while the hub has none, and must hold manage_users") {
  HubFixture f;
  auto coordinator = hub::add_first_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "setup",
                                         kHubNow);
  REQUIRE_FALSE(coordinator.ok());
  CHECK(coordinator.error().code == shared::Errc::invalid_input);
  CHECK(coordinator.error().message.find("manage_users") != std::string::npos);
  CHECK(hub::all_users(f.hub->db()).empty());

  REQUIRE(hub::add_first_user(*f.hub, user("ada", "admin", {}), crypto::kTest, "setup (OS account ops)", kHubNow).ok());
  auto second = hub::add_first_user(*f.hub, user("bob", "admin", {}), crypto::kTest, "setup", kHubNow);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message.find("--user") != std::string::npos);
  auto users = hub::all_users(f.hub->db());
  REQUIRE(users.size() == 1);
  CHECK(users[0].name == "ada");
  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    audited |= e.action == "user.added" && e.subject == "ada" && e.actor == "setup (OS account ops)";
  CHECK(audited);
}
