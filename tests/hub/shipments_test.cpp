// Tests for hub/shipments.h: the lifecycle of a shipment from a depot to a
// site's node (requested, approved, shipped, delivered, receiving, closed,
// lost, cancelled), each step signed and audited, each refused step naming the
// shipment, its state and the steps allowed, with nothing changed; the
// node's receipt closing it; resupply counting reserved kits as on their way.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "hub/audit.h"
#include "hub/kit_inventory.h"
#include "hub/reconcile.h"
#include "hub/resupply_runner.h"
#include "hub/shipments.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"
#include "tests/support/hub_api.h"

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

// The example study, with shipments needing approval when `approval`.
HubFixture::StudyText study(bool approval) {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  if (approval) doc["supply"]["shipment_approval"] = true;
  return {doc.dump()};
}

struct ShipmentSite {
  HubFixture f;
  TestNode node;
  std::string shipment;

  explicit ShipmentSite(bool approval) : f(study(approval)), node(enroll(f, "101")) {
    auto all = hub::list_shipments(db());
    REQUIRE(all.size() == 1);
    shipment = all[0].shipment_id;
    auto r = hub::add_user(*f.hub, {"supply.sam", "supply-manager", {}, test::kUserPassword}, crypto::kTest, "tester", kHubNow);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    auto m = hub::add_user(*f.hub, {"monitor.mo", "monitor", {}, test::kUserPassword}, crypto::kTest, "tester", kHubNow);
    REQUIRE_MESSAGE(m.ok(), m.error().message);
  }
  storage::Database& db() { return f.hub->db(); }
  std::string status() { return hub::find_shipment(db(), shipment)->status; }
  std::vector<hub::HubKit> kits() { return hub::kits_of_shipment(db(), shipment); }
  shared::Result<hub::ShipmentStepDone> step(hub::ShipmentStep s, std::string reason = "", std::string courier = "",
                                             std::string tracking = "", std::string user = "supply.sam",
                                             std::string password = test::kUserPassword) {
    return hub::step_shipment(*f.hub, shipment, {s, reason, courier, tracking}, {user, password}, kHubNow);
  }
  // The node reports these kits of the shipment in this condition.
  void receive(const std::vector<std::pair<std::string, KitStatus>>& kits) {
    shared::ShipmentReceived r{shipment, {}, std::nullopt, "FRIDGE-1"};
    bool damaged = false;
    for (const auto& [k, c] : kits) {
      r.kits.push_back({k, c});
      damaged = damaged || c == KitStatus::damaged;
    }
    if (damaged) r.esignature = shared::ESignature{"coordinator.ana", "coordinator", kHubNow, "damaged at receipt"};
    node.push(f, shared::kShipmentReceivedEvent, r);
    consume(f, node.id);
  }
  std::size_t audit_count() { return hub::audit_entries(db()).size(); }
};

// A refused step: the error names the shipment and its state, and nothing changed.
void check_refused(ShipmentSite& s, const shared::Result<hub::ShipmentStepDone>& r, shared::Errc code,
                   const std::string& says, std::size_t audit_before, const std::string& status_before) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == code);
  CHECK_MESSAGE(r.error().message.find(says) != std::string::npos, r.error().message);
  CHECK(s.audit_count() == audit_before);
  CHECK(s.status() == status_before);
}

}  // namespace

TEST_CASE("with approval, the initial shipment waits requested at the depot until approved and shipped") {
  ShipmentSite s(true);
  CHECK(s.status() == "requested");
  auto kits = s.kits();
  REQUIRE(kits.size() >= 6);
  for (const auto& k : kits) {
    CHECK(k.custody_kind == "depot");
    CHECK(k.status == KitStatus::available);
    CHECK(hub::shown_status(k) == "reserved");
  }
  // The node hears of nothing before the depot ships.
  CHECK(directives(s.f, s.node.id, shared::kShipmentDirective).empty());
  CHECK(hub::find_shipment(s.db(), s.shipment)->shipped_on.empty());

  // Shipping before approval, cancelling nothing: refused, naming what is allowed.
  auto before = s.audit_count();
  auto early = s.step(hub::ShipmentStep::ship, "", "DHL", "TRK-1");
  check_refused(s, early, shared::Errc::conflict, s.shipment + " is requested", before, "requested");
  CHECK(early.error().message.find("approve, cancel") != std::string::npos);
  check_refused(s, s.step(hub::ShipmentStep::deliver), shared::Errc::conflict, "requested", before, "requested");
  check_refused(s, s.step(hub::ShipmentStep::lose, "gone"), shared::Errc::conflict, "requested", before, "requested");
  // A wrong password and a role without manage_supply are refused alike: nothing changes.
  check_refused(s, s.step(hub::ShipmentStep::approve, "", "", "", "supply.sam", "wrong-password-here"),
                shared::Errc::unauthenticated, "", before, "requested");
  check_refused(s, s.step(hub::ShipmentStep::approve, "", "", "", "monitor.mo"), shared::Errc::forbidden, "", before,
                "requested");

  auto approved = s.step(hub::ShipmentStep::approve);
  REQUIRE_MESSAGE(approved.ok(), approved.error().message);
  CHECK(approved->shipment.status == "approved");
  CHECK(approved->signed_by == "supply.sam");
  check_refused(s, s.step(hub::ShipmentStep::approve), shared::Errc::conflict, "is approved", s.audit_count(),
                "approved");
  CHECK(directives(s.f, s.node.id, shared::kShipmentDirective).empty());

  // The courier and the tracking number are required to ship.
  check_refused(s, s.step(hub::ShipmentStep::ship, "", "DHL", ""), shared::Errc::invalid_input, "tracking",
                s.audit_count(), "approved");
  auto shipped = s.step(hub::ShipmentStep::ship, "", "DHL", "TRK-42");
  REQUIRE_MESSAGE(shipped.ok(), shipped.error().message);
  CHECK(shipped->shipment.status == "shipped");
  CHECK(shipped->shipment.courier == "DHL");
  CHECK(shipped->shipment.tracking == "TRK-42");
  CHECK(shipped->kits == kits.size());
  for (const auto& k : s.kits()) {
    CHECK(k.custody_kind == "node");
    CHECK(k.custody_id == s.node.id);
    CHECK(k.status == KitStatus::shipped);
  }
  auto sent = directives(s.f, s.node.id, shared::kShipmentDirective);
  REQUIRE(sent.size() == 1);
  auto directive = shared::parse_shipment(sent[0].dump());
  REQUIRE(directive.ok());
  CHECK(directive->shipment_id == s.shipment);
  CHECK(directive->kits.size() == kits.size());
  CHECK(directive->shipped_on == "2026-01-01");
  REQUIRE(shipped->directive_seq);

  // Shipped: it can no longer be cancelled.
  check_refused(s, s.step(hub::ShipmentStep::cancel, "changed our mind"), shared::Errc::conflict, "is shipped",
                s.audit_count(), "shipped");
  auto delivered = s.step(hub::ShipmentStep::deliver);
  REQUIRE_MESSAGE(delivered.ok(), delivered.error().message);
  CHECK(delivered->shipment.status == "delivered");

  // Received kit by kit: receiving until every kit is accounted for, then closed.
  kits = s.kits();
  s.receive({{kits[0].number, KitStatus::received}, {kits[1].number, KitStatus::damaged}});
  CHECK(s.status() == "receiving");
  std::vector<std::pair<std::string, KitStatus>> rest;
  for (std::size_t i = 2; i < kits.size(); ++i)
    rest.push_back({kits[i].number, i == 2 ? KitStatus::missing : KitStatus::received});
  s.receive(rest);
  CHECK(s.status() == "closed");
  CHECK(hub::find_kit(s.db(), kits[1].number)->status == KitStatus::damaged);
  CHECK(hub::find_kit(s.db(), kits[2].number)->status == KitStatus::missing);
  check_refused(s, s.step(hub::ShipmentStep::lose, "gone"), shared::Errc::conflict, "no step is allowed",
                s.audit_count(), "closed");

  // Every step is in the trail with the shipment as subject, in order.
  std::vector<std::string> actions;
  for (const auto& e : hub::audit_entries(s.db(), {std::nullopt, "", s.shipment})) actions.push_back(e.action);
  CHECK(actions == std::vector<std::string>{"shipment.approved", "shipment.shipped", "shipment.delivered",
                                            "shipment.receiving", "shipment.closed"});
}

TEST_CASE("a requested shipment counts as on its way: resupply orders nothing more for the site") {
  ShipmentSite s(true);
  storage::Transaction tx(s.db());
  auto r = hub::review_site(*s.f.hub, "101", "tester", kHubNow);
  CHECK(r.order.empty());
  CHECK(hub::list_shipments(s.db()).size() == 1);
}

TEST_CASE("kits reserved for a requested shipment are never picked for another one") {
  ShipmentSite s(true);
  std::set<std::string> first;
  for (const auto& k : s.kits()) first.insert(k.number);
  auto other = enroll(s.f, "102");
  auto all = hub::list_shipments(s.db());
  REQUIRE(all.size() == 2);
  CHECK(all[1].node_id == other.id);
  auto second = hub::kits_of_shipment(s.db(), all[1].shipment_id);
  REQUIRE_FALSE(second.empty());
  for (const auto& k : second) CHECK_MESSAGE(!first.count(k.number), k.number);
  // A reserved kit rejected at the depot while it waits stops the shipment from shipping.
  REQUIRE(s.step(hub::ShipmentStep::approve).ok());
  hub::set_kit_status(s.db(), *first.begin(), KitStatus::rejected, "tester", "rejected at the depot", test::kHubNow);
  auto refused = s.step(hub::ShipmentStep::ship, "", "DHL", "TRK-1");
  check_refused(s, refused, shared::Errc::conflict, "kit " + *first.begin() + " is rejected", s.audit_count(),
                "approved");
  CHECK(directives(s.f, s.node.id, shared::kShipmentDirective).empty());
}

TEST_CASE("a shipment cancelled before shipping puts its kits back in the depot's stock") {
  ShipmentSite s(true);
  auto kits = s.kits();
  auto before = s.audit_count();
  check_refused(s, s.step(hub::ShipmentStep::cancel, ""), shared::Errc::invalid_input, "reason", before, "requested");
  auto done = s.step(hub::ShipmentStep::cancel, "site closes early");
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->shipment.status == "cancelled");
  CHECK(done->kits == kits.size());
  for (const auto& k : kits) {
    auto now = hub::find_kit(s.db(), k.number);
    CHECK(now->custody_kind == "depot");
    CHECK(now->status == KitStatus::available);
    CHECK(now->shipment_id.empty());
    CHECK(hub::shown_status(*now) == "available");
  }
  CHECK(hub::kits_of_shipment(s.db(), s.shipment).empty());
  CHECK(directives(s.f, s.node.id, shared::kShipmentDirective).empty());
  check_refused(s, s.step(hub::ShipmentStep::approve), shared::Errc::conflict, "is cancelled", s.audit_count(),
                "cancelled");
}

TEST_CASE("without approval a shipment ships at once, and declared lost its unreported kits become missing") {
  ShipmentSite s(false);
  CHECK(s.status() == "shipped");
  CHECK(directives(s.f, s.node.id, shared::kShipmentDirective).size() == 1);
  check_refused(s, s.step(hub::ShipmentStep::approve), shared::Errc::conflict, "is shipped", s.audit_count(),
                "shipped");
  auto kits = s.kits();
  s.receive({{kits[0].number, KitStatus::received}});
  CHECK(s.status() == "receiving");
  auto before = s.audit_count();
  check_refused(s, s.step(hub::ShipmentStep::lose, ""), shared::Errc::invalid_input, "reason", before, "receiving");
  auto lost = s.step(hub::ShipmentStep::lose, "courier reports the parcel destroyed");
  REQUIRE_MESSAGE(lost.ok(), lost.error().message);
  CHECK(lost->shipment.status == "lost");
  CHECK(lost->kits == kits.size() - 1);
  CHECK(hub::find_kit(s.db(), kits[0].number)->status == KitStatus::received);
  for (std::size_t i = 1; i < kits.size(); ++i) CHECK(hub::find_kit(s.db(), kits[i].number)->status == KitStatus::missing);
  // The site's accountability balances: the lost kits are counted missing.
  auto rec = hub::reconcile(*s.f.hub, "101", "", false);
  REQUIRE(rec.ok());
  REQUIRE(rec->size() == 1);
  CHECK(rec->at(0).balanced());
  CHECK(rec->at(0).accounted.at("missing") == kits.size() - 1);
}

TEST_CASE("a step on a shipment the hub does not know is refused as not found") {
  ShipmentSite s(false);
  auto r = hub::step_shipment(*s.f.hub, "SHP-999999", {hub::ShipmentStep::deliver, "", "", ""},
                              {"supply.sam", test::kUserPassword}, kHubNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::not_found);
  CHECK(r.error().message.find("SHP-999999") != std::string::npos);
}

TEST_CASE("a shipment's kit list names kit types, lots and expiry dates only to an unblinded reader") {
  ShipmentSite s(false);
  auto kits = s.kits();
  auto blinded = hub::kits_json(kits, false);
  auto unblinded = hub::kits_json(kits, true);
  REQUIRE(blinded.size() == kits.size());
  for (const auto& k : blinded) {
    CHECK(k.size() == 2);
    CHECK(k.contains("kit"));
    CHECK(k.contains("status"));
  }
  CHECK(unblinded[0]["kit_type"] == kits[0].kit_type);
  CHECK(hub::to_json(*hub::find_shipment(s.db(), s.shipment)).dump().find(kits[0].kit_type) == std::string::npos);
}

TEST_CASE("shipments over the API: steps signed with manage_supply, kit types only to unblinded readers") {
  ShipmentSite s(true);
  test::HubApiServer api(*s.f.hub);
  auto sam = test::hub_login(api.port(), "supply.sam", test::kUserPassword);
  auto mo = test::hub_login(api.port(), "monitor.mo", test::kUserPassword);
  const std::string base = "/api/v1/shipments/" + s.shipment;

  auto listed = test::hub_call(api.port(), "GET", "/api/v1/shipments?status=requested", mo);
  REQUIRE_MESSAGE(listed.status == 200, listed.text);
  REQUIRE(listed.body["shipments"].size() == 1);
  CHECK(listed.body["shipments"][0]["status"] == "requested");
  CHECK(test::hub_call(api.port(), "GET", "/api/v1/shipments?status=closed", mo).body["shipments"].empty());

  // The monitor reads blinded: kit numbers and statuses only.
  auto kit_type = s.kits()[0].kit_type;
  auto blinded = test::hub_call(api.port(), "GET", base, mo);
  REQUIRE_MESSAGE(blinded.status == 200, blinded.text);
  CHECK(blinded.text.find(kit_type) == std::string::npos);
  CHECK(blinded.body["shipment"]["kit_list"][0].size() == 2);
  auto unblinded = test::hub_call(api.port(), "GET", base, sam);
  CHECK(unblinded.body["shipment"]["kit_list"][0].contains("kit_type"));

  // The monitor may not take a step; a step out of turn is 409 and changes nothing.
  json sign = {{"signature", {{"password", test::kUserPassword}}}};
  CHECK(test::hub_call(api.port(), "POST", base + "/approve", mo, sign).status == 403);
  json ship = {{"courier", "DHL"}, {"tracking", "TRK-7"}, {"signature", {{"password", test::kUserPassword}}}};
  auto early = test::hub_call(api.port(), "POST", base + "/ship", sam, ship);
  CHECK(early.status == 409);
  CHECK(early.body["error"]["message"].get<std::string>().find("approve, cancel") != std::string::npos);
  auto approved = test::hub_call(api.port(), "POST", base + "/approve", sam, sign);
  REQUIRE_MESSAGE(approved.status == 200, approved.text);
  CHECK(approved.body["shipment"]["status"] == "approved");
  auto shipped = test::hub_call(api.port(), "POST", base + "/ship", sam, ship);
  REQUIRE_MESSAGE(shipped.status == 200, shipped.text);
  CHECK(shipped.body["shipment"]["tracking"] == "TRK-7");
  CHECK(shipped.body["directive_seq"].is_number());
  CHECK(directives(s.f, s.node.id, shared::kShipmentDirective).size() == 1);
  auto no_reason = test::hub_call(api.port(), "POST", base + "/lose", sam, sign);
  CHECK(no_reason.status == 400);
  CHECK(s.status() == "shipped");
}
