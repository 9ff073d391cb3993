// Tests for shared/forecast.h: the gamma-Poisson rate update, the kits a site
// needs before a day, the expected completion day and its simulated interval,
// and which kits pass do-not-dispense unused, against cases worked by hand.
#include "shared/forecast.h"

#include <doctest/doctest.h>

#include <cmath>
#include <span>

#include "crypto/bytes.h"
#include "crypto/deterministic_stream.h"

namespace sh = irt::shared;

namespace {

class StreamSource final : public sh::RandomSource {
 public:
  explicit StreamSource(std::uint8_t fill) : stream_(irt::crypto::Bytes(32, fill)) {}
  void fill(std::span<std::uint8_t> out) override { stream_.fill(out); }

 private:
  irt::crypto::DeterministicStream stream_;
};

}  // namespace

TEST_CASE("the rate estimate is the prior before any enrollment and moves to the observed rate as days accrue") {
  // 0.5 per day weighed as 28 days: Gamma(14, 28), mean 0.5.
  auto prior = sh::estimate_rate(0.5, 28, 0, 0);
  CHECK(prior.shape == doctest::Approx(14));
  CHECK(prior.rate == doctest::Approx(28));
  CHECK(prior.mean() == doctest::Approx(0.5));
  // 10 randomized in 12 days: Gamma(24, 40), mean 0.6.
  auto after = sh::estimate_rate(0.5, 28, 10, 12);
  CHECK(after.shape == doctest::Approx(24));
  CHECK(after.rate == doctest::Approx(40));
  CHECK(after.mean() == doctest::Approx(0.6));
  // Two slow years: 20 in 730 days, (14 + 20) / (28 + 730).
  CHECK(sh::estimate_rate(0.5, 28, 20, 730).mean() == doctest::Approx(34.0 / 758));
  // A site not yet active: days before activation count as none.
  CHECK(sh::estimate_rate(0.5, 28, 0, -5).mean() == doctest::Approx(0.5));
}

TEST_CASE("kits needed before a day add the scheduled dispensings and the expected randomizations' kits") {
  sh::SiteDemand d;
  d.scheduled = {{0, "A", 1}, {9, "A", 2}, {3, "B", 1}};
  d.rate_per_day = 0.5;
  d.stops_in_days = 10;
  d.per_new_participant = {{0, "A", 1}, {28, "A", 1}, {-3, "B", 0.5}};
  // Before day 7: the day-0 kit; 0.5 per day x 7 days randomized, each taking one A at once.
  CHECK(sh::kits_needed_before(d, "A", 7) == doctest::Approx(1 + 3.5));
  // Before day 14: days 0 and 9; randomizations stop at day 10; none reaches day 28 by then.
  CHECK(sh::kits_needed_before(d, "A", 14) == doctest::Approx(3 + 5));
  // An entry before randomization counts at randomization: 0.5 x 0.5 x 7.
  CHECK(sh::kits_needed_before(d, "B", 7) == doctest::Approx(1 + 1.75));
  CHECK(sh::kits_needed_before(d, "", 7) == doctest::Approx(4.5 + 2.75));
  CHECK(sh::kits_needed_before(d, "A", 0) == doctest::Approx(0));
  // The day-28 kit of participants randomized from day 0 to 10, before day 40: 0.5 x 10.
  CHECK(sh::kits_needed_before(d, "A", 40) - sh::kits_needed_before(d, "A", 28) == doctest::Approx(5));
  // A site starting on day 2 randomizes from then on.
  d.starts_in_days = 2;
  CHECK(sh::kits_needed_before(d, "A", 7) == doctest::Approx(1 + 2.5));
  // Without an end, randomizations go on.
  d.starts_in_days = 0;
  d.stops_in_days.reset();
  CHECK(sh::kits_needed_before(d, "A", 14) == doctest::Approx(3 + 7));
}

TEST_CASE("the expected completion day follows each site's mean rate from its start") {
  // 1 per day from day 0, 2 per day from day 10: 10 by day 10, then 3 per day.
  std::vector<sh::SiteOutlook> sites = {{{1, 1}, 0}, {{20, 10}, 10}};
  CHECK(*sh::expected_completion_day(sites, 40) == doctest::Approx(20));
  CHECK(*sh::expected_completion_day(sites, 5) == doctest::Approx(5));
  CHECK(*sh::expected_completion_day(sites, 0) == doctest::Approx(0));
  CHECK_FALSE(sh::expected_completion_day({{{0, 10}, 0}}, 5).has_value());
  CHECK_FALSE(sh::expected_completion_day({}, 5).has_value());
}

TEST_CASE("the completion interval matches the Poisson spread of a well known rate and repeats with its seed") {
  // A rate of 1 per day known almost exactly: the 400th arrival is Gamma(400, 1),
  // mean 400, sd 20; its 10th and 90th percentiles are about 400 -+ 1.2816 x 20.
  std::vector<sh::SiteOutlook> sites = {{{1e7, 1e7}, 0}};
  StreamSource source(7);
  auto i = sh::completion_interval(sites, 400, 2000, source);
  REQUIRE(i.has_value());
  CHECK(i->p10 == doctest::Approx(374.4).epsilon(0.01));
  CHECK(i->p50 == doctest::Approx(399.7).epsilon(0.01));
  CHECK(i->p90 == doctest::Approx(425.6).epsilon(0.01));
  StreamSource again(7);
  auto j = sh::completion_interval(sites, 400, 2000, again);
  CHECK(j->p10 == i->p10);
  CHECK(j->p90 == i->p90);
  // An uncertain rate widens it: the same mean from a prior of 10 days' weight.
  StreamSource third(7);
  auto wide = sh::completion_interval({{{10, 10}, 0}}, 400, 2000, third);
  CHECK(wide->p90 - wide->p10 > 2 * (i->p90 - i->p10));
  CHECK(wide->p10 <= wide->p50);
  CHECK(wide->p50 <= wide->p90);
  // Nothing left: day 0; no site with a rate: none.
  StreamSource fourth(7);
  CHECK(sh::completion_interval(sites, 0, 10, fourth)->p90 == 0);
  CHECK_FALSE(sh::completion_interval({{{0, 10}, 0}}, 5, 10, fourth).has_value());
}

TEST_CASE("a kit is at risk when the expected demand reaches its turn only after its last dispensable day") {
  std::vector<sh::ShelfKit> kits = {{"A", 100}, {"A", 5}, {"B", 50}, {"A", 30}, {"A", 5}};
  auto demand = [](const std::string& kit_type, double x) { return kit_type == "A" ? 0.1 * x : 0.0; };
  // A, earliest first: day 5 (0.6 needed by then: at risk), day 5 (at risk),
  // day 30 (3.1 >= 1: used), day 100 (10.1 >= 2: used). B is never needed.
  auto risk = sh::expiring_unused(kits, demand);
  CHECK(risk == std::vector<bool>{false, true, true, false, true});
  // A kit already inside do-not-dispense is at risk whatever the demand.
  CHECK(sh::expiring_unused({{"A", -1}}, [](const std::string&, double) { return 100.0; }) == std::vector<bool>{true});
  // Demand of exactly one kit by its last day uses it.
  CHECK(sh::expiring_unused({{"A", 9}}, [](const std::string&, double x) { return 0.1 * x; }) == std::vector<bool>{false});
}
