#include "hub/forecast.h"

#include <algorithm>
#include <cmath>

#include "hub/allocations.h"
#include "hub/deviations.h"
#include "hub/kit_inventory.h"
#include "hub/site_activation.h"
#include "hub/tuning.h"
#include "shared/civil_date.h"
#include "sync/seeded_source.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::KitStatus;

constexpr double kMsPerDay = 24.0 * 3600 * 1000;

// Kits that will still be dispensed or shipped: at a depot available; at a
// node on its way or on the shelf (not damaged, quarantined, used or gone).
bool usable(const HubKit& k) {
  return k.status == KitStatus::available || k.status == KitStatus::shipped || k.status == KitStatus::expected ||
         k.status == KitStatus::received;
}

// The dispensings a randomized participant has ahead: every dispensing visit
// of its arm after randomization whose window opens today or later (one
// whose window already opened is taken as held).
void schedule_of(const shared::Study& study, const std::string& arm, std::int64_t days_since,
                 std::vector<shared::ScheduledKits>& out) {
  for (const auto& v : study.visits) {
    if (v.randomization) continue;
    const auto opens = static_cast<std::int64_t>(v.day - v.window_before) - days_since;
    if (opens < 0) continue;
    for (const auto& d : v.dispense)
      if (d.arm == arm) out.push_back({static_cast<int>(opens), d.kit_type, d.count});
  }
}

struct SiteWork {
  SiteForecast out;
  std::string country;
  shared::SiteDemand demand;
  std::vector<HubKit> kits;
  std::map<std::string, double> used;  // per kit type: kits of its stock that will be used
};

// Marks the kits that expire unused under `demand`; fills `stock` and returns
// how many of each kit type will be used.
std::map<std::string, double> assess(const shared::Study& study, const std::vector<HubKit>& kits,
                                     const std::string& country, shared::Days today,
                                     const std::function<double(const std::string&, double)>& demand,
                                     KitsAtRisk& stock) {
  std::vector<shared::ShelfKit> shelf;
  for (const auto& k : kits) {
    auto expiry = shared::parse_date(k.expiry).value_or(today);
    auto window = study.expiry_windows(k.kit_type, country).do_not_dispense_days;
    shelf.push_back({k.kit_type, expiry - window - 1 - today});
  }
  auto risk = shared::expiring_unused(shelf, demand);
  std::map<std::string, double> used;
  stock.kits = kits.size();
  std::optional<std::int64_t> first;
  for (std::size_t i = 0; i < kits.size(); ++i) {
    if (!risk[i]) {
      used[kits[i].kit_type] += 1;
      continue;
    }
    ++stock.at_risk;
    ++stock.per_kit_type[kits[i].kit_type];
    first = std::min(first.value_or(shelf[i].last_dispensable_day), shelf[i].last_dispensable_day);
  }
  if (first) stock.first_at_risk = shared::format_date(today + *first);
  return used;
}

std::vector<KitNeed> weekly(const shared::Study& study, int weeks,
                            const std::function<double(const std::string&, double)>& needed_before) {
  std::vector<KitNeed> out(static_cast<std::size_t>(weeks));
  for (int w = 0; w < weeks; ++w) {
    auto& need = out[static_cast<std::size_t>(w)];
    for (const auto& kt : study.kit_types) {
      double n = needed_before(kt.id, 7.0 * (w + 1)) - needed_before(kt.id, 7.0 * w);
      need.per_kit_type[kt.id] = n;
      need.total += n;
    }
  }
  return out;
}

double tenth(double v) { return std::round(v * 10) / 10; }

json need_json(const KitNeed& n, bool blinded) {
  json j = {{"kits", tenth(n.total)}};
  if (!blinded) {
    json per = json::object();
    for (const auto& [kt, v] : n.per_kit_type) per[kt] = tenth(v);
    j["per_kit_type"] = per;
  }
  return j;
}

json weeks_json(const std::vector<KitNeed>& weeks, shared::Days today, bool blinded) {
  json out = json::array();
  for (std::size_t w = 0; w < weeks.size(); ++w) {
    json j = need_json(weeks[w], blinded);
    j["week"] = w + 1;
    j["from"] = shared::format_date(today + static_cast<shared::Days>(7 * w));
    out.push_back(j);
  }
  return out;
}

json stock_json(const KitsAtRisk& s, bool blinded) {
  json j = {{"kits", s.kits}, {"at_risk", s.at_risk}, {"first_at_risk", s.first_at_risk ? json(*s.first_at_risk) : json()}};
  if (!blinded) j["at_risk_per_kit_type"] = s.per_kit_type;
  return j;
}

}  // namespace

SiteRate site_rate(HubState& hub, const std::string& site_id, std::int64_t now_ms) {
  SiteRate r;
  r.site = site_id;
  r.expected_per_day = hub.study().expected_enrollment(site_id).rate_per_day.value_or(kNodeForecastPerDay);
  r.randomized = site_allocation_count(hub.db(), site_id);
  r.activated_ms = site_activated_ms(hub.db(), site_id);
  if (r.activated_ms) r.days_active = std::max(0.0, static_cast<double>(now_ms - *r.activated_ms) / kMsPerDay);
  r.estimate =
      shared::estimate_rate(r.expected_per_day, hub.study().enrollment.prior_weight_days, r.randomized, r.days_active);
  return r;
}

shared::Result<Forecast> forecast(HubState& hub, int weeks, std::int64_t now_ms) {
  if (weeks < 1 || weeks > kMaxForecastWeeks)
    return shared::make_error(shared::Errc::invalid_input, "weeks must be 1 to " + std::to_string(kMaxForecastWeeks) +
                                                               " (got " + std::to_string(weeks) + "); forecast fewer weeks");
  const auto& study = hub.study();
  auto& db = hub.db();
  const shared::Days today = shared::day_of_millis(now_ms);
  Forecast f;
  f.today = shared::format_date(today);
  f.weeks = weeks;
  f.target_participants = study.enrollment.target_participants;

  // Each active site: its rate, its participants' schedules, its stock.
  std::vector<SiteWork> sites;
  std::vector<shared::SiteOutlook> outlooks;
  const auto per_new = shared::kits_per_new_participant(study);
  for (const auto& s : study.sites) {
    if (!s.active) continue;
    SiteWork w;
    w.country = s.country;
    w.out.rate = site_rate(hub, s.id, now_ms);
    const auto* depot = depot_for(study, s.country);
    w.out.depot = depot ? depot->id : "";
    double starts = 0;
    if (!w.out.rate.activated_ms) {
      auto planned = study.expected_enrollment(s.id).activation_date;
      if (planned && *planned > today) starts = static_cast<double>(*planned - today);
    }
    w.out.starts = shared::format_date(today + static_cast<shared::Days>(starts));
    for (const auto& a : site_allocations(db, s.id))
      if (a.on_study)
        schedule_of(study, a.arm, days_since_randomization(hub, a.participant, now_ms).value_or(0), w.demand.scheduled);
    w.demand.rate_per_day = w.out.rate.estimate.mean();
    w.demand.starts_in_days = starts;
    w.demand.per_new_participant = per_new;
    for (const auto& node : hub.ledger().nodes()) {
      if (node.site_id != s.id || node.status == sync::NodeStatus::revoked) continue;
      for (auto& k : kits_held_by(db, "node", node.node_id))
        if (usable(k)) w.kits.push_back(std::move(k));
    }
    f.randomized += w.out.rate.randomized;
    outlooks.push_back({w.out.rate.estimate, starts});
    sites.push_back(std::move(w));
  }

  // Completion: when the participants still to randomize are expected, and its interval.
  std::optional<double> stop;
  if (f.target_participants <= 0) {
    f.completion_note = "the study states no enrollment.target_participants; add it to forecast the completion date";
  } else {
    const auto remaining = static_cast<std::uint64_t>(
        std::max<std::int64_t>(0, f.target_participants - static_cast<std::int64_t>(f.randomized)));
    stop = shared::expected_completion_day(outlooks, static_cast<double>(remaining));
    auto seed = sync::parse_seed_hex(kForecastSeedHex);
    sync::SeededSource source(*seed);
    auto interval = shared::completion_interval(outlooks, remaining, kForecastRuns, source);
    auto date = [&](double day) { return shared::format_date(today + static_cast<shared::Days>(std::ceil(day))); };
    if (stop && interval && std::isfinite(interval->p90))
      f.completion = Completion{date(*stop), date(interval->p10), date(interval->p50), date(interval->p90)};
    else
      f.completion_note = "no active site is expected to randomize; activate sites or state their expected rates";
  }

  // Per site: weekly needs and expiry risk.
  for (auto& w : sites) {
    w.demand.stops_in_days = stop;
    auto needed = [&](const std::string& kt, double x) { return shared::kits_needed_before(w.demand, kt, x); };
    w.out.weeks = weekly(study, weeks, needed);
    w.used = assess(study, w.kits, w.country, today, needed, w.out.stock);
  }
  // Per depot: its sites' needs; its stock serves what their own stock does not cover.
  for (const auto& d : study.depots) {
    DepotForecast out;
    out.depot = d.id;
    std::vector<const SiteWork*> served;
    for (const auto& w : sites)
      if (w.out.depot == d.id) served.push_back(&w);
    auto net = [&](const std::string& kt, double x) {
      double n = 0;
      for (const auto* w : served) {
        auto it = w->used.find(kt);
        n += std::max(0.0, shared::kits_needed_before(w->demand, kt, x) - (it == w->used.end() ? 0.0 : it->second));
      }
      return n;
    };
    out.weeks = weekly(study, weeks, [&](const std::string& kt, double x) {
      double n = 0;
      for (const auto* w : served) n += shared::kits_needed_before(w->demand, kt, x);
      return n;
    });
    std::vector<HubKit> kits;
    for (auto& k : kits_held_by(db, "depot", d.id))
      if (usable(k)) kits.push_back(std::move(k));
    assess(study, kits, "", today, net, out.stock);
    f.depots.push_back(std::move(out));
  }
  for (auto& w : sites) f.sites.push_back(std::move(w.out));
  return f;
}

json to_json(const Forecast& f, bool blinded) {
  const shared::Days today = shared::parse_date(f.today).value_or(0);
  json out = {{"today", f.today}, {"weeks", f.weeks}, {"randomized", f.randomized}};
  out["target_participants"] = f.target_participants > 0 ? json(f.target_participants) : json();
  if (f.completion)
    out["completion"] = {{"expected", f.completion->expected},
                         {"p10", f.completion->p10},
                         {"p50", f.completion->p50},
                         {"p90", f.completion->p90},
                         {"method", "simulation: " + std::to_string(kForecastRuns) +
                                        " runs with a fixed seed, site rates drawn from their estimates"}};
  else
    out["completion"] = {{"note", f.completion_note}};
  json sites = json::array();
  for (const auto& s : f.sites) {
    const auto& r = s.rate;
    sites.push_back({{"site", r.site},
                     {"depot", s.depot},
                     {"starts", s.starts},
                     {"expected_rate_per_day", r.expected_per_day},
                     {"randomized", r.randomized},
                     {"days_active", std::round(r.days_active * 100) / 100},
                     {"rate_per_day", std::round(r.estimate.mean() * 10000) / 10000},
                     {"rate_gamma", {{"shape", r.estimate.shape}, {"rate", r.estimate.rate}}},
                     {"weeks", weeks_json(s.weeks, today, blinded)},
                     {"stock", stock_json(s.stock, blinded)}});
  }
  out["sites"] = sites;
  json depots = json::array();
  for (const auto& d : f.depots)
    depots.push_back({{"depot", d.depot}, {"weeks", weeks_json(d.weeks, today, blinded)}, {"stock", stock_json(d.stock, blinded)}});
  out["depots"] = depots;
  return out;
}

}  // namespace irt::hub
