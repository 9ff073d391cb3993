// End to end: a code break at a site node, through the node API's unblind
// flow, reaches the hub at the next sync as a deviation: blinded in the list a
// blinded reader sees, the arm shown only to an unblinded reader; it is
// acknowledged signed; and `irt-hub nodes --json` shows the node's last
// contact, slots left, kits by status and clock skew. Real hub and node
// processes over loopback.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "node/node_state.h"
#include "node/site_operations.h"
#include "tests/support/cluster.h"
#include "tests/support/hub_api.h"
#include "tests/support/node_api_client.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "site-101-password";

// Receives the node's shipments, screens and randomizes one participant, in
// the node's data directory; returns the participant's number.
std::string randomize_one(NodeDir& n) {
  test::SiteSession site(n, "coordinator.ana", kPassword);
  site.receive_all();
  auto number = site.screen({{"diabetes", "no"}});
  auto r = site.ops->randomize(site.actor, number, site.password);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return number;
}

json cli_json(HubProcess& hub, std::vector<std::string> args, const std::string& stdin_text = "") {
  auto r = hub.cli(std::move(args), stdin_text);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}

}  // namespace

TEST_CASE("a code break at a node becomes a deviation at the hub, blinded but for unblinded readers, acknowledged signed") {
  HubProcess hub;
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("dr.lee", "investigator", "101", kPassword);
  hub.add_user("manager.ines", "study-manager", "", kPassword);
  hub.add_user("stat.uma", "unblinded-statistician", "", kPassword);
  NodeDir a(hub, "101");
  sync_ok(a);  // the roster
  const auto number = randomize_one(a);

  // The investigator breaks the code through the node's API.
  std::string arm;
  {
    test::TempDir logs;
    const int port = test::free_port();
    auto server = test::serve_node(a.data(), port, logs / "node.log");
    auto login = test::api_call(port, "POST", "/api/v1/login", "", {{"user", "dr.lee"}, {"password", kPassword}});
    REQUIRE(login.status == 200);
    auto u = test::api_call(port, "POST", "/api/v1/participants/" + number + "/unblind", login.body["token"],
                            {{"reason", "anaphylaxis, allocation needed for treatment"},
                             {"signature_password", kPassword}});
    REQUIRE_MESSAGE(u.status == 200, u.body.dump());
    arm = u.body["arm"]["id"].get<std::string>();
    server->terminate();
  }
  sync_ok(a);  // the node's server may have synced already

  std::string arm_name;
  const auto study = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  for (const auto& x : study["arms"])
    if (x["id"] == arm) arm_name = x["name"].get<std::string>();
  REQUIRE_MESSAGE(!arm_name.empty(), arm);

  const std::string as_manager = kPassword + "\n";
  auto blinded = cli_json(hub, {"deviations", "--json", "--open", "--reader", "manager.ines"}, as_manager);
  REQUIRE(blinded.size() == 1);
  const auto& d = blinded[0];
  CHECK(d["kind"] == "code_break");
  CHECK(d["site_id"] == "101");
  CHECK(d["event_type"] == "participant.unblinded");
  CHECK(d["summary"].get<std::string>().find(number) != std::string::npos);
  CHECK(d["summary"].get<std::string>().find("dr.lee") != std::string::npos);
  CHECK(d["summary"].get<std::string>().find("anaphylaxis") != std::string::npos);
  CHECK_FALSE(d.contains("unblinded"));
  CHECK(blinded.dump().find(arm_name) == std::string::npos);
  auto text = hub.cli({"deviations", "--reader", "manager.ines"}, as_manager);
  CHECK(text.out.find("code_break") != std::string::npos);
  CHECK(text.out.find(arm_name) == std::string::npos);

  // Nobody reads them anonymously, nor without view_audit; an unblinded reader sees the arm.
  auto anonymous = hub.cli({"deviations", "--json"});
  CHECK(anonymous.exit_code == 2);
  CHECK(anonymous.err.find("--reader") != std::string::npos);
  auto refused = hub.cli({"deviations", "--json", "--reader", "dr.lee"}, kPassword + "\n");
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("view_audit") != std::string::npos);
  CHECK(refused.out.empty());
  auto unblinded = cli_json(hub, {"deviations", "--json", "--reader", "stat.uma"}, kPassword + "\n");
  REQUIRE(unblinded.size() == 1);
  CHECK(unblinded[0]["unblinded"].get<std::string>().find(arm_name) != std::string::npos);

  // The same through the hub's API: blinded for the study manager; a wrong
  // signature changes nothing.
  const auto id = std::to_string(d["id"].get<std::int64_t>());
  auto manager = test::hub_login(hub.port(), "manager.ines", kPassword);
  auto listed = test::hub_call(hub.port(), "GET", "/api/v1/deviations?open=true", manager);
  REQUIRE_MESSAGE(listed.status == 200, listed.text);
  CHECK(listed.body["deviations"] == blinded);
  CHECK(listed.text.find(arm_name) == std::string::npos);
  auto statistician = test::hub_login(hub.port(), "stat.uma", kPassword);
  auto unblinded_api = test::hub_call(hub.port(), "GET", "/api/v1/deviations", statistician);
  REQUIRE(unblinded_api.status == 200);
  CHECK(unblinded_api.body["deviations"][0]["unblinded"].get<std::string>().find(arm_name) != std::string::npos);
  auto bad_sign = test::hub_call(hub.port(), "POST", "/api/v1/deviations/" + id + "/acknowledge", manager,
                                 {{"comment", "reviewed"}, {"signature", {{"password", "not-the-password"}}}});
  CHECK(bad_sign.status == 401);
  CHECK(test::hub_call(hub.port(), "GET", "/api/v1/deviations?open=true", manager).body["deviations"].size() == 1);
  auto api_node = test::hub_call(hub.port(), "GET", "/api/v1/nodes/101-N1", manager);
  REQUIRE_MESSAGE(api_node.status == 200, api_node.text);
  CHECK(api_node.body["node"]["node_id"] == "101-N1");
  CHECK(api_node.body["node"]["kits_by_status"]["dispensed"] == 1);

  // Acknowledged, signed; a second time refused.
  auto wrong = hub.cli({"deviations", "acknowledge", "--id", id, "--comment", "reviewed", "--user", "manager.ines"},
                       "not-the-password\n");
  CHECK(wrong.exit_code != 0);
  auto ack = hub.cli({"deviations", "acknowledge", "--id", id, "--comment", "safety team informed", "--user",
                      "manager.ines"},
                     kPassword + "\n");
  REQUIRE_MESSAGE(ack.exit_code == 0, ack.err);
  auto twice = hub.cli({"deviations", "acknowledge", "--id", id, "--comment", "again", "--user", "manager.ines"},
                       kPassword + "\n");
  CHECK(twice.exit_code != 0);
  CHECK(twice.err.find("already acknowledged") != std::string::npos);
  CHECK(cli_json(hub, {"deviations", "--json", "--open", "--reader", "manager.ines"}, as_manager).empty());
  auto api_twice = test::hub_call(hub.port(), "POST", "/api/v1/deviations/" + id + "/acknowledge", manager,
                                  {{"comment", "again"}, {"signature", {{"password", kPassword}}}});
  CHECK(api_twice.status == 409);
  CHECK(api_twice.text.find("already acknowledged") != std::string::npos);
  auto all = cli_json(hub, {"deviations", "--json", "--reader", "manager.ines"}, as_manager);
  CHECK(all[0]["status"] == "acknowledged");
  CHECK(all[0]["acknowledged_by"] == "manager.ines");

  // The nodes view.
  auto nodes = cli_json(hub, {"nodes", "--json", "--reader", test::kHubAdmin}, test::kHubAdminPassword + std::string("\n"));
  REQUIRE(nodes.size() == 1);
  const auto& n = nodes[0];
  CHECK(n["node_id"] == "101-N1");
  CHECK(n["last_contact"].is_string());
  CHECK(n["last_pull"].is_string());
  CHECK(n["clock_skew_ms"].is_number_integer());
  CHECK(std::llabs(n["clock_skew_ms"].get<std::int64_t>()) < 60000);  // one machine, one clock
  CHECK(n["acked_seq"].get<std::int64_t>() > 0);
  CHECK(n["last_receipt"]["seq"] == n["acked_seq"]);
  CHECK(n["kits_by_status"]["dispensed"] == 1);
  CHECK(n["kits_by_status"].contains("received"));
  CHECK(n["numbers_left"].get<std::int64_t>() > 0);
  REQUIRE(n["slots_left"].is_array());
  REQUIRE_FALSE(n["slots_left"].empty());
  CHECK(n["slots_left"][0]["slots"].get<std::int64_t>() > 0);
  CHECK(n["open_alerts"].empty());
  CHECK(n.dump().find("VLC25") == std::string::npos);
  CHECK(n.dump().find("PBO") == std::string::npos);
  auto one = cli_json(hub, {"nodes", "--json", "--node", "101-N1", "--reader", "manager.ines"}, as_manager);
  CHECK(one["node_id"] == "101-N1");
  auto full = hub.read_as_admin({"nodes", "--node", "101-N1"});
  CHECK(full.out.find("clock skew") != std::string::npos);
  CHECK(full.out.find("dispensed 1") != std::string::npos);
}
