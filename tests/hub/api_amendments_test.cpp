// POST /api/v1/amendments and GET /api/v1/study/versions (hub/api_amendments.cpp)
// over real HTTP on loopback: a dry run, a signed amendment, a refused one,
// a wrong signature, and what a blinded study manager is not shown.
#include <doctest/doctest.h>

#include "hub/amendments.h"
#include "hub/enrollment.h"
#include "hub/users.h"
#include "tests/hub/hub_fixture.h"
#include "tests/support/hub_api.h"

using namespace irt;
using nlohmann::json;
using test::HubApiServer;
using test::HubFixture;
using test::hub_call;
using test::hub_login;
using test::kHubNow;

namespace {

struct Api {
  HubFixture f;
  HubApiServer api{*f.hub};
  std::string token;
  Api() {
    REQUIRE(hub::add_user(*f.hub, {"sam", "study-manager", {}, test::kUserPassword}, crypto::kTest, "tester", kHubNow).ok());
    token = hub_login(api.port(), "sam", test::kUserPassword);
  }
  test::HubReply post(const json& body) { return hub_call(api.port(), "POST", "/api/v1/amendments", token, body); }
  json versions() {
    auto r = hub_call(api.port(), "GET", "/api/v1/study/versions", token);
    REQUIRE(r.status == 200);
    return r.body["versions"];
  }
};

std::string v2_text() { return test::read_file(test::source_path("packaging/examples/study-blocks-v2.json")); }

}  // namespace

TEST_CASE("POST /api/v1/amendments with dry_run answers the diff and the verdict and changes nothing") {
  Api a;
  auto r = a.post({{"document", v2_text()}, {"dry_run", true}});
  REQUIRE_MESSAGE(r.status == 200, r.text);
  CHECK(r.body["verdict"] == "acceptable");
  CHECK(r.body["from_version"] == 1);
  CHECK(r.body["to_version"] == 2);
  CHECK(r.body["changes"] == json::array({"version: 1 -> 2", "sites: added 103 (Hôpital Nord, Marseille, FR)",
                                          "visits[V3].window_after: 3 -> 5"}));
  CHECK(a.versions().size() == 1);
  CHECK(a.f.hub->study().version == 1);
}

TEST_CASE("POST /api/v1/amendments signed makes the version current, and GET /api/v1/study/versions lists it") {
  Api a;
  auto inv = hub::invite(*a.f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(hub::enroll(*a.f.hub, {inv->token, crypto::SigningKey::generate().public_key().hex(), ""}, kHubNow).ok());
  auto r = a.post({{"document", v2_text()}, {"reason", "site 103 joins"}, {"signature", {{"password", test::kUserPassword}}}});
  REQUIRE_MESSAGE(r.status == 200, r.text);
  CHECK(r.body["approved_by"] == "sam");
  CHECK(r.body["directives"] == 1);
  CHECK(r.body["list"] == "extended");
  auto versions = a.versions();
  REQUIRE(versions.size() == 2);
  CHECK(versions[1]["version"] == 2);
  CHECK(versions[1]["loaded_by"] == "sam");
  CHECK(versions[1]["reason"] == "site 103 joins");
  CHECK(versions[1]["current"] == true);
  CHECK(hub_call(a.api.port(), "GET", "/api/v1/study", a.token).body["version"] == 2);
}

TEST_CASE("POST /api/v1/amendments refuses a wrong signature, a missing reason and a version out of turn, changing nothing") {
  Api a;
  auto wrong = a.post({{"document", v2_text()}, {"reason", "r"}, {"signature", {{"password", "not my password"}}}});
  CHECK(wrong.status == 401);
  auto no_reason = a.post({{"document", v2_text()}, {"signature", {{"password", test::kUserPassword}}}});
  CHECK(no_reason.status == 400);
  CHECK(no_reason.body["error"]["message"].get<std::string>().find("reason") != std::string::npos);
  auto doc = json::parse(v2_text());
  doc["version"] = 3;
  auto skipped = a.post({{"document", doc.dump()}, {"reason", "r"}, {"signature", {{"password", test::kUserPassword}}}});
  CHECK(skipped.status == 409);
  CHECK(skipped.body["error"]["message"].get<std::string>().find("version: must be 2") != std::string::npos);
  auto broken = a.post({{"document", "{\"id\": 1}"}, {"dry_run", true}});
  CHECK(broken.status == 400);
  CHECK(a.versions().size() == 1);
}

TEST_CASE("a blinded study manager is shown no line about arms or kit types, only how many were withheld") {
  Api a;
  auto doc = json::parse(v2_text());
  doc["kit_types"][0]["name"] = "Velcardin 25 mg, 60 tablets";
  auto r = a.post({{"document", doc.dump()}, {"dry_run", true}});
  REQUIRE_MESSAGE(r.status == 200, r.text);
  CHECK(r.body["changes"].back() == "1 line about arms or kit types withheld from a blinded role");
  CHECK(r.text.find("Velcardin") == std::string::npos);
  CHECK(r.text.find("VLC25") == std::string::npos);
}

TEST_CASE("the API answers with a version amended by another process") {
  Api a;
  auto other = hub::HubState::open(a.f.hub->paths().dir, test::kHubPassphrase);
  REQUIRE(other.ok());
  REQUIRE(hub::add_user(**other, {"sm2", "study-manager", {}, test::kUserPassword}, crypto::kTest, "tester", kHubNow).ok());
  REQUIRE(hub::amend(**other, v2_text(), "site 103 joins", {"sm2", test::kUserPassword}, kHubNow).ok());
  CHECK(hub_call(a.api.port(), "GET", "/api/v1/study", a.token).body["version"] == 2);
}

TEST_CASE("GET /api/v1/design-changes lists an arm closed by a signed amendment, naming no arm to a blinded role") {
  Api a;
  auto inv = hub::invite(*a.f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(hub::enroll(*a.f.hub, {inv->token, crypto::SigningKey::generate().public_key().hex(), ""}, kHubNow).ok());
  auto none = hub_call(a.api.port(), "GET", "/api/v1/design-changes", a.token);
  REQUIRE_MESSAGE(none.status == 200, none.text);
  CHECK(none.body["design_changes"] == json::array());
  auto doc = json::parse(v2_text());
  doc["arms"][1]["closed"] = true;
  auto r = a.post({{"document", doc.dump()}, {"reason", "arm B dropped (DMC)"},
                   {"signature", {{"password", test::kUserPassword}}}});
  REQUIRE_MESSAGE(r.status == 200, r.text);
  auto listed = hub_call(a.api.port(), "GET", "/api/v1/design-changes", a.token);
  REQUIRE_MESSAGE(listed.status == 200, listed.text);
  REQUIRE(listed.body["design_changes"].size() == 1);
  const auto& change = listed.body["design_changes"][0];
  CHECK(change["version"] == 2);
  CHECK(change["reason"] == "arm B dropped (DMC)");
  CHECK(change["arms_closed"] == 1);
  CHECK_FALSE(change.contains("closed_arms"));  // the study manager reads blinded
  REQUIRE(change["nodes"].size() == 1);
  CHECK(change["nodes"][0]["applied"] == false);
  CHECK(change["nodes"][0]["old_design_randomizations"] == 0);
}
