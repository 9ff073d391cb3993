// simulate supply: the hub's Monte Carlo over whole trials to choose resupply
// settings (shared/supply_simulator.h, docs/supply.md).
#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "crypto/hash.h"
#include "hub/commands.h"
#include "shared/supply_simulator.h"
#include "sync/seeded_source.h"

namespace irt::hub {

namespace {

constexpr int kInvalidSimulation = 2;

// Run i draws from the ChaCha20 stream seeded with BLAKE2b-256(seed || i as
// 8 bytes little-endian): a run's numbers depend on the seed and its index only.
class SeededRuns final : public shared::RunSources {
 public:
  explicit SeededRuns(crypto::Bytes seed) : seed_(std::move(seed)) {}
  std::unique_ptr<shared::RandomSource> for_run(std::size_t run) const override {
    crypto::Bytes message = seed_;
    for (int i = 0; i < 8; ++i) message.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(run) >> (8 * i)));
    return std::make_unique<sync::SeededSource>(crypto::blake2b(message, 32));
  }

 private:
  crypto::Bytes seed_;
};

// "simulating: 120/1600 runs" rewritten in place on a terminal; nothing otherwise.
class TerminalProgress final : public shared::SupplyProgress {
 public:
  void runs_done(std::size_t done, std::size_t total) override {
    std::cerr << "\rsimulating: " << done << "/" << total << " runs" << (done == total ? "\n" : "") << std::flush;
  }
};

std::string fixed_decimals(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

int simulate_supply(const shared::Args& args) {
  const std::string study_file = args.get("study"), scenario_file = args.get("scenario");
  auto study = shared::load_study_file(study_file);
  if (!study.study) {
    for (const auto& e : study.errors) std::cerr << (e.rfind(study_file + ":", 0) == 0 ? "" : study_file + ": ") << e << "\n";
    std::cerr << study_file << ": the study was not loaded; fix the problems above and run the command again\n";
    return kInvalidSimulation;
  }
  auto scenario = shared::load_supply_scenario_file(scenario_file, *study.study);
  if (!scenario.scenario) {
    for (const auto& e : scenario.errors)
      std::cerr << (e.rfind(scenario_file + ":", 0) == 0 ? "" : scenario_file + ": ") << e << "\n";
    std::cerr << scenario_file << ": the scenario was not loaded; fix the problems above and run the command again\n";
    return kInvalidSimulation;
  }
  auto runs = shared::parse_u64(args.get("runs"));
  if (!runs || *runs == 0 || *runs > 1000000) {
    std::cerr << "--runs must be a whole number from 1 to 1000000 (got '" << args.get("runs") << "')\n";
    return kInvalidSimulation;
  }
  auto seed = sync::parse_seed_hex(args.get("seed"));
  if (!seed) {
    std::cerr << "--seed must be 64 hex digits (32 bytes); the same seed gives the same numbers\n";
    return kInvalidSimulation;
  }
  if (auto a = args.find("allocation")) {
    if (*a == "node_slices") scenario.scenario->allocation = shared::SupplyAllocation::node_slices;
    else if (*a == "central_list") scenario.scenario->allocation = shared::SupplyAllocation::central_list;
    else {
      std::cerr << "--allocation must be node_slices or central_list (got '" << *a << "')\n";
      return kInvalidSimulation;
    }
  }
  SeededRuns sources(*seed);
  TerminalProgress progress;
  bool tty = isatty(STDERR_FILENO) == 1;
  auto result = shared::simulate_supply(*study.study, *scenario.scenario, {.runs = static_cast<std::size_t>(*runs)},
                                        sources, tty ? &progress : nullptr);
  if (!result) {
    std::cerr << result.error().message << "\n";
    return shared::exit_code(result.error().code);
  }
  if (args.flag("json")) {
    std::cout << shared::to_json(*result).dump(2) << "\n";
    return 0;
  }
  const auto& sc = *scenario.scenario;
  std::cout << "study " << study.study->id << " version " << study.study->version << ", " << sc.participants
            << " participants, allocation " << shared::to_string(sc.allocation) << ", " << *runs << " runs, seed "
            << args.get("seed") << "\n(mean and standard deviation over runs)\n";
  const auto& names = shared::supply_metric_names();
  for (const auto& s : result->strategies) {
    std::cout << "\n" << s.strategy << "\n";
    for (std::size_t i = 0; i < names.size(); ++i)
      std::cout << "  " << std::left << std::setw(28) << names[i] << std::right << std::setw(12)
                << fixed_decimals(s.metrics[i].mean, 2) << "  sd " << fixed_decimals(s.metrics[i].sd, 2) << "\n";
  }
  return 0;
}

}  // namespace

shared::Command simulate_supply_command() {
  return shared::Command{
      .name = "supply",
      .summary = "Simulate whole trials to compare resupply strategies (docs/supply.md)",
      .options = {{"study", "FILE", "study configuration (JSON)", true},
                  {"scenario", "FILE", "supply scenario (JSON, docs/supply.md)", true},
                  {"runs", "R", "simulated trials per strategy", true},
                  {"seed", "HEX", "64 hex digits; the same seed gives the same numbers", true},
                  {"allocation", "KIND", "node_slices or central_list, instead of the scenario's", false},
                  {"json", "", "print JSON", false}},
      .run = simulate_supply};
}

}  // namespace irt::hub
