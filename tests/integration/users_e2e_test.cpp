// End to end: a user disabled at the hub can no longer act on the nodes of the
// user's sites once they have synced, and is back when enabled; each change
// is signed by a hub user who may manage users.
#include <doctest/doctest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "tests/support/cluster.h"

using namespace irt;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kAdminPassword = "the admin's own password";
const std::string kPassword = "site-101-password";

}  // namespace

TEST_CASE("a disabled user is refused on the node from its next sync and accepted again once enabled") {
  HubProcess hub;
  hub.start();
  hub.add_user("admin.ada", "admin", "", kAdminPassword);
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  NodeDir a(hub, "101");
  REQUIRE(a.note("coordinator.ana", kPassword, "before").exit_code == 0);

  // A wrong signature changes nothing.
  auto refused = hub.cli({"user", "disable", "--name", "coordinator.ana", "--user", "admin.ada", "--reason", "left"},
                         "not the password\n");
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("signature was refused") != std::string::npos);

  auto off = hub.cli({"user", "disable", "--name", "coordinator.ana", "--user", "admin.ada", "--reason",
                      "left the study team"},
                     kAdminPassword + "\n");
  REQUIRE_MESSAGE(off.exit_code == 0, off.err);
  CHECK(off.out.find("a fresh roster goes to 1 node") != std::string::npos);
  // Offline, the node still knows only the old roster.
  CHECK(a.note("coordinator.ana", kPassword, "still offline").exit_code == 0);
  REQUIRE(a.sync().exit_code == 0);
  auto after = a.note("coordinator.ana", kPassword, "after");
  CHECK(after.exit_code != 0);
  CHECK(after.err.find("unknown user or wrong password") != std::string::npos);

  auto list = hub.cli({"user", "list", "--json", "--reader", "admin.ada"}, kAdminPassword + "\n");
  REQUIRE(list.exit_code == 0);
  auto users = nlohmann::json::parse(list.out);
  REQUIRE(users.size() == 3);  // with the hub's first user
  std::map<std::string, std::string> status;
  for (const auto& u : users) status[u["name"]] = u["status"];
  CHECK(status["coordinator.ana"] == "disabled");
  CHECK(status["admin.ada"] == "enabled");

  REQUIRE(hub.cli({"user", "enable", "--name", "coordinator.ana", "--user", "admin.ada", "--reason", "rejoined"},
                  kAdminPassword + "\n")
              .exit_code == 0);
  REQUIRE(a.sync().exit_code == 0);
  CHECK(a.note("coordinator.ana", kPassword, "back").exit_code == 0);

  // The new password: line 2 of standard input; the node takes it at its next sync.
  REQUIRE(hub.cli({"user", "passwd", "--name", "coordinator.ana", "--user", "admin.ada"},
                  kAdminPassword + "\nanother-long-password\n")
              .exit_code == 0);
  REQUIRE(a.sync().exit_code == 0);
  CHECK(a.note("coordinator.ana", kPassword, "old password").exit_code != 0);
  CHECK(a.note("coordinator.ana", "another-long-password", "new password").exit_code == 0);

  auto db = hub.database();
  int signed_by_ada = 0;
  for (const auto& e : hub::audit_entries(db))
    if (e.signature == "approved" && e.actor == "admin.ada") ++signed_by_ada;
  CHECK(signed_by_ada == 3);  // disable, enable, passwd

  // The trail through the command line, for a reader with view_audit only.
  auto trail = hub.cli({"audit", "--reader", "admin.ada", "--object", "coordinator.ana", "--json"}, kAdminPassword + "\n");
  REQUIRE_MESSAGE(trail.exit_code == 0, trail.err);
  auto entries = nlohmann::json::parse(trail.out);
  std::vector<std::string> actions;
  for (const auto& e : entries) {
    CHECK(e["object"] == "coordinator.ana");
    actions.push_back(e["action"]);
  }
  CHECK(actions == std::vector<std::string>{"user.added", "user.disabled", "user.enabled", "user.password_set"});
  CHECK(entries[1]["user"] == "admin.ada");
  CHECK(entries[1]["signature"] == "approved");
  CHECK(entries[1]["reason"] == "left the study team");
  auto by_ada = hub.cli({"audit", "--reader", "admin.ada", "--user", "admin.ada", "--since", "2000-01-01"},
                        kAdminPassword + "\n");
  REQUIRE(by_ada.exit_code == 0);
  CHECK(by_ada.out.find("user.disabled") != std::string::npos);
  CHECK(by_ada.out.find("user.added") == std::string::npos);  // added by the operating-system account
  auto future = hub.cli({"audit", "--reader", "admin.ada", "--since", "2999-01-01T00:00:00Z", "--json"},
                        kAdminPassword + "\n");
  CHECK(nlohmann::json::parse(future.out).empty());
  auto coordinator = hub.cli({"audit", "--reader", "coordinator.ana"}, "another-long-password\n");
  CHECK(coordinator.exit_code != 0);
  CHECK(coordinator.err.find("view_audit") != std::string::npos);
  auto bad_since = hub.cli({"audit", "--reader", "admin.ada", "--since", "yesterday"}, kAdminPassword + "\n");
  CHECK(bad_since.exit_code == 2);
  CHECK(bad_since.err.find("--since") != std::string::npos);
}
