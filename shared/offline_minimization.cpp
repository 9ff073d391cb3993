#include "shared/offline_minimization.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

namespace irt::shared {

MarginalTotals effective_totals(const MinimizationConfig& config, const OfflineInputs& inputs) {
  MarginalTotals t = inputs.baseline;
  t.combine(1.0, inputs.own_unsynced, 1.0);
  if (inputs.overall_weight == 0 || config.factors.empty()) return t;
  // Every participant has one level of the first factor: its cells add up to the arm counts.
  const std::size_t arms = t.arms();
  std::vector<double> overall(arms, 0.0);
  for (std::size_t l = 0; l < config.factors[0].levels.size(); ++l)
    for (std::size_t k = 0; k < arms; ++k) overall[k] += t.at(0, l, k);
  for (std::size_t f = 0; f < config.factors.size(); ++f)
    for (std::size_t l = 0; l < config.factors[f].levels.size(); ++l)
      for (std::size_t k = 0; k < arms; ++k) t.add_cell(f, l, k, inputs.overall_weight * overall[k]);
  return t;
}

MarginalTotals offline_baseline(const MinimizationConfig& config, const MarginalTotals& synced, double share,
                                std::uint64_t grant_ordinal, const OfflineDesign& design) {
  MarginalTotals t = synced;
  t.combine(share, synced, 0.0);
  const std::size_t arms = config.allocation.size();
  if (design.lean == 0 || arms == 0) return t;
  const std::size_t arm = static_cast<std::size_t>(grant_ordinal % arms);
  const double mean_ratio = static_cast<double>(config.allocation.ratio_sum()) / static_cast<double>(arms);
  const double lean = design.lean * config.allocation.ratio[arm] / mean_ratio;
  for (std::size_t f = 0; f < config.factors.size(); ++f) {
    const std::size_t levels = config.factors[f].levels.size();
    for (std::size_t l = 0; l < levels; ++l) t.add_cell(f, l, arm, -lean / static_cast<double>(levels));
  }
  return t;
}

OfflineDecisionRecord decide_offline(const MinimizationConfig& config, const OfflineInputs& inputs,
                                     RandomSource& stream, std::uint64_t stream_position, std::uint64_t sequence) {
  if (!inputs.baseline.same_shape(inputs.own_unsynced))
    throw std::invalid_argument("decide_offline: baseline and unsynced totals differ in shape");
  CountingSource counted(stream, stream_position);
  MarginalTotals t = effective_totals(config, inputs);
  // The initial random phase counts every allocation the node knows of.
  auto known = inputs.synced_participants + static_cast<std::uint64_t>(std::llround(inputs.own_unsynced.participants()));
  // std::vector<bool> is not contiguous; minimize takes a span of bool.
  const std::vector<bool>& open = inputs.open_arms;
  std::unique_ptr<bool[]> open_flags;
  std::span<const bool> open_span;
  if (!open.empty()) {
    open_flags = std::make_unique<bool[]>(open.size());
    for (std::size_t i = 0; i < open.size(); ++i) open_flags[i] = open[i];
    open_span = {open_flags.get(), open.size()};
  }
  MinimizationDecision d = minimize(config, t, inputs.levels, known, counted, open_span);
  OfflineDecisionRecord r;
  r.sequence = sequence;
  r.stream_start = stream_position;
  r.stream_end = counted.position();
  r.arm = d.arm;
  r.preferred = d.preferred;
  r.random_phase = d.random_phase;
  r.scores = std::move(d.scores);
  return r;
}

std::vector<bool> open_arms_of(const OfflineDecisionRecord& record) {
  std::vector<bool> open;
  for (double s : record.scores) open.push_back(!std::isinf(s));
  return open;
}

Status verify_offline_decision(const MinimizationConfig& config, const OfflineInputs& inputs,
                               const OfflineDecisionRecord& record, RandomSource& stream_at_start) {
  OfflineDecisionRecord again = decide_offline(config, inputs, stream_at_start, record.stream_start, record.sequence);
  bool same = again.arm == record.arm && again.stream_end == record.stream_end &&
              again.random_phase == record.random_phase && again.preferred == record.preferred &&
              again.scores.size() == record.scores.size();
  for (std::size_t i = 0; same && i < again.scores.size(); ++i)
    same = again.scores[i] == record.scores[i] ||
           (std::isinf(again.scores[i]) && std::isinf(record.scores[i]));
  if (!same)
    return make_error(Errc::integrity,
                      "offline minimization decision " + std::to_string(record.sequence) +
                          " (stream bytes " + std::to_string(record.stream_start) + ".." +
                          std::to_string(record.stream_end) +
                          ") does not replay from the granted stream and the node's recorded inputs; "
                          "raise an alert, freeze the node's grants and review its ledger");
  return {};
}

OfflineMinimizer::OfflineMinimizer(MinimizationConfig config, double overall_weight)
    : config_(std::move(config)), overall_weight_(overall_weight), baseline_(config_), own_(config_) {}

Result<OfflineInputs> offline_inputs(const MinimizationConfig& config, const BaselineCells& baseline,
                                     std::uint64_t synced_participants, const std::vector<OwnAllocation>& own,
                                     std::vector<std::size_t> levels) {
  // A factor may have fewer levels in the baseline than in the config: an
  // amendment added levels at its end (a site) after the stream was granted,
  // and no allocation there was in the baseline; those cells count zero.
  // A stream granted before an amendment added an arm holds a baseline over
  // the old arms: the added arm started a new minimization segment, and the
  // node minimizes again with the stream its next sync brings.
  if (!baseline.empty() && !baseline[0].empty() && baseline[0][0].size() < config.allocation.size())
    return make_error(Errc::exhausted, "the minimization stream this node holds was granted for " +
                                           std::to_string(baseline[0][0].size()) + " arms and the study now has " +
                                           std::to_string(config.allocation.size()) +
                                           "; sync with the hub to receive one for the new design; nothing was changed");
  bool fits = baseline.size() == config.factors.size();
  for (std::size_t f = 0; fits && f < baseline.size(); ++f) {
    fits = baseline[f].size() <= config.factors[f].levels.size();
    for (std::size_t l = 0; fits && l < baseline[f].size(); ++l) fits = baseline[f][l].size() == config.allocation.size();
  }
  if (!fits)
    return make_error(Errc::integrity, "the minimization baseline does not fit the study; sync with the hub");
  OfflineInputs inputs;
  inputs.baseline = MarginalTotals(config);
  for (std::size_t f = 0; f < baseline.size(); ++f)
    for (std::size_t l = 0; l < baseline[f].size(); ++l)
      for (std::size_t k = 0; k < baseline[f][l].size(); ++k) inputs.baseline.add_cell(f, l, k, baseline[f][l][k]);
  inputs.own_unsynced = MarginalTotals(config);
  for (const auto& a : own) {
    auto ol = minimization_levels(config, a.factors);
    auto arm = std::find(config.allocation.arms.begin(), config.allocation.arms.end(), a.arm);
    if (ol && arm != config.allocation.arms.end())
      inputs.own_unsynced.add(*ol, static_cast<std::size_t>(arm - config.allocation.arms.begin()));
  }
  inputs.synced_participants = synced_participants;
  inputs.levels = std::move(levels);
  return inputs;
}

void OfflineMinimizer::on_sync(const MarginalTotals& baseline, std::uint64_t synced_participants) {
  if (!baseline.same_shape(own_)) throw std::invalid_argument("OfflineMinimizer::on_sync: totals of another shape");
  baseline_ = baseline;
  own_ = MarginalTotals(config_);
  synced_participants_ = synced_participants;
}

OfflineInputs OfflineMinimizer::inputs_for(std::span<const std::size_t> levels, std::span<const bool> open_arms) const {
  OfflineInputs in{baseline_, own_, synced_participants_, {levels.begin(), levels.end()},
                   {open_arms.begin(), open_arms.end()}, overall_weight_};
  return in;
}

OfflineDecisionRecord OfflineMinimizer::decide(std::span<const std::size_t> levels, RandomSource& granted_stream,
                                               std::span<const bool> open_arms) {
  OfflineDecisionRecord r = decide_offline(config_, inputs_for(levels, open_arms), granted_stream, position_, ++sequence_);
  position_ = r.stream_end;
  own_.add(levels, r.arm);
  return r;
}

void to_json(nlohmann::json& j, const OfflineDecisionRecord& r) {
  j = nlohmann::json{{"sequence", r.sequence}, {"stream_start", r.stream_start}, {"stream_end", r.stream_end},
                     {"arm", r.arm}, {"preferred", r.preferred}, {"random_phase", r.random_phase},
                     {"scores", nlohmann::json::array()}};
  // A closed arm scores +inf, which JSON cannot carry: it travels as null.
  for (double s : r.scores) j["scores"].push_back(std::isinf(s) ? nlohmann::json(nullptr) : nlohmann::json(s));
}

void from_json(const nlohmann::json& j, OfflineDecisionRecord& r) {
  j.at("sequence").get_to(r.sequence);
  j.at("stream_start").get_to(r.stream_start);
  j.at("stream_end").get_to(r.stream_end);
  j.at("arm").get_to(r.arm);
  j.at("preferred").get_to(r.preferred);
  j.at("random_phase").get_to(r.random_phase);
  r.scores.clear();
  for (const auto& s : j.at("scores"))
    r.scores.push_back(s.is_null() ? std::numeric_limits<double>::infinity() : s.get<double>());
}

}  // namespace irt::shared
