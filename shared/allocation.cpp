#include "shared/allocation.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <numeric>

namespace irt::shared {

int Allocation::ratio_sum() const { return std::accumulate(ratio.begin(), ratio.end(), 0); }

Allocation allocation_of(const Study& study) {
  Allocation a;
  for (const auto& arm : study.arms) {
    a.arms.push_back(arm.id);
    a.ratio.push_back(arm.ratio);
  }
  return a;
}

Status check_allocation(const Allocation& allocation) {
  if (allocation.size() < 2)
    return make_error(Errc::invalid_input,
                      "randomization needs at least two arms (got " + std::to_string(allocation.size()) +
                          "); add the arms to the study's \"arms\" list");
  for (std::size_t i = 0; i < allocation.ratio.size(); ++i)
    if (allocation.ratio[i] < 1)
      return make_error(Errc::invalid_input, "arms[" + std::to_string(i) +
                                                 "].ratio must be a positive integer (got " +
                                                 std::to_string(allocation.ratio[i]) + "); fix the study file");
  return {};
}

std::size_t draw_simple(RandomSource& source, const Allocation& allocation) {
  return draw_weighted(source, allocation.ratio);
}

double efron_probability(long imbalance, double p) {
  if (imbalance == 0) return 0.5;
  return imbalance < 0 ? p : 1.0 - p;
}

double big_stick_probability(long imbalance, int mti) {
  if (imbalance >= mti) return 0.0;
  if (imbalance <= -mti) return 1.0;
  return 0.5;
}

double ratio_imbalance(std::span<const long> counts, std::span<const int> ratio) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (std::size_t j = 0; j < counts.size(); ++j) {
    double v = static_cast<double>(counts[j]) / ratio[j];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return counts.empty() ? 0.0 : hi - lo;
}

}  // namespace irt::shared
