// Custody between two nodes of one site (hub/custody.h): a handover a node
// records is decided when the hub reads it, moving the kits' custody by
// directives to both nodes, or refused whole; every hop is in the kit's history.
#include "hub/custody.h"

#include <doctest/doctest.h>

#include "hub/kit_decisions.h"
#include "hub/kit_history.h"
#include "hub/kit_inventory.h"
#include "hub/shipments.h"
#include "shared/directive_payloads.h"
#include "tests/hub/test_node.h"

using namespace irt;
using namespace irt::test;
using shared::KitStatus;

namespace {

shared::Shipment first_shipment(HubFixture& f, const TestNode& n) {
  auto s = shared::parse_shipment(directives(f, n.id, shared::kShipmentDirective).at(0).dump());
  REQUIRE(s.ok());
  return *s;
}

void receive(HubFixture& f, TestNode& n, const shared::Shipment& s, const std::vector<std::string>& kits) {
  shared::ShipmentReceived r{s.shipment_id, {}, std::nullopt};
  for (const auto& k : kits) r.kits.push_back({k, KitStatus::received});
  n.push(f, shared::kShipmentReceivedEvent, r);
  consume(f, n.id);
}

std::uint64_t hand_over(HubFixture& f, TestNode& from, const std::string& to, const std::vector<std::string>& kits) {
  from.push(f, shared::kKitHandoverRequestedEvent, shared::KitHandoverRequested{to, kits, "home visits", "coordinator"});
  consume(f, from.id);
  return from.seq;
}

shared::KitHandover last_answer(HubFixture& f, const TestNode& n) {
  auto answers = directives(f, n.id, shared::kKitsHandoverDirective);
  REQUIRE_FALSE(answers.empty());
  auto h = shared::parse_kit_handover(answers.back().dump());
  REQUIRE(h.ok());
  return *h;
}

}  // namespace

TEST_CASE("a handover to a nurse's tablet moves custody by directives to both nodes, and back, each hop audited") {
  HubFixture f("packaging/examples/study-minimization.json");
  auto site = enroll(f, "402");
  auto tablet = enroll(f, "402", "nurse");
  const auto ship = first_shipment(f, site);
  const std::vector<std::string> kits = {ship.kits[0].kit_number, ship.kits[1].kit_number};
  receive(f, site, ship, kits);
  const auto tablet_shipments = directives(f, tablet.id, shared::kShipmentDirective).size();

  const auto seq = hand_over(f, site, tablet.id, kits);
  const std::string shipment_id = "HND-" + site.id + "-" + std::to_string(seq);
  for (const auto& k : kits) {
    auto held = hub::find_kit(f.hub->db(), k);
    REQUIRE(held);
    CHECK(held->custody_kind == "node");
    CHECK(held->custody_id == tablet.id);
    CHECK(held->status == KitStatus::shipped);
    CHECK(held->shipment_id == ship.shipment_id);  // the depot's shipment, that reconciliation counts it against
  }
  // The giving node: the kits left it.
  auto answer = last_answer(f, site);
  CHECK(answer.outcome == "moved");
  CHECK(answer.request_seq == seq);
  CHECK(answer.to_node == tablet.id);
  CHECK(answer.kits == kits);
  // The tablet: a small shipment, with what it needs to dispense (type, lot, expiry).
  auto sent = directives(f, tablet.id, shared::kShipmentDirective);
  REQUIRE(sent.size() == tablet_shipments + 1);
  auto s = shared::parse_shipment(sent.back().dump());
  REQUIRE(s.ok());
  CHECK(s->shipment_id == shipment_id);
  CHECK(s->kind == "handover");
  REQUIRE(s->kits.size() == 2);
  CHECK(s->kits[0].kit_number == kits[0]);
  CHECK(s->kits[0].kit_type == ship.kits[0].kit_type);
  CHECK(s->kits[0].expiry == ship.kits[0].expiry);

  // The tablet receives them: its own stock now.
  receive(f, tablet, *s, kits);
  CHECK(hub::find_kit(f.hub->db(), kits[0])->status == KitStatus::received);
  CHECK(hub::find_kit(f.hub->db(), kits[0])->custody_id == tablet.id);

  // It hands one back, unused: the site node receives it as a shipment.
  const auto back = hand_over(f, tablet, site.id, {kits[0]});
  CHECK(last_answer(f, tablet).outcome == "moved");
  auto returned = shared::parse_shipment(directives(f, site.id, shared::kShipmentDirective).back().dump());
  REQUIRE(returned.ok());
  CHECK(returned->shipment_id == "HND-" + tablet.id + "-" + std::to_string(back));
  CHECK(hub::find_kit(f.hub->db(), kits[0])->custody_id == site.id);
  CHECK(hub::find_kit(f.hub->db(), kits[1])->custody_id == tablet.id);

  // The history shows each hop, to a blinded reader too, with no kit type in it.
  auto h = hub::kit_history(*f.hub, kits[0], true);
  REQUIRE(h.ok());
  std::vector<std::string> hops;
  for (const auto& e : h->entries)
    if (e.action == "kit.custody_moved") hops.push_back(e.old_value + " -> " + e.new_value);
  REQUIRE(hops.size() == 2);
  CHECK(hops[0].find("node " + site.id + " -> node " + tablet.id) == 0);
  CHECK(hops[1].find("node " + tablet.id + " -> node " + site.id) == 0);
  auto text = hub::to_json(*h, true).dump();
  CHECK(text.find(ship.kits[0].kit_type) == std::string::npos);
  bool requested = false;
  for (const auto& e : h->entries) requested |= e.action == "kit.handover_requested" && e.node_id == tablet.id;
  CHECK(requested);

  auto kept = hub::handovers(f.hub->db());
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].outcome == "moved");
  CHECK(kept[0].kits == 2);
  CHECK(kept[1].from_node == tablet.id);
}

TEST_CASE("a handover the hub cannot carry out is refused whole, with the reason, and decided once") {
  HubFixture f("packaging/examples/study-minimization.json");
  auto site = enroll(f, "402");
  auto tablet = enroll(f, "402", "nurse");
  auto elsewhere = enroll(f, "401");
  const auto ship = first_shipment(f, site);
  const std::vector<std::string> kits = {ship.kits[0].kit_number, ship.kits[1].kit_number};
  receive(f, site, ship, {kits[0]});  // kits[1] is still shipped: not in the node's stock at the hub

  auto refused_with = [&](const std::string& to, const std::vector<std::string>& which) {
    const auto before = directives(f, to, shared::kShipmentDirective).size();
    std::vector<std::string> holders;
    for (const auto& k : which) holders.push_back(hub::find_kit(f.hub->db(), k)->custody_id);
    hand_over(f, site, to, which);
    auto a = last_answer(f, site);
    CHECK(a.outcome == "refused");
    CHECK(directives(f, to, shared::kShipmentDirective).size() == before);
    for (std::size_t i = 0; i < which.size(); ++i) CHECK(hub::find_kit(f.hub->db(), which[i])->custody_id == holders[i]);
    return a.reason;
  };
  CHECK(refused_with(elsewhere.id, {kits[0]}).find("belongs to site 401") != std::string::npos);
  CHECK(refused_with("402-N99", {kits[0]}).find("not enrolled") != std::string::npos);
  auto why = refused_with(tablet.id, {kits[0], kits[1]});
  CHECK(why.find("kit " + kits[1] + " is shipped at node " + site.id) != std::string::npos);
  CHECK(hub::find_kit(f.hub->db(), kits[0])->status == KitStatus::received);
  auto foreign = refused_with(tablet.id, {first_shipment(f, elsewhere).kits[0].kit_number});
  CHECK(foreign.find("not in the custody of node " + site.id) != std::string::npos);

  // A decision is kept: the same request read again sends nothing more.
  const auto sent = directives(f, site.id, shared::kKitsHandoverDirective).size();
  storage::Transaction tx(f.hub->db());
  auto again = hub::decide_handover(*f.hub, site.id, site.seq,
                                    shared::KitHandoverRequested{tablet.id, {kits[0]}, "", "coordinator"}, kHubNow);
  tx.commit();
  CHECK_FALSE(again.moved);
  CHECK(directives(f, site.id, shared::kKitsHandoverDirective).size() == sent);
  CHECK(hub::handovers(f.hub->db()).size() == 4);
}

TEST_CASE("a nurse's tablet gets no initial shipment of its own: only its site node's shipment exists") {
  HubFixture f("packaging/examples/study-minimization.json");
  auto site = enroll(f, "402");
  auto tablet = enroll(f, "402", "nurse");
  CHECK(directives(f, site.id, shared::kShipmentDirective).size() == 1);
  CHECK(directives(f, tablet.id, shared::kShipmentDirective).empty());
  std::vector<std::string> to_nodes;
  for (const auto& s : hub::list_shipments(f.hub->db())) to_nodes.push_back(s.node_id);
  CHECK(to_nodes == std::vector<std::string>{site.id});
  CHECK(hub::kits_held_by(f.hub->db(), "node", tablet.id).empty());
  // A tablet enrolled first waits for the site node: the site's stock arrives with the site node.
  HubFixture g("packaging/examples/study-minimization.json");
  auto tablet_first = enroll(g, "402", "nurse");
  CHECK(directives(g, tablet_first.id, shared::kShipmentDirective).empty());
  CHECK(hub::list_shipments(g.hub->db()).empty());
  auto site_later = enroll(g, "402");
  CHECK(directives(g, site_later.id, shared::kShipmentDirective).size() == 1);
}

TEST_CASE("a kit put on hold while its handover was on its way is held again at the giving node after the refusal") {
  HubFixture f("packaging/examples/study-minimization.json");
  auto site = enroll(f, "402");
  auto tablet = enroll(f, "402", "nurse");
  const auto ship = first_shipment(f, site);
  const std::vector<std::string> kits = {ship.kits[0].kit_number, ship.kits[1].kit_number};
  receive(f, site, ship, kits);
  f.add_user("supply.sam", "supply-manager");
  auto held = hub::hold_kits(*f.hub, {"", "", {kits[0]}}, "assay under investigation", {"supply.sam", kUserPassword},
                             kHubNow);
  REQUIRE(held.ok());
  // The node, before it pulls the hold, hands both kits to its nurse's tablet. The hub refuses the
  // handover (kits[0] is not in stock), which puts both back in the node's stock: the node applied the
  // hold to a kit then in transit, so the hold is sent again after the refusal, for kits[0] only.
  hand_over(f, site, tablet.id, kits);
  CHECK(last_answer(f, site).outcome == "refused");
  const auto refusal = f.hub->outbox().payloads_of(site.id, shared::kKitsHandoverDirective).back().first;
  auto holds = f.hub->outbox().payloads_of(site.id, shared::kKitsQuarantineDirective);
  REQUIRE(holds.size() == 2);
  CHECK(holds[0].first < refusal);
  CHECK(holds[1].first > refusal);
  auto again = shared::parse_kit_decision(holds[1].second);
  REQUIRE(again.ok());
  CHECK(again->decision_id == static_cast<std::uint64_t>(held->decision_id));
  CHECK(again->kits == std::vector<std::string>{kits[0]});
  CHECK(hub::find_kit(f.hub->db(), kits[0])->status == KitStatus::quarantined);
  CHECK(hub::find_kit(f.hub->db(), kits[1])->status == KitStatus::received);
}
