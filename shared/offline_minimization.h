// Minimization on an offline node, designed against herding.
//
// The trap: right after a sync every node sees the same imbalance; if each
// corrects all of it, they all push the same way and overshoot together, and
// with a few allocations per node between syncs that can end up worse than
// simple randomization. A node therefore never minimizes against the raw
// synced totals. It minimizes against
//     baseline + (its own allocations since that sync)
// plus an overall term, where the hub sends the baseline with each sync
// (offline_baseline):
//   - its share of the synced totals: share x the study-wide counts per
//     factor, level and arm, share being the node's expected fraction of
//     enrollment, so that across the nodes the synced imbalance is corrected
//     about once instead of once per node;
//   - a lean: `lean` participants taken off one arm, spread evenly over the
//     levels of every factor. Consecutive grants lean against the arms in
//     turn, so the leans of the nodes cancel out; a node whose own allocations
//     are balanced breaks the tie toward its lean, and the odd allocations of
//     different nodes then offset each other instead of adding up.
// The overall term (effective_totals): every cell (factor, level, arm) is
// raised by overall_weight x the arm's count over all participants in
// baseline + own. With a couple of allocations per node between syncs,
// participants rarely share levels, so marginal totals alone leave a node's
// own arm counts loosely balanced; the overall term balances them, and
// corrects the node's share of the synced overall imbalance.
// docs/randomization.md gives the measured balance against central
// minimization, naive offline minimization and simple randomization, and the
// price in balance per factor level.
//
// Every random number comes from a stream the hub granted to the node (a seed
// and a sequence, read through a RandomSource). Each decision records where in
// that stream it started and ended; the hub rebuilds the same inputs from its
// ledger and the sync directive (which carries the baseline, lean included),
// and calls verify_offline_decision, which replays the decision from the same
// stream position. A decision that does not replay is an integrity error and
// raises an alert. Thread-safety: plain values; one OfflineMinimizer per node,
// used by one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/minimization.h"
#include "shared/random_source.h"
#include "shared/result.h"

namespace irt::shared {

// The design's constants (see above), chosen from the simulations in
// docs/randomization.md for the general mechanism, not for one scenario.
// overall_weight is part of the replay contract: the node and the hub must
// use the same one (it is not carried in the directive).
struct OfflineDesign {
  double overall_weight = 0.5;  // weight of the overall arm counts in every cell
  double lean = 0.2;            // participants taken off the leaned-against arm
};
inline constexpr OfflineDesign kOfflineDesign{};

// Everything a decision depends on besides the random stream.
struct OfflineInputs {
  MarginalTotals baseline;              // offline_baseline at the node's last sync
  MarginalTotals own_unsynced;          // this node's allocations since that sync
  std::uint64_t synced_participants = 0;  // study-wide allocations at that sync (initial random phase)
  std::vector<std::size_t> levels;      // the participant's level per minimization factor
  std::vector<bool> open_arms;          // empty = all open
  double overall_weight = kOfflineDesign.overall_weight;  // 0: marginal totals only (naive comparison)
};

// A baseline as the grant.minimization_stream directive carries it:
// [factor][level][arm], factors in the study's minimization_factors order.
using BaselineCells = std::vector<std::vector<std::vector<double>>>;

// One of a node's own allocations under its current stream.
struct OwnAllocation {
  std::map<std::string, std::string> factors;  // the participant's factor values (factor id -> level)
  std::string arm;                             // arm id
};

// The inputs of an offline decision, built the same way where it is made (the
// node) and where it is replayed (the hub): the baseline granted with the
// stream, the node's own allocations under that stream before the decision
// (in any order) as own_unsynced, and the participant's `levels`. An own
// allocation whose levels or arm the config does not know is left out.
// integrity error when the baseline does not have the config's shape, but
// for levels missing at the end of a factor, which count zero (a stream
// granted before an amendment added them); exhausted when it has fewer arms
// (a stream granted before an amendment added an arm: sync for a new one).
Result<OfflineInputs> offline_inputs(const MinimizationConfig& config, const BaselineCells& baseline,
                                     std::uint64_t synced_participants, const std::vector<OwnAllocation>& own,
                                     std::vector<std::size_t> levels);

// Hub side, at a sync: a node's baseline (see above). `share` is the node's
// expected fraction of enrollment in (0, 1]; `grant_ordinal` counts the
// grants the hub issued for the study before this one and picks the arm the
// node leans against (ordinal modulo the number of arms). The lean is
// lean x ratio_a / mean ratio participants. With share 1, lean 0 and
// overall weight 0 a node minimizes naively on the stale totals.
MarginalTotals offline_baseline(const MinimizationConfig& config, const MarginalTotals& synced, double share,
                                std::uint64_t grant_ordinal, const OfflineDesign& design = kOfflineDesign);

// What a node records with each offline decision (sealed with the allocation).
struct OfflineDecisionRecord {
  std::uint64_t sequence = 0;        // decision number within the grant, from 1
  std::uint64_t stream_start = 0;    // byte position in the granted stream
  std::uint64_t stream_end = 0;
  std::size_t arm = 0;
  std::size_t preferred = 0;
  bool random_phase = false;
  std::vector<double> scores;
};

// The arms open when the decision was made (a node closes an arm whose cap
// allowance it has used up, hub/cap_allowances.h): a closed arm scores +inf in
// the record, so the hub replays with exactly the node's open arms.
std::vector<bool> open_arms_of(const OfflineDecisionRecord& record);

// The totals a node minimizes against: baseline + own_unsynced, each cell
// raised by overall_weight x that sum's count of the arm over all participants.
MarginalTotals effective_totals(const MinimizationConfig& config, const OfflineInputs& inputs);

// Decides from `stream`, which must be positioned at `stream_position` of the
// granted stream.
OfflineDecisionRecord decide_offline(const MinimizationConfig& config, const OfflineInputs& inputs,
                                     RandomSource& stream, std::uint64_t stream_position, std::uint64_t sequence);

// Replays a recorded decision from a stream positioned at record.stream_start;
// integrity error (naming the decision, never an arm) when the arm, scores or
// stream consumption differ.
Status verify_offline_decision(const MinimizationConfig& config, const OfflineInputs& inputs,
                               const OfflineDecisionRecord& record, RandomSource& stream_at_start);

// A node's running state between syncs.
class OfflineMinimizer {
 public:
  explicit OfflineMinimizer(MinimizationConfig config, double overall_weight = kOfflineDesign.overall_weight);

  // A sync brought a new baseline and the study-wide count of allocations;
  // own unsynced allocations restart from zero.
  void on_sync(const MarginalTotals& baseline, std::uint64_t synced_participants);

  // Allocates one participant, drawing from the granted stream at position().
  OfflineDecisionRecord decide(std::span<const std::size_t> levels, RandomSource& granted_stream,
                               std::span<const bool> open_arms = {});

  // The inputs of the next decision (what the hub will rebuild to verify it).
  OfflineInputs inputs_for(std::span<const std::size_t> levels, std::span<const bool> open_arms = {}) const;

  std::uint64_t position() const { return position_; }
  const MinimizationConfig& config() const { return config_; }

 private:
  MinimizationConfig config_;
  double overall_weight_ = kOfflineDesign.overall_weight;
  MarginalTotals baseline_;
  MarginalTotals own_;
  std::uint64_t synced_participants_ = 0;
  std::uint64_t position_ = 0;
  std::uint64_t sequence_ = 0;
};

void to_json(nlohmann::json& j, const OfflineDecisionRecord& r);
void from_json(const nlohmann::json& j, OfflineDecisionRecord& r);

}  // namespace irt::shared
