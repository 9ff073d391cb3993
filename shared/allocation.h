// The allocation ratio and the sequential two-arm designs: simple (complete)
// randomization with any ratio, Efron's biased coin and the maximum tolerated
// imbalance ("big stick") design. Used by the list generator (block_list.h), by
// minimization for its random element, and by the simulator.
//
// Arms are referred to by their index in Study::arms; an arm id appears only at
// the edges (lists, events), never in an error message. Thread-safety: plain
// values and pure functions; the RandomSource is the caller's.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "shared/random_source.h"
#include "shared/result.h"
#include "shared/study.h"

namespace irt::shared {

// The study's arms in order with their ratio weights (2:1:1 -> {2, 1, 1}).
struct Allocation {
  std::vector<std::string> arms;
  std::vector<int> ratio;
  int ratio_sum() const;
  std::size_t size() const { return arms.size(); }
  bool equal_two_arms() const { return ratio.size() == 2 && ratio[0] == ratio[1]; }
};

Allocation allocation_of(const Study& study);

// Checks what the generators rely on: at least two arms, positive ratios.
Status check_allocation(const Allocation& allocation);

// Complete randomization: one draw weighted by the ratio.
std::size_t draw_simple(RandomSource& source, const Allocation& allocation);

// Two-arm designs, stated as the probability that the next participant gets
// arm 0 given the current imbalance d = n0 - n1.
// Efron (1971): 1/2 when balanced, else p for the arm that is behind.
double efron_probability(long imbalance, double p);
// Soares and Wu (1983): 1/2 while |d| < mti; at |d| = mti the arm behind is certain.
double big_stick_probability(long imbalance, int mti);

// The imbalance of counts under a ratio, in ratio-weighted participants:
// max_j n_j / r_j - min_j n_j / r_j. For two arms 1:1 this is |n0 - n1|.
double ratio_imbalance(std::span<const long> counts, std::span<const int> ratio);

}  // namespace irt::shared
