#include "shared/study_diff.h"

#include <algorithm>
#include <functional>
#include <sstream>

namespace irt::shared {

namespace {

std::string show(int v) { return std::to_string(v); }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}
std::string show(const std::string& v) { return "\"" + v + "\""; }
// An arm's "closed" as the document writes it: false, true or its object.
struct Closed {
  bool closed;
  ArmClosure closure;
  bool operator==(const Closed&) const = default;
};
Closed closed_of(const Arm& a) { return {a.closed, a.closed ? a.closure : ArmClosure{}}; }
std::string show(const Closed& v) { return v.closed ? v.closure.text() : "false"; }

std::string list(const std::vector<std::string>& items) {
  if (items.empty()) return "(none)";
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

std::string show(const std::vector<std::string>& v) { return list(v); }

std::string show(const std::vector<int>& v) {
  std::vector<std::string> s;
  for (int i : v) s.push_back(std::to_string(i));
  return list(s);
}

std::string show(const std::vector<MinimizationFactor>& v) {
  std::vector<std::string> s;
  for (const auto& f : v) s.push_back(f.factor + " (weight " + show(f.weight) + ")");
  return list(s);
}

std::string show(const std::vector<NodeKind>& v) {
  std::vector<std::string> s;
  for (auto k : v) s.push_back(to_string(k));
  return list(s);
}

std::string show(const std::vector<VisitDispense>& v) {
  std::vector<std::string> s;
  for (const auto& d : v) s.push_back(d.arm + ": " + d.kit_type + " x" + std::to_string(d.count));
  return list(s);
}

std::string show(const std::optional<double>& v) { return v ? show(*v) : "(none)"; }
std::string show(const std::optional<Days>& v) { return v ? format_date(*v) : "(none)"; }
bool same(const std::optional<double>& a, const std::optional<double>& b) { return a == b; }

std::string show(Method m) { return to_string(m); }
std::string show(Blinding b) { return to_string(b); }
std::string show(ImbalanceMeasure m) { return to_string(m); }

bool same(double a, double b) { return a == b; }
template <class T>
bool same(const T& a, const T& b) {
  return a == b;
}
bool same(const std::vector<MinimizationFactor>& a, const std::vector<MinimizationFactor>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const auto& x, const auto& y) { return x.factor == y.factor && x.weight == y.weight; });
}
bool same(const std::vector<VisitDispense>& a, const std::vector<VisitDispense>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.arm == y.arm && x.kit_type == y.kit_type && x.count == y.count;
  });
}

std::string cap_key(const Cap& c) {
  switch (c.scope) {
    case CapScope::arm: return "arm " + c.arm;
    case CapScope::cohort: return "cohort " + c.cohort;
    case CapScope::stratum: break;
  }
  std::string out = "stratum";
  for (const auto& [factor, level] : c.stratum) out += " " + factor + "=" + level;
  return out;
}

class Differ {
 public:
  template <class V>
  void field(const std::string& path, const V& a, const V& b) {
    if (!same(a, b)) lines_.push_back(path + ": " + show(a) + " -> " + show(b));
  }

  void line(std::string text) { lines_.push_back(std::move(text)); }

  // Compares two lists entry by entry, matched by key.
  template <class T>
  void entries(const std::string& name, const std::vector<T>& a, const std::vector<T>& b,
               const std::function<std::string(const T&)>& key, const std::function<std::string(const T&)>& describe,
               const std::function<void(const std::string&, const T&, const T&)>& fields) {
    auto find = [&](const std::vector<T>& in, const std::string& k) -> const T* {
      for (const auto& x : in)
        if (key(x) == k) return &x;
      return nullptr;
    };
    for (const auto& x : a) {
      const T* y = find(b, key(x));
      if (!y)
        line(name + ": removed " + describe(x));
      else
        fields(name + "[" + key(x) + "]", x, *y);
    }
    for (const auto& y : b)
      if (!find(a, key(y))) line(name + ": added " + describe(y));
  }

  void strings(const std::string& path, const std::vector<std::string>& a, const std::vector<std::string>& b) {
    std::vector<std::string> removed, added;
    for (const auto& x : a)
      if (std::find(b.begin(), b.end(), x) == b.end()) removed.push_back(x);
    for (const auto& y : b)
      if (std::find(a.begin(), a.end(), y) == a.end()) added.push_back(y);
    if (!removed.empty()) line(path + ": removed " + list(removed));
    if (!added.empty()) line(path + ": added " + list(added));
  }

  std::vector<std::string> take() { return std::move(lines_); }

 private:
  std::vector<std::string> lines_;
};

std::vector<std::string> permission_names(const Role& r) {
  std::vector<std::string> out;
  for (auto p : r.permissions) out.push_back(to_string(p));
  return out;
}

std::vector<Factor> own_factors(const std::vector<Factor>& all) {
  std::vector<Factor> out;
  for (const auto& f : all)
    if (!is_derived_factor(f.id)) out.push_back(f);
  return out;
}

}  // namespace

std::vector<std::string> diff_studies(const Study& old, const Study& neu) {
  Differ d;
  d.field("id", old.id, neu.id);
  d.field("name", old.name, neu.name);
  d.field("version", old.version, neu.version);
  d.field("blinding", old.blinding, neu.blinding);

  d.entries<Arm>(
      "arms", old.arms, neu.arms, [](const Arm& a) { return a.id; },
      [](const Arm& a) { return a.id + " (" + a.name + ", ratio " + std::to_string(a.ratio) + ")"; },
      [&d](const std::string& p, const Arm& a, const Arm& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".blinded_label", a.blinded_label, b.blinded_label);
        d.field(p + ".ratio", a.ratio, b.ratio);
        d.field(p + ".closed", closed_of(a), closed_of(b));
      });

  // The derived "site" and "country" factors follow the sites and countries,
  // whose own lines already say what changed.
  d.entries<Factor>(
      "factors", own_factors(old.factors), own_factors(neu.factors), [](const Factor& f) { return f.id; },
      [](const Factor& f) { return f.id + " (" + f.name + ": " + list(f.levels) + ")"; },
      [&d](const std::string& p, const Factor& a, const Factor& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".levels", a.levels, b.levels);
      });

  d.entries<Cohort>(
      "cohorts", old.cohorts, neu.cohorts, [](const Cohort& c) { return c.id; },
      [](const Cohort& c) { return c.id + " (" + c.name + ")"; },
      [&d](const std::string& p, const Cohort& a, const Cohort& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".opens", std::string(a.opens_by_decision ? "by_decision" : "at_start"),
                std::string(b.opens_by_decision ? "by_decision" : "at_start"));
        d.field(p + ".after", a.after, b.after);
      });

  const Randomization& ra = old.randomization;
  const Randomization& rb = neu.randomization;
  d.field("randomization.method", ra.method, rb.method);
  d.field("randomization.block_sizes", ra.block_sizes, rb.block_sizes);
  d.field("randomization.strata", ra.strata, rb.strata);
  d.field("randomization.minimization_factors", ra.minimization_factors, rb.minimization_factors);
  d.field("randomization.measure", ra.measure, rb.measure);
  d.field("randomization.preferred_probability", ra.preferred_probability, rb.preferred_probability);
  d.field("randomization.initial_random", ra.initial_random, rb.initial_random);
  d.field("randomization.coin_probability", ra.coin_probability, rb.coin_probability);
  d.field("randomization.max_tolerated_imbalance", ra.max_tolerated_imbalance, rb.max_tolerated_imbalance);

  d.entries<Cap>(
      "caps", old.caps, neu.caps, cap_key, [](const Cap& c) { return cap_key(c) + " (limit " + show(c.limit) + ")"; },
      [&d](const std::string& p, const Cap& a, const Cap& b) { d.field(p + ".limit", a.limit, b.limit); });

  d.entries<Country>(
      "countries", old.countries, neu.countries, [](const Country& c) { return c.code; },
      [](const Country& c) { return c.code + " (" + c.name + ")"; },
      [&d](const std::string& p, const Country& a, const Country& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".expected_rate_per_day", a.expected.rate_per_day, b.expected.rate_per_day);
        d.field(p + ".activation_date", a.expected.activation_date, b.expected.activation_date);
      });

  d.entries<Site>(
      "sites", old.sites, neu.sites, [](const Site& s) { return s.id; },
      [](const Site& s) { return s.id + " (" + s.name + ", " + s.country + (s.active ? "" : ", inactive") + ")"; },
      [&d](const std::string& p, const Site& a, const Site& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".country", a.country, b.country);
        d.field(p + ".active", a.active, b.active);
        d.field(p + ".node_kinds", a.node_kinds, b.node_kinds);
        d.field(p + ".expected_rate_per_day", a.expected.rate_per_day, b.expected.rate_per_day);
        d.field(p + ".activation_date", a.expected.activation_date, b.expected.activation_date);
      });

  d.entries<Depot>(
      "depots", old.depots, neu.depots, [](const Depot& x) { return x.id; },
      [](const Depot& x) { return x.id + " (" + x.name + ", serves " + list(x.countries) + ")"; },
      [&d](const std::string& p, const Depot& a, const Depot& b) {
        d.field(p + ".name", a.name, b.name);
        d.strings(p + ".countries", a.countries, b.countries);
      });

  d.entries<KitType>(
      "kit_types", old.kit_types, neu.kit_types, [](const KitType& k) { return k.id; },
      [](const KitType& k) { return k.id + " (" + k.name + ", arm " + k.arm + ")"; },
      [&d](const std::string& p, const KitType& a, const KitType& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".blinded_label", a.blinded_label, b.blinded_label);
        d.field(p + ".arm", a.arm, b.arm);
        d.field(p + ".units_per_kit", a.units_per_kit, b.units_per_kit);
        d.field(p + ".storage.min_celsius", a.storage.min_celsius, b.storage.min_celsius);
        d.field(p + ".storage.max_celsius", a.storage.max_celsius, b.storage.max_celsius);
        d.field(p + ".storage.description", a.storage.description, b.storage.description);
        auto windows = [&d](const std::string& w, const ExpiryWindows& x, const ExpiryWindows& y) {
          d.field(w + ".do_not_ship_days", x.do_not_ship_days, y.do_not_ship_days);
          d.field(w + ".do_not_count_days", x.do_not_count_days, y.do_not_count_days);
          d.field(w + ".do_not_dispense_days", x.do_not_dispense_days, y.do_not_dispense_days);
        };
        windows(p + ".expiry_windows", a.expiry, b.expiry);
        for (const auto& [country, w] : a.country_expiry) {
          auto it = b.country_expiry.find(country);
          if (it == b.country_expiry.end())
            d.line(p + ".expiry_windows.countries: removed " + country);
          else
            windows(p + ".expiry_windows.countries." + country, w, it->second);
        }
        for (const auto& [country, w] : b.country_expiry)
          if (!a.country_expiry.count(country)) d.line(p + ".expiry_windows.countries: added " + country);
      });

  d.entries<Visit>(
      "visits", old.visits, neu.visits, [](const Visit& v) { return v.id; },
      [](const Visit& v) { return v.id + " (" + v.name + ", day " + std::to_string(v.day) + ")"; },
      [&d](const std::string& p, const Visit& a, const Visit& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".day", a.day, b.day);
        d.field(p + ".window_before", a.window_before, b.window_before);
        d.field(p + ".window_after", a.window_after, b.window_after);
        d.field(p + ".randomization", a.randomization, b.randomization);
        d.field(p + ".dispense", a.dispense, b.dispense);
      });

  const Supply& sa = old.supply;
  const Supply& sb = neu.supply;
  d.entries<LeadTime>(
      "supply.lead_times", sa.lead_times, sb.lead_times,
      [](const LeadTime& l) { return l.depot + " to " + l.country; },
      [](const LeadTime& l) { return l.depot + " to " + l.country + " (" + std::to_string(l.days) + " days)"; },
      [&d](const std::string& p, const LeadTime& a, const LeadTime& b) { d.field(p + ".days", a.days, b.days); });
  d.field("supply.do_not_dispense_days", sa.do_not_dispense_days, sb.do_not_dispense_days);
  d.entries<InitialShipment>(
      "supply.initial_shipment", sa.initial_shipment, sb.initial_shipment,
      [](const InitialShipment& s) { return s.kit_type; },
      [](const InitialShipment& s) { return s.kit_type + " (" + std::to_string(s.count) + " kits)"; },
      [&d](const std::string& p, const InitialShipment& a, const InitialShipment& b) {
        d.field(p + ".count", a.count, b.count);
      });
  d.field("supply.trigger_level", sa.trigger_level, sb.trigger_level);
  d.field("supply.max_level", sa.max_level, sb.max_level);
  d.field("supply.predictive_horizon_days", sa.predictive_horizon_days, sb.predictive_horizon_days);
  d.field("supply.offline_days", sa.offline_days, sb.offline_days);
  d.field("supply.resupply.strategy", to_string(sa.resupply.strategy), to_string(sb.resupply.strategy));
  d.field("supply.resupply.shipment_minimum", sa.resupply.shipment_minimum, sb.resupply.shipment_minimum);
  d.entries<KitLevels>(
      "supply.resupply.levels", sa.resupply.levels, sb.resupply.levels, [](const KitLevels& l) { return l.kit_type; },
      [](const KitLevels& l) {
        return l.kit_type + " (trigger " + std::to_string(l.trigger) + ", up to " + std::to_string(l.up_to) + ")";
      },
      [&d](const std::string& p, const KitLevels& a, const KitLevels& b) {
        d.field(p + ".trigger", a.trigger, b.trigger);
        d.field(p + ".up_to", a.up_to, b.up_to);
      });
  const PredictiveSettings& pa = sa.resupply.predictive;
  const PredictiveSettings& pb = sb.resupply.predictive;
  d.field("supply.resupply.trigger_window_days", pa.trigger_window_days, pb.trigger_window_days);
  d.field("supply.resupply.resupply_window_days", pa.resupply_window_days, pb.resupply_window_days);
  d.field("supply.resupply.min_buffer", pa.min_buffer, pb.min_buffer);
  d.field("supply.resupply.max_buffer", pa.max_buffer, pb.max_buffer);
  d.field("session_idle_minutes", old.session_idle_minutes, neu.session_idle_minutes);
  d.field("enrollment.target_participants", old.enrollment.target_participants, neu.enrollment.target_participants);
  d.field("enrollment.expected_rate_per_day", old.enrollment.expected_rate_per_day,
          neu.enrollment.expected_rate_per_day);
  d.field("enrollment.prior_weight_days", old.enrollment.prior_weight_days, neu.enrollment.prior_weight_days);
  d.field("site_activation", std::string(old.manual_site_activation ? "manual" : "at_first_enrollment"),
          std::string(neu.manual_site_activation ? "manual" : "at_first_enrollment"));

  d.entries<Role>(
      "roles", old.roles, neu.roles, [](const Role& r) { return r.id; },
      [](const Role& r) { return r.id + " (" + r.name + (r.blinded ? ", blinded" : ", unblinded") + ")"; },
      [&d](const std::string& p, const Role& a, const Role& b) {
        d.field(p + ".name", a.name, b.name);
        d.field(p + ".blinded", a.blinded, b.blinded);
        d.strings(p + ".permissions", permission_names(a), permission_names(b));
      });

  for (const auto& q : old.eligibility)
    if (std::find(neu.eligibility.begin(), neu.eligibility.end(), q) == neu.eligibility.end())
      d.line("eligibility: removed " + show(q));
  for (const auto& q : neu.eligibility)
    if (std::find(old.eligibility.begin(), old.eligibility.end(), q) == old.eligibility.end())
      d.line("eligibility: added " + show(q));
  return d.take();
}

}  // namespace irt::shared
