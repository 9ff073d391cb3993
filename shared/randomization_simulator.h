// Monte Carlo comparison of randomization designs, behind
// `irt-hub simulate randomization`, and the measurement of what offline
// operation costs in balance.
//
// For two arms with equal ratio it reports the standard metrics of the
// restricted-randomization literature (as in Zhao et al. 2011, Pharm Stat
// 11:39-48), each averaged over runs:
//   EB  mean over steps j of P(D_j = 0), D_j = n_0 - n_1 after j participants
//   Dn  standard deviation of the final imbalance D_n
//   MI  expected maximum of |D_j| over the sequence
//   ET  mean over steps of the entropy (nats) of the allocation probabilities
//   DA  fraction of steps whose allocation was deterministic
//   CG  correct-guess rate of the Blackwell-Hodges convergence strategy
//       (guess the arm that is behind overall; a tie counts one half)
// and, for any number of arms, the final imbalance (allocation.h's
// ratio_imbalance) overall, per stratum (cross product of the design's factors)
// and per factor level.
//
// Participants get uniformly drawn levels of every factor the design uses. In a
// node run (nodes > 1) each participant arrives at a uniformly drawn node (site
// = node), nodes sync every `sync_every` allocations study-wide; list designs
// consume whole blocks granted per node and stratum through SliceLedger and
// NodeSlots (leaving partly used blocks behind), minimization runs
// OfflineMinimizer on every node (share-weighted, or naive when asked).
// Thread-safety: pure functions over the caller's RandomSource.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/offline_minimization.h"
#include "shared/random_source.h"
#include "shared/result.h"
#include "shared/study.h"

namespace irt::shared {

enum class OfflineMode { share_weighted, naive };

struct SimulationSettings {
  std::size_t participants = 100;
  std::size_t runs = 1000;
  std::size_t nodes = 1;       // 1 = central allocation
  std::size_t sync_every = 25; // study-wide allocations between syncs, for nodes > 1
  OfflineMode offline = OfflineMode::share_weighted;
  OfflineDesign offline_design = kOfflineDesign;  // share_weighted mode (naive ignores it)
};

struct TwoArmMetrics {
  double eb = 0, dn = 0, mi = 0, et = 0, da = 0, cg = 0;
  // Monte Carlo standard errors of the same quantities.
  double se_eb = 0, se_dn = 0, se_mi = 0, se_et = 0, se_da = 0, se_cg = 0;
};

struct LevelImbalance {
  std::string label;  // "sex=F" or "site=101;sex=F"
  double mean = 0;    // mean final imbalance over runs
};

struct SimulationResult {
  std::string design;  // describe_design(...) plus the offline mode
  SimulationSettings settings;
  std::optional<TwoArmMetrics> two_arm;  // two arms with equal ratio, central runs
  double mean_abs_imbalance = 0;         // overall final imbalance, mean over runs
  double se_abs_imbalance = 0;
  std::vector<LevelImbalance> per_stratum;
  std::vector<LevelImbalance> per_factor_level;
};

// Runs the study with `design` in place of its own randomization settings.
Result<SimulationResult> simulate(const Study& study, const Randomization& design, const SimulationSettings& settings,
                                  RandomSource& source);

// `--method` specs: "simple", "blocks:4" or "blocks:4,6", "efron:p=0.667",
// "bigstick:mti=3", "minimization" or "minimization:p=0.9"; the rest of
// `base` (strata, factors, measure) is kept.
Result<Randomization> parse_method(std::string_view spec, const Randomization& base);
std::string describe_design(const Randomization& design);

nlohmann::json to_json(const SimulationResult& r);

}  // namespace irt::shared
