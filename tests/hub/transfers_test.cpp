// Participant transfers (hub/transfers.h): a request a node records is kept at
// ingest; a signed approval moves the participant's record, visits and
// dispensed kits by directives to the target site's node, a rejection tells
// the node that asked; each request is decided once.
#include "hub/transfers.h"

#include <doctest/doctest.h>

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/audit_trail.h"
#include "hub/kit_inventory.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "tests/hub/test_node.h"

using namespace irt;
using namespace irt::test;
using shared::KitStatus;

namespace {

struct Sites {
  HubFixture f;
  TestNode a = enroll(f, "101");
  TestNode b = enroll(f, "102");
  std::vector<hub::HubKit> kits_a = hub::kits_held_by(f.hub->db(), "node", a.id);
  std::vector<hub::HubKit> kits_b = hub::kits_held_by(f.hub->db(), "node", b.id);
  std::string arm;
  std::string randomization_number;

  Sites() {
    for (auto* n : {&a, &b}) {
      const auto& kits = n == &a ? kits_a : kits_b;
      shared::ShipmentReceived r{kits.at(0).shipment_id, {}, {}, ""};
      for (const auto& k : kits) r.kits.push_back({k.number, KitStatus::received});
      n->push(f, shared::kShipmentReceivedEvent, r);
      consume(f, n->id);
    }
    const std::vector<std::pair<std::string, std::string>> users = {{"manager.ines", "study-manager"},
                                                                     {"supply.sam", "supply-manager"}};
    for (const auto& [name, role] : users) {
      auto r = hub::add_user(*f.hub, {name, role, {}, test::kUserPassword}, crypto::kTest, "tester", kHubNow);
      REQUIRE_MESSAGE(r.ok(), r.error().message);
    }
  }

  // Participant 101-001 screened, randomized (kit 0 at V1) and dispensed V2 (kit 1) at node a.
  void randomize_at_a() {
    auto g = shared::parse_grant_slots(directives(f, a.id, shared::kGrantSlotsDirective).at(0).dump());
    REQUIRE(g.ok());
    arm = g->grants[0].slots[0].arm;
    randomization_number = shared::list_randomization_number(g->grants[0].stratum, g->grants[0].slots[0].slot);
    a.push(f, shared::kScreenedEvent, screened("101-001", {{"site", "101"}, {"diabetes", "yes"}}));
    a.push(f, shared::kRandomizedEvent,
           from_slot("101-001", g->grants[0], 0, {kits_a[0].number}, seal(f, shared::RandomizedSealed{arm, {}, {}})));
    a.push(f, shared::kDispensedEvent,
           shared::Dispensed{"101-001", "V2", {kits_a[1].number}, 28, 25, 31, "", std::nullopt,
                             seal(f, shared::KitTypesSealed{{{kits_a[1].number, kits_a[1].kit_type}}})});
    consume(f, a.id);
  }

  void request(TestNode& n, const std::string& to_site) {
    n.push(f, shared::kTransferRequestedEvent, shared::TransferRequested{"101-001", to_site, "moved house", "coordinator"});
    consume(f, n.id);
  }

  shared::Result<hub::TransferDone> decide(bool approve, const std::string& user = "manager.ines",
                                           const std::string& password = test::kUserPassword) {
    return hub::decide_transfer(*f.hub, "101-001", approve, "agreed with both investigators", {user, password},
                                kHubNow);
  }
};

template <class T>
T last(HubFixture& f, const std::string& node, std::string_view type,
       shared::Result<T> (*parse)(std::string_view)) {
  auto all = directives(f, node, type);
  REQUIRE_FALSE(all.empty());
  auto t = parse(all.back().dump());
  REQUIRE_MESSAGE(t.ok(), t.error().message);
  return *t;
}

}  // namespace

TEST_CASE("an approved transfer moves the participant's record, visits and dispensed kits to the target site's node") {
  Sites s;
  s.randomize_at_a();
  s.request(s.a, "102");
  auto pending = hub::transfers(s.f.hub->db(), "requested");
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].participant == "101-001");
  CHECK(pending[0].from_node == s.a.id);
  CHECK(pending[0].from_site == "101");
  CHECK(pending[0].to_site == "102");
  CHECK(pending[0].requested_by == "coordinator.ana");

  // Signed by a user holding manage_study, and by no one else.
  CHECK(s.decide(true, "manager.ines", "wrong password").error().code == shared::Errc::unauthenticated);
  CHECK(s.decide(true, "supply.sam").error().code == shared::Errc::forbidden);
  CHECK(hub::transfers(s.f.hub->db(), "requested").size() == 1);
  CHECK(directives(s.f, s.b.id, shared::kParticipantTransferInDirective).empty());

  auto done = s.decide(true);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->transfer.status == "approved");
  CHECK(done->transfer.to_node == s.b.id);
  CHECK(done->transfer.kits == 2);
  REQUIRE(done->directives.size() == 2);

  // The node that asked: the participant left it, with its two kits.
  auto answer = last(s.f, s.a.id, shared::kParticipantTransferDirective, shared::parse_participant_transfer);
  CHECK(answer.outcome == "approved");
  CHECK(answer.to_node == s.b.id);
  CHECK(answer.decided_by == "manager.ines");
  CHECK(answer.kits == std::vector<std::string>{s.kits_a[0].number, s.kits_a[1].number});
  // The target node: the record, with its arm, its visits done and its kits' types.
  auto in = last(s.f, s.b.id, shared::kParticipantTransferInDirective, shared::parse_participant_transfer_in);
  CHECK(in.participant == "101-001");
  CHECK(in.status == shared::ParticipantStatus::randomized);
  CHECK(in.arm == s.arm);
  CHECK(in.from_site == "101");
  CHECK(in.randomization_number == s.randomization_number);
  CHECK(in.factors.at("diabetes") == "yes");
  CHECK(in.screened_by == "coordinator.ana");
  REQUIRE(in.visits.size() == 2);
  CHECK(in.visits[0].visit == "V1");
  CHECK(in.visits[0].kits == std::vector<std::string>{s.kits_a[0].number});
  CHECK(in.visits[1].visit == "V2");
  CHECK(in.visits[1].date == "2026-01-01");
  REQUIRE(in.kits.size() == 2);
  CHECK(in.kits[1].kit_number == s.kits_a[1].number);
  CHECK(in.kits[1].kit_type == s.kits_a[1].kit_type);
  CHECK(in.kits[1].visit == "V2");

  // Custody and the participant's home follow, at the hub.
  for (std::size_t i : {0u, 1u}) {
    auto k = hub::find_kit(s.f.hub->db(), s.kits_a[i].number);
    CHECK(k->custody_id == s.b.id);
    CHECK(k->status == KitStatus::dispensed);
  }
  CHECK(hub::find_kit(s.f.hub->db(), s.kits_a[2].number)->custody_id == s.a.id);
  CHECK(hub::participant_home(s.f.hub->db(), "101-001")->second == "102");

  // Audited, signed, and with no kit type in the trail.
  bool approved = false;
  int hops = 0;
  for (const auto& e : hub::audit_entries(s.f.hub->db())) {
    if (e.action == "participant.transfer_approved") {
      approved = true;
      CHECK(e.actor == "manager.ines");
      CHECK(e.signature == "approved");
      CHECK(e.new_value.find("site 102") != std::string::npos);
    }
    hops += e.action == "kit.custody_moved";
    const auto text = e.reason + " " + e.old_value + " " + e.new_value;
    for (const auto& kt : s.f.hub->study().kit_types) CHECK_MESSAGE(text.find(kt.id) == std::string::npos, text);
  }
  CHECK(approved);
  CHECK(hops == 2);

  // Decided once.
  auto again = s.decide(true);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == shared::Errc::conflict);
  CHECK(again.error().message.find("already approved") != std::string::npos);

  // It moves on from its new site: the record it came with, and what node b recorded since.
  auto c = enroll(s.f, "201");
  s.b.push(s.f, shared::kDispensedEvent,
           shared::Dispensed{"101-001", "V3", {s.kits_b[0].number}, 56, 53, 59, "", std::nullopt,
                             seal(s.f, shared::KitTypesSealed{{{s.kits_b[0].number, s.kits_b[0].kit_type}}}),
                             "V2 postponed"});
  s.request(s.b, "201");
  REQUIRE(s.decide(true).ok());
  auto onward = last(s.f, c.id, shared::kParticipantTransferInDirective, shared::parse_participant_transfer_in);
  CHECK(onward.from_site == "102");
  CHECK(onward.arm == s.arm);
  REQUIRE(onward.visits.size() == 3);
  CHECK(onward.visits[2].visit == "V3");
  CHECK(onward.visits[2].order_reason == "V2 postponed");
  // The audit trail gives the reason of a visit dispensed out of order.
  auto trail = hub::audit_trail(*s.f.hub, {}, true);
  auto v3 = std::find_if(trail.rbegin(), trail.rend(), [](const auto& e) { return e.action == shared::kDispensedEvent; });
  REQUIRE(v3 != trail.rend());
  CHECK(v3->reason == "out of order: V2 postponed");
  CHECK(onward.kits.size() == 3);
  CHECK(hub::find_kit(s.f.hub->db(), s.kits_a[0].number)->custody_id == c.id);
}

TEST_CASE("a transfer to a site without a site node is refused, a rejection tells the node, and a left participant "
          "cannot move") {
  Sites s;
  s.randomize_at_a();
  CHECK(s.decide(true).error().code == shared::Errc::not_found);

  s.request(s.a, "201");
  auto refused = s.decide(true);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::conflict);
  CHECK(refused.error().message.find("site 201 has no active site node") != std::string::npos);
  CHECK(directives(s.f, s.a.id, shared::kParticipantTransferDirective).empty());
  CHECK(hub::find_kit(s.f.hub->db(), s.kits_a[0].number)->custody_id == s.a.id);

  auto rejected = s.decide(false);
  REQUIRE_MESSAGE(rejected.ok(), rejected.error().message);
  CHECK(rejected->directives.size() == 1);
  auto answer = last(s.f, s.a.id, shared::kParticipantTransferDirective, shared::parse_participant_transfer);
  CHECK(answer.outcome == "rejected");
  CHECK(answer.reason == "agreed with both investigators");
  CHECK(answer.kits.empty());
  CHECK(hub::transfers(s.f.hub->db(), "rejected").size() == 1);
  CHECK(hub::participant_home(s.f.hub->db(), "101-001")->second == "101");

  // Asked again, then withdrawn before the decision: only a rejection is left.
  s.request(s.a, "102");
  s.a.push(s.f, shared::kWithdrawnEvent, shared::Withdrawn{"101-001", "consent withdrawn", "investigator"});
  consume(s.f, s.a.id);
  auto left = s.decide(true);
  REQUIRE_FALSE(left.ok());
  CHECK(left.error().message.find("is withdrawn") != std::string::npos);
  CHECK(directives(s.f, s.b.id, shared::kParticipantTransferInDirective).empty());
  CHECK(s.decide(false).ok());
}
