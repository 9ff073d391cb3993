// End to end: what a node holds after `irt-node enroll` against a real hub
// (slots, numbers, kits), offline use of them, and the hub's top-up and
// revocation as seen from the hub's database.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "hub/grants.h"
#include "node/kit_custody.h"
#include "node/node_state.h"
#include "node/site_operations.h"
#include "shared/slot_slice.h"
#include "storage/database.h"
#include "tests/support/cluster.h"

using namespace irt;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "site-101-password";

std::unique_ptr<node::NodeState> open_node(NodeDir& n) {
  auto state = node::NodeState::open(n.data(), test::kNodePassphrase);
  REQUIRE_MESSAGE(state.ok(), state.error().message);
  return std::move(state.value());
}

std::int64_t hub_count(HubProcess& hub, const std::string& sql, const std::string& arg) {
  auto db = hub.database();
  auto st = db.prepare(sql);
  st.bind(1, arg);
  REQUIRE(st.step());
  return st.int64(0);
}

std::uint32_t stratum_of(node::NodeState& s, const std::string& diabetes) {
  auto idx = s.domain().strata()->index_of({{"site", "101"}, {"diabetes", diabetes}});
  REQUIRE(idx.ok());
  return static_cast<std::uint32_t>(*idx);
}

// Slots the node holds per stratum: a stratum with forecast 0.5/2 per day over 14 offline days.
const std::size_t kTarget = shared::grant_target_slots(hub::kNodeForecastPerDay / 2, 14);

}  // namespace

TEST_CASE("after enroll a node holds slots of its site, its own participant numbers and its initial shipment") {
  HubProcess hub;
  hub.start();
  NodeDir a(hub, "101"), b(hub, "101");
  std::set<std::string> kits_a;
  std::string first_a, first_b;
  {
    auto s = open_node(a);
    auto& d = s->domain();
    auto slots = d.free_slots_by_stratum();
    REQUIRE(slots.size() == 2);  // site=101 x diabetes yes/no, no other site's strata
    for (const auto& [stratum, free] : slots) {
      CHECK(d.strata()->label(stratum).rfind("site=101;", 0) == 0);
      CHECK(free >= kTarget);
    }
    CHECK(d.numbers_left() == hub::kNumbersPerRange);
    first_a = d.next_number().value_or("");
    CHECK(d.kits().size() == 12);
    for (const auto& [number, kit] : d.kits()) {
      kits_a.insert(number);
      CHECK(kit.status == shared::KitStatus::expected);
    }
  }
  {
    auto s = open_node(b);
    first_b = s->domain().next_number().value_or("");
    CHECK(s->domain().kits().size() == 12);
    for (const auto& [number, kit] : s->domain().kits()) CHECK_FALSE(kits_a.count(number));
  }
  CHECK(first_a == "101-001");
  CHECK(first_b == "101-101");
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_kits WHERE custody_kind = 'node' AND custody_id = ?", "101-N1") == 12);

  // Revocation voids what the node held, in the same command.
  hub.add_user("admin.kim", "admin", "", "admin-password-123");
  auto r = hub.cli({"revoke", "--node", "101-N1", "--reason", "tablet lost in transit", "--user", "admin.kim"},
                   "admin-password-123\n");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("12 kits in its custody marked lost with the node") != std::string::npos);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_kits WHERE custody_id = ? AND status = 'lost_with_node'",
                  "101-N1") == 12);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_number_ranges WHERE node_id = ? AND voided_ms IS NULL", "101-N1") ==
        0);
}

TEST_CASE("randomizing offline uses the node's slots and kits and the next sync records the use and tops the node up") {
  HubProcess hub;
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  NodeDir a(hub, "101");
  std::uint32_t stratum = 0;
  std::size_t randomized = 0;
  {
    auto s = open_node(a);
    node::SiteOperations ops(*s);
    auto password = node::check_password(node::find_user(s->log(), "coordinator.ana"), "coordinator.ana", kPassword);
    auto actor = ops.login(password);
    REQUIRE_MESSAGE(actor.ok(), actor.error().message);
    const auto& shipment = s->domain().shipments().begin()->first;
    std::vector<node::KitReceipt> receipt;
    for (const auto& [number, kit] : s->domain().kits()) receipt.push_back({number, "received"});
    auto received = ops.receive_shipment(*actor, shipment, receipt, {});
    REQUIRE_MESSAGE(received.ok(), received.error().message);

    // Offline: randomize until fewer than half the target slots are left in the stratum.
    stratum = stratum_of(*s, "yes");
    while (s->domain().free_slots(stratum) * hub::kTopUpDivisor >= kTarget) {
      node::ScreenRequest req;
      req.factors = {{"diabetes", "yes"}};
      req.eligibility.assign(5, "yes");
      auto screened = ops.screen(*actor, req);
      REQUIRE_MESSAGE(screened.ok(), screened.error().message);
      auto done = ops.randomize(*actor, screened->participant.number, password);
      REQUIRE_MESSAGE(done.ok(), done.error().message);
      CHECK(done->kits.size() == 1);
      ++randomized;
    }
  }
  REQUIRE(randomized > 0);
  auto synced = a.sync();
  REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);

  // The hub learnt the use from the pushed events and granted more before answering the pull.
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_allocations WHERE node_id = ?", "101-N1") ==
        static_cast<std::int64_t>(randomized));
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_kits WHERE custody_id = ? AND status = 'dispensed'", "101-N1") ==
        static_cast<std::int64_t>(randomized));
  CHECK(hub_count(hub, "SELECT count(*) FROM ledger_alerts WHERE node_id = ?", "101-N1") == 0);
  {
    auto s = open_node(a);
    CHECK(s->domain().free_slots(stratum) >= kTarget);
  }
}

TEST_CASE("a kit shortage at a node reaches the hub as a supply alert naming the kit type and not the participant") {
  HubProcess hub;
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  NodeDir a(hub, "101");
  std::string refused;
  std::uint64_t shortage_seq = 0;
  {
    auto s = open_node(a);
    node::SiteOperations ops(*s);
    auto password = node::check_password(node::find_user(s->log(), "coordinator.ana"), "coordinator.ana", kPassword);
    auto actor = ops.login(password);
    REQUIRE_MESSAGE(actor.ok(), actor.error().message);
    // The initial shipment arrives without its kits of arm A.
    const auto& shipment = s->domain().shipments().begin()->first;
    std::vector<node::KitReceipt> receipt;
    for (const auto& [number, kit] : s->domain().kits())
      receipt.push_back({number, kit.kit_type == "VLC25" ? "missing" : "received"});
    auto received = ops.receive_shipment(*actor, shipment, receipt, {});
    REQUIRE_MESSAGE(received.ok(), received.error().message);
    for (int i = 0; i < 12 && refused.empty(); ++i) {
      node::ScreenRequest req;
      req.factors = {{"diabetes", "no"}};
      req.eligibility.assign(5, "yes");
      auto screened = ops.screen(*actor, req);
      REQUIRE_MESSAGE(screened.ok(), screened.error().message);
      auto done = ops.randomize(*actor, screened->participant.number, password);
      if (done) continue;
      CHECK(done.error().code == shared::Errc::exhausted);
      CHECK(done.error().message.find("the supply team is alerted at the next sync") != std::string::npos);
      refused = screened->participant.number;
      shortage_seq = s->log().last_seq();
    }
  }
  REQUIRE_FALSE(refused.empty());
  auto synced = a.sync();
  REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);

  auto listed = hub.read_as_admin({"alerts", "--json"});
  REQUIRE_MESSAGE(listed.exit_code == 0, listed.err);
  std::vector<nlohmann::json> shortages;
  for (const auto& al : nlohmann::json::parse(listed.out))
    if (al["kind"] == "supply.shortage") shortages.push_back(al);
  REQUIRE(shortages.size() == 1);
  CHECK(shortages[0]["node_id"] == "101-N1");
  CHECK(shortages[0]["seq"] == shortage_seq);
  // The message names the kit type, so the blinded reader (the admin) gets it withheld; the hub keeps it whole.
  CHECK(shortages[0]["message"] == "(withheld: it reveals the allocation)");
  auto db = hub.database();
  auto stored = db.prepare("SELECT message FROM ledger_alerts WHERE kind = 'supply.shortage'");
  REQUIRE(stored.step());
  CHECK(stored.text(0) ==
        "site 101 (node 101-N1) could not randomize a participant at visit V1 for want of kits: 1 of 'Velcardin 25 "
        "mg, 30 tablets' (VLC25) needed, 0 dispensable; ship kits of that type to the site");
  CHECK(stored.text(0).find(refused) == std::string::npos);
}
