// Pocock-Simon minimization: the allocation of one participant from the
// marginal totals of the minimization factors. Used centrally by the hub (and
// by the simulator), and on nodes through offline_minimization.h, which feeds
// it share-weighted totals so that offline nodes do not herd.
//
// The score of arm k is sum_f w_f * M({(c_fj + [j == k]) / r_j}_j), where c_fj
// is the count of arm j among earlier participants sharing this participant's
// level of factor f, r_j the arm's ratio weight (so a 2:1 allocation is
// balanced when the counts are 2:1) and M the configured imbalance measure:
// range, variance or standard deviation (population form) over the arms.
// The arm with the lowest score is preferred (ties broken at random); it is
// taken with probability p, otherwise another open arm is drawn by ratio. The
// first `initial_random` participants, and anyone for whom every arm scores
// the same, are allocated at random by ratio.
//
// Random draws, in this order (part of the replay contract):
//   random phase or all tied: draw_weighted(ratio of open arms);
//   otherwise: uniform(#tied) if several arms tie for the lowest score,
//   bernoulli(p), and draw_weighted(ratio of the other open arms) if p failed.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "shared/allocation.h"
#include "shared/random_source.h"
#include "shared/result.h"
#include "shared/study.h"

namespace irt::shared {

struct MinimizationFactorLevels {
  std::string id;
  std::vector<std::string> levels;
  double weight = 1.0;
};

struct MinimizationConfig {
  Allocation allocation;
  std::vector<MinimizationFactorLevels> factors;
  ImbalanceMeasure measure = ImbalanceMeasure::range;
  double preferred_probability = 0.8;
  std::uint64_t initial_random = 0;
};

// From the study's randomization settings; invalid_input for unknown factors,
// p outside [0, 1] (p below 1/#arms would prefer the worse arms), or bad weights.
Result<MinimizationConfig> minimization_config(const Study& study);

// Counts per factor, level and arm. Counts are doubles because offline nodes
// weigh the synced totals by their share (offline_minimization.h).
class MarginalTotals {
 public:
  MarginalTotals() = default;
  explicit MarginalTotals(const MinimizationConfig& config);

  double at(std::size_t factor, std::size_t level, std::size_t arm) const;
  // Adds `weight` participants on `arm` with the given level of every factor.
  void add(std::span<const std::size_t> levels, std::size_t arm, double weight = 1.0);
  // Adds to a single cell, leaving participants() alone (baselines).
  void add_cell(std::size_t factor, std::size_t level, std::size_t arm, double amount);
  // this = a * this + b * other (same shape).
  void combine(double a, const MarginalTotals& other, double b);
  double participants() const { return participants_; }
  std::size_t arms() const { return arms_; }
  const std::vector<double>& raw() const { return counts_; }
  bool same_shape(const MarginalTotals& other) const { return offsets_ == other.offsets_ && arms_ == other.arms_; }

  friend bool operator==(const MarginalTotals&, const MarginalTotals&) = default;

 private:
  friend struct MarginalTotalsAccess;
  std::vector<std::size_t> offsets_;  // first level's row of each factor
  std::size_t arms_ = 0;
  std::vector<double> counts_;        // [row * arms + arm]
  double participants_ = 0;
};

// A participant's level index per minimization factor, from factor id -> level.
Result<std::vector<std::size_t>> minimization_levels(const MinimizationConfig& config,
                                                     const std::map<std::string, std::string>& values);

struct MinimizationDecision {
  std::size_t arm = 0;
  std::size_t preferred = 0;     // meaningful unless random_phase
  bool random_phase = false;     // initial random participants or all arms tied
  bool took_preferred = false;
  std::vector<double> scores;    // per arm; +inf for a closed arm
};

// The imbalance measure M over ratio-weighted counts.
double imbalance_measure(ImbalanceMeasure measure, std::span<const double> weighted_counts);

// Scores per arm for a participant with `levels` (see the header comment).
void minimization_scores(const MinimizationConfig& config, const MarginalTotals& totals,
                         std::span<const std::size_t> levels, std::span<double> scores);

// One allocation. open_arms (empty = all open) excludes capped arms; at least
// one arm must be open. `allocated_so_far` counts participants already
// allocated in the study, for the initial random phase.
MinimizationDecision minimize(const MinimizationConfig& config, const MarginalTotals& totals,
                              std::span<const std::size_t> levels, std::uint64_t allocated_so_far,
                              RandomSource& source, std::span<const bool> open_arms = {});

}  // namespace irt::shared
