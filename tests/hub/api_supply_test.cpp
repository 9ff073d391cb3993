// The lots, kit history and site activation routes of the hub's API
// (hub/api_supply.cpp): signed actions over HTTP, and what blinded readers get.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/kit_inventory.h"
#include "hub/lots.h"
#include "hub/users.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"
#include "tests/support/hub_api.h"

using namespace irt;
using nlohmann::json;
using test::HubFixture;
using test::kHubNow;

namespace {

void add_supply_user(HubFixture& f, const std::string& name, const std::string& role) {
  std::vector<std::string> sites;
  if (role == "investigator" || role == "pharmacist") sites = {"101"};
  auto added = hub::add_user(*f.hub, {name, role, sites, test::kUserPassword}, crypto::kTest, "tester", kHubNow);
  REQUIRE_MESSAGE(added.ok(), added.error().message);
}

}  // namespace

TEST_CASE("lots over the API: add, release signed with release_quarantine, relabel signed, each audited") {
  HubFixture f;
  test::HubApiServer api(*f.hub);
  add_supply_user(f, "sam", "supply-manager");
  auto sam = test::hub_login(api.port(), "sam", test::kUserPassword);

  auto added = test::hub_call(api.port(), "POST", "/api/v1/lots", sam, {{"lot", "X-1"}, {"expiry", "2029-01-31"}});
  REQUIRE_MESSAGE(added.status == 200, added.text);
  CHECK(added.body["lot"]["released_in"] == json::array());
  auto twice = test::hub_call(api.port(), "POST", "/api/v1/lots", sam, {{"lot", "X-1"}, {"expiry", "2029-01-31"}});
  CHECK(twice.status == 409);

  json release = {{"countries", {"FR"}}, {"reason", "QP release"}, {"signature", {{"password", "wrong password"}}}};
  auto refused = test::hub_call(api.port(), "POST", "/api/v1/lots/X-1/release", sam, release);
  CHECK(refused.status == 401);
  CHECK_FALSE(hub::lot_released(f.hub->db(), "X-1", "FR"));
  release["signature"]["password"] = test::kUserPassword;
  auto released = test::hub_call(api.port(), "POST", "/api/v1/lots/X-1/release", sam, release);
  REQUIRE_MESSAGE(released.status == 200, released.text);
  CHECK(released.body["lot"]["released_in"] == json::array({"FR"}));
  CHECK(released.body["signed_by"] == "sam");

  json relabel = {{"expiry", "2029-06-30"}, {"reason", "stability"}, {"signature", {{"password", test::kUserPassword}}}};
  auto relabelled = test::hub_call(api.port(), "POST", "/api/v1/lots/X-1/relabel", sam, relabel);
  REQUIRE_MESSAGE(relabelled.status == 200, relabelled.text);
  CHECK(relabelled.body["old_expiry"] == "2029-01-31");
  CHECK(hub::find_lot(f.hub->db(), "X-1")->expiry == "2029-06-30");

  auto list = test::hub_call(api.port(), "GET", "/api/v1/lots", sam);
  REQUIRE(list.status == 200);
  CHECK(list.body["lots"].size() == 4);
  CHECK(list.body["lots"][0].contains("kit_types"));  // sam's role is unblinded
  std::size_t signed_entries = 0;
  for (const auto& e : hub::audit_entries(f.hub->db(), {std::nullopt, "sam", "X-1"}))
    if (e.signature == "approved") ++signed_entries;
  CHECK(signed_entries == 2);
}

TEST_CASE("a kit's history over the API gives a blinded reader neither kit type, lot nor arm") {
  HubFixture f;
  auto node = test::enroll(f, "101");
  auto kits = hub::kits_held_by(f.hub->db(), "node", node.id);
  REQUIRE_FALSE(kits.empty());
  test::HubApiServer api(*f.hub);
  add_supply_user(f, "ivy", "investigator");  // blinded, view_inventory
  add_supply_user(f, "phil", "pharmacist");   // unblinded, view_inventory
  const auto path = "/api/v1/kits/" + kits[0].number + "/history";

  auto blinded = test::hub_call(api.port(), "GET", path, test::hub_login(api.port(), "ivy", test::kUserPassword));
  REQUIRE_MESSAGE(blinded.status == 200, blinded.text);
  CHECK(blinded.body["kit"]["status"] == "shipped");
  CHECK_FALSE(blinded.body["kit"].contains("kit_type"));
  CHECK_FALSE(blinded.body["kit"].contains("lot"));
  CHECK(blinded.body["history"].size() >= 2);  // its list, its shipment
  const auto text = blinded.text;
  const auto& study = f.hub->study();
  for (const auto& kt : study.kit_types) {
    CHECK_MESSAGE(text.find("\"" + kt.id + "\"") == std::string::npos, kt.id);
    CHECK_MESSAGE(text.find(kt.name) == std::string::npos, kt.name);
  }
  for (const auto& arm : study.arms) CHECK_MESSAGE(text.find(arm.name) == std::string::npos, arm.name);
  CHECK(text.find(kits[0].lot + "\"") == std::string::npos);

  auto open = test::hub_call(api.port(), "GET", path, test::hub_login(api.port(), "phil", test::kUserPassword));
  REQUIRE(open.status == 200);
  CHECK(open.body["kit"]["kit_type"] == kits[0].kit_type);
  CHECK(open.body["kit"]["lot"] == kits[0].lot);
}

TEST_CASE("a site is activated over the API, signed, once") {
  HubFixture f;
  test::HubApiServer api(*f.hub);
  add_supply_user(f, "sam", "supply-manager");
  auto sam = test::hub_login(api.port(), "sam", test::kUserPassword);
  json body = {{"reason", "initiation visit"}, {"signature", {{"password", test::kUserPassword}}}};
  auto ok = test::hub_call(api.port(), "POST", "/api/v1/sites/102/activate", sam, body);
  REQUIRE_MESSAGE(ok.status == 200, ok.text);
  CHECK(ok.body["status"] == "active");
  CHECK(test::hub_call(api.port(), "POST", "/api/v1/sites/102/activate", sam, body).status == 409);
  CHECK(test::hub_call(api.port(), "POST", "/api/v1/sites/999/activate", sam, body).status == 404);
}

TEST_CASE("a blinded reader of the lots gets no kit types") {
  test::TempDir dir;
  auto study = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  for (auto& r : study["roles"])
    if (r["id"] == "study-manager") r["permissions"].push_back("manage_supply");  // blinded, may read lots
  test::write_file(dir / "study.json", study.dump());
  HubFixture f((dir / "study.json").string());
  test::HubApiServer api(*f.hub);
  add_supply_user(f, "stu", "study-manager");
  add_supply_user(f, "sam", "supply-manager");
  auto blinded = test::hub_call(api.port(), "GET", "/api/v1/lots", test::hub_login(api.port(), "stu", test::kUserPassword));
  REQUIRE_MESSAGE(blinded.status == 200, blinded.text);
  REQUIRE(blinded.body["lots"].size() == 3);
  for (const auto& l : blinded.body["lots"]) CHECK_FALSE(l.contains("kit_types"));
  for (const auto& kt : f.hub->study().kit_types) CHECK(blinded.text.find(kt.id) == std::string::npos);
  auto open = test::hub_call(api.port(), "GET", "/api/v1/lots", test::hub_login(api.port(), "sam", test::kUserPassword));
  REQUIRE(open.status == 200);
  CHECK(open.body["lots"][0]["kit_types"].size() == 2);
}
