#include "shared/randomization_simulator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "shared/allocation.h"
#include "shared/block_list.h"
#include "shared/minimization.h"
#include "shared/offline_minimization.h"
#include "shared/slot_slice.h"

namespace irt::shared {

namespace {

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Running mean and variance (Welford), for a per-run quantity.
struct Moments {
  double n = 0, mean = 0, m2 = 0;
  void add(double x) {
    n += 1;
    double d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  double variance() const { return n > 1 ? m2 / (n - 1) : 0; }
  double se() const { return n > 1 ? std::sqrt(variance() / n) : 0; }
};

double entropy(std::span<const double> p) {
  double h = 0;
  for (double x : p)
    if (x > 0) h -= x * std::log(x);
  return h;
}

// Allocation probabilities of a minimization decision, reconstructed from its
// scores exactly as minimize() draws (see minimization.h).
void minimization_probabilities(const MinimizationConfig& cfg, const MinimizationDecision& d,
                                std::uint64_t allocated_so_far, std::span<double> phi) {
  const auto& r = cfg.allocation.ratio;
  const std::size_t k = r.size();
  double best = std::numeric_limits<double>::infinity();
  for (double s : d.scores) best = std::min(best, s);
  std::vector<std::size_t> tied;
  double open_ratio = 0;
  for (std::size_t j = 0; j < k; ++j) {
    if (std::isinf(d.scores[j])) continue;
    open_ratio += r[j];
    if (std::fabs(d.scores[j] - best) <= 1e-9 * std::max({1.0, std::fabs(best), std::fabs(d.scores[j])}))
      tied.push_back(j);
  }
  std::fill(phi.begin(), phi.end(), 0.0);
  std::size_t n_open = 0;
  for (double s : d.scores) n_open += !std::isinf(s);
  if (allocated_so_far < cfg.initial_random || tied.size() == n_open) {
    for (std::size_t j = 0; j < k; ++j)
      if (!std::isinf(d.scores[j])) phi[j] = r[j] / open_ratio;
    return;
  }
  const double p = cfg.preferred_probability;
  for (std::size_t t : tied) {
    const double w = 1.0 / static_cast<double>(tied.size());
    phi[t] += w * p;
    const double others = open_ratio - r[t];
    for (std::size_t j = 0; j < k; ++j)
      if (j != t && !std::isinf(d.scores[j])) phi[j] += w * (1 - p) * r[j] / others;
  }
}

struct Covariate {
  std::string id;
  std::vector<std::string> levels;
};

}  // namespace

std::string describe_design(const Randomization& d) {
  switch (d.method) {
    case Method::simple: return "simple";
    case Method::permuted_blocks: {
      std::string s = "blocks:";
      for (std::size_t i = 0; i < d.block_sizes.size(); ++i) s += (i ? "," : "") + std::to_string(d.block_sizes[i]);
      return s;
    }
    case Method::biased_coin: return "efron:p=" + format_number(d.coin_probability);
    case Method::max_tolerated_imbalance: return "bigstick:mti=" + std::to_string(d.max_tolerated_imbalance);
    case Method::minimization: return "minimization:p=" + format_number(d.preferred_probability);
  }
  return "?";
}

Result<Randomization> parse_method(std::string_view spec, const Randomization& base) {
  Randomization d = base;
  const auto colon = spec.find(':');
  const std::string_view name = spec.substr(0, colon);
  const std::string_view args = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_input, "--method '" + std::string(spec) + "': " + why +
                                               "; use simple, blocks:4[,6...], efron:p=0.667, bigstick:mti=3 or "
                                               "minimization[:p=0.8]");
  };
  auto number_after = [&](std::string_view key, double& out) -> bool {
    if (args.substr(0, key.size()) != key) return false;
    std::string v(args.substr(key.size()));
    char* end = nullptr;
    out = std::strtod(v.c_str(), &end);
    return !v.empty() && end == v.c_str() + v.size();
  };
  if (name == "simple") {
    if (!args.empty()) return bad("simple takes no parameter");
    d.method = Method::simple;
  } else if (name == "blocks") {
    d.method = Method::permuted_blocks;
    d.block_sizes.clear();
    std::size_t at = 0;
    while (at <= args.size() && !args.empty()) {
      auto comma = args.find(',', at);
      auto part = args.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
      int b = 0;
      auto r = std::from_chars(part.data(), part.data() + part.size(), b);
      if (r.ec != std::errc{} || r.ptr != part.data() + part.size() || b <= 0) return bad("block sizes are positive integers");
      d.block_sizes.push_back(b);
      if (comma == std::string_view::npos) break;
      at = comma + 1;
    }
    if (d.block_sizes.empty()) return bad("give at least one block size");
  } else if (name == "efron") {
    double p = 0;
    if (!number_after("p=", p) || p < 0.5 || p > 1) return bad("p must lie in [0.5, 1]");
    d.method = Method::biased_coin;
    d.coin_probability = p;
  } else if (name == "bigstick") {
    double m = 0;
    if (!number_after("mti=", m) || m < 1 || m != std::floor(m)) return bad("mti must be a positive integer");
    d.method = Method::max_tolerated_imbalance;
    d.max_tolerated_imbalance = static_cast<int>(m);
  } else if (name == "minimization") {
    d.method = Method::minimization;
    if (!args.empty()) {
      double p = 0;
      if (!number_after("p=", p) || p < 0 || p > 1) return bad("p must lie in [0, 1]");
      d.preferred_probability = p;
    }
  } else {
    return bad("unknown method");
  }
  return d;
}

Result<SimulationResult> simulate(const Study& study_in, const Randomization& design, const SimulationSettings& settings,
                                  RandomSource& source) {
  if (settings.participants == 0 || settings.runs == 0 || settings.nodes == 0)
    return make_error(Errc::invalid_input, "participants, runs and nodes must all be at least 1");
  if (settings.nodes > 1 && settings.sync_every == 0)
    return make_error(Errc::invalid_input, "a run with several nodes needs --sync-every of at least 1");
  Study study = study_in;
  study.randomization = design;
  const Allocation alloc = allocation_of(study);
  if (auto st = check_allocation(alloc); !st) return st.error();
  const std::size_t k = alloc.size();
  const bool central = settings.nodes == 1;
  const bool is_min = design.method == Method::minimization;

  // Covariates: the design's strata and minimization factors, else the study's factors.
  std::vector<std::string> ids;
  auto add_id = [&](const std::string& id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (const auto& id : design.strata) add_id(id);
  // Minimization factors count even for other methods, so a comparison run
  // reports the same factor levels as the study's own design.
  for (const auto& f : design.minimization_factors) add_id(f.factor);
  if (ids.empty())
    for (const auto& f : study.factors) add_id(f.id);
  std::vector<Covariate> cov;
  for (const auto& id : ids) {
    auto levels = factor_levels(study, id);
    if (!levels) return levels.error();
    cov.push_back({id, std::move(*levels)});
  }
  std::size_t report_strata = 1;
  for (const auto& c : cov) report_strata *= c.levels.size();
  if (report_strata > 100000)
    return make_error(Errc::invalid_input, "the design's factors make " + std::to_string(report_strata) +
                                               " strata; simulate with fewer factors or levels");

  auto strata = strata_of(study);
  if (!strata) return strata.error();
  std::vector<std::size_t> stratum_cov;  // covariate index of each stratification factor
  for (const auto& f : strata->factors)
    stratum_cov.push_back(static_cast<std::size_t>(std::find(ids.begin(), ids.end(), f.id) - ids.begin()));

  std::optional<MinimizationConfig> mcfg;
  std::vector<std::size_t> min_cov;
  if (is_min) {
    auto c = minimization_config(study);
    if (!c) return c.error();
    mcfg = std::move(*c);
    for (const auto& f : mcfg->factors)
      min_cov.push_back(static_cast<std::size_t>(std::find(ids.begin(), ids.end(), f.id) - ids.begin()));
  }
  if (design.method == Method::biased_coin || design.method == Method::max_tolerated_imbalance) {
    if (!alloc.equal_two_arms())
      return make_error(Errc::invalid_input, describe_design(design) + " needs exactly two arms with equal ratio; "
                                             "choose blocks, simple or minimization for this study");
  }

  const bool two_arm = central && alloc.equal_two_arms();
  const std::size_t site_cov =
      static_cast<std::size_t>(std::find(ids.begin(), ids.end(), std::string("site")) - ids.begin());
  const std::size_t n = settings.participants;
  // Grants per node and stratum in node runs: the participants one node sees
  // in one stratum between syncs, rounded up to whole blocks by the ledger.
  const std::size_t grant_slots = std::max<std::size_t>(
      1, (settings.sync_every + settings.nodes * strata->count() - 1) / (settings.nodes * strata->count()));
  int max_block = 1;
  for (int b : design.block_sizes) max_block = std::max(max_block, b);

  Moments eb, dn_m, mi, et, da, cg, abs_imb;
  std::vector<double> stratum_sum(report_strata, 0.0);
  std::size_t level_rows = 0;
  std::vector<std::size_t> level_offset;
  for (const auto& c : cov) {
    level_offset.push_back(level_rows);
    level_rows += c.levels.size();
  }
  std::vector<double> level_sum(level_rows, 0.0);

  std::vector<long> counts(k), stratum_counts(report_strata * k), level_counts(level_rows * k);
  std::vector<std::size_t> levels(cov.size()), min_levels(min_cov.size());
  std::vector<double> phi(k);
  std::vector<int> ratio_weights(alloc.ratio);
  const double ratio_sum = alloc.ratio_sum();

  // Naive offline minimization: the stale totals in full, no lean, no overall term.
  const OfflineDesign offline_design = settings.offline == OfflineMode::naive
                                           ? OfflineDesign{0.0, 0.0}
                                           : settings.offline_design;

  for (std::size_t run = 0; run < settings.runs; ++run) {
    std::fill(counts.begin(), counts.end(), 0L);
    std::fill(stratum_counts.begin(), stratum_counts.end(), 0L);
    std::fill(level_counts.begin(), level_counts.end(), 0L);

    // Per-run design state.
    std::optional<RandomizationList> list;
    std::vector<std::size_t> cursor;   // central list runs: next slot per stratum
    std::vector<long> stratum_d;       // per design stratum n0 - n1 (Efron, big stick)
    std::unique_ptr<SliceLedger> ledger;
    std::vector<NodeSlots> node_slots;
    std::optional<MarginalTotals> totals;
    std::vector<OfflineMinimizer> offline;
    std::uint64_t grants = 0;  // grants issued in this run (offline_baseline's ordinal)
    if (is_min) {
      totals.emplace(*mcfg);
      if (!central)
        offline.assign(settings.nodes, OfflineMinimizer(*mcfg, offline_design.overall_weight));
    } else if (design.method != Method::simple || !central) {
      const std::size_t per_stratum = central ? n : n + settings.nodes * (grant_slots + static_cast<std::size_t>(max_block));
      auto l = generate_list(study, source, per_stratum);
      if (!l) return l.error();
      list = std::move(*l);
      cursor.assign(strata->count(), 0);
      stratum_d.assign(strata->count(), 0);
      if (!central) {
        ledger = std::make_unique<SliceLedger>(*list);
        node_slots.assign(settings.nodes, NodeSlots{});
      }
    }

    double run_eb = 0, run_et = 0, run_da = 0, run_cg = 0;
    long run_max = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t node = central ? 0 : static_cast<std::size_t>(uniform(source, settings.nodes));
      for (std::size_t c = 0; c < cov.size(); ++c)
        levels[c] = !central && c == site_cov ? node % cov[c].levels.size()
                                              : static_cast<std::size_t>(uniform(source, cov[c].levels.size()));
      if (!central && is_min && j > 0 && j % settings.sync_every == 0) {
        // Every node syncs, one grant after another: the hub hands out
        // baselines built from the true totals.
        const double share = settings.offline == OfflineMode::naive ? 1.0 : 1.0 / static_cast<double>(settings.nodes);
        for (auto& m : offline) m.on_sync(offline_baseline(*mcfg, *totals, share, grants++, offline_design), j);
      }

      std::size_t arm = 0;
      std::size_t design_stratum = 0;
      for (std::size_t f = 0; f < stratum_cov.size(); ++f)
        design_stratum = design_stratum * cov[stratum_cov[f]].levels.size() + levels[stratum_cov[f]];

      if (is_min) {
        for (std::size_t f = 0; f < min_cov.size(); ++f) min_levels[f] = levels[min_cov[f]];
        if (central) {
          auto d = minimize(*mcfg, *totals, min_levels, j, source);
          arm = d.arm;
          minimization_probabilities(*mcfg, d, j, phi);
        } else {
          arm = offline[node].decide(min_levels, source).arm;
        }
        totals->add(min_levels, arm);
      } else if (!list) {  // central simple randomization
        arm = draw_simple(source, alloc);
        for (std::size_t a = 0; a < k; ++a) phi[a] = alloc.ratio[a] / ratio_sum;
      } else if (central) {
        const std::size_t begin = list->stratum_begin[design_stratum];
        const std::size_t at = begin + cursor[design_stratum]++;
        const ListSlot& slot = list->slots[at];
        arm = slot.arm;
        switch (design.method) {
          case Method::permuted_blocks: {
            std::fill(phi.begin(), phi.end(), 0.0);
            std::size_t rest = 0;
            for (std::size_t i = at; i < list->stratum_begin[design_stratum + 1] && list->slots[i].block == slot.block; ++i, ++rest)
              phi[list->slots[i].arm] += 1;
            for (auto& x : phi) x /= static_cast<double>(rest);
            break;
          }
          case Method::biased_coin:
            phi[0] = efron_probability(stratum_d[design_stratum], design.coin_probability);
            phi[1] = 1 - phi[0];
            break;
          case Method::max_tolerated_imbalance:
            phi[0] = big_stick_probability(stratum_d[design_stratum], design.max_tolerated_imbalance);
            phi[1] = 1 - phi[0];
            break;
          default:
            for (std::size_t a = 0; a < k; ++a) phi[a] = alloc.ratio[a] / ratio_sum;
        }
        if (k == 2) stratum_d[design_stratum] += arm == 0 ? 1 : -1;
      } else {
        const std::string node_id = "node-" + std::to_string(node);
        const auto s = static_cast<std::uint32_t>(design_stratum);
        auto taken = node_slots[node].take_next(s);
        if (!taken) {
          auto g = ledger->grant(node_id, s, grant_slots);
          if (!g) return g.error();
          if (auto st = node_slots[node].apply(*g); !st) return st.error();
          taken = node_slots[node].take_next(s);
          if (!taken) return taken.error();
        }
        arm = static_cast<std::size_t>(std::find(alloc.arms.begin(), alloc.arms.end(), taken->arm) - alloc.arms.begin());
      }

      if (two_arm) {
        const long d_before = counts[0] - counts[1];
        const double guess0 = d_before < 0 ? 1.0 : d_before > 0 ? 0.0 : 0.5;
        run_cg += arm == 0 ? guess0 : 1 - guess0;
        run_et += entropy(phi);
        run_da += (phi[0] == 0.0 || phi[0] == 1.0) ? 1 : 0;
      }
      ++counts[arm];
      std::size_t rs = 0;
      for (std::size_t c = 0; c < cov.size(); ++c) {
        rs = rs * cov[c].levels.size() + levels[c];
        ++level_counts[(level_offset[c] + levels[c]) * k + arm];
      }
      ++stratum_counts[rs * k + arm];
      if (two_arm) {
        const long d = counts[0] - counts[1];
        run_eb += d == 0;
        run_max = std::max(run_max, std::labs(d));
      }
    }
    if (two_arm) {
      const double nn = static_cast<double>(n);
      eb.add(run_eb / nn);
      et.add(run_et / nn);
      da.add(run_da / nn);
      cg.add(run_cg / nn);
      mi.add(static_cast<double>(run_max));
      dn_m.add(static_cast<double>(counts[0] - counts[1]));
    }
    abs_imb.add(ratio_imbalance(counts, alloc.ratio));
    for (std::size_t s = 0; s < report_strata; ++s)
      stratum_sum[s] += ratio_imbalance(std::span<const long>(&stratum_counts[s * k], k), alloc.ratio);
    for (std::size_t r = 0; r < level_rows; ++r)
      level_sum[r] += ratio_imbalance(std::span<const long>(&level_counts[r * k], k), alloc.ratio);
  }

  SimulationResult out;
  out.settings = settings;
  out.design = describe_design(design);
  if (!central)
    out.design += std::string(" offline") + (!is_min ? "" : settings.offline == OfflineMode::naive ? " naive" : " share-weighted") + " (" +
                  std::to_string(settings.nodes) + " nodes, sync every " + std::to_string(settings.sync_every) + ")";
  if (two_arm) {
    TwoArmMetrics m;
    const double runs = static_cast<double>(settings.runs);
    m.eb = eb.mean;
    m.se_eb = eb.se();
    m.dn = std::sqrt(dn_m.variance());
    m.se_dn = m.dn / std::sqrt(2 * std::max(1.0, runs - 1));
    m.mi = mi.mean;
    m.se_mi = mi.se();
    m.et = et.mean;
    m.se_et = et.se();
    m.da = da.mean;
    m.se_da = da.se();
    m.cg = cg.mean;
    m.se_cg = cg.se();
    out.two_arm = m;
  }
  out.mean_abs_imbalance = abs_imb.mean;
  out.se_abs_imbalance = abs_imb.se();
  const double runs = static_cast<double>(settings.runs);
  for (std::size_t s = 0; s < report_strata; ++s) {
    std::string label;
    std::size_t rest = s;
    std::vector<std::size_t> lv(cov.size());
    for (std::size_t c = cov.size(); c-- > 0;) {
      lv[c] = rest % cov[c].levels.size();
      rest /= cov[c].levels.size();
    }
    for (std::size_t c = 0; c < cov.size(); ++c) label += (c ? ";" : "") + cov[c].id + "=" + cov[c].levels[lv[c]];
    out.per_stratum.push_back({cov.empty() ? "all" : label, stratum_sum[s] / runs});
  }
  for (std::size_t c = 0; c < cov.size(); ++c)
    for (std::size_t l = 0; l < cov[c].levels.size(); ++l)
      out.per_factor_level.push_back({cov[c].id + "=" + cov[c].levels[l], level_sum[level_offset[c] + l] / runs});
  return out;
}

nlohmann::json to_json(const SimulationResult& r) {
  nlohmann::json j{{"design", r.design},
                   {"participants", r.settings.participants},
                   {"runs", r.settings.runs},
                   {"nodes", r.settings.nodes},
                   {"sync_every", r.settings.nodes > 1 ? nlohmann::json(r.settings.sync_every) : nlohmann::json(nullptr)},
                   {"mean_abs_imbalance", r.mean_abs_imbalance},
                   {"se_abs_imbalance", r.se_abs_imbalance}};
  if (r.two_arm) {
    const auto& m = *r.two_arm;
    j["two_arm"] = {{"EB", m.eb}, {"Dn", m.dn}, {"MI", m.mi}, {"ET", m.et}, {"DA", m.da}, {"CG", m.cg},
                    {"se", {{"EB", m.se_eb}, {"Dn", m.se_dn}, {"MI", m.se_mi}, {"ET", m.se_et}, {"DA", m.se_da}, {"CG", m.se_cg}}}};
  }
  j["per_stratum"] = nlohmann::json::array();
  for (const auto& s : r.per_stratum) j["per_stratum"].push_back({{"stratum", s.label}, {"mean_imbalance", s.mean}});
  j["per_factor_level"] = nlohmann::json::array();
  for (const auto& s : r.per_factor_level) j["per_factor_level"].push_back({{"level", s.label}, {"mean_imbalance", s.mean}});
  return j;
}

}  // namespace irt::shared
