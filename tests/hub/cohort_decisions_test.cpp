// Tests for hub/cohort_decisions.h: the order of the signed decisions that
// open and close a cohort, their audit, places granted under its cap only
// while it is open, voided at its close, and the deviation for a screening
// made offline after the close.
#include "hub/cohort_decisions.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>

#include "hub/amendments.h"
#include "hub/audit.h"
#include "hub/cap_allowances.h"
#include "hub/deviations.h"
#include "hub/grants.h"
#include "shared/directive_payloads.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"
#include "tests/support/hub_api.h"

using namespace irt;
using nlohmann::json;
using shared::CapScope;
using test::kHour;
using test::kHubNow;

namespace {

const hub::Signature kCohortManager{"sm", "manager password 1"};
const hub::Signature kCohortAdmin{"ada", "admin password 1"};

// study-blocks with two dose cohorts: "low" opens by decision, "high" after
// "low" is closed; each capped at 6.
std::string escalation_study() {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  doc["cohorts"] = {{{"id", "low"}, {"name", "Low dose"}, {"opens", "by_decision"}},
                    {{"id", "high"}, {"name", "High dose"}, {"opens", "by_decision"}, {"after", "low"}}};
  doc["caps"].push_back({{"scope", "cohort"}, {"cohort", "low"}, {"limit", 6}});
  doc["caps"].push_back({{"scope", "cohort"}, {"cohort", "high"}, {"limit", 6}});
  return doc.dump();
}

struct EscalationHub : test::HubFixture {
  EscalationHub() : HubFixture(StudyText{escalation_study()}) {
    REQUIRE(hub::add_user(*hub, {"sm", "study-manager", {}, kCohortManager.password}, crypto::kTest, "root", kHubNow).ok());
    REQUIRE(hub::add_user(*hub, {"ada", "admin", {}, kCohortAdmin.password}, crypto::kTest, "root", kHubNow).ok());
  }
  shared::Result<hub::CohortDecisionDone> decide(const std::string& cohort, bool open, std::int64_t at = kHubNow,
                                                 const hub::Signature& who = kCohortManager) {
    return hub::decide_cohort(*hub, cohort, open, "safety review " + cohort, who, at);
  }
  hub::CohortState state(const std::string& cohort) {
    return hub::cohort_state(hub->db(), *hub->study().find_cohort(cohort));
  }
  void pull(const std::string& node) {
    storage::Transaction tx(hub->db());
    auto r = hub::top_up_grants(*hub, node, kHubNow);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    tx.commit();
  }
  // The node's latest total for the cohort, from its grant.cap_allowance directives (nullopt: never sent).
  std::optional<std::uint64_t> granted(const std::string& node, const std::string& cohort) {
    std::optional<std::uint64_t> total;
    for (const auto& j : test::directives(*this, node, shared::kGrantCapAllowanceDirective)) {
      auto g = shared::parse_cap_allowance(j.dump());
      REQUIRE_MESSAGE(g.ok(), g.error().message);
      for (const auto& a : g->allowances)
        if (a.scope == CapScope::cohort && a.id == cohort) total = a.granted;
    }
    return total;
  }
  std::size_t audit_count() { return hub::audit_entries(hub->db()).size(); }
};

// The node's `i`th participant number (from 0), from the first range it was granted.
std::string cohort_test_number(EscalationHub& f, const std::string& node, std::uint64_t i) {
  auto ranges = test::directives(f, node, shared::kGrantNumbersDirective);
  REQUIRE_FALSE(ranges.empty());
  auto r = shared::parse_number_range(ranges.front().dump());
  REQUIRE(r.ok());
  return shared::format_participant_number(r->prefix, r->digits, static_cast<std::uint32_t>(r->first + i));
}

shared::Screened screened_into(const std::string& number, const std::string& cohort) {
  auto s = test::screened(number, {{"site", "101"}, {"diabetes", "no"}});
  s.cohort = cohort;
  return s;
}

std::size_t closed_cohort_deviations(EscalationHub& f) {
  std::size_t n = 0;
  for (const auto& d : hub::deviations(*f.hub, false, false)) n += d.kind == hub::deviation_kind::kClosedCohort;
  return n;
}

}  // namespace

TEST_CASE("a cohort opened by decision is not open until the decision, and a cohort without opens is open") {
  EscalationHub f;
  CHECK(f.state("low") == hub::CohortState::not_opened);
  CHECK(f.state("high") == hub::CohortState::not_opened);
  test::HubFixture plain("packaging/examples/study-minimization.json");
  for (const auto& c : plain.hub->study().cohorts)
    CHECK(hub::cohort_state(plain.hub->db(), c) == hub::CohortState::open);
  auto r = hub::decide_cohort(*plain.hub, "pk", true, "review", kCohortManager, kHubNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("open from the start") != std::string::npos);
}

TEST_CASE("cohort decisions out of order are refused and record nothing") {
  EscalationHub f;
  const auto before = f.audit_count();
  auto r = f.decide("low", false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::conflict);
  CHECK(r.error().message.find("was never opened") != std::string::npos);
  r = f.decide("high", true);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::conflict);
  CHECK(r.error().message.find("opens only after cohort low has been closed") != std::string::npos);
  r = f.decide("mid", true);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::not_found);
  CHECK(r.error().message.find("use one of low, high") != std::string::npos);
  r = hub::decide_cohort(*f.hub, "low", true, "", kCohortManager, kHubNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::invalid_input);
  // The admin does not hold manage_study; a wrong password is no signature.
  CHECK_FALSE(f.decide("low", true, kHubNow, kCohortAdmin).ok());
  CHECK_FALSE(f.decide("low", true, kHubNow, {"sm", "not the password"}).ok());
  CHECK(f.audit_count() == before);
  CHECK(f.state("low") == hub::CohortState::not_opened);

  REQUIRE(f.decide("low", true).ok());
  const auto opened = f.audit_count();
  r = f.decide("low", true);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("already open") != std::string::npos);
  REQUIRE(f.decide("low", false).ok());
  r = f.decide("low", true);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("does not open again") != std::string::npos);
  r = f.decide("low", false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("already closed") != std::string::npos);
  CHECK(f.audit_count() == opened + 1);  // the close, and nothing for the refusals
  // Its review done, the next cohort opens.
  REQUIRE(f.decide("high", true).ok());
  CHECK(f.state("low") == hub::CohortState::closed);
  CHECK(f.state("high") == hub::CohortState::open);
}

TEST_CASE("each cohort decision is audited with its signer, reason, old and new state") {
  EscalationHub f;
  auto open = f.decide("low", true);
  REQUIRE(open.ok());
  auto close = f.decide("low", false, kHubNow + kHour);
  REQUIRE(close.ok());
  CHECK(close->decision_id > open->decision_id);
  std::vector<hub::AuditEntry> seen;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "cohort.opened" || e.action == "cohort.closed") seen.push_back(e);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].action == "cohort.opened");
  CHECK(seen[0].actor == "sm");
  CHECK(seen[0].subject == "low");
  CHECK(seen[0].reason.find("safety review low") == 0);
  CHECK(seen[0].old_value == "not_opened");
  CHECK(seen[0].new_value.rfind("open;", 0) == 0);
  CHECK(seen[0].signature == "approved");
  CHECK(seen[1].action == "cohort.closed");
  CHECK(seen[1].at_ms == kHubNow + kHour);
  CHECK(seen[1].old_value == "open");
  CHECK(seen[1].new_value.rfind("closed;", 0) == 0);
  auto standing = hub::cohort_standing(*f.hub);
  REQUIRE(standing.size() == 2);
  CHECK(standing[0].opened_by == "sm");
  CHECK(standing[0].closed_ms == kHubNow + kHour);
  CHECK(hub::to_json(standing[1])["state"] == "not_opened");
  CHECK(hub::to_json(standing[1])["after"] == "low");
}

TEST_CASE("a cohort's places are granted to nodes only while it is open") {
  EscalationHub f;
  auto node = test::enroll(f, "101");
  // Enrolled before the opening: no place in either cohort.
  CHECK_FALSE(f.granted(node.id, "low"));
  f.pull(node.id);
  CHECK_FALSE(f.granted(node.id, "low"));
  REQUIRE(f.decide("low", true).ok());
  f.pull(node.id);
  REQUIRE(f.granted(node.id, "low"));
  CHECK(*f.granted(node.id, "low") > 0);
  CHECK_FALSE(f.granted(node.id, "high"));
  // A node enrolled while it is open gets places at once.
  auto other = test::enroll(f, "102");
  REQUIRE(f.granted(other.id, "low"));
  CHECK(*f.granted(other.id, "low") > 0);
  for (const auto& c : hub::cap_standing(*f.hub)) CHECK(c.used + c.outstanding <= c.limit);
}

TEST_CASE("closing a cohort voids every node's unused places and tells each node it holds none") {
  EscalationHub f;
  REQUIRE(f.decide("low", true).ok());
  auto a = test::enroll(f, "101");
  auto b = test::enroll(f, "102");
  const auto held = *f.granted(a.id, "low") + *f.granted(b.id, "low");
  REQUIRE(held > 0);
  // Node a screens and randomizes nobody yet: everything it holds is unused.
  auto done = f.decide("low", false);
  REQUIRE(done.ok());
  CHECK(done->places_voided == held);
  CHECK(done->directives.size() == 2);
  CHECK(f.granted(a.id, "low") == 0u);
  CHECK(f.granted(b.id, "low") == 0u);
  CHECK(hub::allowance_left(*f.hub, a.id, CapScope::cohort, "low") == 0);
  for (const auto& c : hub::cap_standing(*f.hub))
    if (c.scope == CapScope::cohort && c.id == "low") CHECK(c.outstanding == 0);
  // Later pulls grant nothing more in the closed cohort.
  const auto directives = test::directives(f, a.id, shared::kGrantCapAllowanceDirective).size();
  f.pull(a.id);
  CHECK(test::directives(f, a.id, shared::kGrantCapAllowanceDirective).size() == directives);
  CHECK(f.granted(a.id, "low") == 0u);
  std::size_t voided = 0;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    voided += e.action == "grant.cap_allowance_voided" && e.reason.find("cohort low closed") == 0;
  CHECK(voided == 2);
}

TEST_CASE("a screening into a closed cohort made after the close is a closed_cohort deviation") {
  EscalationHub f;
  REQUIRE(f.decide("low", true, kHubNow - 3 * kHour).ok());
  auto node = test::enroll(f, "101");
  // Screened offline before the close (pushed after it): no deviation.
  REQUIRE(f.decide("low", false, kHubNow - kHour).ok());
  node.device_time_ms = kHubNow - 2 * kHour;
  node.push(f, shared::kScreenedEvent, json(screened_into(cohort_test_number(f, node.id, 0), "low")));
  test::consume(f, node.id);
  CHECK(closed_cohort_deviations(f) == 0);
  // Screened after the close by the node's clock: kept, and a deviation.
  node.device_time_ms = kHubNow;
  const auto late = cohort_test_number(f, node.id, 1);
  node.push(f, shared::kScreenedEvent, json(screened_into(late, "low")));
  test::consume(f, node.id);
  REQUIRE(closed_cohort_deviations(f) == 1);
  auto d = hub::deviations(*f.hub, true, false).back();
  CHECK(d.subject == late);
  CHECK(d.node_id == node.id);
  CHECK(d.summary.find("after the cohort was closed") != std::string::npos);
  // Read again, it raises nothing new.
  test::consume(f, node.id);
  CHECK(closed_cohort_deviations(f) == 1);
  CHECK(hub::cohort_standing(*f.hub)[0].screened == 2);
}

TEST_CASE("POST /api/v1/cohorts/{id}/open and close are signed decisions refused out of order, and GET lists the state") {
  EscalationHub f;
  test::HubApiServer api{*f.hub};
  const auto token = test::hub_login(api.port(), "sm", kCohortManager.password);
  const json signed_by_sm = {{"reason", "dose-escalation review"}, {"signature", {{"password", kCohortManager.password}}}};
  auto early = test::hub_call(api.port(), "POST", "/api/v1/cohorts/high/open", token, signed_by_sm);
  CHECK(early.status == 409);
  CHECK(early.body["error"]["message"].get<std::string>().find("opens only after cohort low") != std::string::npos);
  auto unsigned_ = test::hub_call(api.port(), "POST", "/api/v1/cohorts/low/open", token,
                                  {{"reason", "r"}, {"signature", {{"password", "not my password"}}}});
  CHECK(unsigned_.status == 401);
  CHECK(test::hub_call(api.port(), "POST", "/api/v1/cohorts/mid/open", token, signed_by_sm).status == 404);
  CHECK(f.state("low") == hub::CohortState::not_opened);
  auto opened = test::hub_call(api.port(), "POST", "/api/v1/cohorts/low/open", token, signed_by_sm);
  REQUIRE_MESSAGE(opened.status == 200, opened.text);
  CHECK(opened.body["old_state"] == "not_opened");
  CHECK(opened.body["state"] == "open");
  CHECK(opened.body["signed_by"] == "sm");
  CHECK(test::hub_call(api.port(), "POST", "/api/v1/cohorts/low/open", token, signed_by_sm).status == 409);
  auto list = test::hub_call(api.port(), "GET", "/api/v1/cohorts", token);
  REQUIRE(list.status == 200);
  CHECK(list.body["cohorts"][0]["state"] == "open");
  CHECK(list.body["cohorts"][0]["opened_by"] == "sm");
  CHECK(list.body["cohorts"][1]["state"] == "not_opened");
  // The admin holds neither manage_study nor view_participants.
  const auto admin = test::hub_login(api.port(), "ada", kCohortAdmin.password);
  CHECK(test::hub_call(api.port(), "POST", "/api/v1/cohorts/low/close", admin,
                       {{"reason", "r"}, {"signature", {{"password", kCohortAdmin.password}}}})
            .status == 403);
  CHECK(test::hub_call(api.port(), "GET", "/api/v1/cohorts", admin).status == 403);
}

TEST_CASE("an amendment changes a cohort's opens only where no node is caught out: never a closed or a held cohort") {
  auto amended = [](const hub::HubState& h, const std::function<void(json&)>& change) {
    auto doc = json::parse(h.study_document());
    doc["version"] = doc["version"].get<int>() + 1;
    change(doc);
    return doc.dump();
  };
  auto refusals = [](hub::HubState& h, const std::string& doc) {
    auto plan = hub::plan_amendment(h, doc);
    REQUIRE_MESSAGE(plan.errors.empty(), plan.errors.front());
    return plan.refusals;
  };
  auto mentions = [](const std::vector<std::string>& lines, const std::string& part) {
    return std::any_of(lines.begin(), lines.end(), [&](const auto& l) { return l.find(part) != std::string::npos; });
  };
  EscalationHub f;
  // "high" (not opened) may open from the start: a signed amendment drops its review.
  const auto high_at_start = amended(*f.hub, [](json& d) { d["cohorts"][1] = {{"id", "high"}, {"name", "High dose"}}; });
  CHECK(refusals(*f.hub, high_at_start).empty());
  // "low", once closed by a decision, is closed for good.
  REQUIRE(f.decide("low", true).ok());
  REQUIRE(f.decide("low", false).ok());
  const auto low_at_start = amended(*f.hub, [](json& d) {
    d["cohorts"] = {{{"id", "low"}, {"name", "Low dose"}}, {{"id", "high"}, {"name", "High dose"}, {"opens", "by_decision"}}};
  });
  auto closed = refusals(*f.hub, low_at_start);
  REQUIRE(closed.size() == 1);
  CHECK(closed.front().rfind("cohorts[low].opens: changed from \"by_decision\", but a decision closed the cohort", 0) == 0);
  auto done = hub::amend(*f.hub, low_at_start, "drop the review", kCohortManager, kHubNow + test::kHour);
  REQUIRE_FALSE(done.ok());
  CHECK(done.error().code == shared::Errc::conflict);
  CHECK(f.hub->study().version == 1);

  // A cohort open from the start turns "by decision" only while no node holds the study.
  auto open_doc = json::parse(escalation_study());
  open_doc["cohorts"] = {{{"id", "low"}, {"name", "Low dose"}}};
  open_doc["caps"].erase(open_doc["caps"].size() - 1);
  test::HubFixture plain(test::HubFixture::StudyText{open_doc.dump()});
  REQUIRE(hub::add_user(*plain.hub, {"sm", "study-manager", {}, kCohortManager.password}, crypto::kTest, "root", kHubNow).ok());
  const auto by_decision = amended(*plain.hub, [](json& d) { d["cohorts"][0]["opens"] = "by_decision"; });
  CHECK(refusals(*plain.hub, by_decision).empty());
  test::enroll(plain, "101");
  auto held = refusals(*plain.hub, by_decision);
  REQUIRE(held.size() == 1);
  CHECK(mentions(held, "cohorts[low].opens: changed to \"by_decision\", but the cohort is open from the start and "
                       "enrolled nodes hold it open"));
}
