// Tests for hub/depot_shipments.h: depot users bound to their depots, transfers
// between depots through the shipment lifecycle, a site's return shipment
// received at the depot and destroyed there with a witness, and the
// reconciliation of both; every refused step named and nothing changed.
#include "hub/depot_shipments.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "hub/api_server.h"
#include "hub/kit_decisions.h"
#include "hub/kit_history.h"
#include "hub/kit_inventory.h"
#include "hub/reconcile.h"
#include "hub/shipments.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "tests/hub/test_node.h"
#include "tests/support/hub_api.h"

using namespace irt;
using namespace irt::test;
using nlohmann::json;
using shared::Errc;
using shared::KitStatus;

namespace {

// The minimization example (depots DE-FRA and AT-VIE) with a blinded depot role.
HubFixture::StudyText depot_study() {
  auto doc = json::parse(read_file(source_path("packaging/examples/study-minimization.json")));
  doc["roles"].push_back({{"id", "depot-operator"},
                          {"name", "Depot operator"},
                          {"blinded", true},
                          {"permissions", {"view_inventory", "manage_depot", "destroy_kits"}}});
  return {doc.dump()};
}

struct Depots {
  HubFixture f{depot_study()};
  Depots() {
    for (const hub::NewUser& u : {hub::NewUser{"fra.op", "depot-operator", {"DE-FRA"}, test::kUserPassword},
                                  hub::NewUser{"vie.op", "depot-operator", {"AT-VIE"}, test::kUserPassword},
                                  hub::NewUser{"supply.sam", "supply-manager", {}, test::kUserPassword}}) {
      auto r = hub::add_user(*f.hub, u, crypto::kTest, "tester", kHubNow);
      REQUIRE_MESSAGE(r.ok(), r.error().message);
    }
  }
  storage::Database& db() { return f.hub->db(); }
  hub::Signature sign(const std::string& user) { return {user, test::kUserPassword}; }
  // The first `n` kits in a depot's stock, by number.
  std::vector<std::string> stock(const std::string& depot, std::size_t n) {
    std::vector<std::string> out;
    for (const auto& k : hub::kits_held_by(db(), "depot", depot))
      if (k.status == KitStatus::available && k.shipment_id.empty() && out.size() < n) out.push_back(k.number);
    return out;
  }
  KitStatus status(const std::string& kit) { return hub::find_kit(db(), kit)->status; }
  std::string custodian(const std::string& kit) {
    auto k = hub::find_kit(db(), kit);
    return k->custody_kind + ":" + k->custody_id;
  }
  hub::Reconciliation reconcile(const std::string& site, const std::string& depot) {
    auto r = hub::reconcile(*f.hub, site, depot, false);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    REQUIRE(r->size() == 1);
    return r->front();
  }
};

template <class T>
void refused(const shared::Result<T>& r, Errc code, const std::string& says) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == code);
  CHECK_MESSAGE(r.error().message.find(says) != std::string::npos, r.error().message);
}

}  // namespace

TEST_CASE("a depot role's users are bound to depots of the study") {
  Depots d;
  auto none = hub::add_user(*d.f.hub, {"x.op", "depot-operator", {}, test::kUserPassword}, crypto::kTest, "tester", kHubNow);
  refused(none, Errc::invalid_input, "works at depots");
  auto site = hub::add_user(*d.f.hub, {"y.op", "depot-operator", {"301"}, test::kUserPassword}, crypto::kTest, "tester", kHubNow);
  refused(site, Errc::invalid_input, "no depot '301'");
  CHECK_FALSE(hub::find_user(d.db(), "x.op"));
  CHECK(hub::reads_blinded(d.f.hub->study(), d.f.hub->study().find_role("depot-operator")));
}

TEST_CASE("a transfer between depots: reserved, shipped in transit, received kit by kit with one missing, reconciled") {
  Depots d;
  // The supply manager picks by kit type: the earliest-expiring kits, those a site shipment would take first.
  const auto type = hub::find_kit(d.db(), d.stock("DE-FRA", 1).at(0))->kit_type;
  auto t = hub::request_transfer(*d.f.hub, {"DE-FRA", "AT-VIE", {}, type, 3, "rebalance"}, d.sign("supply.sam"),
                                 kHubNow);
  REQUIRE_MESSAGE(t.ok(), t.error().message);
  std::vector<std::string> kits;
  for (const auto& k : hub::kits_of_shipment(d.db(), t->shipment_id)) kits.push_back(k.number);
  REQUIRE(kits.size() == 3);
  CHECK(t->kind == "transfer");
  CHECK(t->status == "approved");  // the study needs no approval
  CHECK(t->kits == 3);
  for (const auto& k : kits) CHECK(hub::shown_status(*hub::find_kit(d.db(), k)) == "reserved");

  // A site shipment from the same depot never takes reserved kits.
  auto node = enroll(d.f, "301");
  auto sent = shared::parse_shipment(directives(d.f, node.id, shared::kShipmentDirective).at(0).dump());
  REQUIRE(sent.ok());
  for (const auto& k : sent->kits) CHECK(std::find(kits.begin(), kits.end(), k.kit_number) == kits.end());

  hub::ShipmentStepRequest ship{hub::ShipmentStep::ship, "", "DHL", "TRK-1"};
  // The other depot's user may not ship it: refused naming the depot, nothing changed.
  refused(hub::step_shipment(*d.f.hub, t->shipment_id, ship, d.sign("vie.op"), kHubNow), Errc::forbidden,
          "not for depot DE-FRA");
  CHECK(hub::find_shipment(d.db(), t->shipment_id)->status == "approved");
  auto shipped = hub::step_shipment(*d.f.hub, t->shipment_id, ship, d.sign("fra.op"), kHubNow + kHour);
  REQUIRE_MESSAGE(shipped.ok(), shipped.error().message);
  CHECK(shipped->kits == 3);
  CHECK_FALSE(shipped->directive_seq);
  for (const auto& k : kits) {
    CHECK(d.custodian(k) == "depot:AT-VIE");
    CHECK(d.status(k) == KitStatus::shipped);  // in transit: never picked, never destroyed
  }
  refused(hub::destroy_depot_kits(*d.f.hub, "AT-VIE", {kits[0]}, "test", d.sign("vie.op"), d.sign("supply.sam"),
                                  kHubNow),
          Errc::conflict, "shipped");
  // Nor rejected in transit: decided once received, and the refusal says so.
  auto in_transit = hub::decide_kits(*d.f.hub, false, {kits[0]}, "recall", d.sign("supply.sam"), kHubNow);
  refused(in_transit, Errc::conflict, "after its receipt");
  CHECK(in_transit.error().message.find(t->shipment_id) != std::string::npos);
  CHECK(in_transit.error().message.find(type) == std::string::npos);
  CHECK(d.status(kits[0]) == KitStatus::shipped);

  // Received by the receiving depot only, kit by kit.
  refused(hub::receive_at_depot(*d.f.hub, t->shipment_id, {{kits[0], KitStatus::received}}, "", d.sign("fra.op"),
                                kHubNow),
          Errc::forbidden, "not for depot AT-VIE");
  refused(hub::receive_at_depot(*d.f.hub, t->shipment_id, {{kits[1], KitStatus::damaged}}, "", d.sign("vie.op"),
                                kHubNow),
          Errc::invalid_input, "reason");
  auto first = hub::receive_at_depot(*d.f.hub, t->shipment_id, {{kits[0], KitStatus::received}}, "",
                                     d.sign("vie.op"), kHubNow + 2 * kHour);
  REQUIRE_MESSAGE(first.ok(), first.error().message);
  CHECK(first->shipment.status == "receiving");
  CHECK(d.status(kits[0]) == KitStatus::available);
  CHECK(hub::find_kit(d.db(), kits[0])->shipment_id.empty());  // the receiving depot's stock now
  // Received twice: refused whole, nothing changed.
  refused(hub::receive_at_depot(*d.f.hub, t->shipment_id,
                                {{kits[1], KitStatus::received}, {kits[0], KitStatus::received}}, "",
                                d.sign("vie.op"), kHubNow),
          Errc::conflict, "already reported");
  CHECK(d.status(kits[1]) == KitStatus::shipped);
  auto rest = hub::receive_at_depot(*d.f.hub, t->shipment_id,
                                    {{kits[1], KitStatus::damaged}, {kits[2], KitStatus::missing}}, "crushed box",
                                    d.sign("vie.op"), kHubNow + 2 * kHour);
  REQUIRE_MESSAGE(rest.ok(), rest.error().message);
  CHECK(rest->shipment.status == "closed");
  CHECK(d.status(kits[1]) == KitStatus::damaged);
  CHECK(d.status(kits[2]) == KitStatus::missing);

  auto from = d.reconcile("", "DE-FRA");
  CHECK_MESSAGE(from.balanced(), json(from.differences).dump());
  CHECK(from.accounted["transferred_out"] == 3);
  auto to = d.reconcile("", "AT-VIE");
  CHECK_MESSAGE(to.balanced(), json(to.differences).dump());
  CHECK(to.accounted["missing"] == 1);
  CHECK(to.accounted["damaged"] == 1);

  // Every hop is in the kit's history.
  auto h = hub::kit_history(*d.f.hub, kits[0], true);
  REQUIRE(h.ok());
  auto text = hub::to_json(*h, true).dump();
  for (const char* action : {"kit.reserved", "kit.custody_moved", "kit.received_at_depot"})
    CHECK_MESSAGE(text.find(action) != std::string::npos, action);
}

TEST_CASE("a transfer is refused whole for kits not in the sending depot's stock, expired or unreleased where it goes") {
  Depots d;
  auto& db = d.db();
  const auto fra = d.stock("DE-FRA", 3);
  const auto vie = d.stock("AT-VIE", 1);
  const auto before = hub::list_shipments(db).size();
  auto transfer = [&](const std::vector<std::string>& kits, const std::string& user) {
    return hub::request_transfer(*d.f.hub, {"DE-FRA", "AT-VIE", kits, "", 0, ""}, d.sign(user), kHubNow);
  };
  refused(transfer({fra[0], vie[0]}, "fra.op"), Errc::conflict, "kit " + vie[0] + " is not at depot DE-FRA");
  refused(transfer({fra[0], fra[0]}, "fra.op"), Errc::invalid_input, "listed twice");
  refused(transfer({fra[0]}, "vie.op"), Errc::forbidden, "not for depot DE-FRA");
  refused(hub::request_transfer(*d.f.hub, {"DE-FRA", "DE-FRA", {fra[0]}, "", 0, ""}, d.sign("fra.op"), kHubNow),
          Errc::invalid_input, "another depot");
  refused(hub::request_transfer(*d.f.hub, {"DE-FRA", "XX", {fra[0]}, "", 0, ""}, d.sign("fra.op"), kHubNow),
          Errc::not_found, "depot 'XX'");
  db.prepare("UPDATE hub_kits SET expiry = '2025-12-01' WHERE kit_number = ?").bind(1, fra[1]).run();
  refused(transfer({fra[0], fra[1]}, "fra.op"), Errc::conflict, "expired on 2025-12-01");
  const auto lot = hub::find_kit(db, fra[2])->lot;
  db.prepare("DELETE FROM hub_lot_releases WHERE lot_id = ? AND country = 'AT'").bind(1, lot).run();
  refused(transfer({fra[2]}, "fra.op"), Errc::conflict, "not released in any country depot AT-VIE serves");

  // A blinded depot user names kits by number: a kit type is refused without being echoed.
  const auto type = hub::find_kit(db, fra[0])->kit_type;
  auto by_type = hub::request_transfer(*d.f.hub, {"DE-FRA", "AT-VIE", {}, type, 2, ""}, d.sign("fra.op"), kHubNow);
  refused(by_type, Errc::invalid_input, "by number");
  CHECK(by_type.error().message.find(type) == std::string::npos);
  // The supply manager may; asking more than the depot holds is exhausted.
  refused(hub::request_transfer(*d.f.hub, {"DE-FRA", "AT-VIE", {}, type, 100000, ""}, d.sign("supply.sam"), kHubNow),
          Errc::exhausted, "nothing was changed");

  CHECK(hub::list_shipments(db).size() == before);
  for (const auto& k : fra) CHECK(hub::find_kit(db, k)->shipment_id.empty());

  // A transfer lost in transit: its kits become missing at the receiving depot; cancelled ones are freed.
  auto ok = hub::request_transfer(*d.f.hub, {"DE-FRA", "AT-VIE", {}, type, 2, ""}, d.sign("supply.sam"), kHubNow);
  REQUIRE_MESSAGE(ok.ok(), ok.error().message);
  auto kits = hub::kits_of_shipment(db, ok->shipment_id);
  REQUIRE(kits.size() == 2);
  REQUIRE(hub::step_shipment(*d.f.hub, ok->shipment_id, {hub::ShipmentStep::ship, "", "UPS", "1Z"}, d.sign("fra.op"),
                             kHubNow)
              .ok());
  auto lost = hub::step_shipment(*d.f.hub, ok->shipment_id, {hub::ShipmentStep::lose, "truck stolen", "", ""},
                                 d.sign("fra.op"), kHubNow);
  REQUIRE_MESSAGE(lost.ok(), lost.error().message);
  CHECK(lost->kits == 2);
  for (const auto& k : kits) CHECK(d.status(k.number) == KitStatus::missing);
  refused(hub::receive_at_depot(*d.f.hub, ok->shipment_id, {{kits[0].number, KitStatus::received}}, "",
                                d.sign("vie.op"), kHubNow),
          Errc::conflict, "is lost");
  CHECK(d.reconcile("", "AT-VIE").balanced());
}

TEST_CASE("a site's return shipment: in transit to the depot, received there, destroyed with a witness, reconciled") {
  Depots d;
  auto node = enroll(d.f, "301");
  auto sent = shared::parse_shipment(directives(d.f, node.id, shared::kShipmentDirective).at(0).dump());
  REQUIRE(sent.ok());
  REQUIRE(sent->kits.size() >= 4);
  std::vector<std::string> kits;
  for (std::size_t i = 0; i < 4; ++i) kits.push_back(sent->kits[i].kit_number);
  shared::ShipmentReceived receipt{sent->shipment_id, {}, std::nullopt};
  for (const auto& k : sent->kits)
    receipt.kits.push_back({k.kit_number, k.kit_number == kits[1] ? KitStatus::damaged : KitStatus::received});
  node.push(d.f, shared::kShipmentReceivedEvent, receipt);
  consume(d.f, node.id);
  REQUIRE(!hub::record_kit_event(d.db(), node.id, kits[3], KitStatus::dispensed, "301-001", "dispensed", test::kHubNow));

  // The node sends back one kit in stock, one damaged, one it dispensed and one it never held.
  node.push(d.f, shared::kKitsReturnShippedEvent,
            shared::KitsReturnShipped{"DE-FRA", {kits[0], kits[1], kits[3], "999999"}, "expired", "DHL", "R-1",
                                      "coordinator"});
  auto report = consume(d.f, node.id);
  CHECK(report.alerts == 1);  // one alert naming both kits
  const auto id = hub::return_shipment_id(node.id, node.seq);
  auto s = hub::find_shipment(d.db(), id);
  REQUIRE(s);
  CHECK(s->kind == "return");
  CHECK(s->status == "shipped");
  CHECK(s->kits == 2);
  CHECK(d.custodian(kits[0]) == "depot:DE-FRA");
  CHECK(d.status(kits[0]) == KitStatus::shipped);
  CHECK(d.custodian(kits[3]) == "node:" + node.id);  // dispensed: stays with the site
  CHECK(d.status(kits[3]) == KitStatus::dispensed);

  refused(hub::receive_at_depot(*d.f.hub, id, {{kits[0], KitStatus::received}}, "", d.sign("vie.op"), kHubNow),
          Errc::forbidden, "not for depot DE-FRA");
  refused(hub::receive_at_depot(*d.f.hub, id, {{kits[2], KitStatus::received}}, "", d.sign("fra.op"), kHubNow),
          Errc::conflict, "not in shipment");
  auto got = hub::receive_at_depot(*d.f.hub, id, {{kits[0], KitStatus::received}, {kits[1], KitStatus::received}}, "",
                                   d.sign("fra.op"), kHubNow + kHour);
  REQUIRE_MESSAGE(got.ok(), got.error().message);
  CHECK(got->shipment.status == "closed");
  CHECK(d.status(kits[0]) == KitStatus::returned);
  CHECK(d.custodian(kits[1]) == "depot:DE-FRA");
  // The node learns how the depot found them: one directive, the kits the receipt named.
  auto told = directives(d.f, node.id, shared::kKitsAtDepotDirective);
  REQUIRE(told.size() == 1);
  auto at_depot = shared::parse_kits_at_depot(told[0].dump());
  REQUIRE_MESSAGE(at_depot.ok(), at_depot.error().message);
  CHECK(at_depot->shipment_id == id);
  CHECK(at_depot->depot == "DE-FRA");
  REQUIRE(at_depot->kits.size() == 2);
  CHECK(at_depot->kits[0].kit == kits[0]);
  CHECK(at_depot->kits[1].condition == KitStatus::received);
  CHECK(told[0].dump().find(sent->kits[0].kit_type) == std::string::npos);

  // Destroyed at the depot by its own user with a witness; the other depot's user may not.
  refused(hub::destroy_depot_kits(*d.f.hub, "DE-FRA", {kits[0]}, "returned", d.sign("vie.op"), d.sign("supply.sam"),
                                  kHubNow),
          Errc::forbidden, "not for depot DE-FRA");
  CHECK(d.status(kits[0]) == KitStatus::returned);
  auto gone = hub::destroy_depot_kits(*d.f.hub, "DE-FRA", {kits[0], kits[1]}, "returned", d.sign("fra.op"),
                                      d.sign("supply.sam"), kHubNow + 2 * kHour);
  REQUIRE_MESSAGE(gone.ok(), gone.error().message);
  CHECK(d.status(kits[0]) == KitStatus::destroyed);

  // The site balances but for the two kits it listed without holding them unused (the open alert).
  auto site = d.reconcile("301", "");
  REQUIRE_MESSAGE(site.differences.size() == 1, json(site.differences).dump());
  CHECK(site.differences[0].find("kit 999999") != std::string::npos);
  CHECK(site.differences[0].find("kit " + kits[3] + " ") != std::string::npos);
  CHECK(site.accounted["returned_to_depot"] == 2);
  CHECK(site.received == sent->kits.size());
  auto depot = d.reconcile("", "DE-FRA");
  CHECK_MESSAGE(depot.balanced(), json(depot.differences).dump());
  CHECK(depot.accounted["destroyed"] == 2);

  auto h = hub::kit_history(*d.f.hub, kits[0], true);
  REQUIRE(h.ok());
  auto text = hub::to_json(*h, true).dump();
  for (const char* action : {"kit.custody_moved", "kit.received_at_depot", "kit.destroyed"})
    CHECK_MESSAGE(text.find(action) != std::string::npos, action);
}

TEST_CASE("depot steps over the API: a blinded depot user's answers hold no kit type, another depot's shipment refused") {
  Depots d;
  HubApiServer api(*d.f.hub);
  auto fra = hub_login(api.port(), "fra.op", test::kUserPassword);
  auto vie = hub_login(api.port(), "vie.op", test::kUserPassword);
  const auto kits = d.stock("DE-FRA", 2);
  const auto type = hub::find_kit(d.db(), kits[0])->kit_type;
  const json sign = {{"password", test::kUserPassword}};

  auto by_type = hub_call(api.port(), "POST", "/api/v1/shipments/transfers", fra,
                          {{"from_depot", "DE-FRA"}, {"to_depot", "AT-VIE"}, {"kit_type", type}, {"count", 2},
                           {"signature", sign}});
  CHECK(by_type.status == 400);
  CHECK(by_type.text.find(type) == std::string::npos);
  auto made = hub_call(api.port(), "POST", "/api/v1/shipments/transfers", fra,
                       {{"from_depot", "DE-FRA"}, {"to_depot", "AT-VIE"}, {"kits", kits}, {"signature", sign}});
  REQUIRE_MESSAGE(made.status == 200, made.text);
  const std::string id = made.body["shipment"]["shipment_id"];
  const std::string base = "/api/v1/shipments/" + id;
  auto other = hub_call(api.port(), "POST", base + "/ship", vie,
                        {{"courier", "DHL"}, {"tracking", "T-1"}, {"signature", sign}});
  CHECK(other.status == 403);
  CHECK(other.text.find("DE-FRA") != std::string::npos);
  auto shipped = hub_call(api.port(), "POST", base + "/ship", fra,
                          {{"courier", "DHL"}, {"tracking", "T-1"}, {"signature", sign}});
  REQUIRE_MESSAGE(shipped.status == 200, shipped.text);
  auto shown = hub_call(api.port(), "GET", base, vie);
  REQUIRE_MESSAGE(shown.status == 200, shown.text);
  CHECK(shown.text.find(type) == std::string::npos);
  CHECK(shown.body["shipment"]["to_depot"] == "AT-VIE");
  CHECK(shown.body["shipment"]["kit_list"].size() == 2);
  auto received = hub_call(api.port(), "POST", base + "/receive", vie,
                           {{"kits", json::array({json{{"kit", kits[0]}}, json{{"kit", kits[1]}, {"condition", "missing"}}})},
                            {"signature", sign}});
  REQUIRE_MESSAGE(received.status == 200, received.text);
  CHECK(received.body["shipment"]["status"] == "closed");
  CHECK(received.text.find(type) == std::string::npos);
  auto again = hub_call(api.port(), "POST", base + "/receive", vie,
                        {{"kits", json::array({json{{"kit", kits[0]}}})}, {"signature", sign}});
  CHECK(again.status == 409);
  CHECK(again.text.find(type) == std::string::npos);
}

TEST_CASE("a depot user lists and reads only shipments from or to its depots, and reconciles only its depots") {
  Depots d;
  auto site = enroll(d.f, "301");  // its initial shipment leaves DE-FRA
  const auto initial = hub::list_shipments(d.db()).at(0);
  REQUIRE(initial.depot_id == "DE-FRA");
  auto t = hub::request_transfer(*d.f.hub, {"AT-VIE", "DE-FRA", d.stock("AT-VIE", 1), "", 0, ""}, d.sign("vie.op"),
                                 kHubNow);
  REQUIRE_MESSAGE(t.ok(), t.error().message);
  HubApiServer api(*d.f.hub);
  auto ids = [&](const std::string& user) {
    auto r = hub_call(api.port(), "GET", "/api/v1/shipments", hub_login(api.port(), user, test::kUserPassword));
    REQUIRE_MESSAGE(r.status == 200, r.text);
    std::vector<std::string> out;
    for (const auto& s : r.body["shipments"]) out.push_back(s["shipment_id"]);
    std::sort(out.begin(), out.end());
    return out;
  };
  auto both = std::vector<std::string>{initial.shipment_id, t->shipment_id};
  std::sort(both.begin(), both.end());
  CHECK(ids("supply.sam") == both);
  CHECK(ids("fra.op") == both);                                         // from DE-FRA, and to it
  CHECK(ids("vie.op") == std::vector<std::string>{t->shipment_id});    // not DE-FRA's shipment to the site

  // Another depot's shipment is unknown to it, named by nothing but the id asked.
  auto vie = hub_login(api.port(), "vie.op", test::kUserPassword);
  auto other = hub_call(api.port(), "GET", "/api/v1/shipments/" + initial.shipment_id, vie);
  CHECK(other.status == 404);
  for (const auto& leak : {std::string("DE-FRA"), site.id, std::string("301")})
    CHECK_MESSAGE(other.text.find(leak) == std::string::npos, other.text);
  CHECK(hub_call(api.port(), "GET", "/api/v1/shipments/" + t->shipment_id, vie).status == 200);

  auto accounts = hub_call(api.port(), "GET", "/api/v1/reconciliation", vie);
  REQUIRE_MESSAGE(accounts.status == 200, accounts.text);
  REQUIRE(accounts.body["custodians"].size() == 1);
  CHECK(accounts.body["custodians"][0]["id"] == "AT-VIE");
  auto all = hub_call(api.port(), "GET", "/api/v1/reconciliation", hub_login(api.port(), "supply.sam", test::kUserPassword));
  CHECK(all.body["custodians"].size() > 2);
  // The quarantined kits likewise: one at the site, none at its depot.
  const auto initial_kit = hub::kits_of_shipment(d.db(), initial.shipment_id).at(0).number;
  d.db().prepare("UPDATE hub_kits SET status = 'quarantined' WHERE kit_number = ?").bind(1, initial_kit).run();
  auto q_vie = hub_call(api.port(), "GET", "/api/v1/quarantine", vie);
  REQUIRE_MESSAGE(q_vie.status == 200, q_vie.text);
  CHECK(q_vie.body["kits"].empty());
  auto q_sam = hub_call(api.port(), "GET", "/api/v1/quarantine", hub_login(api.port(), "supply.sam", test::kUserPassword));
  CHECK(q_sam.body["kits"].size() == 1);
  // The dashboard's stock by custodian likewise.
  auto stock = hub_call(api.port(), "GET", "/api/v1/dashboard/inventory", vie);
  REQUIRE_MESSAGE(stock.status == 200, stock.text);
  REQUIRE(stock.body["custodians"].size() == 1);
  CHECK(stock.body["custodians"][0]["id"] == "AT-VIE");
}

TEST_CASE("a depot receipt's kits as the API reads them: a condition that is not one of the words is refused, never thrown") {
  auto read = hub::depot_receipts_from_json(
      json::array({json{{"kit", "4821907"}}, json{{"kit", "5133068"}, {"condition", "missing"}}}));
  REQUIRE(read.ok());
  CHECK(read->at(0).condition == shared::KitStatus::received);
  CHECK(read->at(1).condition == shared::KitStatus::missing);
  const std::string shape = R"({"kit": K, "condition": received|damaged|missing})";
  for (const json& bad : {json(), json::array(), json::array({json{{"kit", "1"}, {"condition", nullptr}}}),
                          json::array({json{{"kit", "1"}, {"condition", 3}}}), json::array({json{{"kit", 1}}}),
                          json::array({json{{"kit", "1"}, {"condition", ""}}}), json::array({"1"})}) {
    auto refused = hub::depot_receipts_from_json(bad);
    REQUIRE_FALSE_MESSAGE(refused.ok(), bad.dump());
    CHECK(refused.error().code == Errc::invalid_input);
    CHECK(refused.error().message.find(shape) != std::string::npos);
  }
}

TEST_CASE("a request body's whole number is refused as a fraction, a string or out of its range, never wrapped") {
  auto whole = [](const json& count) {
    hub::ApiBody body(json{{"count", count}});
    auto n = body.optional_whole("count", 1, std::numeric_limits<int>::max());
    auto st = body.finish();
    return st.ok() ? json(n ? json(*n) : json()) : json(st.error().message);
  };
  CHECK(whole(4) == 4);
  CHECK(whole(nullptr) == json());
  const std::string range = "count: must be a whole number from 1 to 2147483647";
  for (const json& bad : {json(4294967297LL), json(std::numeric_limits<std::uint64_t>::max()), json(0), json(-3),
                          json(2.5), json("4")})
    CHECK_MESSAGE(whole(bad) == range, bad.dump());
}
