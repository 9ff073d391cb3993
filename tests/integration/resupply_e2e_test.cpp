// Live resupply end to end (hub/resupply_runner.h): a real node randomizes
// down to the trigger and its next sync brings the resupply; `irt-hub supply
// run` on demand; `irt-hub serve --resupply-every` ships without any sync.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "node/node_state.h"
#include "node/site_operations.h"
#include "shared/civil_date.h"
#include "sync/hlc.h"
#include "tests/support/cluster.h"

using namespace irt;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "site-101-password";
const std::string kSupplyPassword = "supply-password-1";

std::unique_ptr<node::NodeState> open_node(NodeDir& n) {
  auto state = node::NodeState::open(n.data(), test::kNodePassphrase);
  REQUIRE_MESSAGE(state.ok(), state.error().message);
  return std::move(state.value());
}

// Logs in as the coordinator; receives every expected kit when `receive`;
// then randomizes `count` participants (each takes one kit at V1), in both strata.
void at_site(NodeDir& n, bool receive, int count) {
  auto s = open_node(n);
  node::SiteOperations ops(*s);
  auto password = node::check_password(node::find_user(s->log(), "coordinator.ana"), "coordinator.ana", kPassword);
  auto actor = ops.login(password);
  REQUIRE_MESSAGE(actor.ok(), actor.error().message);
  if (receive)
    for (const auto& [shipment, unused] : s->domain().shipments()) {
      std::vector<node::KitReceipt> receipt;
      for (const auto& [number, kit] : s->domain().kits())
        if (kit.status == shared::KitStatus::expected) receipt.push_back({number, "received"});
      if (receipt.empty()) break;
      auto received = ops.receive_shipment(*actor, shipment, receipt, {});
      REQUIRE_MESSAGE(received.ok(), received.error().message);
    }
  for (int i = 0; i < count; ++i) {
    node::ScreenRequest req;
    req.factors = {{"diabetes", s->domain().numbers_left() % 2 ? "yes" : "no"}};  // both strata's slots
    req.eligibility.assign(5, "yes");
    auto screened = ops.screen(*actor, req);
    REQUIRE_MESSAGE(screened.ok(), screened.error().message);
    auto done = ops.randomize(*actor, screened->participant.number, password);
    REQUIRE_MESSAGE(done.ok(), done.error().message);
  }
}

const char* kResupplies = "SELECT count(*) FROM hub_shipments WHERE kind = 'resupply'";

}  // namespace

TEST_CASE("a node that randomizes down to the trigger gets its resupply in the pull of its next sync") {
  HubProcess hub;
  hub.start({"--resupply-every", "0"});
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  NodeDir a(hub, "101");
  // study-blocks: 6 + 6 kits at first, one label, trigger 3 + 3.
  at_site(a, true, 5);
  auto synced = a.sync();
  REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);
  CHECK(hub_count(hub, kResupplies) == 0);  // 7 usable: above the trigger
  at_site(a, false, 1);
  synced = a.sync();
  REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);
  CHECK(hub_count(hub, kResupplies) == 1);
  auto s = open_node(a);
  CHECK(s->domain().shipments().size() == 2);
  std::size_t expected = 0;
  for (const auto& [number, kit] : s->domain().kits())
    if (kit.status == shared::KitStatus::expected) ++expected;
  CHECK(expected == 10);  // up to 8 + 8 from 6
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_kits WHERE custody_kind = 'node' AND status = 'shipped'") == 10);
}

TEST_CASE("irt-hub supply run reviews the active sites for a supply manager only") {
  HubProcess hub;
  hub.start({"--resupply-every", "0"});
  hub.add_user("sam", "supply-manager", "", kSupplyPassword);
  NodeDir a(hub, "101");
  auto refused = hub.cli({"supply", "run", "--user", test::kHubAdmin}, std::string(test::kHubAdminPassword) + "\n");
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("manage_supply") != std::string::npos);
  auto unknown = hub.cli({"supply", "run", "--site", "999", "--user", "sam"}, kSupplyPassword + "\n");
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.err.find("no site '999'") != std::string::npos);
  auto ran = hub.cli({"supply", "run", "--user", "sam"}, kSupplyPassword + "\n");
  REQUIRE_MESSAGE(ran.exit_code == 0, ran.err);
  CHECK(ran.out == "site 101: nothing due\n");
}

TEST_CASE("irt-hub serve reviews the sites on its schedule, without a sync") {
  HubProcess hub;
  hub.start({"--resupply-every", "1"});
  hub.add_user("sam", "supply-manager", "", kSupplyPassword);
  NodeDir a(hub, "101");
  CHECK(hub_count(hub, kResupplies) == 0);
  // The node's kits (generated lot L01) move inside do-not-count (70 days in study-blocks):
  // none usable, so the next scheduled review ships from the later lots.
  const auto expiry = shared::format_date(shared::day_of_millis(sync::system_millis()) + 60);
  auto relabelled = hub.cli({"lot", "relabel", "--lot", "L01", "--expiry", expiry, "--user", "sam", "--reason",
                             "stability data"},
                            kSupplyPassword + "\n");
  REQUIRE_MESSAGE(relabelled.exit_code == 0, relabelled.err);
  std::int64_t shipped = 0;
  for (int i = 0; i < 100 && shipped == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    shipped = hub_count(hub, kResupplies);
  }
  CHECK(shipped == 1);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_kits WHERE status = 'shipped' AND lot = 'L01' AND shipment_id IN "
                       "(SELECT shipment_id FROM hub_shipments WHERE kind = 'resupply')") == 0);
}
