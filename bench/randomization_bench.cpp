// Randomization throughput: generating a 1,000,000-slot stratified list and
// 100,000 minimization decisions over 4 factors, against the targets (1,000,000
// slots per second; under 20 microseconds a decision), with the raw ChaCha20
// keystream rate of the same generator measured in the same run as the
// physical reference. Prints figures and ratios; asserts nothing about time.
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "bench/bench_report.h"
#include "crypto/deterministic_stream.h"
#include "hub/list_hash.h"
#include "sync/seeded_source.h"
#include "shared/block_list.h"
#include "shared/minimization.h"

using namespace irt;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::uint8_t> seed_of(std::uint8_t b) { return std::vector<std::uint8_t>(32, b); }

// A 200-stratum study: 50 sites x sex x age group, blocks of 4 and 6.
shared::Study list_study() {
  shared::Study s;
  s.id = "BENCH";
  s.arms = {{"A", "a", "T", 1}, {"B", "b", "T", 1}};
  s.countries = {{"DE", "Germany"}};
  for (int i = 0; i < 50; ++i) s.sites.push_back({std::to_string(100 + i), "site", "DE"});
  s.factors = {{"sex", "Sex", {"F", "M"}}, {"age", "Age", {"<65", ">=65"}}};
  s.randomization.method = shared::Method::permuted_blocks;
  s.randomization.block_sizes = {4, 6};
  s.randomization.strata = {"site", "sex", "age"};
  return s;
}

shared::Study minimization_study() {
  shared::Study s;
  s.id = "BENCH-MIN";
  s.arms = {{"A", "a", "T", 2}, {"B", "b", "T", 1}, {"C", "c", "T", 1}};
  s.countries = {{"DE", "Germany"}};
  for (int i = 0; i < 20; ++i) s.sites.push_back({std::to_string(100 + i), "site", "DE"});
  s.factors = {{"sex", "Sex", {"F", "M"}}, {"age", "Age", {"<50", "50-64", ">=65"}}, {"stage", "Stage", {"I", "II", "III", "IV"}}};
  s.randomization.method = shared::Method::minimization;
  s.randomization.minimization_factors = {{"site", 1}, {"sex", 1}, {"age", 1}, {"stage", 2}};
  s.randomization.measure = shared::ImbalanceMeasure::variance;
  return s;
}

}  // namespace

int main() {
  if (sodium_init() < 0) return 1;

  // Physical reference: the raw keystream of the same seeded generator.
  double keystream_rate = 0;
  {
    crypto::DeterministicStream stream(seed_of(1));
    std::vector<std::uint8_t> buf(1 << 16);
    const std::size_t total = std::size_t{256} << 20;
    auto t0 = Clock::now();
    for (std::size_t done = 0; done < total; done += buf.size()) stream.fill(buf);
    keystream_rate = static_cast<double>(total) / seconds_since(t0);
    std::printf("raw ChaCha20 keystream (DeterministicStream): %.0f MB/s = %.1f M 8-byte draws/s\n",
                keystream_rate / 1e6, keystream_rate / 8 / 1e6);
  }

  // A 1,000,000-slot stratified list.
  {
    shared::Study study = list_study();
    const std::size_t per_stratum = 5000;  // x 200 strata
    double best = 1e9;
    std::size_t slots = 0;
    std::uint64_t bytes = 0;
    std::string csv;
    for (int rep = 0; rep < 3; ++rep) {
      sync::SeededSource source(seed_of(2));
      auto t0 = Clock::now();
      auto list = shared::generate_list(study, source, per_stratum);
      const double s = seconds_since(t0);
      if (!list) {
        std::fprintf(stderr, "%s\n", list.error().message.c_str());
        return 1;
      }
      best = std::min(best, s);
      slots = list->slots.size();
      bytes = source.position();
      if (rep == 0) csv = shared::encode_list_csv(*list);
    }
    const double rate = static_cast<double>(slots) / best;
    const double keystream_share = static_cast<double>(bytes) / keystream_rate / best;
    std::printf("list generation: %zu slots in 200 strata in %.3f s = %.2f M slots/s; target 1.00 M/s; ratio %.2fx\n",
                slots, best, rate / 1e6, rate / 1e6);
    std::printf("  keystream used: %.1f MB (%.1f bytes/slot), %.0f%% of the generation time at the raw rate\n",
                static_cast<double>(bytes) / 1e6, static_cast<double>(bytes) / static_cast<double>(slots),
                100 * keystream_share);
    bench::record({"randomization", "list generation, 200 strata", rate, "slots/s", "the 1,000,000 slots/s target",
                   1e6, rate / 1e6, 1.0});
    sync::SeededSource source(seed_of(2));
    auto list = shared::generate_list(study, source, per_stratum);
    auto t0 = Clock::now();
    csv = shared::encode_list_csv(*list);
    const double enc = seconds_since(t0);
    t0 = Clock::now();
    auto hash = hub::randomization_list_hash(csv);
    const double h = seconds_since(t0);
    std::printf("  CSV encoding: %.1f MB in %.3f s = %.2f M slots/s; BLAKE2b list hash in %.3f s (%s...)\n",
                static_cast<double>(csv.size()) / 1e6, enc, static_cast<double>(slots) / enc / 1e6, h,
                hash.hex().substr(0, 16).c_str());
  }

  // 100,000 minimization decisions over 4 factors (20 sites, sex, age, stage), 3 arms 2:1:1.
  {
    shared::Study study = minimization_study();
    auto cfg = shared::minimization_config(study);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
      return 1;
    }
    shared::MarginalTotals totals(*cfg);
    sync::SeededSource covariates(seed_of(3)), draws(seed_of(4));
    const std::size_t n = 100000;
    std::vector<std::vector<std::size_t>> levels(n);
    for (auto& l : levels)
      for (const auto& f : cfg->factors) l.push_back(static_cast<std::size_t>(shared::uniform(covariates, f.levels.size())));
    std::array<std::size_t, 3> counts{};
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
      auto d = shared::minimize(*cfg, totals, levels[i], i, draws);
      totals.add(levels[i], d.arm);
      ++counts[d.arm];
    }
    const double s = seconds_since(t0);
    const double us = s / static_cast<double>(n) * 1e6;
    const double raw_draw_us = 8 / keystream_rate * 1e6;
    std::printf("minimization: %zu decisions in %.3f s = %.2f us/decision; target 20 us; ratio %.0fx under\n", n, s, us,
                20 / us);
    std::printf("  (one raw 8-byte keystream draw: %.4f us; allocation %zu:%zu:%zu)\n", raw_draw_us, counts[0],
                counts[1], counts[2]);
    bench::record({"randomization", "minimization decision, 4 factors, 3 arms", us, "us", "the 20 us target", 20.0,
                   20 / us, 1.0});
  }
  return 0;
}
