// End to end: a participant randomized at site 101 moves to site 102. The
// node records the request, the hub approves it (command line, signed) and
// rejects another (API, signed); at the next syncs the source node stops
// serving the participant and answers where it went, with no arm; the target
// node shows it with its visits and kits and dispenses its next visit from its
// own stock by the participant's arm, never showing the arm to a blinded role.
// The hub's ledger verifies and its accountability balances after. Real hub
// and node processes over loopback, on both hub engines.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "sync/hlc.h"
#include "tests/support/cluster.h"
#include "tests/support/hub_api.h"
#include "tests/support/node_api_client.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "transfer-test-password";
const std::set<std::string> kAllocationWords = {"VLC25", "PBO"};
const std::vector<std::string> kAllocationFragments = {"Velcardin", "Placebo"};

std::string randomize(test::SiteSession& s) {
  auto number = s.screen({{"diabetes", "yes"}});
  auto r = s.ops->randomize(s.actor, number, s.password);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return number;
}

}  // namespace

TEST_CASE("a participant transferred to another site is served there with its visits and kits, and no longer at home") {
  HubProcess hub;  // serving from here on
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("coordinator.bea", "coordinator", "102", kPassword);
  hub.add_user("pharmacist.phil", "pharmacist", "102", kPassword);
  hub.add_user("manager.ines", "study-manager", "", kPassword);
  hub.add_user("monitor.mo", "monitor", "101,102", kPassword);
  NodeDir home(hub, "101");
  NodeDir target(hub, "102");
  sync_ok(home);
  sync_ok(target);

  std::string moving, staying, v1_kit, home_id, target_id;
  {
    test::SiteSession s(home, "coordinator.ana", kPassword);
    home_id = s.state->enrollment().node_id;
    s.receive_all();
    moving = randomize(s);
    staying = randomize(s);
    const auto* p = s.state->domain().find_participant(moving);
    REQUIRE(p->visits.size() == 1);
    REQUIRE(p->visits[0].kits.size() == 1);
    v1_kit = p->visits[0].kits[0];
    REQUIRE(s.ops->request_transfer(s.actor, moving, "102", "moved to Paris").ok());
    REQUIRE(s.ops->request_transfer(s.actor, staying, "102", "may move to Paris").ok());
  }
  {
    test::SiteSession t(target, "coordinator.bea", kPassword);
    target_id = t.state->enrollment().node_id;
    t.receive_all();
  }
  sync_ok(home);
  sync_ok(target);

  // The requests at the hub, for a blinded reader: no arm in them.
  const int port = hub.port();
  const auto monitor = test::hub_login(port, "monitor.mo", kPassword);
  auto listed = test::hub_call(port, "GET", "/api/v1/transfers?status=requested", monitor);
  REQUIRE_MESSAGE(listed.status == 200, listed.text);
  REQUIRE(listed.body["transfers"].size() == 2);
  CHECK(listed.body["transfers"][0]["participant"] == moving);
  CHECK(listed.body["transfers"][0]["from_node"] == home_id);
  CHECK_FALSE(test::reveals(listed.body, kAllocationWords, kAllocationFragments));
  auto not_allowed = test::hub_call(port, "POST", "/api/v1/transfers/" + moving + "/approve", monitor,
                                    {{"reason", "x"}, {"signature", {{"password", kPassword}}}});
  CHECK(not_allowed.status == 403);

  // Approved at the command line (signed), the other rejected through the API (signed).
  auto approved = hub.cli({"transfer", "approve", "--participant", moving, "--reason", "agreed by both sites",
                           "--user", "manager.ines"},
                          kPassword + "\n");
  REQUIRE_MESSAGE(approved.exit_code == 0, (approved.out + approved.err));
  CHECK(approved.out.find("approved, signed by manager.ines") != std::string::npos);
  CHECK(approved.out.find("1 dispensed kits moved") != std::string::npos);
  auto twice = hub.cli({"transfer", "approve", "--participant", moving, "--reason", "again", "--user", "manager.ines"},
                       kPassword + "\n");
  CHECK(twice.exit_code == 1);
  CHECK(twice.err.find("already approved") != std::string::npos);
  const auto manager = test::hub_login(port, "manager.ines", kPassword);
  auto rejected = test::hub_call(port, "POST", "/api/v1/transfers/" + staying + "/reject", manager,
                                 {{"reason", "site 102 is full"}, {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(rejected.status == 200, rejected.text);
  CHECK(rejected.body["status"] == "rejected");

  sync_ok(home);
  sync_ok(target);

  // Home: the moved participant is no longer served; it says where it went, with no arm.
  {
    test::TempDir logs;
    const int node_port = test::free_port();
    auto server = test::serve_node(home.data(), node_port, logs / "node.log");
    for (const char* user : {"coordinator.ana"}) {
      auto login = test::api_call(node_port, "POST", "/api/v1/login", "", {{"user", user}, {"password", kPassword}});
      REQUIRE(login.status == 200);
      const std::string token = login.body["token"];
      auto p = test::api_call(node_port, "GET", "/api/v1/participants/" + moving, token);
      REQUIRE_MESSAGE(p.status == 200, p.body.dump());
      CHECK(p.body["status"] == "transferred");
      CHECK(p.body["transferred_to"] == "102");
      CHECK_FALSE(p.body.contains("arm"));
      CHECK_FALSE(test::reveals(p.body, kAllocationWords, kAllocationFragments));
      auto stayed = test::api_call(node_port, "GET", "/api/v1/participants/" + staying, token);
      REQUIRE(stayed.status == 200);
      CHECK(stayed.body["status"] == "randomized");
      CHECK(stayed.body["transfer_decision"].get<std::string>().find("rejected by manager.ines: site 102 is full") !=
            std::string::npos);
      CHECK_FALSE(stayed.body.contains("transfer_requested_to"));
    }
    server->terminate();
  }
  {
    test::SiteSession s(home, "coordinator.ana", kPassword);
    CHECK(s.state->domain().find_kit(v1_kit) == nullptr);  // it left with the participant
    node::DispenseRequest d;
    d.visit = "V2";
    auto refused = s.ops->dispense(s.actor, moving, d);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == shared::Errc::conflict);
    CHECK(refused.error().message.find("moved to site 102") != std::string::npos);
  }

  // Target: the participant with its visit and kit, dispensed at its next visit by its arm.
  std::string v2_kit;
  {
    test::SiteSession t(target, "pharmacist.phil", kPassword);
    const auto* p = t.state->domain().find_participant(moving);
    REQUIRE(p);
    CHECK(p->status == shared::ParticipantStatus::randomized);
    CHECK(p->transferred_from == "101");
    REQUIRE(p->visits.size() == 1);
    CHECK(p->visits[0].visit == "V1");
    const auto* k = t.state->domain().find_kit(v1_kit);
    REQUIRE(k);
    CHECK(k->status == shared::KitStatus::dispensed);
    CHECK(k->participant == p->id);
    // Four weeks on, inside V2's window.
    node::SiteOperations later(*t.state, [] { return sync::system_millis() + 28LL * 86400000; });
    node::DispenseRequest d;
    d.visit = "V2";
    auto given = later.dispense(t.actor, moving, d);
    REQUIRE_MESSAGE(given.ok(), given.error().message);
    REQUIRE(given->kits.size() == 1);
    v2_kit = given->kits[0];
    const auto* study = t.state->domain().study();
    const auto* kit_type = study->find_kit_type(t.state->domain().find_kit(v2_kit)->kit_type);
    REQUIRE(kit_type);
    CHECK(kit_type->arm == p->arm);
    CHECK(t.state->domain().find_kit(v1_kit)->kit_type == t.state->domain().find_kit(v2_kit)->kit_type);
  }
  {
    test::TempDir logs;
    const int node_port = test::free_port();
    auto server = test::serve_node(target.data(), node_port, logs / "node.log");
    auto login = test::api_call(node_port, "POST", "/api/v1/login", "",
                                {{"user", "coordinator.bea"}, {"password", kPassword}});
    REQUIRE(login.status == 200);
    const std::string token = login.body["token"];
    auto p = test::api_call(node_port, "GET", "/api/v1/participants/" + moving, token);
    REQUIRE_MESSAGE(p.status == 200, p.body.dump());
    CHECK(p.body["transferred_from"] == "101");
    CHECK(p.body["visits"].size() == 2);
    CHECK_FALSE(test::reveals(p.body, kAllocationWords, kAllocationFragments));
    auto list = test::api_call(node_port, "GET", "/api/v1/participants", token);
    REQUIRE(list.status == 200);
    CHECK_FALSE(test::reveals(list.body, kAllocationWords, kAllocationFragments));
    server->terminate();
  }
  sync_ok(target);

  // The hub: custody followed the participant, the ledger verifies, every site balances.
  {
    auto db = hub.database();
    auto custody = [&](const std::string& k) {
      auto st = db.prepare("SELECT custody_id, status, participant FROM hub_kits WHERE kit_number = ?");
      st.bind(1, k);
      REQUIRE(st.step());
      return st.text(0) + " " + st.text(1) + " " + st.text(2);
    };
    CHECK(custody(v1_kit) == target_id + " dispensed " + moving);
    CHECK(custody(v2_kit) == target_id + " dispensed " + moving);
  }
  CHECK(hub.read_as_admin({"alerts"}).out.find("kit.not_in_custody") == std::string::npos);
  auto verify = hub.cli({"verify"});
  CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));
  auto rec = hub.cli({"reconcile", "--json", "--reader", "monitor.mo"}, kPassword + "\n");
  REQUIRE_MESSAGE(rec.exit_code == 0, (rec.out + rec.err));
  auto history = hub.cli({"transfer", "list", "--json", "--reader", "monitor.mo"}, kPassword + "\n");
  REQUIRE_MESSAGE(history.exit_code == 0, history.err);
  auto all = json::parse(history.out);
  REQUIRE(all.size() == 2);
  CHECK(all[0]["status"] == "approved");
  CHECK(all[0]["to_node"] == target_id);
  CHECK(all[1]["status"] == "rejected");
  CHECK_FALSE(test::reveals(all, kAllocationWords, kAllocationFragments));
}
