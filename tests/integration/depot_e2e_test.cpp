// End to end, real hub and node processes over loopback, on both hub engines:
// depots as actors. A site sends rejected kits back to its depot through the
// node's API, syncs, the depot's user receives them at the hub (the node
// learns it at its next sync: they leave its records) and destroys
// them with a witness, and `irt-hub reconcile` balances the site and the
// depot; a transfer between two depots is shipped, received with one kit
// missing, and reconciled; `irt-hub kit history` shows every hop; each depot's
// user lists only its own depots' shipments.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/support/cluster.h"
#include "tests/support/node_api_client.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "depot-e2e-password";

std::string cli_ok(HubProcess& hub, std::vector<std::string> args, const std::string& expect = "",
                   const std::string& stdin_text = kPassword + "\n") {
  auto r = hub.cli(std::move(args), stdin_text);
  REQUIRE_MESSAGE(r.exit_code == 0, (r.out + r.err));
  if (!expect.empty()) CHECK_MESSAGE(r.out.find(expect) != std::string::npos, r.out);
  return r.out;
}

// The minimization example (depots DE-FRA and AT-VIE, its kit list and lots beside it) with a depot role.
std::string depot_study(const test::TempDir& dir) {
  auto study = json::parse(test::read_file(test::source_path("packaging/examples/study-minimization.json")));
  study["roles"].push_back({{"id", "depot-operator"},
                            {"name", "Depot operator"},
                            {"blinded", true},
                            {"permissions", {"view_inventory", "manage_depot", "destroy_kits"}}});
  test::write_file(dir / "depots.json", study.dump());
  for (const char* part : {"kits", "lots"})
    test::write_file(dir / (std::string("depots.") + part + ".csv"),
                     test::read_file(test::source_path(std::string("packaging/examples/study-minimization.") + part +
                                                       ".csv")));
  return (dir / "depots.json").string();
}

json reconcile(HubProcess& hub, const std::string& option, const std::string& id) {
  auto out = cli_ok(hub, {"reconcile", option, id, "--json", "--reader", "supply.sam"});
  auto j = json::parse(out, nullptr, false);
  REQUIRE_MESSAGE(j.is_array(), out);
  REQUIRE(j.size() == 1);
  return j[0];
}

}  // namespace

TEST_CASE("depots as actors: a site's return received and destroyed at the depot, a transfer with a kit missing") {
  test::TempDir files;
  HubProcess hub(depot_study(files));
  hub.add_user("coordinator.ana", "coordinator", "301", kPassword);
  hub.add_user("fra.op", "depot-operator", "DE-FRA", kPassword);
  hub.add_user("vie.op", "depot-operator", "AT-VIE", kPassword);
  hub.add_user("supply.sam", "supply-manager", "", kPassword);
  hub.add_user("supply.sue", "supply-manager", "", kPassword);
  NodeDir site(hub, "301");
  sync_ok(site);
  std::vector<std::string> stock;
  std::string node_id;
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    node_id = s.state->enrollment().node_id;
    s.receive_all();
    for (const auto& [number, k] : s.state->domain().kits())
      if (k.status == shared::KitStatus::available) stock.push_back(number);
  }
  REQUIRE(stock.size() >= 3);
  sync_ok(site);
  // A recall: two kits rejected at the hub, which the site learns at its next sync.
  cli_ok(hub, {"quarantine", "reject", "--kit", stock[0], "--kit", stock[1], "--reason", "recall of the batch",
               "--user", "supply.sam"});
  sync_ok(site);

  // The coordinator sends them back to the depot through the node's API.
  std::string shipment;
  {
    test::TempDir logs;
    const int port = test::free_port();
    auto server = test::serve_node(site.data(), port, logs / "node.log");
    auto login = test::api_call(port, "POST", "/api/v1/login", "", {{"user", "coordinator.ana"}, {"password", kPassword}});
    REQUIRE(login.status == 200);
    const std::string token = login.body["token"];
    // A usable kit in stock, or one the site does not hold, refuses the whole return.
    auto usable = test::api_call(port, "POST", "/api/v1/shipments/returns", token,
                                 {{"depot", "DE-FRA"}, {"kits", {stock[0], stock[2]}}});
    CHECK(usable.status == 409);
    CHECK(usable.body["error"]["message"].get<std::string>().find("kit " + stock[2]) != std::string::npos);
    auto unknown = test::api_call(port, "POST", "/api/v1/shipments/returns", token,
                                  {{"depot", "XX"}, {"kits", {stock[0]}}});
    CHECK(unknown.status == 400);
    auto r = test::api_call(port, "POST", "/api/v1/shipments/returns", token,
                            {{"depot", "DE-FRA"}, {"kits", {stock[0], stock[1]}}, {"reason", "recall"},
                             {"courier", "DHL"}, {"tracking", "RET-TRK-1"}, {"signature_password", kPassword}});
    REQUIRE_MESSAGE(r.status == 200, r.body.dump());
    shipment = r.body["shipment"];
    CHECK(r.body["kits"].size() == 2);
    CHECK(r.body["kits"][0]["status"] == "shipped");
    CHECK_FALSE(test::reveals(r.body, {"NRV10", "NRV05", "NRVPBO"}, {"Neurovance", "Placebo"}));
    auto again = test::api_call(port, "POST", "/api/v1/shipments/returns", token,
                                {{"depot", "DE-FRA"}, {"kits", {stock[0]}}});
    CHECK(again.status == 409);  // already on its way
    server->terminate();
  }
  sync_ok(site);
  CHECK(shipment.rfind("RET-" + node_id + "-", 0) == 0);

  // The depot's user receives them at the hub; the other depot's user may not.
  auto other = hub.cli({"shipment", "receive", "--shipment", shipment, "--kits", stock[0] + "," + stock[1], "--user",
                        "vie.op"},
                       kPassword + "\n");
  CHECK(other.exit_code != 0);
  CHECK_MESSAGE(other.err.find("not for depot DE-FRA") != std::string::npos, other.err);
  cli_ok(hub, {"shipment", "receive", "--shipment", shipment, "--kits", stock[0] + "," + stock[1], "--user", "fra.op"},
         "closed at depot DE-FRA");
  // The site learns it at its next sync: the kits sent back leave its records, none stays in transit.
  sync_ok(site);
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    CHECK_FALSE(s.state->domain().find_kit(stock[0]));
    CHECK_FALSE(s.state->domain().find_kit(stock[1]));
    for (const auto& [number, k] : s.state->domain().kits()) CHECK_MESSAGE(k.status != shared::KitStatus::shipped, number);
    // The return shipment keeps what the depot found.
    auto ret = s.state->domain().shipments().find(shipment);
    REQUIRE(ret != s.state->domain().shipments().end());
    CHECK(ret->second.at_depot == std::map<std::string, int>{{"received", 2}});
  }
  cli_ok(hub, {"kits", "destroy", "--depot", "DE-FRA", "--kit", stock[0], "--kit", stock[1], "--reason",
               "recalled batch", "--user", "fra.op", "--witness", "supply.sue"},
         "destroyed 2 kits", kPassword + "\n" + kPassword + "\n");
  auto at_site = reconcile(hub, "--site", "301");
  CHECK_MESSAGE(at_site["balanced"] == true, at_site.dump());
  CHECK(at_site["unaccounted"] == 0);
  CHECK(at_site["accounted"]["returned_to_depot"] == 2);
  auto fra = reconcile(hub, "--depot", "DE-FRA");
  CHECK_MESSAGE(fra["balanced"] == true, fra.dump());
  CHECK(fra["accounted"]["destroyed"] == 2);

  // A transfer from DE-FRA to AT-VIE, shipped, received with one kit missing.
  std::vector<std::string> moving;
  {
    auto db = hub.database();
    auto st = db.prepare("SELECT kit_number FROM hub_kits WHERE custody_kind = 'depot' AND custody_id = 'DE-FRA' AND "
                         "status = 'available' AND shipment_id = '' ORDER BY kit_number LIMIT 3");
    while (st.step()) moving.push_back(st.text(0));
  }
  REQUIRE(moving.size() == 3);
  auto made = cli_ok(hub, {"shipment", "transfer", "--from-depot", "DE-FRA", "--to-depot", "AT-VIE", "--kits",
                           moving[0] + "," + moving[1] + "," + moving[2], "--user", "fra.op"},
                     "3 kits reserved at depot DE-FRA");
  const std::string transfer = made.substr(0, made.find(' '));
  CHECK(transfer.rfind("TRF-", 0) == 0);
  cli_ok(hub, {"shipment", "ship", "--shipment", transfer, "--courier", "DHL", "--tracking", "TRF-TRK", "--user",
               "fra.op"},
         "shipped");
  cli_ok(hub, {"shipment", "receive", "--shipment", transfer, "--kit", moving[0], "--kit", moving[1], "--kit",
               moving[2] + ":missing", "--user", "vie.op"},
         "closed at depot AT-VIE");
  auto twice = hub.cli({"shipment", "receive", "--shipment", transfer, "--kit", moving[0], "--user", "vie.op"},
                       kPassword + "\n");
  CHECK(twice.exit_code != 0);
  // A depot user lists only its depots' shipments: AT-VIE's user sees the transfer, not the site's return.
  auto listed = cli_ok(hub, {"shipment", "list", "--reader", "vie.op"}, transfer);
  CHECK(listed.find(shipment) == std::string::npos);
  CHECK(cli_ok(hub, {"shipment", "list", "--reader", "fra.op"}).find(shipment) != std::string::npos);
  auto hidden = hub.cli({"shipment", "show", "--shipment", shipment, "--reader", "vie.op"}, kPassword + "\n");
  CHECK(hidden.exit_code != 0);
  CHECK(hidden.err.find("not a shipment") != std::string::npos);
  CHECK_MESSAGE(hidden.err.find("DE-FRA") == std::string::npos, hidden.err);  // named by nothing but the id asked
  for (const auto& depot : {"DE-FRA", "AT-VIE"}) {
    auto r = reconcile(hub, "--depot", depot);
    CHECK_MESSAGE(r["balanced"] == true, r.dump());
  }
  CHECK(reconcile(hub, "--depot", "AT-VIE")["accounted"]["missing"] == 1);

  auto history = cli_ok(hub, {"kit", "history", moving[0], "--reader", "supply.sam"});
  for (const char* hop : {"kit.reserved", "kit.custody_moved", "kit.received_at_depot"})
    CHECK_MESSAGE(history.find(hop) != std::string::npos, history);
  auto returned = cli_ok(hub, {"kit", "history", stock[0], "--reader", "supply.sam"});
  for (const char* hop : {"kit.custody_moved", "kit.received_at_depot", "kit.destroyed"})
    CHECK_MESSAGE(returned.find(hop) != std::string::npos, returned);
}
