// Monte Carlo over whole trials to choose resupply settings before first
// patient in, behind `irt-hub simulate supply` (docs/supply.md). Each run
// draws the sites (activation day, enrollment rate) and the participants'
// arrivals, randomizes them by the study's design as the allocation says,
// dispenses at their visits, loses them to dropout, and reviews every site's
// stock on a fixed cycle with shared/resupply.h's decide_resupply: the
// function the live hub calls, so what is simulated is what runs.
//
// The scenario document (load_supply_scenario) is validated like the study:
// every problem listed with its path. Runs are independent: run i draws from
// RunSources::for_run(i) only, and the results are gathered in run order, so
// the numbers do not depend on how many threads ran them.
// Thread-safety: simulate_supply runs its own threads; RunSources::for_run and
// SupplyProgress::runs_done are called from them (runs_done one call at a time).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/random_source.h"
#include "shared/result.h"
#include "shared/resupply.h"
#include "shared/study.h"

namespace irt::shared {

enum class SupplyAllocation { node_slices, central_list };
enum class SiteRule { assigned_arm, all_arms };
enum class Arrivals { poisson, regular };

struct ScenarioSite {
  int activation_day = 0;
  double rate_per_day = 0;
};

struct SupplyStrategy {
  std::string name;  // shown in the report: given, or made from the settings
  ResupplyParameters parameters;
};

struct SupplyScenario {
  int participants = 0;
  // Sites drawn per run: `site_count` of them, each activated on a day drawn
  // uniformly from `activation_days`, with a rate drawn from Gamma(shape, rate).
  int site_count = 0;
  std::vector<int> activation_days;
  double gamma_shape = 0;
  double gamma_rate = 0;
  // Or listed sites, each with its own day and rate (then site_count is 0).
  std::vector<ScenarioSite> sites;
  Arrivals arrivals = Arrivals::poisson;  // regular: one every 1/rate days after activation
  SupplyAllocation allocation = SupplyAllocation::node_slices;
  int review_every_days = 7;
  int lead_time_days = 3;
  std::vector<SupplyStrategy> strategies;  // from the scenario, or the study's own resupply
  SiteRule site_rule = SiteRule::assigned_arm;
  double dropout_fraction = 0;  // exponential dropout: this fraction gone by dropout_by_day
  int dropout_by_day = 0;
  std::map<std::string, int> expiry_day;  // kit type -> its lot's expiry day; absent: no expiry
  double cost_per_kit = 0;
  double cost_per_shipment = 0;
};

struct ScenarioLoad {
  std::optional<SupplyScenario> scenario;
  std::vector<std::string> errors;  // "path: what is wrong (got X); what to do"
};

// Reads a scenario against the study it simulates (kit types are the study's).
ScenarioLoad load_supply_scenario(std::string_view json_text, const Study& study);
ScenarioLoad load_supply_scenario_file(const std::string& file, const Study& study);

// One run's figures; the report gives the mean and sd of each over runs.
struct SupplyRunMetrics {
  double kits_shipped = 0;
  double kits_dispensed = 0;
  double kits_expired = 0;        // at sites, past do-not-dispense before the end
  double kits_left_at_sites = 0;  // at sites (or on their way) at the end, still dispensable
  double overage_percent = 0;     // (shipped - dispensed) / dispensed
  double waste_percent = 0;       // (shipped - dispensed) / shipped
  double participants_lost_percent = 0;  // arrivals not randomized for lack of kit
  double stockouts_per_1000_visits = 0;  // scheduled dispensings with no dispensable kit
  double shipments = 0;
  double days_to_last_randomization = 0;
  double cost = 0;
};

// The metric names of the report and of --json, in order.
const std::vector<std::string>& supply_metric_names();
double metric_value(const SupplyRunMetrics& m, std::size_t index);

struct MeanSd {
  double mean = 0;
  double sd = 0;  // sample standard deviation over runs (0 for one run)
};

struct StrategyResult {
  std::string strategy;
  std::vector<MeanSd> metrics;  // in supply_metric_names() order
};

struct SupplySimulation {
  std::size_t runs = 0;
  std::vector<StrategyResult> strategies;
};

// Where each run's randomness comes from: the caller derives one source per
// run index from its seed, so a run is the same whichever thread runs it.
class RunSources {
 public:
  virtual ~RunSources();
  virtual std::unique_ptr<RandomSource> for_run(std::size_t run) const = 0;
};

class SupplyProgress {
 public:
  virtual ~SupplyProgress();
  virtual void runs_done(std::size_t done, std::size_t total) = 0;
};

struct SupplySimulationSettings {
  std::size_t runs = 1;
  std::size_t threads = 0;  // 0: one per hardware thread
};

// Every strategy of the scenario over the same `runs` runs (run i of each
// strategy starts from the same source). Refuses a study whose randomization
// method is not simple or permuted blocks.
Result<SupplySimulation> simulate_supply(const Study& study, const SupplyScenario& scenario,
                                         const SupplySimulationSettings& settings, const RunSources& sources,
                                         SupplyProgress* progress = nullptr);

// One run, for tests and for the function above.
SupplyRunMetrics simulate_supply_run(const Study& study, const SupplyScenario& scenario,
                                     const ResupplyParameters& strategy, RandomSource& source);

// {"runs": R, "strategy": name, "metrics": {"kits_shipped": {"mean": m, "sd": s}, ...}} for one
// strategy; {"runs": R, "strategies": [{"strategy": name, "metrics": {...}}, ...]} for several.
nlohmann::json to_json(const SupplySimulation& s);

std::string to_string(SupplyAllocation a);

// "min/max 2/4" (trigger/up to), "predictive 14/42 days, buffers 1-2".
std::string describe_strategy(const ResupplyParameters& p);

}  // namespace irt::shared
