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
  CHECK(hub::capped_out_arms(*h.hub, node).empty());
  CHECK(hub::allowance_left(*h.hub, node, shared::CapScope::arm, "B") > 0);
  auto done = hub::amend(*h.hub, blocks_version(2, true).dump(), "arm B dropped (DMC)", kDesignManager, kHubNow + kHour);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(h.hub->study().arm_closed("B"));
  CHECK_FALSE(h.hub->study().arm_closed("A"));
  CHECK(h.hub->study().arm_closed_everywhere("B", shared::day_of_millis(kHubNow)));
  CHECK(hub::capped_out_arms(*h.hub, node).empty());  // its allowance is still held, the amendment closes it
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

TEST_CASE("an arm closed for some strata or from a date: allowances and deviations follow the closure, and it is never loosened") {
  DesignHub h;
  const auto node = h.enroll_node("101");
  const auto day = shared::day_of_millis(kHubNow);
  // Closed for diabetic participants only: the arm keeps its allowance, it still takes the others.
  auto some = blocks_version(2, false);
  some["arms"][1]["closed"] = {{"strata", {{{"diabetes", "yes"}}}}};
  auto done = hub::amend(*h.hub, some.dump(), "arm B closed for diabetics (DMC)", kDesignManager, kHubNow + kHour);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(h.hub->study().arm_closed_for("B", {{"site", "101"}, {"diabetes", "yes"}}, day));
  CHECK_FALSE(h.hub->study().arm_closed_for("B", {{"site", "101"}, {"diabetes", "no"}}, day));
  CHECK_FALSE(h.hub->study().arm_closed_everywhere("B", day));
  const auto later = h.enroll_node("102");
  CHECK(hub::allowance_left(*h.hub, later, shared::CapScope::arm, "B") > 0);

  // Loosening it (back to open, or to fewer strata or a later date) is refused; widening it is taken.
  auto narrower = blocks_version(3, false);
  narrower["arms"][1]["closed"] = {{"strata", {{{"diabetes", "yes"}, {"site", "101"}}}}};
  auto plan = hub::plan_amendment(*h.hub, narrower.dump());
  REQUIRE(plan.refusals.size() == 1);
  CHECK(plan.refusals[0].find("arms[B].closed: the arm was closed by an earlier amendment and cannot be reopened") == 0);
  CHECK(plan.refusals[0].find(R"(keep "closed": {"strata":[{"diabetes":"yes"}]} or close it wider)") !=
        std::string::npos);
  auto dated = blocks_version(3, false);
  dated["arms"][1]["closed"] = {{"from", "2031-01-01"}};
  CHECK(hub::plan_amendment(*h.hub, dated.dump()).refusals.size() == 1);
  auto wider = blocks_version(3, false);
  wider["arms"][1]["closed"] = {{"from", shared::format_date(day + 30)}};
  CHECK(hub::plan_amendment(*h.hub, wider.dump()).refusals.size() == 1);  // the strata it closed wait for the date
  auto all = blocks_version(3, true);
  auto taken = hub::plan_amendment(*h.hub, all.dump());
  CHECK(taken.refusals.empty());
  CHECK(std::find(taken.changes.begin(), taken.changes.end(), R"(arms[B].closed: {"strata":[{"diabetes":"yes"}]} -> true)") !=
        taken.changes.end());

  // A change that only closes from a date applies from that date: before it the old design still held.
  const auto from = day + 10;
  auto v1 = blocks_version(1, false);
  auto v2 = blocks_version(2, false);
  v2["arms"][1]["closed"] = {{"from", shared::format_date(from)}};
  auto s1 = shared::load_study(v1.dump()).study, s2 = shared::load_study(v2.dump()).study;
  REQUIRE(s1);
  REQUIRE(s2);
  auto change = hub::design_change_between(*s1, *s2, kHubNow, "dm", "closing B from a date");
  REQUIRE(change);
  CHECK(change->closed_arms == std::vector<std::string>{"B"});
  const std::int64_t from_ms = from * 86'400'000;
  REQUIRE(change->applies_ms == from_ms);
  CHECK(hub::old_design_deviations({*change}, "101-004", "101-N1", 1, from_ms - 1, "A").empty());
  CHECK(hub::old_design_deviations({*change}, "101-004", "101-N1", 1, from_ms, "A").size() == 1);
  CHECK(hub::old_design_deviations({*change}, "101-004", "101-N1", 2, from_ms, "B").empty());
}
