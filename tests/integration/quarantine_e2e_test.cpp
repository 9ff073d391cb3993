// End to end, real hub and node processes over loopback: kits received into a
// fridge, a temperature excursion for that storage location through the
// node's API, the quarantine synced to the hub and decided there (one kit
// released by the CLI, one rejected through the hub's API, signed), the
// decisions applied at the node at its next sync; a recall rejected at the hub
// while the node is offline, a rejected kit dispensed by that node kept as a
// fact and raised as a deviation; a participant's return with units, a
// destruction with a witness at the site and at the depot, and the
// reconciliation balanced to zero. Every invalid step refused, nothing changed.
// And a lot put on hold at the hub while the node is offline: the kit it
// dispenses from the lot is a deviation, the rest is quarantined at the node,
// then one kit released and the others rejected, and the site reconciles.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/kit_inventory.h"
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

json cli_json(HubProcess& hub, std::vector<std::string> args, const std::string& stdin_text = "") {
  auto r = hub.cli(std::move(args), stdin_text);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}

// The node's API for one user while `irt-node serve` runs.
struct NodeApi {
  test::TempDir logs;
  int port = test::free_port();
  std::unique_ptr<test::Process> server;
  explicit NodeApi(NodeDir& n) : server(test::serve_node(n.data(), port, logs / "node.log")) {}
  ~NodeApi() { server->terminate(); }
  std::string login(const std::string& user) {
    auto r = test::api_call(port, "POST", "/api/v1/login", "", {{"user", user}, {"password", kPassword}});
    REQUIRE_MESSAGE(r.status == 200, r.body.dump());
    return r.body["token"];
  }
  test::ApiReply call(const std::string& method, const std::string& path, const std::string& token,
                      const json& body = nullptr) {
    return test::api_call(port, method, path, token, body);
  }
  std::map<std::string, std::string> statuses(const std::string& token) {
    auto inv = call("GET", "/api/v1/inventory", token);
    REQUIRE(inv.status == 200);
    std::map<std::string, std::string> out;
    for (const auto& k : inv.body["kits"]) out[k["kit"]] = k["status"];
    return out;
  }
};

std::vector<std::string> with_status(const std::map<std::string, std::string>& kits, const std::string& status) {
  std::vector<std::string> out;
  for (const auto& [k, s] : kits)
    if (s == status) out.push_back(k);
  return out;
}

std::vector<std::string> kit_args(const std::vector<std::string>& kits) {
  std::vector<std::string> out;
  for (const auto& k : kits) {
    out.push_back("--kit");
    out.push_back(k);
  }
  return out;
}

}  // namespace

TEST_CASE("an excursion at a site is decided at the hub, applied at the node, and the site reconciles to zero") {
  HubProcess hub;
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("pharm.paul", "pharmacist", "101", kPassword);
  hub.add_user("nurse.nora", "nurse", "101", kPassword);
  hub.add_user("supply.sam", "supply-manager", "", kPassword);
  hub.add_user("supply.sue", "supply-manager", "", kPassword);
  hub.add_user("manager.ines", "study-manager", "", kPassword);
  NodeDir a(hub, "101");
  sync_ok(a);  // the roster

  // Offline at the site: receive the shipment, randomize one participant.
  std::string participant;
  std::vector<std::string> first_kits;
  {
    test::SiteSession site(a, "coordinator.ana", kPassword);
    site.receive_all();
    participant = site.screen({{"diabetes", "no"}});
    auto r = site.ops->randomize(site.actor, participant, site.password);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    first_kits = r->kits;
  }
  REQUIRE_FALSE(first_kits.empty());

  // Three kits go into FRIDGE-1; its excursion quarantines them at once.
  std::vector<std::string> fridge;
  {
    NodeApi n(a);
    auto ana = n.login("coordinator.ana");
    auto stock = with_status(n.statuses(ana), "available");
    REQUIRE(stock.size() >= 6);
    fridge = {stock[0], stock[1], stock[2]};
    auto stored = n.call("POST", "/api/v1/kits/location", ana, {{"kits", fridge}, {"location", "FRIDGE-1"}});
    REQUIRE_MESSAGE(stored.status == 200, stored.body.dump());
    auto nora = n.login("nurse.nora");
    json report{{"location", "FRIDGE-1"}, {"minimum_celsius", 6.5}, {"maximum_celsius", 14.0},
                {"duration_minutes", 210}, {"reason", "fridge door left ajar overnight"}};
    auto bad = report;
    bad["maximum_celsius"] = 1.0;
    CHECK(n.call("POST", "/api/v1/excursions", nora, bad).status == 400);
    auto dispensed_kit = n.call("POST", "/api/v1/excursions", nora,
                                {{"kits", {first_kits[0]}}, {"minimum_celsius", 6.5}, {"maximum_celsius", 14.0},
                                 {"duration_minutes", 210}, {"reason", "x"}});
    CHECK(dispensed_kit.status == 409);
    auto q = n.call("POST", "/api/v1/excursions", nora, report);
    REQUIRE_MESSAGE(q.status == 200, q.body.dump());
    CHECK(q.body["quarantined"] == json(fridge));
    auto now = n.statuses(ana);
    for (const auto& k : fridge) CHECK(now[k] == "quarantined");
    // The old single-kit route keeps working.
    CHECK(n.call("POST", "/api/v1/kits/" + fridge[0] + "/quarantine", nora, {{"reason", "again"}}).status == 409);
  }
  sync_ok(a);

  // At the hub: the three kits with their readings, blinded.
  // manager.ines: a blinded reader with view_inventory.
  auto listed = cli_json(hub, {"quarantine", "list", "--json", "--reader", "manager.ines"}, kPassword + "\n");
  REQUIRE(listed.size() == 3);
  for (const auto& k : listed) {
    CHECK(k["custody_id"] == "101-N1");
    CHECK(k["site_id"] == "101");
    CHECK(k["location"] == "FRIDGE-1");
    CHECK(k["minimum_celsius"] == 6.5);
    CHECK(k["maximum_celsius"] == 14.0);
    CHECK(k["duration_minutes"] == 210);
    CHECK_FALSE(k.contains("kit_type"));
  }
  auto manager = test::hub_login(hub.port(), "manager.ines", kPassword);
  auto api_list = test::hub_call(hub.port(), "GET", "/api/v1/quarantine", manager);
  REQUIRE_MESSAGE(api_list.status == 200, api_list.text);
  CHECK(api_list.body["kits"] == listed);
  CHECK(api_list.text.find("VLC25") == std::string::npos);
  CHECK(api_list.text.find("PBO") == std::string::npos);
  CHECK(test::hub_call(hub.port(), "POST", "/api/v1/quarantine/release", manager,
                       {{"kits", {fridge[0]}}, {"reason", "x"}, {"signature", {{"password", kPassword}}}})
            .status == 403);

  // Release one by the CLI, reject another through the API, both signed.
  auto wrong = hub.cli({"quarantine", "release", "--kit", fridge[0], "--reason", "within stability", "--user",
                        "supply.sam"},
                       "not-the-password\n");
  CHECK(wrong.exit_code != 0);
  auto released = hub.cli({"quarantine", "release", "--kit", fridge[0], "--reason",
                           "excursion within the stability data", "--user", "supply.sam"},
                          kPassword + "\n");
  REQUIRE_MESSAGE(released.exit_code == 0, released.err);
  CHECK(released.out.find("kits.release") != std::string::npos);
  auto sue = test::hub_login(hub.port(), "supply.sue", kPassword);
  auto rejected = test::hub_call(hub.port(), "POST", "/api/v1/quarantine/reject", sue,
                                 {{"kits", {fridge[1]}}, {"reason", "above 12 C for over 3 h"},
                                  {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(rejected.status == 200, rejected.text);
  CHECK(rejected.body["signed_by"] == "supply.sue");
  // Twice, or a kit not quarantined: refused, nothing changed.
  auto again = hub.cli({"quarantine", "release", "--kit", fridge[0], "--reason", "again", "--user", "supply.sam"},
                       kPassword + "\n");
  CHECK(again.exit_code != 0);
  CHECK(again.err.find("not quarantined") != std::string::npos);
  auto twice = test::hub_call(hub.port(), "POST", "/api/v1/quarantine/reject", sue,
                              {{"kits", {fridge[1]}}, {"reason", "again"}, {"signature", {{"password", kPassword}}}});
  CHECK(twice.status == 409);
  CHECK(twice.text.find("already rejected") != std::string::npos);
  auto left = cli_json(hub, {"quarantine", "list", "--json", "--reader", "manager.ines"}, kPassword + "\n");
  REQUIRE(left.size() == 1);
  CHECK(left[0]["kit"] == fridge[2]);
  auto audit = cli_json(hub, {"audit", "--reader", "manager.ines", "--object", fridge[0], "--json"}, kPassword + "\n");
  CHECK(audit.dump().find("kit.released") != std::string::npos);

  // The node applies both decisions at its next sync.
  sync_ok(a);
  std::vector<std::string> in_stock;
  {
    NodeApi n(a);
    auto ana = n.login("coordinator.ana");
    auto now = n.statuses(ana);
    CHECK(now[fridge[0]] == "available");
    CHECK(now[fridge[1]] == "rejected");
    CHECK(now[fridge[2]] == "quarantined");
    in_stock = with_status(now, "available");
  }

  // A recall: the hub rejects every kit in stock at the node, which is offline
  // and dispenses one of them before it learns of it.
  auto args = std::vector<std::string>{"quarantine", "reject", "--reason", "lot recalled by the manufacturer", "--user",
                                       "supply.sam"};
  for (const auto& k : kit_args(in_stock)) args.push_back(k);
  auto recall = hub.cli(args, kPassword + "\n");
  REQUIRE_MESSAGE(recall.exit_code == 0, recall.err);
  std::vector<std::string> v2_kits;
  {
    test::SiteSession site(a, "coordinator.ana", kPassword);
    auto d = site.ops->dispense(site.actor, participant, {"V2", "patient travels abroad", "", "", "", site.password});
    REQUIRE_MESSAGE(d.ok(), d.error().message);
    v2_kits = d->kits;
  }
  REQUIRE_FALSE(v2_kits.empty());
  sync_ok(a);
  auto listed_deviations = hub.read_as_admin({"deviations", "--json"});
  REQUIRE_MESSAGE(listed_deviations.exit_code == 0, listed_deviations.err);
  auto deviations = json::parse(listed_deviations.out);
  bool raised = false;
  for (const auto& d : deviations)
    if (d["kind"] == "kit_after_decision" && d["summary"].get<std::string>().find(v2_kits[0]) != std::string::npos) {
      raised = true;
      CHECK(d["summary"].get<std::string>().find("had not yet received") != std::string::npos);
    }
  CHECK(raised);

  // Returns with units, destruction with a witness.
  sync_ok(a);  // the node applies the recall
  {
    NodeApi n(a);
    auto ana = n.login("coordinator.ana");
    auto now = n.statuses(ana);
    CHECK(now[v2_kits[0]] == "dispensed");  // kept as it happened
    for (const auto& k : in_stock)
      if (std::find(v2_kits.begin(), v2_kits.end(), k) == v2_kits.end()) CHECK(now[k] == "rejected");
    auto back = n.call("POST", "/api/v1/kits/" + v2_kits[0] + "/return", ana, {{"units_returned", 12}, {"visit", "V3"}});
    REQUIRE_MESSAGE(back.status == 200, back.body.dump());
    CHECK(back.body["kit"]["units_returned"] == 12);
    auto unused = n.call("POST", "/api/v1/kits/" + fridge[1] + "/return", ana, {{"units_returned", 0}});
    REQUIRE_MESSAGE(unused.status == 200, unused.body.dump());
    auto paul = n.login("pharm.paul");
    auto no_witness = n.call("POST", "/api/v1/kits/" + v2_kits[0] + "/destroy", paul,
                             {{"reason", "returned"}, {"signature_password", kPassword}});
    CHECK(no_witness.status == 400);
    auto bad_witness = n.call("POST", "/api/v1/kits/" + v2_kits[0] + "/destroy", paul,
                              {{"reason", "returned"}, {"signature_password", kPassword}, {"witness", "coordinator.ana"},
                               {"witness_password", "not-the-password"}});
    CHECK(bad_witness.status == 401);
    auto dispensed = n.call("POST", "/api/v1/kits/" + first_kits[0] + "/destroy", paul,
                            {{"reason", "x"}, {"signature_password", kPassword}, {"witness", "coordinator.ana"},
                             {"witness_password", kPassword}});
    CHECK(dispensed.status == 409);
    CHECK(n.statuses(ana)[v2_kits[0]] == "returned");
    for (const auto& k : {v2_kits[0], fridge[1]}) {
      auto destroyed = n.call("POST", "/api/v1/kits/" + k + "/destroy", paul,
                              {{"reason", "returned, destroyed on site"}, {"signature_password", kPassword},
                               {"witness", "coordinator.ana"}, {"witness_password", kPassword}});
      REQUIRE_MESSAGE(destroyed.status == 200, destroyed.body.dump());
      CHECK(destroyed.body["kit"]["status"] == "destroyed");
    }
  }
  sync_ok(a);

  // A rejected kit destroyed at the depot, by one supply manager before another.
  std::string depot_kit;
  {
    auto db = hub.database();
    depot_kit = hub::kits_held_by(db, "depot", "EU-01").at(0).number;
  }
  auto reject_depot = hub.cli({"quarantine", "reject", "--kit", depot_kit, "--reason", "crate crushed", "--user",
                               "supply.sam"},
                              kPassword + "\n");
  REQUIRE_MESSAGE(reject_depot.exit_code == 0, reject_depot.err);
  auto alone = hub.cli({"kits", "destroy", "--depot", "EU-01", "--kit", depot_kit, "--reason", "rejected", "--user",
                        "supply.sam", "--witness", "supply.sam"},
                       kPassword + "\n" + kPassword + "\n");
  CHECK(alone.exit_code != 0);
  auto destroyed = hub.cli({"kits", "destroy", "--depot", "EU-01", "--kit", depot_kit, "--reason", "rejected",
                            "--user", "supply.sam", "--witness", "supply.sue"},
                           kPassword + "\n" + kPassword + "\n");
  REQUIRE_MESSAGE(destroyed.exit_code == 0, destroyed.err);

  // Every kit shipped to the site and placed at the depot is accounted for.
  auto reconciled = hub.cli({"reconcile", "--site", "101", "--json", "--reader", "manager.ines"}, kPassword + "\n");
  REQUIRE_MESSAGE(reconciled.exit_code == 0, reconciled.out << reconciled.err);
  auto site = json::parse(reconciled.out).at(0);
  CHECK(site["balanced"] == true);
  CHECK(site["unaccounted"] == 0);
  CHECK(site["differences"].empty());
  const auto& acc = site["accounted"];
  CHECK(acc["destroyed"] == 2);
  CHECK(acc["quarantined"] == 1);
  CHECK(acc["dispensed"] == first_kits.size() + v2_kits.size() - 1);
  std::size_t sum = 0;
  for (const auto& [column, n] : acc.items()) sum += n.get<std::size_t>();
  CHECK(site["shipped"] == sum);
  CHECK(reconciled.out.find("VLC25") == std::string::npos);
  for (const auto& k : site["kits"])
    if (k["kit"] == v2_kits[0]) CHECK(k["status"] == "destroyed");
  CHECK(hub.cli({"reconcile", "--site", "101"}).exit_code != 0);  // who reads is named
  auto all = hub.cli({"reconcile", "--reader", "manager.ines"}, kPassword + "\n");
  CHECK_MESSAGE(all.exit_code == 0, all.out << all.err);
  CHECK(all.out.find("depot EU-01") != std::string::npos);
  CHECK(all.out.find("[balanced]") != std::string::npos);
  auto api = test::hub_call(hub.port(), "GET", "/api/v1/reconciliation?depot=EU-01", manager);
  REQUIRE_MESSAGE(api.status == 200, api.text);
  CHECK(api.body["balanced"] == true);
  CHECK(api.body["custodians"][0]["accounted"]["destroyed"] == 1);
}

TEST_CASE("a lot held at the hub while its node is offline: the kit the node dispenses from it is a deviation, the "
          "rest is quarantined there, then released or rejected, and the site reconciles") {
  HubProcess hub;
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("supply.sam", "supply-manager", "", kPassword);
  hub.add_user("supply.sue", "supply-manager", "", kPassword);
  hub.add_user("manager.ines", "study-manager", "", kPassword);
  NodeDir a(hub, "101");
  sync_ok(a);  // the roster
  std::string participant;
  {
    test::SiteSession site(a, "coordinator.ana", kPassword);
    site.receive_all();
    participant = site.screen({{"diabetes", "no"}});
    auto r = site.ops->randomize(site.actor, participant, site.password);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
  }
  sync_ok(a);  // the hub knows the kits in stock

  // The lot dispensing takes first (the earliest expiry) and its kits in the node's stock.
  std::string lot;
  std::vector<std::string> lot_stock;
  {
    auto db = hub.database();
    auto kits = hub::kits_held_by(db, "node", "101-N1");
    std::string earliest;
    for (const auto& k : kits)
      if (k.status == shared::KitStatus::received && (earliest.empty() || k.expiry < earliest)) {
        earliest = k.expiry;
        lot = k.lot;
      }
    for (const auto& k : kits)
      if (k.status == shared::KitStatus::received && k.lot == lot) lot_stock.push_back(k.number);
  }
  REQUIRE(lot_stock.size() >= 3);

  // A blinded role may not hold a lot; a supply manager does, signed, while the node is offline.
  auto manager = test::hub_login(hub.port(), "manager.ines", kPassword);
  CHECK(test::hub_call(hub.port(), "POST", "/api/v1/quarantine/hold", manager,
                       {{"lot", lot}, {"reason", "x"}, {"signature", {{"password", kPassword}}}})
            .status == 403);
  auto sue = test::hub_login(hub.port(), "supply.sue", kPassword);
  auto unknown = test::hub_call(hub.port(), "POST", "/api/v1/quarantine/hold", sue,
                                {{"lot", "NO-SUCH-LOT"}, {"reason", "x"}, {"signature", {{"password", kPassword}}}});
  CHECK(unknown.status == 404);
  CHECK(unknown.text.find("NO-SUCH-LOT") != std::string::npos);
  auto held = hub.cli({"quarantine", "hold", "--lot", lot, "--reason", "assay out of specification, under investigation",
                       "--user", "supply.sam"},
                      kPassword + "\n");
  REQUIRE_MESSAGE(held.exit_code == 0, held.err);
  CHECK(held.out.find("kits.quarantine") != std::string::npos);
  CHECK(held.out.find("to node 101-N1") != std::string::npos);

  // Offline, the node dispenses a kit of the lot before it learns of the hold.
  std::vector<std::string> v2_kits;
  {
    test::SiteSession site(a, "coordinator.ana", kPassword);
    auto d = site.ops->dispense(site.actor, participant, {"V2", "patient travels abroad", "", "", "", site.password});
    REQUIRE_MESSAGE(d.ok(), d.error().message);
    v2_kits = d->kits;
  }
  REQUIRE(v2_kits.size() == 1);
  REQUIRE(std::find(lot_stock.begin(), lot_stock.end(), v2_kits[0]) != lot_stock.end());
  sync_ok(a);
  auto deviations = json::parse(hub.read_as_admin({"deviations", "--json"}).out);
  bool raised = false;
  for (const auto& d : deviations)
    if (d["kind"] == "kit_after_decision" && d["summary"].get<std::string>().find(v2_kits[0]) != std::string::npos) {
      raised = true;
      const auto summary = d["summary"].get<std::string>();
      CHECK(summary.find("put on hold") != std::string::npos);
      CHECK(summary.find("had not yet received") != std::string::npos);
      CHECK(summary.find(lot) == std::string::npos);
    }
  CHECK(raised);

  // The node applies the hold at that sync: the rest of the lot is quarantined there.
  std::vector<std::string> remaining;
  for (const auto& k : lot_stock)
    if (k != v2_kits[0]) remaining.push_back(k);
  {
    NodeApi n(a);
    auto ana = n.login("coordinator.ana");
    auto now = n.statuses(ana);
    CHECK(now[v2_kits[0]] == "dispensed");
    for (const auto& k : remaining) CHECK(now[k] == "quarantined");
  }
  // The lot is held everywhere: the node's kits and the depot's.
  auto listed = cli_json(hub, {"quarantine", "list", "--json", "--reader", "manager.ines"}, kPassword + "\n");
  std::size_t at_node = 0, at_depot = 0;
  for (const auto& k : listed) {
    CHECK(k["reason"] == "assay out of specification, under investigation");
    CHECK(k["hold_decision"].is_number());
    CHECK_FALSE(k.contains("kit_type"));
    at_node += k["custody_id"] == "101-N1";
    at_depot += k["custody_kind"] == "depot";
  }
  CHECK(at_node == remaining.size());
  CHECK(at_depot > 0);
  CHECK(at_node + at_depot == listed.size());

  // One released by the CLI, the rest rejected through the API; the node applies both.
  auto released = hub.cli({"quarantine", "release", "--kit", remaining[0], "--reason", "assay repeated within "
                           "specification", "--user", "supply.sam"},
                          kPassword + "\n");
  REQUIRE_MESSAGE(released.exit_code == 0, released.err);
  const std::vector<std::string> rest(remaining.begin() + 1, remaining.end());
  auto rejected = test::hub_call(hub.port(), "POST", "/api/v1/quarantine/reject", sue,
                                 {{"kits", rest}, {"reason", "lot confirmed out of specification"},
                                  {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(rejected.status == 200, rejected.text);
  sync_ok(a);
  {
    NodeApi n(a);
    auto ana = n.login("coordinator.ana");
    auto now = n.statuses(ana);
    CHECK(now[remaining[0]] == "available");
    for (const auto& k : rest) CHECK(now[k] == "rejected");
  }
  auto reconciled = hub.cli({"reconcile", "--site", "101", "--json", "--reader", "manager.ines"}, kPassword + "\n");
  REQUIRE_MESSAGE(reconciled.exit_code == 0, reconciled.out << reconciled.err);
  auto site = json::parse(reconciled.out).at(0);
  CHECK(site["balanced"] == true);
  CHECK(site["accounted"]["rejected"] == rest.size());
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, verified.out << verified.err);
}
