// Runs `irt-hub simulate supply` on the reference study and scenario (docs/supply.md).
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

using irt::test::run;
using irt::test::source_path;
using nlohmann::json;

namespace {

std::string example(const std::string& name) { return source_path("packaging/examples/" + name); }
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
const std::string kSeed(64, 'c');

// The reference scenario made small, so that a run takes a moment.
json small_scenario() {
  json sc = json::parse(irt::test::read_file(example("supply-reference-scenario.json")));
  sc["participants"] = 40;
  sc["sites"]["count"] = 6;
  sc["strategy"] = {sc["strategy"][1], sc["strategy"][5]};
  return sc;
}

}  // namespace

TEST_CASE("simulate supply prints every metric per strategy, the same for the same seed, and JSON") {
  irt::test::TempDir dir;
  const auto scenario = (dir / "scenario.json").string();
  irt::test::write_file(scenario, small_scenario().dump());
  std::vector<std::string> args = {IRT_HUB_BIN, "simulate", "supply", "--study", example("supply-reference.json"),
                                   "--scenario", scenario, "--runs", "3", "--seed", kSeed};
  auto r = run(args);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "40 participants, allocation node_slices, 3 runs"));
  CHECK(contains(r.out, "\nmin/max 3/6\n  kits_shipped "));
  CHECK(contains(r.out, "\npredictive 14/42 days, buffers 2-2\n  kits_shipped "));
  CHECK(contains(r.out, "  stockouts_per_1000_visits "));
  CHECK(r.err.empty());  // progress only on a terminal
  CHECK(run(args).out == r.out);
  args.push_back("--json");
  auto j = json::parse(run(args).out);
  CHECK(j["runs"] == 3);
  REQUIRE(j["strategies"].size() == 2);
  for (const char* name : {"kits_shipped", "kits_dispensed", "kits_expired", "kits_left_at_sites", "overage_percent",
                           "waste_percent", "participants_lost_percent", "stockouts_per_1000_visits", "shipments",
                           "days_to_last_randomization", "cost"}) {
    CHECK(j["strategies"][1]["metrics"][name].contains("mean"));
    CHECK(j["strategies"][1]["metrics"][name].contains("sd"));
  }
  args.push_back("--allocation");
  args.push_back("central_list");
  auto central = json::parse(run(args).out);
  CHECK(central != j);
}

TEST_CASE("simulate supply refuses a scenario with its problems' paths, and a malformed seed") {
  irt::test::TempDir dir;
  const auto scenario = (dir / "scenario.json").string();
  json sc = small_scenario();
  sc["strategy"][0]["up_to"] = 2;
  sc["review_every_days"] = 0;
  irt::test::write_file(scenario, sc.dump());
  auto r = run({IRT_HUB_BIN, "simulate", "supply", "--study", example("supply-reference.json"), "--scenario", scenario,
                "--runs", "1", "--seed", kSeed});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, scenario + ": review_every_days: must be a number of days, 1 to 365 (got 0)"));
  CHECK(contains(r.err, scenario + ": strategy[0].trigger: must be below up_to for kit type \"KA\" (got 3, up_to 2)"));
  CHECK(contains(r.err, scenario + ": the scenario was not loaded"));
  auto seed = run({IRT_HUB_BIN, "simulate", "supply", "--study", example("supply-reference.json"), "--scenario",
                   example("supply-reference-scenario.json"), "--runs", "1", "--seed", "12"});
  CHECK(seed.exit_code == 2);
  CHECK(contains(seed.err, "--seed must be 64 hex digits"));
}
