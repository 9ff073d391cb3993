// End to end: arm and cohort caps reached by two nodes randomizing offline at
// the same time, against a real hub over loopback. Each round both nodes
// randomize with what they hold, neither syncing, until refused or a few
// participants are done; then both sync. However the rounds fall, what the hub
// counts for a capped arm or cohort never exceeds its cap, the cap is reached,
// and the hub raises no alert (no cap exceeded, no slot misused, every
// minimization decision replays with the arms the node had open).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "node/node_state.h"
#include "node/site_operations.h"
#include "storage/database.h"
#include "tests/support/cluster.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "site-coordinator-password";

// An example study with these caps instead of its own and a bigger initial shipment (kits never run short here).
std::string capped_study(test::TempDir& dir, const std::string& example, const json& caps) {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/" + example)));
  doc["caps"] = caps;
  for (auto& line : doc["supply"]["initial_shipment"]) line["count"] = 30;
  auto path = (dir / "study.json").string();
  test::write_file(path, doc.dump(2));
  return path;
}

struct Site {
  NodeDir* dir;
  std::string user;
  std::map<std::string, std::string> factors;
  std::string cohort;
  bool received = false;
};

// One offline round at one node: randomizes until refused or `most` are done;
// returns how many were randomized. Refusals must be the cap's or the slots'.
int offline_round(Site& site, int most) {
  auto state = node::NodeState::open(site.dir->data(), test::kNodePassphrase);
  REQUIRE_MESSAGE(state.ok(), state.error().message);
  auto& s = **state;
  node::SiteOperations ops(s);
  auto password = node::check_password(node::find_user(s.log(), site.user), site.user, kPassword);
  auto actor = ops.login(password);
  REQUIRE_MESSAGE(actor.ok(), actor.error().message);
  if (!site.received) {
    for (const auto& [id, shipment] : s.domain().shipments()) {
      std::vector<node::KitReceipt> receipt;
      for (const auto& [number, kit] : s.domain().kits())
        if (kit.shipment == id && kit.status == shared::KitStatus::expected) receipt.push_back({number, "received"});
      if (!receipt.empty()) REQUIRE(ops.receive_shipment(*actor, id, receipt, {}).ok());
    }
    site.received = true;
  }
  int done = 0;
  for (; done < most; ++done) {
    node::ScreenRequest req;
    req.factors = site.factors;
    req.eligibility.assign(s.domain().study()->eligibility.size(), "yes");
    req.cohort = site.cohort;
    auto screened = ops.screen(*actor, req);
    REQUIRE_MESSAGE(screened.ok(), screened.error().message);
    auto r = ops.randomize(*actor, screened->participant.number, password);
    if (!r) {
      CHECK(r.error().code == shared::Errc::exhausted);
      CHECK(r.error().message.find("supply") == std::string::npos);
      // Blinded staff read this: it never names an arm.
      for (const auto& arm : s.domain().study()->arms) CHECK(r.error().message.find(arm.name) == std::string::npos);
      break;
    }
  }
  return done;
}

}  // namespace

TEST_CASE("an arm cap reached by two offline nodes with list slots is never exceeded") {
  test::TempDir files;
  HubProcess hub(capped_study(files, "study-blocks.json", json::array({{{"scope", "arm"}, {"arm", "B"}, {"limit", 3}}})));
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("coordinator.ben", "coordinator", "102", kPassword);
  NodeDir a(hub, "101"), b(hub, "102");
  std::vector<Site> sites = {{&a, "coordinator.ana", {{"diabetes", "no"}}, ""},
                             {&b, "coordinator.ben", {{"diabetes", "no"}}, ""}};
  const std::string in_b = "SELECT count(*) FROM hub_allocations WHERE arm = 'B'";
  // Far more participants than the cap: block lists put half of them in B unless B closes.
  int randomized = 0;
  for (int round = 0; round < 4; ++round) {
    for (auto& site : sites) randomized += offline_round(site, 4);  // both offline at once
    for (auto& site : sites) sync_ok(*site.dir);
    CHECK(hub_count(hub, in_b) <= 3);
    CHECK(test::integrity_alerts(hub) == 0);
  }
  CHECK(hub_count(hub, in_b) == 3);  // reached
  // The other arm went on: slots of the closed arm were skipped and more blocks granted (a node whose usable
  // slots ran out mid-round refused until its sync, as without caps).
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_allocations WHERE arm = 'A'") >= 12);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_allocations") == randomized);
  CHECK(hub_count(hub, "SELECT count(*) FROM ledger_alerts WHERE kind = 'cap.exceeded'") == 0);
}

TEST_CASE("a cohort cap and an arm cap reached by two offline nodes with minimization are never exceeded") {
  test::TempDir files;
  HubProcess hub(capped_study(files, "study-minimization.json",
                              json::array({{{"scope", "cohort"}, {"cohort", "pk"}, {"limit", 12}},
                                           {{"scope", "arm"}, {"arm", "P"}, {"limit", 2}}})));
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "301", kPassword);
  hub.add_user("coordinator.ben", "coordinator", "302", kPassword);
  NodeDir a(hub, "301"), b(hub, "302");
  const std::map<std::string, std::string> factors = {{"age_group", "under_65"}, {"hoehn_yahr", "1-1.5"}};
  std::vector<Site> sites = {{&a, "coordinator.ana", factors, "pk"}, {&b, "coordinator.ben", factors, "pk"}};
  const std::string in_pk = "SELECT count(*) FROM hub_cap_uses WHERE cohort = 'pk' AND arm IS NOT NULL";
  const std::string in_p = "SELECT count(*) FROM hub_allocations WHERE arm = 'P'";
  for (int round = 0; round < 16 && hub_count(hub, in_pk) < 12; ++round) {
    for (auto& site : sites) offline_round(site, 4);
    for (auto& site : sites) sync_ok(*site.dir);
    CHECK(hub_count(hub, in_pk) <= 12);
    CHECK(hub_count(hub, in_p) <= 2);
    CHECK(test::integrity_alerts(hub) == 0);
  }
  CHECK(hub_count(hub, in_pk) == 12);
  CHECK(hub_count(hub, in_p) <= 2);
  CHECK(hub_count(hub, "SELECT count(*) FROM ledger_alerts WHERE kind IN ('cap.exceeded', 'minimization.replay')") ==
        0);
  // The cohort is full: its next participant is refused at either node, another cohort is not.
  sites[0].cohort = "pk";
  CHECK(offline_round(sites[0], 1) == 0);
  sites[0].cohort = "main";
  CHECK(offline_round(sites[0], 1) == 1);
}
