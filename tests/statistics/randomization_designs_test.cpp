// The randomization simulator against published and closed-form values
// (docs/randomization.md): the designs' balance and predictability measures.
#include "shared/randomization_simulator.h"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "tests/shared/randomization_fixtures.h"

using namespace irt::shared;

namespace {

SimulationResult simulate_two_arm(const std::string& method, std::size_t n, std::size_t runs, std::uint8_t seed) {
  Study s = irt::test::two_arm_study(Method::simple);
  auto design = parse_method(method, s.randomization);
  REQUIRE(design.ok());
  auto source = irt::test::seeded(seed);
  auto r = simulate(s, *design, SimulationSettings{.participants = n, .runs = runs}, source);
  REQUIRE(r.ok());
  REQUIRE(r->two_arm.has_value());
  return *r;
}

// Monte Carlo agreement: |simulated - reference| within 4.5 combined standard
// errors, plus half a unit of the reference's last printed digit.
void check_close(const char* what, double simulated, double se, double reference, double reference_se,
                 double rounding) {
  const double tol = 4.5 * std::sqrt(se * se + reference_se * reference_se) + rounding + 1e-12;
  INFO(what << ": simulated " << simulated << " (se " << se << "), reference " << reference << ", tolerance " << tol);
  CHECK(std::fabs(simulated - reference) <= tol);
}

// ---- Exact values by dynamic programming over the Markov chain of the imbalance ----
//
// For a design whose allocation probability depends only on the current
// imbalance d = n_0 - n_1 (complete randomization, Efron's biased coin, the big
// stick), the joint law of (d, running max |d|) after j steps is computed
// exactly; EB, ET, DA and CG are expectations of per-step functions of d, Dn
// comes from the law of d_n and MI from the law of the running maximum. These
// follow from the definitions in Zhao et al. (2011) and Rosenberger & Lachin,
// "Randomization in Clinical Trials" (2nd ed., 2016), chapter 3.
struct Exact {
  double eb = 0, dn = 0, mi = 0, et = 0, da = 0, cg = 0;
};

Exact exact(std::size_t n, const std::function<double(long)>& phi0) {
  const long span = static_cast<long>(n);
  const std::size_t width = 2 * n + 1, maxes = n + 1;
  std::vector<double> p(width * maxes, 0.0), q(width * maxes, 0.0);
  auto at = [&](std::vector<double>& v, long d, long m) -> double& {
    return v[static_cast<std::size_t>(d + span) * maxes + static_cast<std::size_t>(m)];
  };
  at(p, 0, 0) = 1.0;
  Exact e;
  for (std::size_t j = 0; j < n; ++j) {
    std::fill(q.begin(), q.end(), 0.0);
    for (long d = -span; d <= span; ++d)
      for (long m = 0; m <= span; ++m) {
        double w = at(p, d, m);
        if (w == 0) continue;
        double f = phi0(d);
        if (f > 0 && f < 1) e.et += w * -(f * std::log(f) + (1 - f) * std::log(1 - f));
        if (f == 0 || f == 1) e.da += w;
        e.cg += w * (d < 0 ? f : d > 0 ? 1 - f : 0.5);
        if (f > 0) at(q, d + 1, std::max(m, std::labs(d + 1))) += w * f;
        if (f < 1) at(q, d - 1, std::max(m, std::labs(d - 1))) += w * (1 - f);
      }
    std::swap(p, q);
    for (long m = 0; m <= span; ++m) e.eb += at(p, 0, m);
  }
  double m1 = 0, m2 = 0;
  for (long d = -span; d <= span; ++d)
    for (long m = 0; m <= span; ++m) {
      double w = at(p, d, m);
      m1 += w * static_cast<double>(d);
      m2 += w * static_cast<double>(d * d);
      e.mi += w * static_cast<double>(m);
    }
  e.dn = std::sqrt(m2 - m1 * m1);
  const double nn = static_cast<double>(n);
  e.eb /= nn;
  e.et /= nn;
  e.da /= nn;
  e.cg /= nn;
  return e;
}

void check_against_exact(const SimulationResult& r, const Exact& e) {
  const auto& m = *r.two_arm;
  check_close("EB", m.eb, m.se_eb, e.eb, 0, 1e-6);
  check_close("Dn", m.dn, m.se_dn, e.dn, 0, 1e-6);
  check_close("MI", m.mi, m.se_mi, e.mi, 0, 1e-6);
  check_close("ET", m.et, m.se_et, e.et, 0, 1e-6);
  check_close("DA", m.da, m.se_da, e.da, 0, 1e-6);
  check_close("CG", m.cg, m.se_cg, e.cg, 0, 1e-6);
}

// ---- Published table ----
//
// Zhao W, Weng Y, Wu Q, Palesch Y. Quantitative comparison of randomization
// designs in sequential clinical trials based on treatment balance and
// allocation randomness. Pharmaceutical Statistics 2012;11(1):39-48
// (doi:10.1002/pst.493), Table IV: sample size 100, columns EB, Dn, MI, ET,
// DA, CG. The figures are the paper's own simulation estimates; the paper's
// comparison tables use 5,000 runs (Table III), so their standard error is
// taken as this simulation's per-run spread over sqrt(5000), and the printed
// three decimals add half a unit of rounding.
struct Published {
  const char* method;
  double eb, dn, mi, et, da, cg;
};

constexpr Published kZhaoTableIV[] = {
    {"bigstick:mti=4", 0.129, 2.454, 3.999, 0.611, 0.118, 0.558},
    {"efron:p=0.65", 0.236, 2.349, 5.490, 0.658, 0.0, 0.614},
    {"blocks:4", 0.416, 0.0, 2.0, 0.448, 0.334, 0.709},
    {"blocks:6", 0.365, 1.270, 2.830, 0.505, 0.241, 0.680},
    {"blocks:8", 0.329, 1.524, 3.272, 0.537, 0.192, 0.662},
    {"blocks:10", 0.307, 0.0, 3.620, 0.553, 0.167, 0.654},
    {"blocks:12", 0.285, 1.702, 3.916, 0.574, 0.137, 0.639},
    {"blocks:30", 0.196, 2.633, 5.608, 0.635, 0.056, 0.591},
    {"blocks:100", 0.116, 0.0, 8.207, 0.668, 0.020, 0.558},  // the random allocation rule
};

}  // namespace

TEST_CASE("the simulator reproduces Zhao et al. (2012) Table IV at n = 100 within Monte Carlo error") {
  const std::size_t runs = 6000;
  const double their = std::sqrt(static_cast<double>(runs) / 5000.0);  // their se / our se
  std::uint8_t seed = 60;
  for (const auto& row : kZhaoTableIV) {
    const std::string method = row.method;
    CAPTURE(method);
    auto r = simulate_two_arm(row.method, 100, runs, seed++);
    const auto& m = *r.two_arm;
    MESSAGE(std::string(row.method) << ": EB " << m.eb << " Dn " << m.dn << " MI " << m.mi << " ET " << m.et << " DA " << m.da
                       << " CG " << m.cg);
    check_close("EB", m.eb, m.se_eb, row.eb, m.se_eb * their, 0.0005);
    check_close("Dn", m.dn, m.se_dn, row.dn, m.se_dn * their, 0.0005);
    check_close("MI", m.mi, m.se_mi, row.mi, m.se_mi * their, 0.0005);
    check_close("ET", m.et, m.se_et, row.et, m.se_et * their, 0.0005);
    check_close("DA", m.da, m.se_da, row.da, m.se_da * their, 0.0005);
    check_close("CG", m.cg, m.se_cg, row.cg, m.se_cg * their, 0.0005);
  }
}

TEST_CASE("complete randomization matches its exact Markov-chain values at n = 100") {
  check_against_exact(simulate_two_arm("simple", 100, 8000, 70), exact(100, [](long) { return 0.5; }));
}

TEST_CASE("Efron's biased coin (p = 2/3) matches its exact Markov-chain values at n = 100") {
  check_against_exact(simulate_two_arm("efron:p=0.6666666666666666", 100, 8000, 71),
                      exact(100, [](long d) { return d == 0 ? 0.5 : d < 0 ? 2.0 / 3.0 : 1.0 / 3.0; }));
}

TEST_CASE("the big stick (mti = 3) matches its exact Markov-chain values at n = 100") {
  check_against_exact(simulate_two_arm("bigstick:mti=3", 100, 8000, 72),
                      exact(100, [](long d) { return d >= 3 ? 0.0 : d <= -3 ? 1.0 : 0.5; }));
}

// Permuted blocks of 2m with the convergence strategy: the expected number of
// correct guesses per block is m + (2^{2m} / C(2m, m) - 1) / 2 (Blackwell and
// Hodges 1957; Rosenberger & Lachin 2016, section 5.2), so the rate is that over 2m.
TEST_CASE("permuted blocks reproduce the closed-form correct-guess rate") {
  for (int m = 1; m <= 5; ++m) {
    double central = 1;  // C(2m, m)
    for (int i = 1; i <= m; ++i) central = central * (m + i) / i;
    const double rate = (m + (std::pow(2.0, 2 * m) / central - 1) / 2) / (2 * m);
    auto r = simulate_two_arm("blocks:" + std::to_string(2 * m), static_cast<std::size_t>(20 * 2 * m), 3000,
                              static_cast<std::uint8_t>(80 + m));
    CAPTURE(m);
    check_close("CG", r.two_arm->cg, r.two_arm->se_cg, rate, 0, 0);
    CHECK(r.two_arm->dn == 0.0);
    CHECK(r.mean_abs_imbalance == 0.0);
  }
}

// Efron's coin in the long run: |D| is a reflecting random walk whose
// stationary law puts (2p - 1) / (2p) of the time at balance, so the
// convergence strategy's correct-guess rate tends to 1/2 + (2p - 1) / (4p)
// (Efron 1971; Rosenberger & Lachin 2016, section 5.3). Over 4000 steps the
// start-up transient shifts the mean by well under the tolerance.
TEST_CASE("Efron's biased coin approaches its long-run correct-guess rate") {
  for (double p : {0.6, 2.0 / 3.0, 0.75}) {
    char spec[40];
    std::snprintf(spec, sizeof spec, "efron:p=%.17g", p);
    auto r = simulate_two_arm(spec, 4000, 60, 90);
    CAPTURE(p);
    check_close("CG", r.two_arm->cg, r.two_arm->se_cg, 0.5 + (2 * p - 1) / (4 * p), 0, 0.002);
    check_close("EB", r.two_arm->eb, r.two_arm->se_eb, (2 * p - 1) / (2 * p), 0, 0.004);
  }
}
