// Hub users and the roster directives that carry them to the nodes of their sites.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/enrollment.h"
#include "hub/users.h"
#include "sync/directive.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using test::HubFixture;
using test::kHubNow;

namespace {

std::string enroll(HubFixture& f, const std::string& site) {
  auto inv = hub::invite(*f.hub, site, "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  auto done = hub::enroll(*f.hub, {inv->token, crypto::SigningKey::generate().public_key().hex(), ""}, kHubNow);
  REQUIRE(done.ok());
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
  return nlohmann::json::parse(crypto::to_string(d->body.payload));
}

}  // namespace

TEST_CASE("adding a user sends a fresh roster to the nodes of the user's sites only") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto b = enroll(f, "102");
  auto added = hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow);
  REQUIRE_MESSAGE(added.ok(), added.error().message);
  CHECK(added->rosters_issued == 1);
  // Enrollment issued 5 directives (configuration, roster, 3 grants); a's roster is the 6th.
  CHECK(f.hub->outbox().last_seq(a) == 6);
  CHECK(f.hub->outbox().last_seq(b) == 5);

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
  auto a = enroll(f, "101");
  REQUIRE(f.hub->ledger().revoke(a, "lost", "admin", kHubNow).ok());
  auto added = hub::add_user(*f.hub, user("jane", "coordinator", {"101"}), crypto::kTest, "admin", kHubNow);
  REQUIRE(added.ok());
  CHECK(added->rosters_issued == 0);
  CHECK(f.hub->outbox().last_seq(a) == 5);
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
