// Tests for hub/kit_decisions.h (quarantine reports from real node events,
// signed release and rejection travelling as directives, depot destruction
// with a witness) and hub/reconcile.h (drug accountability per site and depot).
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/deviations.h"
#include "hub/kit_decisions.h"
#include "hub/kit_history.h"
#include "hub/kit_inventory.h"
#include "hub/node_decisions.h"
#include "hub/reconcile.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"
#include "tests/support/export_blinding.h"

using namespace irt;
using nlohmann::json;
using shared::KitStatus;
using test::consume;
using test::directives;
using test::enroll;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;

namespace {

// A site node whose first shipment was received in good condition.
struct DecisionSite {
  HubFixture f;
  TestNode node;
  std::vector<hub::HubKit> kits;

  DecisionSite() : node(enroll(f, "101")) {
    kits = hub::kits_held_by(f.hub->db(), "node", node.id);
    REQUIRE(kits.size() >= 6);
    shared::ShipmentReceived r{kits[0].shipment_id, {}, {}, "FRIDGE-1"};
    for (const auto& k : kits) r.kits.push_back({k.number, KitStatus::received});
    node.push(f, shared::kShipmentReceivedEvent, r);
    consume(f, node.id);
    f.add_user("supply.sam", "supply-manager");
    f.add_user("supply.sue", "supply-manager");
    f.add_user("manager.ines", "study-manager");
  }
  KitStatus status(const std::string& kit) { return hub::find_kit(f.hub->db(), kit)->status; }
  hub::Signature sam(const std::string& password = test::kUserPassword) { return {"supply.sam", password}; }
  void excursion(std::vector<std::string> numbers) {
    node.push(f, shared::kTemperatureExcursionEvent,
              shared::TemperatureExcursion{std::move(numbers), "FRIDGE-1", 8.5, 27.25, 190, "power cut"});
    consume(f, node.id);
  }
  std::size_t audit_count() { return hub::audit_entries(f.hub->db()).size(); }
  // The node dispenses `kit` to 101-001 at V2.
  void dispense(const std::string& kit) {
    shared::Dispensed d;
    d.participant = "101-001";
    d.visit = "V2";
    d.kits = {kit};
    d.day = 28;
    d.window_from = 25;
    d.window_to = 31;
    d.sealed = test::seal(f, shared::KitTypesSealed{});
    node.push(f, shared::kDispensedEvent, d);
    consume(f, node.id);
  }
  // The node dispenses `kit` with its directive cursor at `directive_seq`
  // (before the decision's directive): the hub's kit_after_decision deviations.
  std::vector<hub::Deviation> dispense_before_applying(const std::string& kit, std::uint64_t directive_seq) {
    node.directive_seq = directive_seq;
    dispense(kit);
    CHECK(status(kit) == KitStatus::dispensed);
    std::vector<hub::Deviation> found;
    for (auto& x : hub::deviations(*f.hub, false, false))
      if (x.kind == hub::deviation_kind::kKitAfterDecision) found.push_back(x);
    return found;
  }
};

}  // namespace

TEST_CASE("an excursion a node reports quarantines its kits at the hub, listed with the readings, blinded by role") {
  DecisionSite s;
  s.excursion({s.kits[0].number, s.kits[1].number});
  CHECK(s.status(s.kits[0].number) == KitStatus::quarantined);
  CHECK(s.status(s.kits[2].number) == KitStatus::received);
  auto blinded = hub::quarantined_kits(*s.f.hub, false);
  REQUIRE(blinded.size() == 2);
  CHECK(blinded[0].custody_id == s.node.id);
  CHECK(blinded[0].site_id == "101");
  CHECK(blinded[0].report.location == "FRIDGE-1");
  CHECK(blinded[0].report.minimum_celsius == 8.5);
  CHECK(blinded[0].report.maximum_celsius == 27.25);
  CHECK(blinded[0].report.duration_minutes == 190);
  CHECK(blinded[0].report.reason == "power cut");
  CHECK(blinded[0].seq == 2);
  auto j = hub::to_json(blinded[0]);
  CHECK_FALSE(j.contains("kit_type"));
  CHECK(j.dump().find(s.kits[0].kit_type) == std::string::npos);
  CHECK(hub::quarantined_kits(*s.f.hub, true)[0].kit_type == s.kits[0].kit_type);
  // An older kit.quarantined event carries one temperature.
  s.node.push(s.f, shared::kKitQuarantinedEvent, shared::KitQuarantined{s.kits[2].number, "fridge alarm", 29.0});
  consume(s.f, s.node.id);
  auto all = hub::quarantined_kits(*s.f.hub, false);
  REQUIRE(all.size() == 3);
  for (const auto& k : all)
    if (k.kit == s.kits[2].number) {
      CHECK(k.report.maximum_celsius == 29.0);
      CHECK_FALSE(k.report.duration_minutes.has_value());
    }
  // Read again (a replayed cursor), nothing doubles.
  consume(s.f, s.node.id);
  CHECK(hub::quarantined_kits(*s.f.hub, false).size() == 3);
}

TEST_CASE("a release and a rejection are signed, audited with old and new status, and travel as directives") {
  DecisionSite s;
  const auto a = s.kits[0].number, b = s.kits[1].number;
  s.excursion({a, b});
  const auto audited = s.audit_count();
  CHECK(hub::decide_kits(*s.f.hub, true, {a}, "within stability", s.sam("wrong-password-here"), kHubNow).error().code ==
        shared::Errc::unauthenticated);
  CHECK(hub::decide_kits(*s.f.hub, true, {a}, "within stability", {"manager.ines", test::kUserPassword}, kHubNow).error().code ==
        shared::Errc::forbidden);
  CHECK(hub::decide_kits(*s.f.hub, true, {a}, "", s.sam(), kHubNow).error().code == shared::Errc::invalid_input);
  CHECK(hub::decide_kits(*s.f.hub, true, {a, a}, "x", s.sam(), kHubNow).error().code == shared::Errc::invalid_input);
  CHECK(s.audit_count() == audited);
  CHECK(s.status(a) == KitStatus::quarantined);

  auto released = hub::decide_kits(*s.f.hub, true, {a}, "within stability data", s.sam(), kHubNow);
  REQUIRE_MESSAGE(released.ok(), released.error().message);
  CHECK(s.status(a) == KitStatus::received);
  REQUIRE(released->directives.size() == 1);
  CHECK(released->directives[0].first == s.node.id);
  auto rel = directives(s.f, s.node.id, shared::kKitsReleaseDirective);
  REQUIRE(rel.size() == 1);
  auto decision = shared::parse_kit_decision(rel[0].dump());
  REQUIRE(decision.ok());
  CHECK(decision->kits == std::vector<std::string>{a});
  CHECK(decision->reason == "within stability data");
  CHECK(decision->decision_id == static_cast<std::uint64_t>(released->decision_id));

  auto rejected = hub::decide_kits(*s.f.hub, false, {b}, "out of stability", s.sam(), kHubNow);
  REQUIRE(rejected.ok());
  CHECK(s.status(b) == KitStatus::rejected);
  CHECK(directives(s.f, s.node.id, shared::kKitsRejectDirective).size() == 1);

  bool seen_release = false, seen_reject = false;
  for (const auto& e : hub::audit_entries(s.f.hub->db())) {
    if (e.action == "kit.released" && e.subject == a) {
      seen_release = true;
      CHECK(e.actor == "supply.sam");
      CHECK(e.old_value == "quarantined");
      CHECK(e.new_value == "received");
      CHECK(e.signature == "approved");
    }
    if (e.action == "kit.rejected" && e.subject == b) {
      seen_reject = true;
      CHECK(e.old_value == "quarantined");
      CHECK(e.new_value == "rejected");
    }
  }
  CHECK(seen_release);
  CHECK(seen_reject);
}

TEST_CASE("releasing a kit that is not quarantined, or rejecting one twice, is refused with nothing changed") {
  DecisionSite s;
  const auto a = s.kits[0].number, b = s.kits[1].number, c = s.kits[2].number;
  s.excursion({a});
  s.excursion({c});
  REQUIRE(hub::decide_kits(*s.f.hub, false, {a}, "out of stability", s.sam(), kHubNow).ok());
  const auto audited = s.audit_count();
  const auto issued = s.f.hub->outbox().last_seq(s.node.id);
  auto twice = hub::decide_kits(*s.f.hub, false, {a}, "again", s.sam(), kHubNow);
  CHECK(twice.error().code == shared::Errc::conflict);
  CHECK(twice.error().message.find("already rejected") != std::string::npos);
  auto not_quarantined = hub::decide_kits(*s.f.hub, true, {b}, "fine", s.sam(), kHubNow);
  CHECK(not_quarantined.error().code == shared::Errc::conflict);
  CHECK(not_quarantined.error().message.find("not quarantined") != std::string::npos);
  CHECK(hub::decide_kits(*s.f.hub, true, {a}, "changed my mind", s.sam(), kHubNow).error().code ==
        shared::Errc::conflict);
  // One kit that cannot take the decision refuses the whole list.
  CHECK(hub::decide_kits(*s.f.hub, true, {c, b}, "fine", s.sam(), kHubNow).error().code == shared::Errc::conflict);
  CHECK(s.status(c) == KitStatus::quarantined);
  CHECK(hub::decide_kits(*s.f.hub, true, {"4242424242"}, "fine", s.sam(), kHubNow).error().code ==
        shared::Errc::not_found);
  CHECK(s.audit_count() == audited);
  CHECK(s.f.hub->outbox().last_seq(s.node.id) == issued);
  CHECK(s.status(a) == KitStatus::rejected);
  CHECK(s.status(b) == KitStatus::received);
}

TEST_CASE("a kit rejected at the hub and dispensed by its node before it pulled the decision is kept and a deviation") {
  DecisionSite s;
  const auto a = s.kits[0].number;
  auto rejected = hub::decide_kits(*s.f.hub, false, {a}, "lot recalled by the manufacturer", s.sam(), kHubNow);
  REQUIRE(rejected.ok());
  // A quarantine the node reports before it applied the rejection leaves the kit rejected.
  s.node.push(s.f, shared::kKitQuarantinedEvent, shared::KitQuarantined{a, "fridge alarm", 28.0});
  consume(s.f, s.node.id);
  CHECK(s.status(a) == KitStatus::rejected);
  auto found = s.dispense_before_applying(a, rejected->directives[0].second - 1);
  REQUIRE(found.size() == 1);
  CHECK(found[0].summary.find("had not yet received") != std::string::npos);
}

TEST_CASE("kits are destroyed at a depot by one supply user and witnessed by another, audited") {
  DecisionSite s;
  auto depot = hub::kits_held_by(s.f.hub->db(), "depot", "EU-01");
  REQUIRE(depot.size() >= 2);
  const auto a = depot[0].number, b = depot[1].number;
  REQUIRE(hub::decide_kits(*s.f.hub, false, {a}, "damaged crate", s.sam(), kHubNow).ok());
  CHECK(s.status(a) == KitStatus::rejected);
  const hub::Signature sue{"supply.sue", test::kUserPassword};
  const auto audited = s.audit_count();
  auto self = hub::destroy_depot_kits(*s.f.hub, "EU-01", {a}, "rejected", s.sam(), s.sam(), kHubNow);
  CHECK(self.error().message.find("another person") != std::string::npos);
  auto bad_witness = hub::destroy_depot_kits(*s.f.hub, "EU-01", {a}, "rejected", s.sam(), {"supply.sue", "nope-nope-no"},
                                             kHubNow);
  CHECK(bad_witness.error().code == shared::Errc::unauthenticated);
  CHECK(bad_witness.error().message.find("witness") != std::string::npos);
  CHECK(hub::destroy_depot_kits(*s.f.hub, "EU-01", {a}, "rejected", s.sam(), {"manager.ines", test::kUserPassword}, kHubNow)
            .error()
            .code == shared::Errc::forbidden);
  CHECK(hub::destroy_depot_kits(*s.f.hub, "EU-01", {s.kits[0].number}, "x", s.sam(), sue, kHubNow).error().code ==
        shared::Errc::not_found);  // at a node: destroyed there
  CHECK(hub::destroy_depot_kits(*s.f.hub, "EU-99", {a}, "x", s.sam(), sue, kHubNow).error().code ==
        shared::Errc::not_found);
  CHECK(s.audit_count() == audited);
  auto done = hub::destroy_depot_kits(*s.f.hub, "EU-01", {a, b}, "rejected and expired stock", s.sam(), sue, kHubNow);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(s.status(a) == KitStatus::destroyed);
  CHECK(s.status(b) == KitStatus::destroyed);
  int performed = 0, witnessed = 0;
  for (const auto& e : hub::audit_entries(s.f.hub->db())) {
    if (e.action == "kit.destroyed" && e.actor == "supply.sam" && e.signature == "performed") ++performed;
    if (e.action == "kit.destruction_witnessed" && e.actor == "supply.sue" && e.signature == "witnessed") ++witnessed;
  }
  CHECK(performed == 2);
  CHECK(witnessed == 2);
  CHECK(hub::destroy_depot_kits(*s.f.hub, "EU-01", {a}, "again", s.sam(), sue, kHubNow).error().code ==
        shared::Errc::conflict);
}

TEST_CASE("the reconciliation balances every kit shipped to a site and placed at a depot, by status only") {
  DecisionSite s;
  const auto& k = s.kits;
  // dispensed, returned with units, destroyed, quarantined, rejected, the rest on hand
  shared::Dispensed d;
  d.participant = "101-001";
  d.visit = "V1";
  d.kits = {k[0].number, k[1].number};
  d.sealed = test::seal(s.f, shared::KitTypesSealed{});
  s.node.push(s.f, shared::kDispensedEvent, d);
  s.node.push(s.f, shared::kKitReturnedEvent, shared::KitReturned{k[1].number, "101-001", 7, "V2"});
  s.excursion({k[2].number, k[3].number});
  REQUIRE(hub::decide_kits(*s.f.hub, false, {k[3].number}, "out of range", s.sam(), kHubNow).ok());
  s.node.push(s.f, shared::kKitDestroyedEvent,
              shared::KitDestroyed{k[3].number, "rejected", {"paul", "pharmacist", kHubNow, "destroyed"},
                                   shared::ESignature{"carla", "coordinator", kHubNow, "witnessed"}});
  consume(s.f, s.node.id);

  auto all = hub::reconcile(*s.f.hub, "", "", false);
  REQUIRE(all.ok());
  const hub::Reconciliation* site = nullptr;
  const hub::Reconciliation* depot = nullptr;
  for (const auto& r : *all) {
    if (r.kind == "site" && r.id == "101") site = &r;
    if (r.kind == "depot" && r.id == "EU-01") depot = &r;
  }
  REQUIRE(site);
  REQUIRE(depot);
  CHECK(site->balanced());
  CHECK(site->received == k.size());
  CHECK(site->accounted.at("dispensed") == 1);
  CHECK(site->accounted.at("returned") == 1);
  CHECK(site->accounted.at("destroyed") == 1);
  CHECK(site->accounted.at("quarantined") == 1);
  CHECK(site->accounted.at("on_hand") == k.size() - 4);
  for (const auto& line : site->kits)
    if (line.kit == k[1].number) CHECK(line.units_returned == 7);
  auto j = hub::to_json(*site);
  CHECK(j["shipped"] == k.size());
  CHECK(j["unaccounted"] == 0);
  CHECK(j.dump().find(k[0].kit_type) == std::string::npos);
  CHECK(depot->balanced());
  CHECK(depot->accounted.at("shipped") == k.size());
  CHECK(depot->received == depot->accounted.at("shipped") + depot->accounted.at("on_hand"));
  // Sites without nodes are there, with nothing to reconcile.
  auto other = hub::reconcile(*s.f.hub, "102", "", false);
  REQUIRE(other.ok());
  REQUIRE(other->size() == 1);
  CHECK(other->at(0).received == 0);
  CHECK(other->at(0).balanced());
  CHECK(hub::reconcile(*s.f.hub, "999", "", false).error().code == shared::Errc::not_found);
  // The unblinded reader sees each kit's type.
  auto unblinded = hub::reconcile(*s.f.hub, "101", "", true);
  REQUIRE(unblinded.ok());
  CHECK(unblinded->at(0).kits[0].kit_type == k[0].kit_type);
}

TEST_CASE("a kit lost with a revoked node, or reported by a node that does not hold it, unbalances its site") {
  DecisionSite s;
  // Node B of the same site reports a kit it never held.
  auto b = enroll(s.f, "101");
  b.push(s.f, shared::kKitReturnedEvent, shared::KitReturned{s.kits[0].number, "", 0});
  consume(s.f, b.id);
  auto r = hub::reconcile(*s.f.hub, "101", "", false);
  REQUIRE(r.ok());
  CHECK_FALSE(r->at(0).balanced());
  REQUIRE(r->at(0).differences.size() == 1);
  CHECK(r->at(0).differences[0].find(s.kits[0].number) != std::string::npos);

  auto revoked = hub::revoke_node(*s.f.hub, s.node.id, "tablet stolen", {"manager.ines", test::kUserPassword}, kHubNow);
  REQUIRE_MESSAGE(revoked.ok(), revoked.error().message);
  r = hub::reconcile(*s.f.hub, "101", "", false);
  REQUIRE(r.ok());
  CHECK(r->at(0).differences.size() > 1);
  bool named = false;
  for (const auto& d : r->at(0).differences) named = named || d.find("revoked") != std::string::npos;
  CHECK(named);
}

TEST_CASE("a dispensed, returned and destroyed kit's history reads whole to a blinded reader, without its kit type") {
  DecisionSite s;
  const auto& k = s.kits;
  shared::Dispensed d;
  d.participant = "101-001";
  d.visit = "V1";
  d.kits = {k[0].number};
  d.sealed = test::seal(s.f, shared::KitTypesSealed{});
  s.node.push(s.f, shared::kDispensedEvent, d);
  s.node.push(s.f, shared::kKitReturnedEvent, shared::KitReturned{k[0].number, "101-001", 7, "V2"});
  s.node.push(s.f, shared::kKitDestroyedEvent,
              shared::KitDestroyed{k[0].number, "returned", {"paul", "pharmacist", kHubNow, "destroyed"},
                                   shared::ESignature{"carla", "coordinator", kHubNow, "witnessed"}});
  consume(s.f, s.node.id);

  for (bool blinded : {true, false}) {
    auto h = hub::kit_history(*s.f.hub, k[0].number, blinded);
    REQUIRE(h.ok());
    std::vector<std::string> actions;
    for (const auto& e : h->entries) actions.push_back(e.action);
    auto has = [&](const std::string& a) { return std::find(actions.begin(), actions.end(), a) != actions.end(); };
    INFO("blinded: " << blinded);
    CHECK(has("shipment.received"));
    CHECK(has("kit.dispensed"));
    CHECK(has("kit.returned"));
    CHECK(has("kit.destroyed"));
    // Its list and its shipment, though their text names kit types a blinded reader may not read.
    CHECK(actions.size() >= 6);
    if (blinded) {
      const auto text = hub::to_json(*h, true).dump();
      CHECK(test::revealing(s.f.hub->study(), text) == "");
      CHECK_FALSE(test::word_in(text, k[0].lot));
    }
  }
}

namespace {

// The kits of `lot` by custodian and status, read from the hub's kit list.
std::map<std::string, std::vector<std::string>> lot_kits(hub::HubState& hub, const std::string& lot, KitStatus status) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& k : hub::all_kits(hub.db()))
    if (k.lot == lot && k.status == status) out[k.custody_kind + " " + k.custody_id].push_back(k.number);
  return out;
}

}  // namespace

TEST_CASE("a lot put on hold quarantines its kits in stock at two nodes and a depot, one directive per node, audited") {
  DecisionSite s;
  auto other = enroll(s.f, "102");
  const auto lot = s.kits[0].lot;
  // One kit of the lot dispensed at site 101 and the rest of 102's not yet received: both left alone.
  s.dispense(s.kits[0].number);
  auto received_102 = hub::kits_held_by(s.f.hub->db(), "node", other.id);
  REQUIRE(received_102.size() >= 2);
  shared::ShipmentReceived r{received_102[0].shipment_id, {}, {}, "FRIDGE-2"};
  for (const auto& k : received_102) r.kits.push_back({k.number, KitStatus::received});
  other.push(s.f, shared::kShipmentReceivedEvent, r);
  consume(s.f, other.id);

  auto in_stock = lot_kits(*s.f.hub, lot, KitStatus::received);
  auto at_depot = lot_kits(*s.f.hub, lot, KitStatus::available);
  REQUIRE(in_stock.count("node " + s.node.id));
  REQUIRE(in_stock.count("node " + other.id));
  REQUIRE(at_depot.count("depot EU-01"));
  std::size_t expected = at_depot["depot EU-01"].size();
  for (const auto& [where, kits] : in_stock) expected += kits.size();
  const auto audited = s.audit_count();

  auto done = hub::hold_kits(*s.f.hub, {lot, "", {}}, "out-of-specification assay under investigation", s.sam(), kHubNow);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->kits.size() == expected);
  CHECK(done->left_alone.at("dispensed") == 1);
  CHECK(lot_kits(*s.f.hub, lot, KitStatus::received).empty());
  CHECK(lot_kits(*s.f.hub, lot, KitStatus::available).empty());
  CHECK(s.status(s.kits[0].number) == KitStatus::dispensed);
  // One kits.quarantine directive per node, naming that node's kits of the lot, never the lot.
  REQUIRE(done->directives.size() == 2);
  for (const auto& node : {s.node.id, other.id}) {
    auto sent = directives(s.f, node, shared::kKitsQuarantineDirective);
    REQUIRE(sent.size() == 1);
    auto decision = shared::parse_kit_decision(sent[0].dump());
    REQUIRE(decision.ok());
    CHECK(decision->kits == in_stock["node " + node]);
    CHECK(decision->decision_id == static_cast<std::uint64_t>(done->decision_id));
    CHECK(sent[0].dump().find(lot) == std::string::npos);
  }
  // Listed as quarantined with the hold's reason; one audit entry per kit with old and new status.
  auto listed = hub::quarantined_kits(*s.f.hub, false);
  CHECK(listed.size() == expected);
  for (const auto& k : listed) {
    CHECK(k.hold == done->decision_id);
    CHECK(k.seq == 0);
    CHECK(k.report.reason == "out-of-specification assay under investigation");
    CHECK(hub::to_json(k)["hold_decision"] == done->decision_id);
  }
  std::size_t held = 0, lot_entries = 0;
  for (const auto& e : hub::audit_entries(s.f.hub->db())) {
    if (e.action == "kit.held") {
      ++held;
      CHECK(e.actor == "supply.sam");
      CHECK(e.signature == "approved");
      CHECK(e.new_value == "quarantined");
      CHECK((e.old_value == "received" || e.old_value == "available"));
      CHECK(e.reason.find(lot) == std::string::npos);
    }
    if (e.action == "lot.held" && e.subject == lot) ++lot_entries;
  }
  CHECK(held == expected);
  CHECK(lot_entries == 1);
  // Per kit its kit.held and its kit.state; the lot's entry; a directive to each of the two nodes.
  CHECK(s.audit_count() == audited + 2 * expected + 1 + 2);

  // The held kits then take a release or a rejection like any quarantined kit.
  const auto a = in_stock["node " + s.node.id].front(), b = at_depot["depot EU-01"].front();
  REQUIRE(hub::decide_kits(*s.f.hub, true, {a}, "assay repeated within specification", s.sam(), kHubNow).ok());
  CHECK(s.status(a) == KitStatus::received);
  REQUIRE(hub::decide_kits(*s.f.hub, false, {b}, "confirmed out of specification", s.sam(), kHubNow).ok());
  CHECK(s.status(b) == KitStatus::rejected);
  // Nothing of the lot left in stock: a second hold is refused.
  auto again = hub::hold_kits(*s.f.hub, {lot, "102", {}}, "again", s.sam(), kHubNow);
  CHECK(again.error().code == shared::Errc::conflict);
  CHECK(again.error().message.find("in stock") != std::string::npos);
}

TEST_CASE("a hold is refused for an unknown lot or site, no stock, a bad signature or a role without the permission") {
  DecisionSite s;
  s.f.add_user("coord.cleo", "coordinator", {"101"});  // a roster directive to the node
  const auto lot = s.kits[0].lot;
  const auto audited = s.audit_count();
  const auto issued = s.f.hub->outbox().last_seq(s.node.id);
  auto unknown = hub::hold_kits(*s.f.hub, {"LOT-NOPE", "", {}}, "investigation", s.sam(), kHubNow);
  CHECK(unknown.error().code == shared::Errc::not_found);
  CHECK(unknown.error().message.find("LOT-NOPE") != std::string::npos);
  CHECK(hub::hold_kits(*s.f.hub, {lot, "999", {}}, "investigation", s.sam(), kHubNow).error().code ==
        shared::Errc::not_found);
  CHECK(hub::hold_kits(*s.f.hub, {lot, "", {s.kits[1].number}}, "x", s.sam(), kHubNow).error().code ==
        shared::Errc::invalid_input);
  CHECK(hub::hold_kits(*s.f.hub, {"", "", {}}, "x", s.sam(), kHubNow).error().code == shared::Errc::invalid_input);
  CHECK(hub::hold_kits(*s.f.hub, {lot, "", {}}, "", s.sam(), kHubNow).error().code == shared::Errc::invalid_input);
  CHECK(hub::hold_kits(*s.f.hub, {lot, "", {}}, "investigation", s.sam("wrong-password-here"), kHubNow).error().code ==
        shared::Errc::unauthenticated);
  CHECK(hub::hold_kits(*s.f.hub, {lot, "", {}}, "investigation", {"manager.ines", test::kUserPassword}, kHubNow)
            .error()
            .code == shared::Errc::forbidden);
  CHECK(hub::hold_kits(*s.f.hub, {lot, "", {}}, "investigation", {"coord.cleo", test::kUserPassword}, kHubNow)
            .error()
            .code == shared::Errc::forbidden);
  // Site 201 has no node: nothing of the lot is there.
  auto none = hub::hold_kits(*s.f.hub, {lot, "201", {}}, "investigation", s.sam(), kHubNow);
  CHECK(none.error().code == shared::Errc::not_found);
  // Kits named, none in stock (quarantined already): nothing to hold.
  s.excursion({s.kits[1].number});
  const auto after_excursion = s.audit_count();
  auto quarantined = hub::hold_kits(*s.f.hub, {"", "", {s.kits[1].number}}, "investigation", s.sam(), kHubNow);
  CHECK(quarantined.error().code == shared::Errc::conflict);
  CHECK(after_excursion >= audited);
  CHECK(s.audit_count() == after_excursion);
  CHECK(s.f.hub->outbox().last_seq(s.node.id) == issued);
  CHECK(s.status(s.kits[2].number) == KitStatus::received);
  // Kits named one by one: only those are held.
  auto named = hub::hold_kits(*s.f.hub, {"", "", {s.kits[2].number}}, "damaged secondary packaging", s.sam(), kHubNow);
  REQUIRE_MESSAGE(named.ok(), named.error().message);
  CHECK(s.status(s.kits[2].number) == KitStatus::quarantined);
  CHECK(s.status(s.kits[3].number) == KitStatus::received);
}

TEST_CASE("a kit held at the hub and dispensed by its node before it pulled the hold is kept and a deviation") {
  DecisionSite s;
  const auto a = s.kits[0].number;
  auto held = hub::hold_kits(*s.f.hub, {s.kits[0].lot, "101", {}}, "assay under investigation", s.sam(), kHubNow);
  REQUIRE(held.ok());
  REQUIRE(held->directives.size() == 1);
  auto found = s.dispense_before_applying(a, held->directives[0].second - 1);
  REQUIRE(found.size() == 1);
  CHECK(found[0].summary.find("put on hold") != std::string::npos);
  CHECK(found[0].summary.find("had not yet received") != std::string::npos);
  CHECK(found[0].summary.find(s.kits[0].lot) == std::string::npos);
  CHECK(found[0].summary.find(s.kits[0].kit_type) == std::string::npos);
}
