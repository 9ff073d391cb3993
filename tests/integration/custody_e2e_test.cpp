// End to end: a site node hands kits to its nurse's tablet through the node's
// API, the hub moves their custody at the sync, the tablet receives them as a
// small shipment and hands one back the same way; while in transit neither
// node may use them, and `irt-hub kit history` shows each hop. Real hub and
// node processes over loopback.
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

const std::string kPassword = "site-402-password";
const std::string kStudy = "packaging/examples/study-minimization.json";

std::vector<std::string> stock(test::SiteSession& s) {
  std::vector<std::string> out;
  for (const auto& [number, k] : s.state->domain().kits())
    if (k.status == shared::KitStatus::available) out.push_back(number);
  return out;
}

const node::KitRecord* kit(test::SiteSession& s, const std::string& number) { return s.state->domain().find_kit(number); }

test::CommandResult kit_history(HubProcess& hub, const std::string& number, const std::string& reader) {
  return test::run({IRT_HUB_BIN, "kit", "history", number, "--data", hub.data().string(), "--json", "--reader", reader},
                   kPassword + "\n");
}

}  // namespace

TEST_CASE("a nurse's tablet takes kits from its site node and hands one back, custody moved by the hub at each sync") {
  HubProcess hub(kStudy);
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "402", kPassword);
  hub.add_user("nurse.nina", "nurse", "402", kPassword);
  hub.add_user("monitor.mo", "monitor", "402", kPassword);
  NodeDir site(hub, "402");
  NodeDir tablet(hub, "402", "", "nurse");
  sync_ok(site);  // the roster
  sync_ok(tablet);
  std::string site_id, tablet_id;
  std::vector<std::string> taken;
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    s.receive_all();
    site_id = s.state->enrollment().node_id;
    taken = stock(s);
    REQUIRE(taken.size() >= 3);
    taken.resize(3);
    test::SiteSession t(tablet, "nurse.nina", kPassword);
    tablet_id = t.state->enrollment().node_id;
  }
  sync_ok(site);  // the receipt

  // The coordinator hands three kits to the tablet through the site node's API.
  {
    test::TempDir logs;
    const int port = test::free_port();
    auto server = test::serve_node(site.data(), port, logs / "node.log");
    auto login = test::api_call(port, "POST", "/api/v1/login", "", {{"user", "coordinator.ana"}, {"password", kPassword}});
    REQUIRE(login.status == 200);
    const std::string token = login.body["token"];
    // The hub's roster told the site node of its tablet (enrolled after it): the UI offers it.
    auto st = test::api_call(port, "GET", "/api/v1/status", token);
    CHECK(st.body["site_nodes"] == json::array({{{"node_id", tablet_id}, {"kind", "nurse"}}}));
    auto bad = test::api_call(port, "POST", "/api/v1/kits/handover", token, {{"to_node", tablet_id}, {"kits", "x"}});
    CHECK(bad.status == 400);
    auto h = test::api_call(port, "POST", "/api/v1/kits/handover", token,
                            {{"to_node", tablet_id}, {"kits", taken}, {"reason", "home visits this week"}});
    REQUIRE_MESSAGE(h.status == 200, h.body.dump());
    CHECK(h.body["to_node"] == tablet_id);
    REQUIRE(h.body["kits"].size() == 3);
    CHECK(h.body["kits"][0]["status"] == "shipped");
    CHECK_FALSE(test::reveals(h.body, {"NRV10", "NRV05", "NRVPBO"}, {"Neurovance", "Placebo"}));
    // In transit: the site node refuses to use them, naming the kit and where it goes.
    auto q = test::api_call(port, "POST", "/api/v1/kits/" + taken[0] + "/quarantine", token,
                            {{"reason", "fridge at 12 C"}, {"temperature_celsius", 12.0}});
    CHECK(q.status == 409);
    CHECK(q.body["error"]["message"].get<std::string>().find("kit " + taken[0] + " is in transit to node " +
                                                             tablet_id) != std::string::npos);
    auto inv = test::api_call(port, "GET", "/api/v1/inventory?status=shipped", token);
    REQUIRE(inv.status == 200);
    CHECK(inv.body["kits"].size() == 3);
    server->terminate();
  }

  // The site syncs: the hub moves custody; the kits leave the site node.
  sync_ok(site);
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    for (const auto& k : taken) CHECK(kit(s, k) == nullptr);
  }
  // The tablet syncs: a handover shipment, not usable before it is received.
  sync_ok(tablet);
  const std::string shipment = [&] {
    test::SiteSession t(tablet, "nurse.nina", kPassword);
    const auto* k = kit(t, taken[0]);
    REQUIRE(k);
    CHECK(k->status == shared::KitStatus::expected);
    CHECK(k->shipment.rfind("HND-" + site_id + "-", 0) == 0);
    auto refused = t.ops->hand_over_kits(t.actor, site_id, {taken[0]}, "");
    CHECK(refused.error().message.find("kit " + taken[0] + " is expected: its shipment " + k->shipment +
                                       " is not yet received") != std::string::npos);
    auto q = t.ops->quarantine(t.actor, taken[0], "fridge at 12 C", 12.0);
    CHECK(q.error().code == shared::Errc::conflict);
    CHECK_FALSE(node::dispensable(*k, t.ops->today(), 0));
    return k->shipment;
  }();
  {
    test::SiteSession t(tablet, "nurse.nina", kPassword);
    t.receive_all();
    for (const auto& k : taken) CHECK(kit(t, k)->status == shared::KitStatus::available);
    // One kit was not used: the nurse hands it back.
    REQUIRE(t.ops->hand_over_kits(t.actor, site_id, {taken[2]}, "not needed").ok());
  }
  sync_ok(tablet);
  sync_ok(site);
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    const auto* back = kit(s, taken[2]);
    REQUIRE(back);
    CHECK(back->status == shared::KitStatus::expected);
    s.receive_all();
    CHECK(kit(s, taken[2])->status == shared::KitStatus::available);
  }
  sync_ok(site);

  // The hub: custody rows follow, and the kit's history shows each hop to a blinded monitor.
  {
    auto db = hub.database();
    auto custody = [&](const std::string& k) {
      auto st = db.prepare("SELECT custody_kind, custody_id, status FROM hub_kits WHERE kit_number = ?");
      st.bind(1, k);
      REQUIRE(st.step());
      return st.text(0) + " " + st.text(1) + " " + st.text(2);
    };
    CHECK(custody(taken[0]) == "node " + tablet_id + " received");
    CHECK(custody(taken[2]) == "node " + site_id + " received");
  }
  auto r = kit_history(hub, taken[2], "monitor.mo");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto history = json::parse(r.out);
  CHECK(history["kit"]["custody_id"] == site_id);
  CHECK_FALSE(history["kit"].contains("kit_type"));
  std::vector<std::string> hops;
  for (const auto& e : history["history"])
    if (e["action"] == "kit.custody_moved") hops.push_back(e["old_value"].get<std::string>() + " -> " +
                                                          e["new_value"].get<std::string>());
  REQUIRE(hops.size() == 2);
  CHECK(hops[0].find("node " + site_id + " -> node " + tablet_id) == 0);
  CHECK(hops[0].find(shipment) != std::string::npos);
  CHECK(hops[1].find("node " + tablet_id + " -> node " + site_id) == 0);
  CHECK_FALSE(test::reveals(history, {"NRV10", "NRV05", "NRVPBO"}, {"Neurovance", "Placebo"}));

  // Accountability: the kits moved between the site's nodes are still the
  // site's, counted against the depot shipment that brought them.
  auto rec = hub.cli({"reconcile", "--json", "--reader", "monitor.mo"}, kPassword + "\n");
  REQUIRE_MESSAGE(rec.exit_code == 0, (rec.out + rec.err));
  std::size_t site_kits = 0, depot_shipped = 0;
  for (const auto& r : json::parse(rec.out)) {
    CHECK_MESSAGE(r["balanced"] == true, r.dump());
    if (r["kind"] == "site" && r["id"] == "402") site_kits = r["shipped"];
    if (r["kind"] == "depot") depot_shipped += r["accounted"].value("shipped", std::size_t{0});
  }
  CHECK(site_kits == 14);  // the site node's initial shipment: the tablet gets none of its own
  CHECK(depot_shipped == 14);
}
