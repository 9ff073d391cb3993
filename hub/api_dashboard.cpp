// The dashboard's reads of the hub's API (hub/web_ui.h shows them; a script
// may call them the same way): enrollment over time against the forecast,
// allocation balance, and inventory by custodian, status and expiry month.
// Each answer carries "data_as_of": every node's last contact, since what a
// site did after it is not at the hub yet.
// - GET /api/v1/dashboard/enrollment (view_participants): cumulative
//   randomizations per day, overall and by site, country and stratum (the
//   factor values recorded at screening), then the forecast's expected
//   cumulative enrollment per week (hub/forecast.h's site rates); no arm.
// - GET /api/v1/dashboard/allocation (view_unblinded, and refused to any
//   reader blinded in this study): participants per arm, overall, by stratum
//   and by site.
// - GET /api/v1/dashboard/inventory (view_inventory): kits per depot and per
//   site by status, kits in stock by expiry month and status, and the kits at
//   risk of passing do-not-dispense before use (hub/forecast.h); never by kit type;
//   a depot user's own depots only.
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "hub/allocations.h"
#include "hub/api_server.h"
#include "hub/audit.h"
#include "hub/depot_shipments.h"
#include "hub/deviations.h"
#include "hub/forecast.h"
#include "hub/kit_inventory.h"
#include "hub/node_overview.h"
#include "shared/block_list.h"
#include "shared/civil_date.h"
#include "shared/command_line.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::KitStatus;
using shared::make_error;

constexpr int kDefaultForecastWeeks = 12;

// The statuses of kits still held in stock somewhere (not used, lost or gone).
bool in_stock(KitStatus s) {
  return s == KitStatus::expected || s == KitStatus::shipped || s == KitStatus::received ||
         s == KitStatus::available || s == KitStatus::quarantined;
}

// The participant's stratum as the study's randomization defines it
// ("site=101;diabetes=yes", shared/block_list.h), from the factor values
// recorded at screening; for a study without strata, those values but the
// site and country (shown apart); "all" when there are none.
std::string stratum_label(const std::optional<shared::Strata>& strata, const std::map<std::string, std::string>& factors) {
  if (strata && !strata->factors.empty())
    if (auto index = strata->index_of(factors)) return strata->label(*index);
  std::string out;
  for (const auto& [factor, level] : factors)
    if (factor != "site" && factor != "country") out += (out.empty() ? "" : ";") + factor + "=" + level;
  return out.empty() ? "all" : out;
}

std::optional<shared::Strata> study_strata(const shared::Study& study) {
  auto s = shared::strata_of(study);
  return s ? std::optional<shared::Strata>(std::move(*s)) : std::nullopt;
}

// Every node's last contact, and whether it is silent for longer than the study expects.
shared::Result<json> data_as_of(ApiCall& c) {
  auto all = node_overview(c.hub);
  if (!all) return all.error();
  json out = json::array();
  for (const auto& o : *all) {
    json j = {{"node_id", o.node.node_id},
              {"site_id", o.node.site_id},
              {"status", sync::to_string(o.node.status)},
              {"last_contact", o.last_contact_ms ? json(utc_text(*o.last_contact_ms)) : json()}};
    j.update(to_json(sync_state(o, c.hub.study(), c.now_ms)));
    out.push_back(j);
  }
  return out;
}

shared::Result<int> weeks_of(const ApiCall& c) {
  if (!c.query.count("weeks")) return kDefaultForecastWeeks;
  auto n = shared::parse_u64(c.query_value("weeks"));
  if (!n || *n < 1 || *n > static_cast<std::uint64_t>(kMaxForecastWeeks))
    return make_error(Errc::invalid_input, "weeks must be a whole number from 1 to " +
                                               std::to_string(kMaxForecastWeeks) + " (got \"" +
                                               c.query_value("weeks") + "\"); ask for fewer weeks");
  return static_cast<int>(*n);
}

shared::Result<json> enrollment(ApiCall& c) {
  auto weeks = weeks_of(c);
  if (!weeks) return weeks.error();
  auto f = forecast(c.hub, *weeks, c.now_ms);
  if (!f) return f.error();
  const auto& study = c.hub.study();
  const shared::Days today = shared::day_of_millis(c.now_ms);

  // Each randomization's day by the node's clock, and the groups it counts in.
  struct Randomized {
    shared::Days day;
    std::map<std::string, std::string> group;  // "site" -> "101", "country" -> "FR", "stratum" -> label
  };
  std::vector<Randomized> all;
  const auto strata = study_strata(study);
  shared::Days first = today;
  for (const auto& a : allocated_participants(c.hub.db())) {
    auto at = event_device_time_ms(c.hub, a.node_id, a.seq);
    auto day = std::min(today, at ? shared::day_of_millis(*at) : today);
    const auto* site = study.find_site(a.site_id);
    all.push_back({day, {{"site", a.site_id}, {"country", site ? site->country : ""}, {"stratum", stratum_label(strata, a.factors)}}});
    first = std::min(first, day);
  }

  // One date a day from the day before the first randomization (zero, so that a
  // first day's randomizations draw a rising line, not a lone point) to today,
  // then one a week.
  --first;
  json dates = json::array();
  for (auto d = first; d <= today; ++d) dates.push_back(shared::format_date(d));
  const std::size_t actual_days = dates.size();
  for (int w = 1; w <= *weeks; ++w) dates.push_back(shared::format_date(today + 7 * w));

  auto cumulative = [&](const std::function<bool(const Randomized&)>& counts) {
    std::vector<std::uint64_t> per_day(actual_days, 0);
    for (const auto& r : all)
      if (counts(r)) ++per_day[static_cast<std::size_t>(r.day - first)];
    json series = json::array();
    std::uint64_t total = 0;
    for (auto n : per_day) series.push_back(total += n);
    for (int w = 1; w <= *weeks; ++w) series.push_back(nullptr);
    return series;
  };
  json actual = {{"overall", cumulative([](const Randomized&) { return true; })}};
  for (const std::string by : {"site", "country", "stratum"}) {
    std::set<std::string> keys;
    if (by == "site")
      for (const auto& s : study.sites) keys.insert(s.id);
    else if (by == "country")
      for (const auto& s : study.sites) keys.insert(s.country);
    else if (strata && !strata->factors.empty())
      for (std::size_t i = 0; i < strata->count(); ++i) keys.insert(strata->label(i));
    for (const auto& r : all) keys.insert(r.group.at(by));
    json groups = json::object();
    for (const auto& k : keys)
      groups[k] = cumulative([&](const Randomized& r) { return r.group.at(by) == k; });
    actual[by] = groups;
  }

  // Expected cumulative enrollment: today's count, then each site's estimated
  // rate from the day it starts randomizing (hub/forecast.h).
  json expected = json::array();
  for (std::size_t i = 0; i + 1 < actual_days; ++i) expected.push_back(nullptr);
  expected.push_back(all.size());
  for (int w = 1; w <= *weeks; ++w) {
    double n = static_cast<double>(all.size());
    for (const auto& s : f->sites) {
      auto starts = shared::parse_date(s.starts).value_or(today);
      n += s.rate.estimate.mean() * static_cast<double>(std::max<shared::Days>(0, today + 7 * w - starts));
    }
    expected.push_back(std::round(n * 10) / 10);
  }

  auto as_of = data_as_of(c);
  if (!as_of) return as_of.error();
  json completion = nullptr;
  if (f->completion)
    completion = {{"expected", f->completion->expected}, {"p10", f->completion->p10}, {"p90", f->completion->p90}};
  return json{{"today", f->today},
              {"randomized", all.size()},
              {"target_participants", f->target_participants},
              {"completion", completion},
              {"completion_note", f->completion_note},
              {"dates", dates},
              {"actual", actual},
              {"forecast", expected},
              {"data_as_of", *as_of}};
}

shared::Result<json> allocation(ApiCall& c) {
  if (c.blinded())
    return make_error(Errc::forbidden, "role " + c.role->id + " is blinded in this study: the allocation balance is "
                                       "for unblinded roles only");
  const auto& study = c.hub.study();
  json arms = json::array();
  json zero = json::object();
  for (const auto& a : study.arms) {
    arms.push_back({{"id", a.id}, {"name", a.name}, {"ratio", a.ratio}});
    zero[a.id] = 0;
  }
  json overall = zero;
  const auto strata_of_study = study_strata(study);
  std::map<std::string, json> strata, sites;
  for (const auto& a : allocated_participants(c.hub.db())) {
    auto add = [&](json& counts) { counts[a.arm] = counts.value(a.arm, 0) + 1; };
    add(overall);
    auto& s = strata.try_emplace(stratum_label(strata_of_study, a.factors), zero).first->second;
    add(s);
    add(sites.try_emplace(a.site_id, zero).first->second);
  }
  auto rows = [](const std::map<std::string, json>& m, const std::string& key) {
    json out = json::array();
    for (const auto& [k, counts] : m) out.push_back({{key, k}, {"counts", counts}});
    return out;
  };
  auto as_of = data_as_of(c);
  if (!as_of) return as_of.error();
  return json{{"arms", arms},
              {"overall", overall},
              {"strata", rows(strata, "stratum")},
              {"sites", rows(sites, "site")},
              {"data_as_of", *as_of}};
}

shared::Result<json> inventory(ApiCall& c) {
  const auto& study = c.hub.study();
  auto f = forecast(c.hub, 1, c.now_ms);
  if (!f) return f.error();
  std::map<std::string, std::string> node_site;
  for (const auto& n : c.hub.ledger().nodes()) node_site[n.node_id] = n.site_id;

  // Custodians in the study's order: its depots, then its sites.
  struct Custodian {
    std::string kind, id, name;
    std::map<std::string, std::size_t> by_status;
    std::size_t in_stock = 0;
    const KitsAtRisk* risk = nullptr;
  };
  std::vector<Custodian> custodians;
  std::map<std::pair<std::string, std::string>, std::size_t> index;
  for (const auto& d : study.depots) {
    index[{"depot", d.id}] = custodians.size();
    custodians.push_back({"depot", d.id, d.name, {}, 0, nullptr});
  }
  for (const auto& s : study.sites) {
    index[{"site", s.id}] = custodians.size();
    custodians.push_back({"site", s.id, s.name, {}, 0, nullptr});
  }
  for (const auto& d : f->depots)
    if (auto it = index.find({"depot", d.depot}); it != index.end()) custodians[it->second].risk = &d.stock;
  for (const auto& s : f->sites)
    if (auto it = index.find({"site", s.rate.site}); it != index.end()) custodians[it->second].risk = &s.stock;

  std::map<std::string, std::map<std::string, std::size_t>> months;  // "YYYY-MM" -> status -> kits in stock
  std::set<std::string> statuses;
  // A depot user sees its own depots' stock only (hub/depot_shipments.h).
  const auto depots = c.user ? depots_seen_by(c.hub, *c.user) : std::nullopt;
  for (const auto& k : all_kits(c.hub.db())) {
    std::pair<std::string, std::string> key = k.custody_kind == "depot" ? std::pair{std::string("depot"), k.custody_id}
                                                                        : std::pair{std::string("site"), node_site[k.custody_id]};
    if (!custodian_seen(depots, key.first, key.second)) continue;
    auto it = index.find(key);
    if (it == index.end()) {  // a site or depot an amendment removed
      index[key] = custodians.size();
      it = index.find(key);
      custodians.push_back({key.first, key.second, key.second, {}, 0, nullptr});
    }
    const std::string status = shared::to_string(k.status);
    statuses.insert(status);
    auto& holder = custodians[it->second];
    ++holder.by_status[status];
    if (in_stock(k.status)) {
      ++holder.in_stock;
      ++months[k.expiry.substr(0, 7)][status];
    }
  }
  json out_custodians = json::array();
  std::size_t at_risk = 0;
  for (const auto& h : custodians) {
    if (!custodian_seen(depots, h.kind, h.id)) continue;
    json j = {{"kind", h.kind}, {"id", h.id}, {"name", h.name}, {"by_status", h.by_status}, {"in_stock", h.in_stock},
              {"at_risk", h.risk ? h.risk->at_risk : 0},
              {"first_at_risk", h.risk && h.risk->first_at_risk ? json(*h.risk->first_at_risk) : json()}};
    if (h.risk) at_risk += h.risk->at_risk;
    out_custodians.push_back(j);
  }
  json out_months = json::array();
  for (const auto& [month, by_status] : months) out_months.push_back({{"month", month}, {"by_status", by_status}});
  auto as_of = data_as_of(c);
  if (!as_of) return as_of.error();
  return json{{"today", f->today},
              {"statuses", statuses},
              {"custodians", out_custodians},
              {"expiry_months", out_months},
              {"at_risk", at_risk},
              {"data_as_of", *as_of}};
}

}  // namespace

std::vector<ApiRoute> dashboard_routes() {
  return {
      {"GET", "/api/v1/dashboard/enrollment", shared::Permission::view_participants, enrollment},
      {"GET", "/api/v1/dashboard/allocation", shared::Permission::view_unblinded, allocation},
      {"GET", "/api/v1/dashboard/inventory", shared::Permission::view_inventory, inventory},
  };
}

}  // namespace irt::hub
