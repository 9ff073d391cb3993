// Design changes (hub/design_changes.h, hub/amendments.h): an amendment may
// close an arm at any time and never reopen it; the hub then grants the arm
// nothing more and counts it closed at every node; a randomization made under
// an older version after the change deviates, naming no arm.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/amendments.h"
#include "hub/cap_allowances.h"
#include "hub/design_changes.h"
#include "hub/enrollment.h"
#include "hub/users.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using nlohmann::json;
using test::kHour;
using test::kHubNow;

namespace {

const std::string kDesignManagerPassword = "design manager password 1";
const hub::Signature kDesignManager{"dm", kDesignManagerPassword};

json blocks_version(int version, bool b_closed) {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  doc["version"] = version;
  doc["caps"] = json::array({{{"scope", "arm"}, {"arm", "B"}, {"limit", 50}}});
  if (b_closed) doc["arms"][1]["closed"] = true;
  return doc;
}

struct DesignHub : test::HubFixture {
  DesignHub() : test::HubFixture(test::HubFixture::StudyText{blocks_version(1, false).dump()}) {
    auto dm = hub::add_user(*hub, {"dm", "study-manager", {}, kDesignManagerPassword}, crypto::kTest, "root", kHubNow);
    REQUIRE_MESSAGE(dm.ok(), dm.error().message);
  }
  std::string enroll_node(const std::string& site) {
    auto inv = hub::invite(*hub, site, "site", hub::kTokenValidityMs, "admin", kHubNow);
    REQUIRE_MESSAGE(inv.ok(), inv.error().message);
    auto done = hub::enroll(*hub, {inv->token, crypto::SigningKey::generate().public_key().hex(), ""}, kHubNow);
    REQUIRE_MESSAGE(done.ok(), done.refusal().message);
    return done->certificate.node_id;
  }
};

}  // namespace

TEST_CASE("an amendment closes an arm mid-study, the hub counts it closed at every node, and it is never reopened") {
  DesignHub h;
  const auto node = h.enroll_node("101");  // slots and an allowance for B granted: randomization in use
  CHECK(hub::closed_arms(*h.hub, node).empty());
  CHECK(hub::allowance_left(*h.hub, node, shared::CapScope::arm, "B") > 0);
  auto done = hub::amend(*h.hub, blocks_version(2, true).dump(), "arm B dropped (DMC)", kDesignManager, kHubNow + kHour);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(h.hub->study().arm_closed("B"));
  CHECK_FALSE(h.hub->study().arm_closed("A"));
  CHECK(hub::closed_arms(*h.hub, node) == std::vector<std::string>{"B"});
  // A node enrolled now gets no allowance for the closed arm.
  const auto later = h.enroll_node("102");
  CHECK(hub::allowance_left(*h.hub, later, shared::CapScope::arm, "B") == 0);

  auto reopen = hub::plan_amendment(*h.hub, blocks_version(3, false).dump());
  REQUIRE(reopen.refusals.size() == 1);
  CHECK(reopen.refusals[0].rfind("arms[B].closed: the arm was closed by an earlier amendment and cannot be reopened",
                                 0) == 0);
  auto all_closed = blocks_version(3, true);
  all_closed["arms"][0]["closed"] = true;
  auto plan = hub::plan_amendment(*h.hub, all_closed.dump());
  REQUIRE_FALSE(plan.errors.empty());
  CHECK(plan.errors[0].find("every arm is closed; keep at least one arm open") != std::string::npos);

  auto changes = hub::design_changes(*h.hub);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].version == 2);
  CHECK(changes[0].made_ms == kHubNow + kHour);
  CHECK(changes[0].closed_arms == std::vector<std::string>{"B"});
  CHECK(changes[0].reason == "arm B dropped (DMC)");
  auto report = hub::design_change_report(*h.hub);
  REQUIRE(report.size() == 1);
  REQUIRE(report[0].nodes.size() == 2);
  for (const auto& n : report[0].nodes) CHECK_FALSE(n.applied);  // neither has pulled since
  CHECK_FALSE(hub::to_json(report[0], false).contains("closed_arms"));
  CHECK(hub::to_json(report[0], true)["closed_arms"] == json::array({"B"}));
}

TEST_CASE("a randomization under an older version after a design change deviates once per change missed, naming no arm") {
  const std::vector<hub::DesignChange> changes = {{2, kHubNow, "dm", "arm B dropped", {"B"}}};
  // Made before the change, or under the new version: no deviation.
  CHECK(hub::old_design_deviations(changes, "101-004", "101-N1", 1, kHubNow - 1, "B").empty());
  CHECK(hub::old_design_deviations(changes, "101-004", "101-N1", 2, kHubNow + kHour, "B").empty());
  // After it, under version 1: one, whatever the arm; only the unblinded part tells them apart.
  for (const std::string arm : {"A", "B"}) {
    auto d = hub::old_design_deviations(changes, "101-004", "101-N1", 1, kHubNow + kHour, arm);
    REQUIRE(d.size() == 1);
    CHECK(d[0].subject == "version 2");
    CHECK(d[0].summary.find("participant 101-004 was randomized by node 101-N1") == 0);
    CHECK(d[0].summary.find("under study version 1, after version 2 changed the design") != std::string::npos);
    CHECK(d[0].summary.find("arm") == std::string::npos);
    CHECK(d[0].summary.find(" B") == std::string::npos);
    CHECK(d[0].unblinded == (arm == "B" ? "allocated to arm B, which version 2 closed"
                                        : "allocated to arm A, which version 2 left open"));
  }
  // An event from before the node's first study.config counts as version 1.
  CHECK(hub::old_design_deviations(changes, "101-004", "101-N1", std::nullopt, kHubNow, "A").size() == 1);
}
