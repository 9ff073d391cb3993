#include "shared/minimization.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "randomization_fixtures.h"

using namespace irt::shared;

namespace {

std::vector<std::size_t> random_levels(RandomSource& source, const MinimizationConfig& cfg) {
  std::vector<std::size_t> levels;
  for (const auto& f : cfg.factors) levels.push_back(static_cast<std::size_t>(uniform(source, f.levels.size())));
  return levels;
}

// The configured imbalance summed over the participant's levels, after the allocation.
double imbalance_after(const MinimizationConfig& cfg, MarginalTotals t, std::span<const std::size_t> levels,
                       std::size_t arm) {
  t.add(levels, arm);
  double total = 0;
  std::vector<double> x(cfg.allocation.size());
  for (std::size_t f = 0; f < cfg.factors.size(); ++f) {
    for (std::size_t j = 0; j < x.size(); ++j) x[j] = t.at(f, levels[f], j) / cfg.allocation.ratio[j];
    total += cfg.factors[f].weight * imbalance_measure(cfg.measure, x);
  }
  return total;
}

}  // namespace

TEST_CASE("with p = 1 minimization never picks an arm that leaves more imbalance than another would") {
  for (auto measure : {ImbalanceMeasure::range, ImbalanceMeasure::variance, ImbalanceMeasure::standard_deviation}) {
    Study s = irt::test::minimization_study({{"A", "a", "T", 2}, {"B", "b", "T", 1}, {"C", "c", "T", 1}}, 4, 1.0);
    s.randomization.measure = measure;
    s.randomization.minimization_factors[1].weight = 2.5;
    auto cfg = *minimization_config(s);
    MarginalTotals totals(cfg);
    auto source = irt::test::seeded(21);
    int choices = 0;
    for (int i = 0; i < 2000; ++i) {
      auto levels = random_levels(source, cfg);
      auto d = minimize(cfg, totals, levels, static_cast<std::uint64_t>(i), source);
      double chosen = imbalance_after(cfg, totals, levels, d.arm);
      double best = chosen;
      for (std::size_t j = 0; j < 3; ++j) best = std::min(best, imbalance_after(cfg, totals, levels, j));
      CHECK(chosen <= best + 1e-9);
      choices += d.random_phase ? 0 : 1;
      totals.add(levels, d.arm);
    }
    CHECK(choices > 1000);
  }
}

TEST_CASE("with p < 1 the preferred arm is taken at rate p within sampling error") {
  Study s = irt::test::minimization_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, 3, 0.8);
  auto cfg = *minimization_config(s);
  MarginalTotals totals(cfg);
  auto source = irt::test::seeded(22);
  double preferred = 0, decided = 0;
  for (int i = 0; i < 20000; ++i) {
    auto levels = random_levels(source, cfg);
    auto d = minimize(cfg, totals, levels, static_cast<std::uint64_t>(i), source);
    if (!d.random_phase) {
      decided += 1;
      preferred += d.took_preferred ? 1 : 0;
      CHECK(d.took_preferred == (d.arm == d.preferred));
    }
    totals.add(levels, d.arm);
  }
  const double rate = preferred / decided;
  const double se = std::sqrt(0.8 * 0.2 / decided);
  CHECK(std::fabs(rate - 0.8) < 4 * se);
}

TEST_CASE("minimization honours a 2:1:1 allocation ratio") {
  Study s = irt::test::minimization_study({{"A", "a", "T", 2}, {"B", "b", "T", 1}, {"C", "c", "T", 1}}, 3, 0.8);
  auto cfg = *minimization_config(s);
  MarginalTotals totals(cfg);
  auto source = irt::test::seeded(23);
  std::array<double, 3> counts{};
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    auto levels = random_levels(source, cfg);
    auto d = minimize(cfg, totals, levels, static_cast<std::uint64_t>(i), source);
    totals.add(levels, d.arm);
    counts[d.arm] += 1;
  }
  // Minimization keeps the counts far closer to the ratio than chance would.
  CHECK(std::fabs(counts[0] - n / 2.0) < 20);
  CHECK(std::fabs(counts[1] - n / 4.0) < 20);
  CHECK(std::fabs(counts[2] - n / 4.0) < 20);
}

TEST_CASE("the first participants are allocated at random and closed arms are never chosen") {
  Study s = irt::test::minimization_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}, {"C", "c", "T", 1}}, 2, 1.0);
  s.randomization.initial_random = 10;
  auto cfg = *minimization_config(s);
  MarginalTotals totals(cfg);
  auto source = irt::test::seeded(24);
  const bool open[3] = {true, false, true};
  for (int i = 0; i < 200; ++i) {
    auto levels = random_levels(source, cfg);
    auto d = minimize(cfg, totals, levels, static_cast<std::uint64_t>(i), source, open);
    CHECK(d.random_phase == (i < 10 || d.random_phase));
    if (i < 10) CHECK(d.random_phase);
    CHECK(d.arm != 1);
    totals.add(levels, d.arm);
  }
}

TEST_CASE("minimization settings are validated with messages that say what to fix") {
  Study s = irt::test::minimization_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, 2, 0.3);
  auto r = minimization_config(s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("preferred_probability") != std::string::npos);
  s.randomization.preferred_probability = 0.8;
  s.randomization.minimization_factors.push_back({"nope", 1});
  CHECK(minimization_config(s).error().code == Errc::not_found);
}
