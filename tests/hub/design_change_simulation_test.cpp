#include "hub/design_change_simulation.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/shared/randomization_fixtures.h"

using namespace irt;
using hub::ChangeInRun;
using hub::DesignChangeSettings;
using hub::SimulatedChange;

namespace {

// Arms A, B, C 1:1:1 in blocks of 6, six strata (site x sex).
shared::Study three_arms() { return test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}, {"C", "c", "T", 1}}, {6}); }
shared::Study two_arms() { return test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4}); }

std::vector<SimulatedChange> changes_of(std::vector<std::string> specs) {
  std::vector<SimulatedChange> out;
  for (const auto& s : specs) {
    auto c = hub::parse_simulated_change(s);
    REQUIRE_MESSAGE(c.ok(), c.error().message);
    out.push_back(*c);
  }
  return out;
}

hub::DesignChangeSimulation simulated(const shared::Study& study, std::vector<std::string> specs, std::size_t nodes,
                                      std::size_t sync_every, std::size_t participants = 300) {
  auto source = test::seeded(7);
  auto sim = hub::simulate_design_changes(study, changes_of(std::move(specs)),
                                          DesignChangeSettings{participants, 20, nodes, sync_every}, source);
  REQUIRE_MESSAGE(sim.ok(), sim.error().message);
  return std::move(*sim);
}

std::size_t total(const std::vector<ChangeInRun>& runs, std::size_t ChangeInRun::*field) {
  std::size_t t = 0;
  for (const auto& r : runs) t += r.*field;
  return t;
}

double mean_imbalance(const std::vector<ChangeInRun>& runs) {
  double t = 0;
  for (const auto& r : runs) t += r.open_imbalance;
  return t / static_cast<double>(runs.size());
}

}  // namespace

TEST_CASE("a change parses from its spec, and a malformed one is refused naming the syntax") {
  auto ratio = hub::parse_simulated_change("ratio A:B 2:1 blocks 6,9 at 200");
  REQUIRE(ratio.ok());
  CHECK(ratio->kind == SimulatedChange::Kind::ratio);
  CHECK(ratio->arms == std::vector<std::string>{"A", "B"});
  CHECK(ratio->ratio == std::vector<int>{2, 1});
  CHECK(ratio->block_sizes == std::vector<int>{6, 9});
  CHECK(ratio->at == 200);
  auto add = hub::parse_simulated_change("add C:2 at 150");
  REQUIRE(add.ok());
  CHECK((add->kind == SimulatedChange::Kind::add && add->ratio == std::vector<int>{2}));
  for (const char* bad : {"close B", "close B at 0", "ratio A:B 2 at 10", "drop B at 10", "close B blocks 4 at 10"}) {
    auto c = hub::parse_simulated_change(bad);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == shared::Errc::invalid_input);
    CHECK(c.error().message.find("'close B at 120'") != std::string::npos);
  }
}

TEST_CASE("a change that does not apply to the study is refused before any run") {
  auto source = test::seeded(1);
  auto unknown = hub::simulate_design_changes(three_arms(), changes_of({"close Z at 10"}), {100, 1, 2, 10}, source);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("no arm Z; the study's arms are A, B, C") != std::string::npos);
  auto late = hub::simulate_design_changes(three_arms(), changes_of({"close B at 100"}), {100, 1, 2, 10}, source);
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().message.find("raise --participants") != std::string::npos);
  auto twice = hub::simulate_design_changes(two_arms(), changes_of({"close B at 10", "close A at 20"}), {100, 1, 2, 10}, source);
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().message.find("last open arm") != std::string::npos);
  auto unbalanced = hub::simulate_design_changes(two_arms(), changes_of({"ratio A:B 2:1 at 10"}), {100, 1, 2, 10}, source);
  REQUIRE_FALSE(unbalanced.ok());
  CHECK(unbalanced.error().message.find("--change 'ratio A:B 2:1 at 10'") != std::string::npos);
  auto minimizing = test::minimization_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, 2, 0.8);
  auto refused = hub::simulate_design_changes(minimizing, changes_of({"close B at 10"}), {100, 1, 2, 10}, source);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("minimizes") != std::string::npos);
}

TEST_CASE("closing an arm: nodes that sync at every allocation never allocate it after, offline ones do until they sync") {
  // Synced after every allocation: the close reaches every node at once.
  auto synced = simulated(three_arms(), {"close B at 120"}, 3, 1);
  REQUIRE(synced.changes.size() == 1);
  const auto& now = synced.changes.front();
  CHECK_FALSE(now.segment);
  REQUIRE(now.runs.size() == 20);
  for (const auto& r : now.runs) {
    CHECK(r.allocations == 180);
    CHECK(r.old_design == 0);
    CHECK(r.to_closed == 0);
  }
  // Every 50 allocations: the close at 120 reaches the nodes at the sync at
  // 150 (or when one needs slots), so at most 30 allocations per run are
  // made under the old design, some of them to B.
  auto offline = simulated(three_arms(), {"close B at 120"}, 3, 50);
  const auto& late = offline.changes.front();
  for (const auto& r : late.runs) {
    CHECK(r.old_design <= 30);
    CHECK(r.to_closed <= r.old_design);
  }
  CHECK(total(late.runs, &ChangeInRun::old_design) > 0);
  CHECK(total(late.runs, &ChangeInRun::to_closed) > 0);
  CHECK(total(late.runs, &ChangeInRun::to_closed) < total(late.runs, &ChangeInRun::old_design));
}

TEST_CASE("a ratio change continues the list with a segment whose ratio the allocations after it follow") {
  auto synced = simulated(two_arms(), {"ratio A:B 2:1 blocks 6 at 100"}, 3, 1);
  const auto& change = synced.changes.front();
  CHECK(change.segment);
  CHECK(change.version == 4);
  CHECK(total(change.runs, &ChangeInRun::old_design) == 0);
  // 200 allocations after it: at 2:1 about 133 A and 67 B (imbalance in
  // ratio-weighted participants near 0); still at 1:1 they would be 100 and
  // 100, an imbalance of 50.
  CHECK(mean_imbalance(change.runs) < 10);
  auto offline = simulated(two_arms(), {"ratio A:B 2:1 blocks 6 at 120"}, 4, 50);
  const auto& late = offline.changes.front();
  for (const auto& r : late.runs) CHECK(r.old_design <= 30);
  CHECK(total(late.runs, &ChangeInRun::old_design) > 0);
  CHECK(total(late.runs, &ChangeInRun::to_closed) == 0);
}

TEST_CASE("an added arm gets its share after the change, and two changes are each judged on their own") {
  auto sim = simulated(two_arms(), {"add C blocks 6 at 90", "close A at 200"}, 2, 1, 320);
  REQUIRE(sim.changes.size() == 2);
  CHECK(sim.changes[0].segment);
  CHECK_FALSE(sim.changes[1].segment);
  CHECK(sim.changes[0].version == 4);
  CHECK(sim.changes[1].version == 5);
  for (const auto& r : sim.changes[0].runs) CHECK(r.allocations == 110);
  for (const auto& r : sim.changes[1].runs) {
    CHECK(r.allocations == 120);
    CHECK(r.to_closed == 0);
  }
  // Without C's slots the imbalance over A, B and C would be about 55 (55 A,
  // 55 B, 0 C); the segment's blocks of 6 keep it near the A and B slots
  // left in the old blocks the nodes had started (finished as they are).
  CHECK(mean_imbalance(sim.changes[0].runs) < 20);
  CHECK(mean_imbalance(sim.changes[1].runs) < 10);
}
