// The offline minimization's herding target, by simulation (docs/randomization.md).
#include "shared/offline_minimization.h"

#include <doctest/doctest.h>

#include <cmath>

#include "shared/randomization_simulator.h"
#include "tests/shared/randomization_fixtures.h"

using namespace irt::shared;

namespace {

Study herding_study() { return irt::test::minimization_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, 3, 0.8); }

// The scenario: 10 nodes, 200 participants, 3 binary factors, p = 0.8, a sync every 25 allocations.
SimulationResult run(const Study& study, const Randomization& design, std::size_t nodes, OfflineMode mode,
                     std::size_t runs, OfflineDesign offline_design = kOfflineDesign) {
  auto source = irt::test::seeded(0x51);
  SimulationSettings settings{.participants = 200, .runs = runs, .nodes = nodes, .sync_every = 25, .offline = mode,
                              .offline_design = offline_design};
  auto r = simulate(study, design, settings, source);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

// The scenario and target: a mean final |imbalance| of at most 2.5
// (central minimization about 1, simple randomization about 11). Asserted with
// three standard errors of margin, and against the share-weighted baseline
// alone (no lean, no overall term) and naive offline minimization.
TEST_CASE("offline minimization with share, lean and overall term meets the herding target") {
  Study study = herding_study();
  const std::size_t runs = 2000;
  auto central = run(study, study.randomization, 1, OfflineMode::share_weighted, runs);
  auto offline = run(study, study.randomization, 10, OfflineMode::share_weighted, 4 * runs);
  auto share_only = run(study, study.randomization, 10, OfflineMode::share_weighted, runs, OfflineDesign{0.0, 0.0});
  auto naive = run(study, study.randomization, 10, OfflineMode::naive, runs);
  auto simple = run(study, *parse_method("simple", study.randomization), 1, OfflineMode::share_weighted, runs);
  MESSAGE("mean final |imbalance|: central " << central.mean_abs_imbalance << ", offline "
          << offline.mean_abs_imbalance << " +- " << offline.se_abs_imbalance << ", share-weighted baseline only "
          << share_only.mean_abs_imbalance << ", offline naive " << naive.mean_abs_imbalance << ", simple "
          << simple.mean_abs_imbalance);
  CHECK(offline.mean_abs_imbalance + 3 * offline.se_abs_imbalance <= 2.5);
  CHECK(central.mean_abs_imbalance < offline.mean_abs_imbalance);
  CHECK(offline.mean_abs_imbalance + 3 * offline.se_abs_imbalance < share_only.mean_abs_imbalance);
  CHECK(offline.mean_abs_imbalance < naive.mean_abs_imbalance);
  // E|N(0, 200)| = sqrt(400 / pi) = 11.28 for simple randomization.
  CHECK(std::abs(simple.mean_abs_imbalance - 11.28) < 4 * simple.se_abs_imbalance + 0.05);
}
