// Live resupply at the hub (hub/resupply_runner.h): what a review counts, when
// it ships, that the shipments a site receives do not depend on its
// participants' arms where kit types share a label, and that nothing ships
// from expired, unreleased or do-not-ship stock.
#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "hub/audit.h"
#include "hub/kit_inventory.h"
#include "hub/resupply_runner.h"
#include "shared/directive_payloads.h"
#include "tests/hub/test_node.h"

using namespace irt;
using nlohmann::json;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;

namespace {

json resupply_study() { return json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json"))); }

// A hub on `study` (written beside it) with one node of site 101, its initial shipment received.
struct ResupplySite {
  test::TempDir dir;
  std::unique_ptr<HubFixture> f;
  TestNode node;
  int participants = 0;

  explicit ResupplySite(const json& study = resupply_study()) {
    auto file = dir / "study.json";
    test::write_file(file, study.dump());
    f = std::make_unique<HubFixture>(file.string());
    node = test::enroll(*f, "101");
    receive_all();
  }
  storage::Database& db() { return f->hub->db(); }

  // The node reports every kit shipped to it received.
  void receive_all() {
    std::map<std::string, shared::ShipmentReceived> by_shipment;
    for (const auto& k : hub::kits_held_by(db(), "node", node.id))
      if (k.status == shared::KitStatus::shipped) {
        auto& s = by_shipment[k.shipment_id];
        s.shipment = k.shipment_id;
        s.kits.push_back({k.number, shared::KitStatus::received});
      }
    for (const auto& [id, s] : by_shipment) node.push(*f, shared::kShipmentReceivedEvent, json(s));
    test::consume(*f, node.id);
  }

  // The node dispenses one received kit of `kit_type`.
  void dispense(const std::string& kit_type) {
    for (const auto& k : hub::kits_held_by(db(), "node", node.id))
      if (k.kit_type == kit_type && k.status == shared::KitStatus::received) {
        shared::Dispensed d;
        d.participant = "101-" + std::to_string(++participants);
        d.visit = "V2";
        d.kits = {k.number};
        d.day = 28;
        d.window_from = 25;
        d.window_to = 31;
        node.push(*f, shared::kDispensedEvent, json(d));
        test::consume(*f, node.id);
        return;
      }
    FAIL("no received kit of type " << kit_type << " at the node");
  }

  hub::SiteReview review(std::int64_t now = kHubNow) {
    storage::Transaction tx(db());
    auto r = hub::review_site(*f->hub, "101", "tester", now);
    tx.commit();
    return r;
  }
};

// What blinded site staff see of each shipment: after which dispensing it
// came and how many kits of each blinded label it held.
using Seen = std::vector<std::pair<int, std::map<std::string, int>>>;

Seen shipments_seen(const json& study, const std::string& arms) {
  ResupplySite s(study);
  Seen seen;
  for (std::size_t i = 0; i < arms.size(); ++i) {
    s.dispense(arms[i] == 'A' ? "VLC25" : "PBO");
    auto r = s.review();
    CHECK(r.problem.empty());
    if (!r.shipment) continue;
    std::map<std::string, int> labels;
    for (const auto& k : r.shipment->kits) ++labels[s.f->hub->study().find_kit_type(k.kit_type)->blinded_label];
    seen.emplace_back(static_cast<int>(i + 1), labels);
    s.receive_all();
  }
  return seen;
}

}  // namespace

TEST_CASE("the shipments a site receives are the same whichever arm its participants are on") {
  // study-blocks: VLC25 treats arm A, PBO arm B, both labelled "Study drug, 30 tablets";
  // initial 6 of each, trigger 3 and maximum 8 per kit type. Sixteen participants in
  // blocks of four (two of each arm), in four different orders.
  const std::vector<std::string> sequences = {"AABBAABBAABBAABB", "ABABBABAABBABAAB", "BBAABBAABBAABBAA",
                                              "ABBABAABBAABABBA"};
  const std::string label = "Study drug, 30 tablets";
  auto first = shipments_seen(resupply_study(), sequences[0]);
  // At 6 of 12 kits left the group is at its trigger (3 + 3) and orders up to 8 + 8;
  // ten dispensings later again.
  CHECK(first == Seen{{6, {{label, 10}}}, {16, {{label, 10}}}});
  for (std::size_t i = 1; i < sequences.size(); ++i)
    CHECK_MESSAGE(shipments_seen(resupply_study(), sequences[i]) == first, sequences[i]);

  // Every shipment holds both kit types, whatever the split.
  ResupplySite s;
  for (char arm : std::string("AABBAA")) s.dispense(arm == 'A' ? "VLC25" : "PBO");
  auto r = s.review();
  REQUIRE(r.shipment);
  std::set<std::string> types;
  for (const auto& k : r.shipment->kits) types.insert(k.kit_type);
  CHECK(types == std::set<std::string>{"PBO", "VLC25"});

  // The same site in an open study with a label per kit type decides each on its own: the arms show.
  auto labelled = resupply_study();
  labelled["blinding"] = "open";
  labelled["kit_types"][1]["blinded_label"] = "Study drug B, 30 tablets";
  CHECK(shipments_seen(labelled, sequences[0]) != shipments_seen(labelled, sequences[2]));
}

TEST_CASE("a review counts usable stock and stock in transit, and ships nothing until the trigger") {
  ResupplySite s;
  auto in = hub::resupply_input(*s.f->hub, "101", kHubNow);
  REQUIRE(in.stock.size() == 2);
  for (const auto& k : in.stock) {
    CHECK(k.usable == 6);
    CHECK(k.in_transit == 0);
    CHECK(k.label == "Study drug, 30 tablets");
  }
  CHECK(in.slots_left > 0);
  for (int i = 0; i < 5; ++i) s.dispense(i % 2 ? "PBO" : "VLC25");
  auto quiet = s.review();
  CHECK(quiet.order.empty());
  CHECK_FALSE(quiet.shipment);
  s.dispense("PBO");  // 6 of 12 left: at the group's trigger
  auto r = s.review();
  REQUIRE_MESSAGE(r.shipment, r.problem);
  CHECK(r.node_id == s.node.id);
  CHECK(r.shipment->kind == "resupply");
  // Shipped means in transit: the next review orders nothing more.
  in = hub::resupply_input(*s.f->hub, "101", kHubNow);
  CHECK(in.stock[0].in_transit + in.stock[1].in_transit == 10);
  CHECK_FALSE(s.review().shipment);
  // The node got it as a shipment directive; the trail names no kit type.
  auto sent = test::directives(*s.f, s.node.id, shared::kShipmentDirective);
  REQUIRE(sent.size() == 2);
  CHECK(shared::parse_shipment(sent[1].dump())->shipment_id == r.shipment->shipment_id);
  std::size_t audited = 0;
  for (const auto& e : hub::audit_entries(s.db()))
    if (e.action == "shipment.sent" && e.new_value.find(r.shipment->shipment_id) != std::string::npos) {
      ++audited;
      CHECK(e.new_value.find("VLC25") == std::string::npos);
      CHECK(e.new_value.find("PBO") == std::string::npos);
    }
  CHECK(audited == 1);
}

TEST_CASE("kits inside do-not-count are not usable stock, and nothing ships from expired or unreleased stock") {
  auto study = resupply_study();
  for (auto& kt : study["kit_types"])
    kt["expiry_windows"] = {{"do_not_ship_days", 90}, {"do_not_count_days", 80}, {"do_not_dispense_days", 70}};
  ResupplySite s(study);
  const auto before = hub::kits_held_by(s.db(), "node", s.node.id).size();
  // Generated lots expire 730, 821 and 912 days after init: on day 700 the
  // node's first-lot kits are inside do-not-count (and the first lot inside do-not-ship).
  const std::int64_t day700 = kHubNow + std::int64_t{700} * 86400000;
  auto in = hub::resupply_input(*s.f->hub, "101", day700);
  CHECK(in.stock[0].usable + in.stock[1].usable < 12);
  auto r = s.review(day700);
  REQUIRE_MESSAGE(r.shipment, r.problem);
  const auto cutoff = shared::format_date(shared::day_of_millis(day700) + 90);
  for (const auto& k : r.shipment->kits) CHECK(k.expiry > cutoff);

  // Long after every lot expired: the order stands, nothing moves, the node has an alert.
  const std::int64_t day2000 = kHubNow + std::int64_t{2000} * 86400000;
  const auto held = hub::kits_held_by(s.db(), "node", s.node.id).size();
  CHECK(held > before);
  auto none = s.review(day2000);
  CHECK_FALSE(none.order.empty());
  CHECK_FALSE(none.shipment);
  CHECK(none.problem.find("inside the do-not-ship window") != std::string::npos);
  CHECK(none.problem.find("VLC25") == std::string::npos);
  CHECK(hub::kits_held_by(s.db(), "node", s.node.id).size() == held);
  bool alerted = false;
  for (const auto& a : s.f->hub->ledger().alerts(false))
    if (a.kind == "supply.resupply_failed" && a.node_id == s.node.id) {
      alerted = true;
      // Every node manager reads it: no lot of the short kit type is named.
      CHECK(a.message == "resupply of site 101 could not ship: the depot lacks shippable kits for the order; "
                         "'irt-hub supply run --site 101' (manage_supply) names the lots held back and why");
    }
  CHECK(alerted);

  // A lot not released in the site's country never ships there.
  ResupplySite fr;
  fr.db().prepare("DELETE FROM hub_lot_releases WHERE country = 'FR'").run();
  for (char arm : std::string("AABBAB")) fr.dispense(arm == 'A' ? "VLC25" : "PBO");
  auto unreleased = fr.review();
  CHECK_FALSE(unreleased.order.empty());
  CHECK_FALSE(unreleased.shipment);
  CHECK(unreleased.problem.find("not released in FR") != std::string::npos);
}

TEST_CASE("supply run reviews only active sites, and refuses an unknown or inactive site with nothing changed") {
  ResupplySite s;
  auto all = hub::run_resupply(*s.f->hub, std::nullopt, "tester", kHubNow);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);  // 101 only: 102 and 201 have no node yet
  CHECK((*all)[0].site_id == "101");
  CHECK(hub::describe((*all)[0]) == "site 101: nothing due");
  CHECK(hub::run_resupply(*s.f->hub, "999", "tester", kHubNow).error().code == shared::Errc::not_found);
  CHECK(hub::run_resupply(*s.f->hub, "201", "tester", kHubNow).error().code == shared::Errc::conflict);
}
