#include "shared/supply_simulator.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <numbers>
#include <thread>

#include "shared/forecast.h"

namespace irt::shared {

RunSources::~RunSources() = default;
SupplyProgress::~SupplyProgress() = default;

const std::vector<std::string>& supply_metric_names() {
  static const std::vector<std::string> names = {
      "kits_shipped",      "kits_dispensed",        "kits_expired",
      "kits_left_at_sites", "overage_percent",      "waste_percent",
      "participants_lost_percent", "stockouts_per_1000_visits", "shipments",
      "days_to_last_randomization", "cost"};
  return names;
}

double metric_value(const SupplyRunMetrics& m, std::size_t index) {
  const double values[] = {m.kits_shipped,     m.kits_dispensed,          m.kits_expired,
                           m.kits_left_at_sites, m.overage_percent,       m.waste_percent,
                           m.participants_lost_percent, m.stockouts_per_1000_visits, m.shipments,
                           m.days_to_last_randomization, m.cost};
  return values[index];
}

std::string describe_strategy(const ResupplyParameters& p) {
  if (p.strategy == ResupplyStrategy::predictive) {
    const auto& w = p.predictive;
    return "predictive " + std::to_string(w.trigger_window_days) + "/" + std::to_string(w.resupply_window_days) +
           " days, buffers " + std::to_string(w.min_buffer) + "-" + std::to_string(w.max_buffer);
  }
  bool uniform_levels = std::all_of(p.levels.begin(), p.levels.end(), [&](const KitLevels& l) {
    return l.trigger == p.levels.front().trigger && l.up_to == p.levels.front().up_to;
  });
  if (p.levels.empty() || !uniform_levels) return "min/max, levels per kit type";
  return "min/max " + std::to_string(p.levels.front().trigger) + "/" + std::to_string(p.levels.front().up_to);
}

std::string to_string(SupplyAllocation a) { return a == SupplyAllocation::node_slices ? "node_slices" : "central_list"; }

namespace {

// A run that has not randomized every participant by then stops (a scenario
// whose sites never recruit, or whose kits all expire): 30 years.
constexpr int kMaxDays = 30 * 365;

// Draws. Every one goes through shared/random_source.h, so a run depends on
// its source's bytes only (the gamma variate is shared/forecast.h's).
double exponential(RandomSource& s, double rate) { return -std::log(1.0 - unit(s)) / rate; }

struct Kits {
  std::size_t type = 0;  // index into Study::kit_types
  int count = 0;
};

// A dispensing visit after randomization: its day, the day its window opens,
// and per arm the kits it takes.
struct DispensingVisit {
  int day = 0;
  int opens = 0;
  std::vector<std::vector<Kits>> per_arm;
};

struct Transit {
  int arrives = 0;
  std::size_t type = 0;
  int count = 0;
};

struct Site {
  int activation = 0;
  double rate = 0;
  bool listed = false;  // rate known (listed site) rather than estimated
  bool active = false;
  double next_arrival = 0;
  int arrivals_made = 0;
  int randomized = 0;
  std::vector<int> on_hand;
  std::vector<Transit> transit;
  std::vector<int> list;  // node_slices: the site's own slots (arm indexes)
  std::size_t list_used = 0;
  std::vector<std::size_t> participants;
};

struct Participant {
  std::size_t site = 0;
  int arm = 0;
  int randomized = 0;
  double dropout = 0;       // the day the participant is gone
  std::size_t next = 0;     // index of the next DispensingVisit
  bool done = false;
};

class Run {
 public:
  Run(const Study& study, const SupplyScenario& sc, const ResupplyParameters& strategy, RandomSource& source)
      : study_(study), sc_(sc), p_(strategy), src_(source), per_new_(kits_per_new_participant(study)) {
    for (const auto& a : study.arms) ratios_.push_back(a.ratio);
    for (const auto& v : study.visits) {
      if (v.dispense.empty() || v.day < 0) continue;
      DispensingVisit d{v.day, v.day - v.window_before, std::vector<std::vector<Kits>>(study.arms.size())};
      for (const auto& k : v.dispense) d.per_arm[arm_index(k.arm)].push_back({type_index(k.kit_type), k.count});
      (v.day == 0 ? at_randomization_ : visits_).push_back(std::move(d));
    }
    for (const auto& k : study.kit_types) {
      auto e = sc.expiry_day.find(k.id);
      expiry_.push_back(e == sc.expiry_day.end() ? std::nullopt : std::optional<int>(e->second));
    }
    // The simulated sites have no country: each kit type's own windows.
    for (const auto& k : study.kit_types) windows_.push_back(study.expiry_windows(k.id, ""));
    lambda_ = sc.dropout_fraction > 0 ? -std::log(1.0 - sc.dropout_fraction) / sc.dropout_by_day : 0;
  }

  SupplyRunMetrics run() {
    draw_sites();
    int day = 0;
    for (; day <= kMaxDays; ++day) {
      deliver(day);
      activate(day);
      dispense(day);
      arrive(day);
      if (randomized_ == sc_.participants && pending_ == 0) break;
      if (day % sc_.review_every_days == 0) review(day);
    }
    return metrics(std::min(day, kMaxDays));
  }

 private:
  std::size_t arm_index(const std::string& id) const {
    for (std::size_t i = 0; i < study_.arms.size(); ++i)
      if (study_.arms[i].id == id) return i;
    return 0;
  }
  std::size_t type_index(const std::string& id) const {
    for (std::size_t i = 0; i < study_.kit_types.size(); ++i)
      if (study_.kit_types[i].id == id) return i;
    return 0;
  }

  // A kit of `type` on `day` is inside a window of N days when expiry - day <= N.
  bool outside(std::size_t type, int day, int window) const { return !expiry_[type] || *expiry_[type] - day > window; }

  void draw_sites() {
    if (!sc_.sites.empty()) {
      for (const auto& s : sc_.sites) add_site(s.activation_day, s.rate_per_day, true);
    } else {
      for (int i = 0; i < sc_.site_count; ++i) {
        int day = sc_.activation_days[uniform(src_, sc_.activation_days.size())];
        add_site(day, gamma_variate(src_, sc_.gamma_shape) / sc_.gamma_rate, false);
      }
    }
  }

  void add_site(int activation, double rate, bool listed) {
    Site s;
    s.activation = activation;
    s.rate = rate;
    s.listed = listed;
    s.on_hand.assign(study_.kit_types.size(), 0);
    s.next_arrival = next_arrival_after(s, activation);
    sites_.push_back(std::move(s));
  }

  double next_arrival_after(Site& s, double from) {
    if (s.rate <= 0) return 1e18;
    if (sc_.arrivals == Arrivals::regular) return s.activation + (s.arrivals_made + 1) / s.rate;
    return from + exponential(src_, s.rate);
  }

  void deliver(int day) {
    for (auto& s : sites_)
      std::erase_if(s.transit, [&](const Transit& t) {
        if (t.arrives != day) return false;
        s.on_hand[t.type] += t.count;
        return true;
      });
  }

  ResupplyInput input_for(const Site& s, int day) const {
    ResupplyInput in;
    for (std::size_t k = 0; k < study_.kit_types.size(); ++k) {
      bool counts = outside(k, day, windows_[k].do_not_count_days);
      int transit = 0;
      for (const auto& t : s.transit)
        if (t.type == k) transit += t.count;
      in.stock.push_back({study_.kit_types[k].id, study_.kit_types[k].blinded_label, counts ? s.on_hand[k] : 0,
                          counts ? transit : 0});
    }
    for (std::size_t i : s.participants) {
      const Participant& p = participants_[i];
      if (p.done || p.dropout <= day) continue;
      for (std::size_t v = p.next; v < visits_.size(); ++v)
        for (const auto& k : visits_[v].per_arm[static_cast<std::size_t>(p.arm)])
          in.scheduled.push_back({p.randomized + visits_[v].opens - day, study_.kit_types[k.type].id, k.count});
    }
    in.slots_left = sc_.participants - randomized_;
    // A drawn site's rate is not known to the hub: it estimates it from the
    // prior (the scenario's gamma) updated by the site's own enrollment.
    in.rate_per_day = s.listed ? s.rate
                               : (sc_.gamma_shape + s.randomized) / (sc_.gamma_rate + std::max(0, day - s.activation));
    in.per_new_participant = per_new_;
    return in;
  }

  void ship(Site& s, const std::vector<ShipmentLine>& lines, int day, int arrives) {
    int total = 0;
    for (const auto& l : lines) {
      std::size_t k = type_index(l.kit_type);
      if (!outside(k, day, windows_[k].do_not_ship_days) || l.count <= 0) continue;
      if (arrives == day)
        s.on_hand[k] += l.count;
      else
        s.transit.push_back({arrives, k, l.count});
      total += l.count;
    }
    if (total == 0) return;
    shipped_ += total;
    ++shipments_;
  }

  void activate(int day) {
    for (auto& s : sites_) {
      if (s.active || s.activation != day) continue;
      s.active = true;
      ship(s, initial_order(input_for(s, day), p_), day, day);
    }
  }

  void review(int day) {
    for (auto& s : sites_)
      if (s.active) ship(s, decide_resupply(input_for(s, day), p_), day, day + sc_.lead_time_days);
  }

  bool has_kits(const Site& s, const std::vector<Kits>& kits, int day) const {
    for (const auto& k : kits)
      if (!outside(k.type, day, windows_[k.type].do_not_dispense_days) || s.on_hand[k.type] < k.count) return false;
    return true;
  }

  void take(Site& s, const std::vector<Kits>& kits) {
    for (const auto& k : kits) {
      s.on_hand[k.type] -= k.count;
      dispensed_ += k.count;
    }
  }

  void dispense(int day) {
    const auto d = static_cast<std::size_t>(day);
    if (d >= due_.size()) return;
    std::vector<std::size_t> today = std::move(due_[d]);  // schedule() may grow due_
    due_[d].clear();
    for (std::size_t i : today) {
      Participant& p = participants_[i];
      if (p.dropout <= day) {
        p.done = true;
        --pending_;
        continue;
      }
      Site& s = sites_[p.site];
      const auto& kits = visits_[p.next].per_arm[static_cast<std::size_t>(p.arm)];
      ++visits_held_;
      if (has_kits(s, kits, day))
        take(s, kits);
      else
        ++stockouts_;
      ++p.next;
      schedule(i);
    }
  }

  // Puts participant i in the bucket of the day of its next visit, or marks it done.
  void schedule(std::size_t i) {
    Participant& p = participants_[i];
    if (p.next >= visits_.size()) {
      p.done = true;
      --pending_;
      return;
    }
    std::size_t day = static_cast<std::size_t>(p.randomized + visits_[p.next].day);
    if (due_.size() <= day) due_.resize(day + 1);
    due_[day].push_back(i);
  }

  int next_arm(Site& s) {
    std::vector<int>& list = sc_.allocation == SupplyAllocation::node_slices ? s.list : central_;
    std::size_t& used = sc_.allocation == SupplyAllocation::node_slices ? s.list_used : central_used_;
    if (used == list.size()) extend(list);
    return list[used];
  }

  void consume_slot(Site& s) {
    ++(sc_.allocation == SupplyAllocation::node_slices ? s.list_used : central_used_);
  }

  // One more block of the study's design (or one draw, for simple randomization).
  void extend(std::vector<int>& list) {
    const auto& r = study_.randomization;
    if (r.method != Method::permuted_blocks) {
      list.push_back(static_cast<int>(draw_weighted(src_, ratios_)));
      return;
    }
    int size = r.block_sizes[r.block_sizes.size() == 1 ? 0 : uniform(src_, r.block_sizes.size())];
    int total_ratio = 0;
    for (int q : ratios_) total_ratio += q;
    std::vector<int> block;
    for (std::size_t a = 0; a < ratios_.size(); ++a)
      for (int i = 0; i < size / total_ratio * ratios_[a]; ++i) block.push_back(static_cast<int>(a));
    shuffle(src_, std::span<int>(block));
    list.insert(list.end(), block.begin(), block.end());
  }

  void arrive(int day) {
    for (std::size_t si = 0; si < sites_.size(); ++si) {
      Site& s = sites_[si];
      while (s.active && randomized_ < sc_.participants && s.next_arrival < day + 1) {
        ++s.arrivals_made;
        s.next_arrival = next_arrival_after(s, s.next_arrival);
        ++arrivals_;
        randomize(si, day);
      }
    }
  }

  void randomize(std::size_t si, int day) {
    Site& s = sites_[si];
    int arm = next_arm(s);
    const std::vector<Kits> none;
    auto kits_at_randomization = [&](int a) -> const std::vector<Kits>& {
      return at_randomization_.empty() ? none : at_randomization_[0].per_arm[static_cast<std::size_t>(a)];
    };
    bool can = true;
    if (sc_.site_rule == SiteRule::all_arms) {
      for (std::size_t a = 0; a < ratios_.size(); ++a) can = can && has_kits(s, kits_at_randomization(static_cast<int>(a)), day);
    } else {
      can = has_kits(s, kits_at_randomization(arm), day);
    }
    // Every participant draws a dropout time, lost or not, so that runs of
    // two strategies stay on the same draws as long as they can.
    double gone = 1e18;
    if (lambda_ > 0)
      gone = exponential(src_, lambda_);
    else
      static_cast<void>(unit(src_));
    if (!can) {
      ++lost_;
      return;
    }
    consume_slot(s);
    take(s, kits_at_randomization(arm));
    if (!at_randomization_.empty()) ++visits_held_;
    ++randomized_;
    ++s.randomized;
    last_randomization_ = day;
    participants_.push_back({si, arm, day, day + gone, 0, false});
    s.participants.push_back(participants_.size() - 1);
    ++pending_;
    schedule(participants_.size() - 1);
  }

  SupplyRunMetrics metrics(int end) const {
    SupplyRunMetrics m;
    m.kits_shipped = shipped_;
    m.kits_dispensed = dispensed_;
    for (const auto& s : sites_)
      for (std::size_t k = 0; k < study_.kit_types.size(); ++k) {
        int held = s.on_hand[k];
        for (const auto& t : s.transit)
          if (t.type == k) held += t.count;
        (outside(k, end, windows_[k].do_not_dispense_days) ? m.kits_left_at_sites : m.kits_expired) += held;
      }
    double unused = shipped_ - dispensed_;
    m.overage_percent = dispensed_ > 0 ? 100.0 * unused / dispensed_ : 0;
    m.waste_percent = shipped_ > 0 ? 100.0 * unused / shipped_ : 0;
    m.participants_lost_percent = arrivals_ > 0 ? 100.0 * lost_ / arrivals_ : 0;
    m.stockouts_per_1000_visits = visits_held_ > 0 ? 1000.0 * stockouts_ / visits_held_ : 0;
    m.shipments = shipments_;
    m.days_to_last_randomization = last_randomization_;
    m.cost = shipped_ * sc_.cost_per_kit + shipments_ * sc_.cost_per_shipment;
    return m;
  }

  const Study& study_;
  const SupplyScenario& sc_;
  const ResupplyParameters& p_;
  RandomSource& src_;
  std::vector<ExpectedKits> per_new_;
  std::vector<int> ratios_;
  std::vector<DispensingVisit> at_randomization_;  // the visit at day 0, when it dispenses
  std::vector<DispensingVisit> visits_;            // the dispensing visits after day 0
  std::vector<std::optional<int>> expiry_;
  std::vector<ExpiryWindows> windows_;  // per kit type
  double lambda_ = 0;
  std::vector<Site> sites_;
  std::vector<Participant> participants_;
  std::vector<std::vector<std::size_t>> due_;
  std::vector<int> central_;
  std::size_t central_used_ = 0;
  int randomized_ = 0, pending_ = 0, arrivals_ = 0, lost_ = 0, last_randomization_ = 0;
  double shipped_ = 0, dispensed_ = 0, shipments_ = 0, visits_held_ = 0, stockouts_ = 0;  // counts, exact in a double
};

}  // namespace

SupplyRunMetrics simulate_supply_run(const Study& study, const SupplyScenario& scenario,
                                     const ResupplyParameters& strategy, RandomSource& source) {
  return Run(study, scenario, strategy, source).run();
}

Result<SupplySimulation> simulate_supply(const Study& study, const SupplyScenario& scenario,
                                         const SupplySimulationSettings& settings, const RunSources& sources,
                                         SupplyProgress* progress) {
  const Method m = study.randomization.method;
  if (m != Method::simple && m != Method::permuted_blocks)
    return make_error(Errc::invalid_input, "the supply simulation randomizes by simple randomization or permuted "
                                           "blocks, and the study uses " + to_string(m) +
                                           "; simulate a copy of the study with permuted blocks of a similar size");
  if (settings.runs == 0) return make_error(Errc::invalid_input, "--runs must be at least 1");
  const std::size_t runs = settings.runs, strategies = scenario.strategies.size(), total = runs * strategies;
  std::vector<SupplyRunMetrics> results(total);
  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex;
  std::size_t done = 0;
  auto work = [&] {
    for (std::size_t task; (task = next.fetch_add(1)) < total;) {
      std::size_t s = task / runs, r = task % runs;
      auto source = sources.for_run(r);
      results[task] = simulate_supply_run(study, scenario, scenario.strategies[s].parameters, *source);
      std::lock_guard lock(progress_mutex);
      ++done;
      if (progress) progress->runs_done(done, total);
    }
  };
  std::size_t threads = settings.threads ? settings.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, total);
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();

  SupplySimulation out;
  out.runs = runs;
  for (std::size_t s = 0; s < strategies; ++s) {
    StrategyResult sr{scenario.strategies[s].name, {}};
    for (std::size_t i = 0; i < supply_metric_names().size(); ++i) {
      double sum = 0, squares = 0;
      for (std::size_t r = 0; r < runs; ++r) sum += metric_value(results[s * runs + r], i);
      double mean = sum / static_cast<double>(runs);
      for (std::size_t r = 0; r < runs; ++r) {
        double d = metric_value(results[s * runs + r], i) - mean;
        squares += d * d;
      }
      sr.metrics.push_back({mean, runs > 1 ? std::sqrt(squares / static_cast<double>(runs - 1)) : 0.0});
    }
    out.strategies.push_back(std::move(sr));
  }
  return out;
}

nlohmann::json to_json(const SupplySimulation& s) {
  auto metrics = [](const StrategyResult& r) {
    nlohmann::json m = nlohmann::json::object();
    for (std::size_t i = 0; i < r.metrics.size(); ++i)
      m[supply_metric_names()[i]] = {{"mean", r.metrics[i].mean}, {"sd", r.metrics[i].sd}};
    return m;
  };
  if (s.strategies.size() == 1)
    return {{"runs", s.runs}, {"strategy", s.strategies[0].strategy}, {"metrics", metrics(s.strategies[0])}};
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : s.strategies) list.push_back({{"strategy", r.strategy}, {"metrics", metrics(r)}});
  return {{"runs", s.runs}, {"strategies", list}};
}

}  // namespace irt::shared
