#include "shared/randomization_simulator.h"

#include <doctest/doctest.h>

#include "randomization_fixtures.h"

using namespace irt::shared;

// The Monte Carlo checks against published and closed-form values, thousands
// of trials each, are in tests/statistics (run in the plain build); these run
// the simulator's paths on a few trials under the sanitizers.

TEST_CASE("stratified blocks report imbalance per stratum and per factor level") {
  Study s = irt::test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4});
  auto source = irt::test::seeded(91);
  auto r = simulate(s, s.randomization, SimulationSettings{.participants = 60, .runs = 200}, source);
  REQUIRE(r.ok());
  REQUIRE(r->per_stratum.size() == 6);
  CHECK(r->per_stratum[0].label == "site=101;sex=F");
  for (const auto& st : r->per_stratum) CHECK(st.mean <= 2.0);  // one partial block of 4 at most
  REQUIRE(r->per_factor_level.size() == 5);
  CHECK(r->per_factor_level[3].label == "sex=F");
  CHECK(r->mean_abs_imbalance <= 12.0);
  auto j = to_json(*r);
  CHECK(j["two_arm"]["EB"].get<double>() == r->two_arm->eb);
}

TEST_CASE("node runs of site-stratified blocks cost little balance and method specs are checked") {
  Study s = irt::test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4, 6});
  auto source = irt::test::seeded(92);
  auto r = simulate(s, s.randomization, SimulationSettings{.participants = 200, .runs = 200, .nodes = 3, .sync_every = 25},
                    source);
  REQUIRE(r.ok());
  CHECK_FALSE(r->two_arm.has_value());
  CHECK(r->mean_abs_imbalance <= 6 * 6 / 2.0);
  CHECK(r->design == "blocks:4,6 offline (3 nodes, sync every 25)");
  CHECK(parse_method("efron:p=0.4", s.randomization).error().code == Errc::invalid_input);
  CHECK(parse_method("blocks:", s.randomization).error().code == Errc::invalid_input);
  CHECK(parse_method("coin", s.randomization).error().message.find("unknown method") != std::string::npos);
  CHECK(describe_design(*parse_method("bigstick:mti=3", s.randomization)) == "bigstick:mti=3");
}

TEST_CASE("offline minimization at ten nodes runs through the simulator, and the naive mode herds more") {
  Study s = irt::test::minimization_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, 3, 0.8);
  auto run = [&](OfflineMode mode) {
    auto source = irt::test::seeded(93);
    auto r = simulate(s, s.randomization,
                      SimulationSettings{.participants = 100, .runs = 40, .nodes = 10, .sync_every = 25, .offline = mode},
                      source);
    REQUIRE(r.ok());
    CHECK(r->per_factor_level.size() == 6);
    return *r;
  };
  auto shared = run(OfflineMode::share_weighted), naive = run(OfflineMode::naive);
  CHECK(shared.design == "minimization:p=0.8 offline share-weighted (10 nodes, sync every 25)");
  CHECK(naive.design == "minimization:p=0.8 offline naive (10 nodes, sync every 25)");
  MESSAGE("mean final |imbalance| over 40 trials: share-weighted " << shared.mean_abs_imbalance << ", naive "
          << naive.mean_abs_imbalance);
  // E|N(0, 100)| = 8 for simple randomization.
  CHECK(shared.mean_abs_imbalance < 4.0);
  CHECK(shared.mean_abs_imbalance < naive.mean_abs_imbalance);
}
