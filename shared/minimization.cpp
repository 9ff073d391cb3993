#include "shared/minimization.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

#include "shared/block_list.h"

namespace irt::shared {

Result<MinimizationConfig> minimization_config(const Study& study) {
  MinimizationConfig cfg;
  cfg.allocation = allocation_of(study);
  if (auto st = check_allocation(cfg.allocation); !st) return st.error();
  const auto& r = study.randomization;
  if (r.minimization_factors.empty())
    return make_error(Errc::invalid_input,
                      "minimization needs at least one factor; set randomization.minimization_factors");
  std::set<std::string> seen;
  for (const auto& f : r.minimization_factors) {
    if (!seen.insert(f.factor).second)
      return make_error(Errc::invalid_input,
                        "minimization factor '" + f.factor + "' is listed twice; list each factor once");
    if (!(f.weight > 0) || !std::isfinite(f.weight))
      return make_error(Errc::invalid_input, "minimization factor '" + f.factor +
                                                 "' needs a positive weight; set its \"weight\"");
    auto levels = factor_levels(study, f.factor);
    if (!levels) return levels.error();
    cfg.factors.push_back({f.factor, std::move(*levels), f.weight});
  }
  if (!(r.preferred_probability >= 1.0 / static_cast<double>(cfg.allocation.size()) && r.preferred_probability <= 1.0))
    return make_error(Errc::invalid_input, "randomization.preferred_probability must lie between 1/(number of arms) "
                                           "and 1 (got " + std::to_string(r.preferred_probability) + ")");
  if (r.initial_random < 0)
    return make_error(Errc::invalid_input, "randomization.initial_random must not be negative");
  cfg.measure = r.measure;
  cfg.preferred_probability = r.preferred_probability;
  cfg.initial_random = static_cast<std::uint64_t>(r.initial_random);
  return cfg;
}

MarginalTotals::MarginalTotals(const MinimizationConfig& config) : arms_(config.allocation.size()) {
  std::size_t rows = 0;
  for (const auto& f : config.factors) {
    offsets_.push_back(rows);
    rows += f.levels.size();
  }
  counts_.assign(rows * arms_, 0.0);
}

double MarginalTotals::at(std::size_t factor, std::size_t level, std::size_t arm) const {
  return counts_[(offsets_[factor] + level) * arms_ + arm];
}

void MarginalTotals::add(std::span<const std::size_t> levels, std::size_t arm, double weight) {
  for (std::size_t f = 0; f < levels.size(); ++f) counts_[(offsets_[f] + levels[f]) * arms_ + arm] += weight;
  participants_ += weight;
}

void MarginalTotals::add_cell(std::size_t factor, std::size_t level, std::size_t arm, double amount) {
  counts_[(offsets_[factor] + level) * arms_ + arm] += amount;
}

void MarginalTotals::combine(double a, const MarginalTotals& other, double b) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] = a * counts_[i] + b * other.counts_[i];
  participants_ = a * participants_ + b * other.participants_;
}

Result<std::vector<std::size_t>> minimization_levels(const MinimizationConfig& config,
                                                     const std::map<std::string, std::string>& values) {
  std::vector<std::size_t> out;
  for (const auto& f : config.factors) {
    auto it = values.find(f.id);
    if (it == values.end())
      return make_error(Errc::invalid_input,
                        "the participant has no value for minimization factor '" + f.id + "'; record it first");
    auto l = std::find(f.levels.begin(), f.levels.end(), it->second);
    if (l == f.levels.end())
      return make_error(Errc::invalid_input, "'" + it->second + "' is not a level of factor '" + f.id +
                                                 "'; use one of the levels configured in the study");
    out.push_back(static_cast<std::size_t>(l - f.levels.begin()));
  }
  return out;
}

double imbalance_measure(ImbalanceMeasure measure, std::span<const double> x) {
  if (x.empty()) return 0;
  if (measure == ImbalanceMeasure::range) {
    auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    return *hi - *lo;
  }
  double mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  double var = ss / static_cast<double>(x.size());
  return measure == ImbalanceMeasure::variance ? var : std::sqrt(var);
}

void minimization_scores(const MinimizationConfig& config, const MarginalTotals& totals,
                         std::span<const std::size_t> levels, std::span<double> scores) {
  const std::size_t arms = config.allocation.size();
  double weighted[64];
  if (arms > 64) throw std::invalid_argument("minimization supports at most 64 arms");
  for (std::size_t k = 0; k < arms; ++k) {
    double g = 0;
    for (std::size_t f = 0; f < config.factors.size(); ++f) {
      for (std::size_t j = 0; j < arms; ++j)
        weighted[j] = (totals.at(f, levels[f], j) + (j == k ? 1.0 : 0.0)) / config.allocation.ratio[j];
      g += config.factors[f].weight * imbalance_measure(config.measure, std::span<const double>(weighted, arms));
    }
    scores[k] = g;
  }
}

namespace {

// Scores closer than this are ties: they differ only by rounding of the
// ratio divisions and share weights, and a tie must not depend on it.
bool same_score(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)}); }

}  // namespace

MinimizationDecision minimize(const MinimizationConfig& config, const MarginalTotals& totals,
                              std::span<const std::size_t> levels, std::uint64_t allocated_so_far,
                              RandomSource& source, std::span<const bool> open_arms) {
  const std::size_t arms = config.allocation.size();
  if (levels.size() != config.factors.size())
    throw std::invalid_argument("minimize: one level per minimization factor is required");
  auto is_open = [&](std::size_t j) { return open_arms.empty() || open_arms[j]; };
  MinimizationDecision d;
  d.scores.assign(arms, 0.0);
  minimization_scores(config, totals, levels, d.scores);
  std::vector<int> weights(arms, 0);
  std::size_t n_open = 0;
  for (std::size_t j = 0; j < arms; ++j) {
    if (is_open(j)) {
      weights[j] = config.allocation.ratio[j];
      ++n_open;
    } else {
      d.scores[j] = std::numeric_limits<double>::infinity();
    }
  }
  if (n_open == 0) throw std::invalid_argument("minimize: every arm is closed");

  double best = std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < arms; ++j)
    if (is_open(j)) best = std::min(best, d.scores[j]);
  std::vector<std::size_t> tied;
  for (std::size_t j = 0; j < arms; ++j)
    if (is_open(j) && same_score(d.scores[j], best)) tied.push_back(j);

  if (allocated_so_far < config.initial_random || tied.size() == n_open) {
    d.random_phase = true;
    d.arm = draw_weighted(source, weights);
    return d;
  }
  d.preferred = tied.size() == 1 ? tied[0] : tied[static_cast<std::size_t>(uniform(source, tied.size()))];
  if (bernoulli(source, config.preferred_probability)) {
    d.arm = d.preferred;
    d.took_preferred = true;
    return d;
  }
  weights[d.preferred] = 0;
  d.arm = draw_weighted(source, weights);
  return d;
}

}  // namespace irt::shared
