// End to end: a user disabled at the hub can no longer act on the nodes of the
// user's sites once they have synced, and is back when enabled; each change
// is signed by a hub user who may manage users.
#include <doctest/doctest.h>

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

  auto list = hub.cli({"user", "list", "--json"});
  REQUIRE(list.exit_code == 0);
  auto users = nlohmann::json::parse(list.out);
  REQUIRE(users.size() == 2);
  CHECK(users[1]["name"] == "coordinator.ana");
  CHECK(users[1]["status"] == "disabled");

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
}
