#include "shared/forecast.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <numeric>

namespace irt::shared {

namespace {

double normal_variate(RandomSource& s) {
  double u1 = 1.0 - unit(s);
  double u2 = unit(s);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// The day T at which sum_i rates[i] x max(0, T - starts[i]) reaches `target`
// (> 0): the cumulative rate is piecewise linear, rising at each start.
std::optional<double> day_reaching(std::vector<std::pair<double, double>> start_rate, double target) {
  std::sort(start_rate.begin(), start_rate.end());
  double day = 0, reached = 0, slope = 0;
  for (std::size_t i = 0; i <= start_rate.size(); ++i) {
    const double next = i < start_rate.size() ? start_rate[i].first : std::numeric_limits<double>::infinity();
    if (slope > 0 && reached + slope * (next - day) >= target) return day + (target - reached) / slope;
    if (i == start_rate.size()) break;
    reached += slope * (next - day);
    day = next;
    slope += start_rate[i].second;
  }
  return std::nullopt;
}

double start_of(const SiteOutlook& s) { return std::max(0.0, s.starts_in_days); }

}  // namespace

RateEstimate estimate_rate(double prior_rate_per_day, double prior_weight_days, std::uint64_t randomized,
                           double days_active) {
  return {prior_rate_per_day * prior_weight_days + static_cast<double>(randomized),
          prior_weight_days + std::max(0.0, days_active)};
}

double gamma_variate(RandomSource& s, double shape) {
  if (shape < 1.0) return gamma_variate(s, shape + 1.0) * std::pow(1.0 - unit(s), 1.0 / shape);
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = normal_variate(s), v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = unit(s);
    if (u < 1.0 - 0.0331 * x * x * x * x || std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

std::optional<double> expected_completion_day(const std::vector<SiteOutlook>& sites, double remaining) {
  if (remaining <= 0) return 0.0;
  std::vector<std::pair<double, double>> start_rate;
  for (const auto& s : sites) start_rate.emplace_back(start_of(s), s.rate.mean());
  return day_reaching(std::move(start_rate), remaining);
}

std::optional<CompletionInterval> completion_interval(const std::vector<SiteOutlook>& sites,
                                                      std::uint64_t remaining, int runs, RandomSource& source) {
  const bool any = std::any_of(sites.begin(), sites.end(), [](const SiteOutlook& s) {
    return s.rate.shape > 0 && s.rate.rate > 0;
  });
  if (!any || runs < 1) return std::nullopt;
  if (remaining == 0) return CompletionInterval{};
  std::vector<double> days;
  days.reserve(static_cast<std::size_t>(runs));
  std::vector<std::pair<double, double>> start_rate(sites.size());
  for (int r = 0; r < runs; ++r) {
    for (std::size_t i = 0; i < sites.size(); ++i) {
      const auto& e = sites[i].rate;
      const double rate = e.shape > 0 && e.rate > 0 ? gamma_variate(source, e.shape) / e.rate : 0.0;
      start_rate[i] = {start_of(sites[i]), rate};
    }
    const double gaps = gamma_variate(source, static_cast<double>(remaining));
    days.push_back(day_reaching(start_rate, gaps).value_or(std::numeric_limits<double>::infinity()));
  }
  std::sort(days.begin(), days.end());
  auto percentile = [&](double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(runs)));
    return days[std::clamp<std::size_t>(rank, 1, days.size()) - 1];
  };
  return CompletionInterval{percentile(0.10), percentile(0.50), percentile(0.90)};
}

double kits_needed_before(const SiteDemand& demand, const std::string& kit_type, double x) {
  double kits = 0;
  for (const auto& s : demand.scheduled)
    if ((kit_type.empty() || s.kit_type == kit_type) && std::max(0, s.days) < x) kits += s.count;
  if (demand.rate_per_day <= 0) return kits;
  const double start = std::max(0.0, demand.starts_in_days);
  const double stop = demand.stops_in_days.value_or(std::numeric_limits<double>::infinity());
  for (const auto& e : demand.per_new_participant) {
    if (!kit_type.empty() && e.kit_type != kit_type) continue;
    const double until = std::min(stop, x - std::max(0, e.days));  // randomized before this, needed before x
    if (until > start) kits += e.count * demand.rate_per_day * (until - start);
  }
  return kits;
}

std::vector<bool> expiring_unused(const std::vector<ShelfKit>& kits,
                                  const std::function<double(const std::string& kit_type, double x)>& demand) {
  std::vector<std::size_t> order(kits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return kits[a].last_dispensable_day < kits[b].last_dispensable_day;
  });
  std::vector<bool> at_risk(kits.size(), false);
  std::map<std::string, double> used;
  constexpr double kSlack = 1e-9;  // sums of fractions that reach a whole number exactly
  for (auto i : order) {
    const auto& k = kits[i];
    double& n = used[k.kit_type];
    // Needed on or before its last dispensable day (before the day after it);
    // one whose last day has passed is never dispensed again.
    if (k.last_dispensable_day >= 0 &&
        demand(k.kit_type, static_cast<double>(k.last_dispensable_day) + 1.0) + kSlack >= n + 1.0)
      n += 1.0;
    else
      at_risk[i] = true;
  }
  return at_risk;
}

}  // namespace irt::shared
