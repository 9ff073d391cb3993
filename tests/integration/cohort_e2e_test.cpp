// End to end: a dose-escalation cohort opened and closed by signed hub
// decisions (irt-hub cohort open|close), with a real hub and two real nodes
// syncing over loopback. The cohort takes nobody before it opens; once open,
// a node screens into it; it closes while one node is offline: the online
// node, after its sync, is refused, while the offline node still uses the
// place it held, and that screening, made after the close, is a deviation
// at its push. The next cohort opens only after the close.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "node/site_operations.h"
#include "tests/support/cluster.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kCoordinatorPassword = "site-coordinator-password";
const std::string kCohortManagerPassword = "study-manager-password";

// study-blocks with "low" opening by decision and "high" after it, each capped at 6.
std::string escalation_study_file(test::TempDir& dir) {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  doc["cohorts"] = {{{"id", "low"}, {"name", "Low dose"}, {"opens", "by_decision"}},
                    {{"id", "high"}, {"name", "High dose"}, {"opens", "by_decision"}, {"after", "low"}}};
  doc["caps"].push_back({{"scope", "cohort"}, {"cohort", "low"}, {"limit", 6}});
  doc["caps"].push_back({{"scope", "cohort"}, {"cohort", "high"}, {"limit", 6}});
  auto path = (dir / "study.json").string();
  test::write_file(path, doc.dump(2));
  return path;
}

// Screens one eligible participant into `cohort` and, when that is allowed,
// randomizes them; the screening's refusal, if any.
shared::Status screen_and_randomize(NodeDir& n, const std::string& user, const std::string& cohort) {
  test::SiteSession s(n, user, kCoordinatorPassword);
  s.receive_all();
  node::ScreenRequest req;
  req.factors = {{"diabetes", "no"}};
  req.eligibility.assign(s.state->domain().study()->eligibility.size(), "yes");
  req.cohort = cohort;
  auto screened = s.ops->screen(s.actor, req);
  if (!screened) return screened.error();
  auto r = s.ops->randomize(s.actor, screened->participant.number, s.password);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return {};
}

test::CommandResult cohort_decision(HubProcess& hub, const std::string& verb, const std::string& cohort,
                                    const std::string& password = kCohortManagerPassword) {
  return hub.cli({"cohort", verb, "--cohort", cohort, "--user", "manager.sam", "--reason",
                  "dose-escalation safety review of cohort " + cohort},
                 password + "\n");
}

}  // namespace

TEST_CASE("a cohort closed while a node is offline: the synced node is refused, the offline node's later screening is "
          "a deviation") {
  test::TempDir files;
  HubProcess hub(escalation_study_file(files));
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kCoordinatorPassword);
  hub.add_user("coordinator.ben", "coordinator", "102", kCoordinatorPassword);
  hub.add_user("manager.sam", "study-manager", "", kCohortManagerPassword);
  NodeDir a(hub, "101"), b(hub, "102");
  sync_ok(a);
  sync_ok(b);

  // Not opened yet: a nurse is told why, and nothing is recorded.
  auto early = screen_and_randomize(a, "coordinator.ana", "low");
  REQUIRE_FALSE(early.ok());
  CHECK(early.error().code == shared::Errc::exhausted);
  CHECK(early.error().message.find("cohort 'low' is not open for enrollment at this node") != std::string::npos);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_participants") == 0);

  // Out of order: refused, non-zero exit, nothing recorded.
  auto high_first = cohort_decision(hub, "open", "high");
  CHECK(high_first.exit_code != 0);
  CHECK(high_first.err.find("opens only after cohort low has been closed") != std::string::npos);
  auto close_first = cohort_decision(hub, "close", "low");
  CHECK(close_first.exit_code != 0);
  CHECK(close_first.err.find("never opened") != std::string::npos);
  CHECK(cohort_decision(hub, "open", "low", "not the password").exit_code != 0);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_cohort_decisions") == 0);

  auto opened = cohort_decision(hub, "open", "low");
  REQUIRE_MESSAGE(opened.exit_code == 0, opened.err);
  sync_ok(a);
  sync_ok(b);
  REQUIRE(screen_and_randomize(a, "coordinator.ana", "low").ok());
  sync_ok(a);

  // Closed while b is offline.
  auto closed = cohort_decision(hub, "close", "low");
  REQUIRE_MESSAGE(closed.exit_code == 0, closed.err);
  CHECK(closed.out.find("cohort low closed") != std::string::npos);
  sync_ok(a);
  auto refused = screen_and_randomize(a, "coordinator.ana", "low");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("not open for enrollment") != std::string::npos);
  // The offline node uses what it held, at most.
  REQUIRE(screen_and_randomize(b, "coordinator.ben", "low").ok());
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'closed_cohort'") == 0);
  sync_ok(b);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'closed_cohort'") == 1);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_cap_uses WHERE cohort = 'low' AND arm IS NOT NULL") == 2);
  CHECK_FALSE(screen_and_randomize(b, "coordinator.ben", "low").ok());

  auto list = hub.cli({"cohort", "list", "--json", "--reader", "manager.sam"}, kCohortManagerPassword + "\n");
  REQUIRE_MESSAGE(list.exit_code == 0, list.err);
  auto cohorts = json::parse(list.out);
  REQUIRE(cohorts.size() == 2);
  CHECK(cohorts[0]["state"] == "closed");
  CHECK(cohorts[0]["randomized"] == 2);
  CHECK(cohorts[0]["places_outstanding"] == 0);
  CHECK(cohorts[0]["closed_by"] == "manager.sam");
  CHECK(cohorts[1]["state"] == "not_opened");

  // Its review done, the next cohort opens and the synced node screens into it.
  auto next = cohort_decision(hub, "open", "high");
  REQUIRE_MESSAGE(next.exit_code == 0, next.err);
  sync_ok(a);
  CHECK(screen_and_randomize(a, "coordinator.ana", "high").ok());
  sync_ok(a);

  auto audit = hub.read_as_admin({"audit", "--json"});
  REQUIRE_MESSAGE(audit.exit_code == 0, audit.err);
  CHECK(audit.out.find("cohort.closed") != std::string::npos);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}
