// Enrollment forecasting in the running trial (docs/supply.md, "Forecasting"):
// each site's randomization rate as a gamma-Poisson estimate that starts from
// the study's expected rate and follows the site's actual enrollment, the
// kits a site will need from its participants' schedules and its expected
// randomizations, the enrollment completion date with an interval, and which
// kits will pass do-not-dispense before they are likely to be used.
//
// The hub calls these with what it knows (hub/forecast.h): grants to nodes are
// sized from estimate_rate's mean, and `irt-hub forecast` reports the rest.
// Days are counted from "now" (day 0 = today); a visit's kits are needed on the
// day its window opens, as in shared/resupply.h.
// Thread-safety: pure functions of their arguments (a RandomSource is used by
// one thread at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shared/random_source.h"
#include "shared/resupply.h"

namespace irt::shared {

// A belief about a site's randomizations per day: Gamma(shape, rate), rate in days.
struct RateEstimate {
  double shape = 0;
  double rate = 0;
  double mean() const { return rate > 0 ? shape / rate : 0; }
};

// The gamma-Poisson update. The prior is the expected rate r0 held with the
// weight of `prior_weight_days` days of observation: Gamma(r0 x w, w), mean r0.
// A site that randomized n participants in t days active has the posterior
// Gamma(r0 x w + n, w + t), mean (r0 x w + n) / (w + t): the expected rate
// before any enrollment, the observed rate n / t once t is much longer than w.
// Negative days count as 0.
RateEstimate estimate_rate(double prior_rate_per_day, double prior_weight_days, std::uint64_t randomized,
                           double days_active);

// A Gamma(shape, 1) variate (Marsaglia and Tsang, with the usual boost for
// shape < 1), drawn through `source` only so that a seed repeats it exactly.
// shape must be positive.
double gamma_variate(RandomSource& source, double shape);

// A site as the completion forecast sees it: its rate estimate and when it
// starts randomizing (0: it is active now; a site not yet activated starts on
// its planned activation date).
struct SiteOutlook {
  RateEstimate rate;
  double starts_in_days = 0;
};

// The day at which the sites' expected randomizations, each at its mean rate
// from its start, reach `remaining` participants; 0 when none remain, and
// nullopt when the sites' rates are all zero (enrollment never completes).
std::optional<double> expected_completion_day(const std::vector<SiteOutlook>& sites, double remaining);

// The enrollment completion day's 10th, 50th and 90th percentiles, by
// simulation: each of `runs` runs draws every site's rate from its estimate,
// then the day the `remaining`-th participant arrives when the sites'
// randomizations are Poisson processes at those rates (the day H(T) = G where
// H is the sites' cumulative rate from their starts and G ~ Gamma(remaining, 1),
// the sum of that many unit exponential gaps). Percentile p is the
// ceil(p x runs)-th smallest day. nullopt when no site has a positive rate.
struct CompletionInterval {
  double p10 = 0, p50 = 0, p90 = 0;
};
std::optional<CompletionInterval> completion_interval(const std::vector<SiteOutlook>& sites,
                                                      std::uint64_t remaining, int runs, RandomSource& source);

// What one site will need: its randomized participants' dispensings to come
// (days until each window opens, >= 0) and the kits of the participants it is
// expected to randomize: at `rate_per_day` from `starts_in_days` until
// `stops_in_days` (the expected completion day; nullopt: no end), each
// needing `per_new_participant` (kits_per_new_participant of the study; an
// entry before randomization counts at randomization).
struct SiteDemand {
  std::vector<ScheduledKits> scheduled;
  double rate_per_day = 0;
  double starts_in_days = 0;
  std::optional<double> stops_in_days;
  std::vector<ExpectedKits> per_new_participant;
};

// Kits of `kit_type` (every kit type when empty) whose window opens before
// day `x`: the scheduled ones with days < x, plus per expected participant
// entry count x rate x (the time in [start, stop) at which a randomization
// puts that entry's window opening before x).
double kits_needed_before(const SiteDemand& demand, const std::string& kit_type, double x);

// One kit on the shelf: its kit type and the last day (from today) on which
// it may be dispensed (its expiry minus the do-not-dispense window, minus one).
struct ShelfKit {
  std::string kit_type;
  std::int64_t last_dispensable_day = 0;
};

// Which kits pass do-not-dispense before they are likely to be used. The
// kits are used earliest last day first per kit type (what shipping and
// dispensing pick); the k-th kit used is used when the expected demand
// demand(kit_type, x), the kits needed before day x, reaches k. A kit whose
// last dispensable day comes before the demand reaches its turn, or has
// passed (before day 0), is at risk and is not counted as used. Returns one
// flag per kit, in the given order.
std::vector<bool> expiring_unused(const std::vector<ShelfKit>& kits,
                                  const std::function<double(const std::string& kit_type, double x)>& demand);

}  // namespace irt::shared
