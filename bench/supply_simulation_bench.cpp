// Supply simulation throughput: the reference scenario of docs/supply.md (500
// participants at 80 sites, 8 resupply strategies) simulated over whole trials,
// first on one thread, then on every core. The limit is measured in the same
// run: the one-thread rate times the number of cores, the most the simulator's
// independent runs can reach; the ratio is the parallel efficiency (target
// >= 0.80). Prints figures; asserts nothing about time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "bench/bench_report.h"
#include "crypto/hash.h"
#include "shared/study.h"
#include "shared/supply_simulator.h"
#include "sync/seeded_source.h"

using namespace irt;
using Clock = std::chrono::steady_clock;

namespace {

// Run i draws from a stream seeded with BLAKE2b(i), as irt-hub simulate supply does with its seed.
class IndexedRuns final : public shared::RunSources {
 public:
  std::unique_ptr<shared::RandomSource> for_run(std::size_t run) const override {
    crypto::Bytes message(8);
    for (std::size_t i = 0; i < 8; ++i) message[i] = static_cast<std::uint8_t>(run >> (8 * i));
    return std::make_unique<sync::SeededSource>(crypto::blake2b(message, 32));
  }
};

// Simulated trials per second (each trial runs every strategy of the scenario), best of 2.
double trials_per_second(const shared::Study& study, const shared::SupplyScenario& scenario, std::size_t runs,
                         std::size_t threads) {
  IndexedRuns sources;
  double best = 0;
  for (int round = 0; round < 2; ++round) {
    auto t0 = Clock::now();
    auto result = shared::simulate_supply(study, scenario, {.runs = runs, .threads = threads}, sources);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!result) {
      std::fprintf(stderr, "simulation failed: %s\n", result.error().message.c_str());
      return 0;
    }
    best = std::max(best, static_cast<double>(runs) / secs);
  }
  return best;
}

}  // namespace

int main() {
  const std::string study_file = IRT_SOURCE_DIR "/packaging/examples/supply-reference.json";
  const std::string scenario_file = IRT_SOURCE_DIR "/packaging/examples/supply-reference-scenario.json";
  auto study = shared::load_study_file(study_file);
  if (!study.study) {
    std::fprintf(stderr, "%s: the study does not load\n", study_file.c_str());
    return 1;
  }
  auto scenario = shared::load_supply_scenario_file(scenario_file, *study.study);
  if (!scenario.scenario) {
    std::fprintf(stderr, "%s: the scenario does not load\n", scenario_file.c_str());
    return 1;
  }
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t strategies = scenario.scenario->strategies.size();
  const std::size_t runs = 40 * cores;
  double one = trials_per_second(*study.study, *scenario.scenario, runs, 1);
  double all = trials_per_second(*study.study, *scenario.scenario, runs, cores);
  if (one == 0 || all == 0) return 1;
  const double participants = scenario.scenario->participants;
  std::printf("supply simulation: the reference scenario (%.0f participants, %zu strategies), %zu runs (best of 2)\n",
              participants, strategies, runs);
  std::printf("  1 thread               %10.1f trials/s (%.0f participants simulated/s)\n", one,
              one * participants * static_cast<double>(strategies));
  std::printf("  %zu threads              %10.1f trials/s (%.0f participants simulated/s)\n", cores, all,
              all * participants * static_cast<double>(strategies));
  std::printf("  limit: %zu x the 1-thread rate = %.1f trials/s (same run)\n", cores, one * static_cast<double>(cores));
  std::printf("  ratio                  %10.2f (parallel efficiency; target >= 0.80)\n",
              all / (one * static_cast<double>(cores)));
  std::printf("  a 1,000-run forecast of this scenario takes %.1f s\n", 1000 / all);
  bench::record({"supply-simulation", "simulated trials of the reference scenario (8 strategies each)", all,
                 "trials/s", std::to_string(cores) + " x the 1-thread rate (same run)",
                 one * static_cast<double>(cores), all / (one * static_cast<double>(cores)), 0.8});
  return 0;
}
