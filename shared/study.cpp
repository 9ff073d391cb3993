#include "shared/study.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "shared/identifier.h"
#include "shared/supply_simulator.h"

namespace irt::shared {

using nlohmann::json;

namespace {

// The largest permuted block a study may use; lists store block sizes in 16 bits.
constexpr int kMaxBlockSize = 1000;

// The only document format this build reads. A future incompatible layout gets
// a new number, so an old hub refuses a new document instead of misreading it.
constexpr int kFormat = 1;

// The largest expected enrollment rate a study may state, per site and day.
constexpr int kMaxExpectedRate = 1000;

// Longest document value quoted back in a message; keeps messages one line.
constexpr std::size_t kMaxQuoted = 60;

// Roles every study must define: the hub's screens and permissions checks name them.
constexpr const char* kMandatoryRoles[] = {
    "investigator", "coordinator",   "nurse",   "pharmacist",  "monitor", "study-manager",
    "supply-manager", "unblinded-statistician", "admin", "auditor",
};

// One table per enum, read both ways, so the document format and to_string
// can never drift apart.
template <class E>
struct Named {
  E value;
  const char* name;
};

constexpr Named<Method> kMethods[] = {
    {Method::simple, "simple"},
    {Method::permuted_blocks, "permuted_blocks"},
    {Method::minimization, "minimization"},
    {Method::biased_coin, "biased_coin"},
    {Method::max_tolerated_imbalance, "max_tolerated_imbalance"},
};
constexpr Named<Blinding> kBlindings[] = {
    {Blinding::open, "open"}, {Blinding::single, "single"}, {Blinding::double_blind, "double"}};
constexpr Named<ImbalanceMeasure> kMeasures[] = {
    {ImbalanceMeasure::range, "range"},
    {ImbalanceMeasure::variance, "variance"},
    {ImbalanceMeasure::standard_deviation, "standard_deviation"},
};
constexpr Named<NodeKind> kNodeKinds[] = {{NodeKind::site, "site"}, {NodeKind::nurse, "nurse_tablet"}};
// "site_activation": false = at the first node's enrollment, true = by hand.
constexpr Named<bool> kSiteActivations[] = {{false, "at_first_enrollment"}, {true, "manual"}};
constexpr Named<bool> kCohortOpenings[] = {{false, "at_start"}, {true, "by_decision"}};
constexpr Named<CapScope> kCapScopes[] = {
    {CapScope::stratum, "stratum"}, {CapScope::arm, "arm"}, {CapScope::cohort, "cohort"}};
constexpr Named<Permission> kPermissions[] = {
    {Permission::screen, "screen"},
    {Permission::randomize, "randomize"},
    {Permission::dispense, "dispense"},
    {Permission::unblind, "unblind"},
    {Permission::view_unblinded, "view_unblinded"},
    {Permission::receive_shipment, "receive_shipment"},
    {Permission::report_excursion, "report_excursion"},
    {Permission::return_kits, "return_kits"},
    {Permission::destroy_kits, "destroy_kits"},
    {Permission::withdraw, "withdraw"},
    {Permission::view_participants, "view_participants"},
    {Permission::view_inventory, "view_inventory"},
    {Permission::view_audit, "view_audit"},
    {Permission::manage_users, "manage_users"},
    {Permission::manage_nodes, "manage_nodes"},
    {Permission::manage_study, "manage_study"},
    {Permission::manage_supply, "manage_supply"},
    {Permission::release_quarantine, "release_quarantine"},
    {Permission::export_data, "export_data"},
    {Permission::manage_depot, "manage_depot"},
};

template <class E, std::size_t N>
std::string name_of(const Named<E> (&table)[N], E value) {
  for (const auto& n : table)
    if (n.value == value) return n.name;
  throw std::logic_error("enum value missing from its name table");
}

template <class E, std::size_t N>
std::optional<E> value_of(const Named<E> (&table)[N], std::string_view name) {
  for (const auto& n : table)
    if (name == n.name) return n.value;
  return std::nullopt;
}

template <class E, std::size_t N>
std::string names_of(const Named<E> (&table)[N]) {
  std::string out;
  for (const auto& n : table) out += (out.empty() ? "" : ", ") + std::string(n.name);
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

// A document string quoted for a message: JSON-escaped (so control characters
// cannot break the line) and shortened.
std::string quote(std::string_view s) {
  bool cut = s.size() > kMaxQuoted;
  std::string out = json(std::string(s.substr(0, kMaxQuoted))).dump(-1, ' ', true, json::error_handler_t::replace);
  if (cut) out.insert(out.size() - 1, "...");
  return out;
}

// What a message says was found instead of the expected value.
std::string got(const json& v) {
  switch (v.type()) {
    case json::value_t::string: return "string " + quote(v.get_ref<const std::string&>());
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::null: return "null";
    default: return v.dump();
  }
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// A key from the document as it appears in a path: plain when it is a simple
// name, quoted (escaped, shortened) when it could break the path or the line.
std::string key_in_path(std::string_view key) {
  bool plain = !key.empty() && key.size() <= kMaxQuoted && std::all_of(key.begin(), key.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '.' && c != '[' && c != ']' && c != '"';
  });
  return plain ? std::string(key) : quote(key);
}

std::string item(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool is_country_code(std::string_view s) {
  return s.size() == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

// Every problem found, in document order.
class Problems {
 public:
  void add(const std::string& path, const std::string& what) {
    list_.push_back((path.empty() ? std::string("document") : path) + ": " + what);
  }
  bool empty() const { return list_.empty(); }
  std::size_t size() const { return list_.size(); }
  std::vector<std::string> take() { return std::move(list_); }

 private:
  std::vector<std::string> list_;
};

enum class Need { required, optional };

// Reads one JSON object's fields. Construction reports a non-object and every
// key the object may not hold, so nothing in a document is silently ignored;
// each accessor reports a missing required field or a value of the wrong type
// or range, and returns nothing for it.
class Fields {
 public:
  Fields(Problems& problems, const json& value, std::string path, std::initializer_list<const char*> known)
      : p_(problems), path_(std::move(path)), known_(known.begin(), known.end()) {
    if (!value.is_object()) {
      p_.add(path_, "must be an object (got " + got(value) + ")");
      return;
    }
    obj_ = &value;
    for (const auto& [key, v] : value.items()) {
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::string hint;
      std::size_t best = 3;
      for (const auto& k : known_) {
        std::size_t d = edit_distance(key, k);
        if (d < best) {
          best = d;
          hint = k;
        }
      }
      std::vector<std::string> names(known_.begin(), known_.end());
      p_.add(child(path_, key_in_path(key)),
             hint.empty() ? "unknown key; remove it or use a known key: " + join(names)
                          : "unknown key; did you mean \"" + hint + "\"? (known keys: " + join(names) + ")");
    }
  }

  bool is_object() const { return obj_ != nullptr; }
  const std::string& path() const { return path_; }
  std::string at(std::string_view key) const { return child(path_, key); }
  bool has(std::string_view key) const { return obj_ && obj_->contains(key); }

  // The raw value, or nullptr when absent (reported if required).
  const json* find(std::string_view key, Need need, std::string_view what) const {
    if (!obj_) return nullptr;
    auto it = obj_->find(key);
    if (it == obj_->end()) {
      if (need == Need::required) p_.add(at(key), "missing; add " + std::string(what));
      return nullptr;
    }
    return &*it;
  }

  void bad(std::string_view key, std::string_view what, const json& v) const {
    p_.add(at(key), "must be " + std::string(what) + " (got " + got(v) + ")");
  }

  std::string text(std::string_view key, Need need = Need::required) const {
    constexpr std::string_view what = "a non-empty string";
    const json* v = find(key, need, what);
    if (!v) return {};
    if (!v->is_string() || v->get_ref<const std::string&>().empty()) {
      bad(key, what, *v);
      return {};
    }
    return v->get<std::string>();
  }

  std::string id(std::string_view key, Need need = Need::required) const {
    constexpr std::string_view what =
        "an id: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit";
    const json* v = find(key, need, what);
    if (!v) return {};
    if (!v->is_string() || !is_id(v->get_ref<const std::string&>())) {
      bad(key, what, *v);
      return {};
    }
    return v->get<std::string>();
  }

  std::string country_code(std::string_view key) const {
    constexpr std::string_view what = "an ISO 3166-1 alpha-2 country code such as \"FR\"";
    const json* v = find(key, Need::required, what);
    if (!v) return {};
    if (!v->is_string() || !is_country_code(v->get_ref<const std::string&>())) {
      bad(key, what, *v);
      return {};
    }
    return v->get<std::string>();
  }

  std::optional<int> integer(std::string_view key, Need need, long long min, std::string_view what,
                             long long max = INT_MAX) const {
    const json* v = find(key, need, what);
    if (!v) return std::nullopt;
    long long n = 0;
    if (v->is_number_unsigned()) {
      auto u = v->get<std::uint64_t>();
      n = u > static_cast<std::uint64_t>(LLONG_MAX) ? LLONG_MAX : static_cast<long long>(u);
    } else if (v->is_number_integer()) {
      n = v->get<std::int64_t>();
    } else {
      bad(key, what, *v);
      return std::nullopt;
    }
    if (n < min || n > max) {
      bad(key, what, *v);
      return std::nullopt;
    }
    return static_cast<int>(n);
  }

  std::optional<double> number(std::string_view key, Need need, std::string_view what,
                               const std::function<bool(double)>& in_range) const {
    const json* v = find(key, need, what);
    if (!v) return std::nullopt;
    if (!v->is_number() || !in_range(v->get<double>())) {
      bad(key, what, *v);
      return std::nullopt;
    }
    return v->get<double>();
  }

  std::optional<bool> boolean(std::string_view key, Need need) const {
    constexpr std::string_view what = "true or false";
    const json* v = find(key, need, what);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
      bad(key, what, *v);
      return std::nullopt;
    }
    return v->get<bool>();
  }

  template <class E, std::size_t N>
  std::optional<E> choice(std::string_view key, Need need, const Named<E> (&table)[N]) const {
    std::string what = "one of " + names_of(table);
    const json* v = find(key, need, what);
    if (!v) return std::nullopt;
    std::optional<E> e = v->is_string() ? value_of(table, v->get_ref<const std::string&>()) : std::nullopt;
    if (!e) bad(key, what, *v);
    return e;
  }

  // An array (empty allowed only when min_items is 0), or nullptr.
  const json* array(std::string_view key, Need need, std::string_view what, std::size_t min_items = 1) const {
    std::string expected = "an array of " + std::string(what);
    const json* v = find(key, need, expected);
    if (!v) return nullptr;
    if (!v->is_array()) {
      bad(key, expected, *v);
      return nullptr;
    }
    if (v->size() < min_items) {
      p_.add(at(key), "must list at least " + std::to_string(min_items) + " " + std::string(what) + " (got " +
                          std::to_string(v->size()) + ")");
      return nullptr;
    }
    return v;
  }

  // An array of strings, each checked by `valid`; bad entries are reported and skipped.
  std::vector<std::string> strings(std::string_view key, Need need, std::string_view plural,
                                   std::string_view singular, std::size_t min_items,
                                   const std::function<bool(const std::string&)>& valid) const {
    std::vector<std::string> out;
    const json* a = array(key, need, plural, min_items);
    if (!a) return out;
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const json& v = (*a)[i];
      std::string path = item(at(key), i);
      if (!v.is_string() || !valid(v.get_ref<const std::string&>())) {
        p_.add(path, "must be " + std::string(singular) + " (got " + got(v) + ")");
        continue;
      }
      const std::string& s = v.get_ref<const std::string&>();
      auto [it, inserted] = seen.emplace(s, i);
      if (!inserted) {
        p_.add(path, "duplicate " + quote(s) + " (already at " + item(at(key), it->second) + "); list it once");
        continue;
      }
      out.push_back(s);
    }
    return out;
  }

 private:
  Problems& p_;
  std::string path_;
  std::vector<const char*> known_;
  const json* obj_ = nullptr;
};

// Remembers where each id was first defined so a duplicate names both places.
class UniqueIds {
 public:
  UniqueIds(Problems& problems, std::string what) : p_(problems), what_(std::move(what)) {}
  void check(const std::string& id, const std::string& path) {
    if (id.empty()) return;
    auto [it, inserted] = first_.emplace(id, path);
    if (!inserted)
      p_.add(path, "duplicate " + what_ + " " + quote(id) + " (first at " + it->second + "); each " + what_ +
                       " must be unique");
  }

 private:
  Problems& p_;
  std::string what_;
  std::map<std::string, std::string> first_;
};

// The distinct non-empty ids of a list, in order: the choices a message offers.
template <class T, class Key>
std::vector<std::string> ids_of(const std::vector<T>& items, Key key) {
  std::vector<std::string> out;
  for (const auto& i : items)
    if (!(i.*key).empty() && std::find(out.begin(), out.end(), i.*key) == out.end()) out.push_back(i.*key);
  return out;
}

std::string unknown(std::string_view what, const std::string& value, const std::vector<std::string>& known) {
  return "unknown " + std::string(what) + " " + quote(value) + "; use one of: " +
         (known.empty() ? std::string("(none defined)") : join(known));
}

template <class T, class Key>
bool contains_id(const std::vector<T>& items, Key key, std::string_view id) {
  return std::any_of(items.begin(), items.end(), [&](const T& i) { return i.*key == id; });
}

template <class T>
const T* find_by(const std::vector<T>& items, std::string T::*key, std::string_view id) {
  for (const auto& i : items)
    if (i.*key == id) return &i;
  return nullptr;
}

constexpr Named<ResupplyStrategy> kResupplyStrategies[] = {
    {ResupplyStrategy::min_max, "min_max"}, {ResupplyStrategy::predictive, "predictive"}};

// The predictive strategy's settings, in the study's supply.resupply and in a
// supply simulation scenario's strategy alike.
PredictiveSettings read_predictive(Problems& p, const Fields& f) {
  PredictiveSettings w;
  auto trigger = f.integer("trigger_window_days", Need::required, 0, "a number of days, 0 to 365", 365);
  auto resupply = f.integer("resupply_window_days", Need::required, 0, "a number of days, 0 to 365", 365);
  auto min_buffer = f.integer("min_buffer", Need::required, 0, "a non-negative number of kits", 1000);
  auto max_buffer = f.integer("max_buffer", Need::required, 0, "a non-negative number of kits", 1000);
  if (trigger && resupply && *resupply < *trigger)
    p.add(f.at("resupply_window_days"), "must be at least trigger_window_days (got " + std::to_string(*resupply) +
                                            ", trigger_window_days " + std::to_string(*trigger) +
                                            "); a resupply covers at least the window that triggers it");
  if (min_buffer && max_buffer && *max_buffer < *min_buffer)
    p.add(f.at("max_buffer"), "must be at least min_buffer (got " + std::to_string(*max_buffer) + ", min_buffer " +
                                  std::to_string(*min_buffer) + "); a resupply fills above the level that triggers it");
  w.trigger_window_days = trigger.value_or(0);
  w.resupply_window_days = resupply.value_or(0);
  w.min_buffer = min_buffer.value_or(0);
  w.max_buffer = max_buffer.value_or(0);
  return w;
}

// Builds a Study from a parsed document, reporting every problem. Each
// section is read even when an earlier one failed, and entries with bad
// fields stay in place (with empty ids) so that index paths stay right and a
// reference is never reported twice.
class StudyReader {
 public:
  explicit StudyReader(Problems& problems) : p_(problems) {}

  Study read(const json& doc) {
    Fields top(p_, doc, "",
               {"format", "id", "name", "version", "blinding", "arms", "factors", "cohorts", "randomization", "caps",
                "countries", "sites", "depots", "kit_types", "visits", "supply", "roles", "eligibility",
                "session_idle_minutes", "site_activation", "enrollment"});
    if (!top.is_object()) return s_;
    if (const json* f = top.find("format", Need::optional, "")) {
      if (!f->is_number_integer() || f->get<std::int64_t>() != kFormat)
        p_.add("format", "this hub reads format " + std::to_string(kFormat) + " (got " + got(*f) +
                             "); write the document in format " + std::to_string(kFormat) + " or upgrade the hub");
    }
    s_.id = top.id("id");
    s_.name = top.text("name");
    s_.version = top.integer("version", Need::required, 1, "a positive integer").value_or(1);
    s_.blinding = top.choice("blinding", Need::required, kBlindings).value_or(Blinding::double_blind);
    read_arms(top);
    read_factors(top);
    read_cohorts(top);
    read_countries(top);
    read_sites(top);
    read_depots(top);
    // The derived factors exist before anything that refers to factors is read.
    add_derived_factors();
    read_randomization(top);
    read_arm_closures(top);
    read_caps(top);
    check_decided_cohorts_capped();
    read_kit_types(top);
    read_visits(top);
    read_supply(top);
    read_expiry_windows();
    read_roles(top);
    s_.eligibility = top.strings("eligibility", Need::optional, "questions", "a non-empty question", 0,
                                 [](const std::string& q) { return !q.empty(); });
    s_.session_idle_minutes =
        top.integer("session_idle_minutes", Need::optional, 1, "a whole number of minutes from 1 to 1440", 1440)
            .value_or(s_.session_idle_minutes);
    s_.manual_site_activation =
        top.choice("site_activation", Need::optional, kSiteActivations).value_or(false);
    read_enrollment(top);
    return s_;
  }

 private:
  std::vector<std::string> arm_ids() const { return ids_of(s_.arms, &Arm::id); }

  std::vector<std::string> factor_ids() const { return ids_of(s_.factors, &Factor::id); }

  void read_arms(const Fields& top) {
    const json* arms = top.array("arms", Need::required, "arms", 2);
    if (!arms) return;
    UniqueIds ids(p_, "arm id");
    for (std::size_t i = 0; i < arms->size(); ++i) {
      Fields f(p_, (*arms)[i], item("arms", i), {"id", "name", "blinded_label", "ratio", "closed"});
      Arm a;
      a.id = f.id("id");
      a.name = f.text("name");
      a.blinded_label = f.text("blinded_label");
      auto ratio = f.integer("ratio", Need::required, 1, "a positive integer");
      a.ratio = ratio.value_or(0);
      if (!ratio) ratios_valid_ = false;
      ids.check(a.id, f.at("id"));
      s_.arms.push_back(a);
    }
  }

  // After the factors and the method: a closure names factor levels.
  void read_arm_closures(const Fields& top) {
    const json* arms = top.find("arms", Need::optional, "");
    if (!arms || !arms->is_array() || arms->size() != s_.arms.size()) return;
    for (std::size_t i = 0; i < s_.arms.size(); ++i) {
      const json& arm = (*arms)[i];
      if (!arm.is_object() || !arm.contains("closed")) continue;
      read_closure(arm["closed"], child(item("arms", i), "closed"), s_.arms[i]);
    }
    if (!s_.arms.empty() &&
        std::all_of(s_.arms.begin(), s_.arms.end(), [](const Arm& a) { return a.closed && a.closure.everywhere(); }))
      p_.add("arms", "every arm is closed; keep at least one arm open (to stop randomizing altogether, set the "
                     "sites inactive)");
    if (s_.blinding == Blinding::open) return;
    // A blinded reader sees the label instead of the arm, so one label per arm
    // would reveal the arm all the same.
    for (std::size_t i = 1; i < s_.arms.size(); ++i) {
      const auto& first = s_.arms[0].blinded_label;
      const auto& label = s_.arms[i].blinded_label;
      if (!first.empty() && !label.empty() && label != first)
        p_.add(item("arms", i) + ".blinded_label",
               "differs from arms[0].blinded_label (" + quote(first) + ", got " + quote(label) +
                   "); in a blinded study every arm shows blinded roles the same label");
    }
  }

  void read_closure(const json& v, const std::string& path, Arm& a) {
    if (v.is_boolean()) {
      a.closed = v.get<bool>();
      return;
    }
    const std::string what = "true, false, or an object with \"from\" (a date \"YYYY-MM-DD\") and/or \"strata\" "
                             "(a list of factor levels, e.g. [{\"diabetes\": \"yes\"}])";
    if (!v.is_object() || v.empty()) {
      p_.add(path, "must be " + what + " (got " + got(v) + ")");
      return;
    }
    Fields f(p_, v, path, {"from", "strata"});
    a.closed = true;
    if (const json* from = f.find("from", Need::optional, "")) {
      a.closure.from = from->is_string() ? parse_date(from->get_ref<const std::string&>()) : std::nullopt;
      if (!a.closure.from) f.bad("from", "a date \"YYYY-MM-DD\" (the arm closes on that date, by the node's date)", *from);
    }
    const json* strata = f.find("strata", Need::optional, "");
    if (!strata) return;
    if (!strata->is_array() || strata->empty()) {
      f.bad("strata", "a non-empty list of factor levels, e.g. [{\"diabetes\": \"yes\"}]", *strata);
      return;
    }
    // A list design finds a slot's stratum from its stratification factors only.
    const bool listed = s_.randomization.method != Method::minimization;
    for (std::size_t k = 0; k < strata->size(); ++k) {
      const std::string at = item(f.at("strata"), k);
      Cap entry;
      read_cap_stratum((*strata)[k], at, entry);
      for (const auto& [factor, level] : entry.stratum)
        if (listed && std::find(s_.randomization.strata.begin(), s_.randomization.strata.end(), factor) ==
                          s_.randomization.strata.end())
          p_.add(child(at, key_in_path(factor)), "factor " + quote(factor) + " is not a stratification factor of "
                                                     "the randomization (" + join(s_.randomization.strata) +
                                                     "); a list design closes an arm by stratum only");
      if (!entry.stratum.empty()) a.closure.strata.push_back(entry.stratum);
    }
  }

  void read_factors(const Fields& top) {
    const json* factors = top.array("factors", Need::optional, "factors", 0);
    if (!factors) return;
    UniqueIds ids(p_, "factor id");
    for (std::size_t i = 0; i < factors->size(); ++i) {
      Fields f(p_, (*factors)[i], item("factors", i), {"id", "name", "levels"});
      Factor factor;
      factor.id = f.id("id");
      if (is_derived_factor(factor.id)) {
        p_.add(f.at("id"), quote(factor.id) + " is reserved: its levels come from the " +
                               (factor.id == kSiteFactor ? "sites" : "countries") +
                               " list; remove this factor and refer to " + quote(factor.id) + " directly");
        factor.id.clear();
      }
      factor.name = f.text("name");
      factor.levels = f.strings("levels", Need::required, "levels", "a non-empty level name", 2,
                                [](const std::string& l) { return !l.empty(); });
      ids.check(factor.id, f.at("id"));
      s_.factors.push_back(factor);
    }
  }

  void read_cohorts(const Fields& top) {
    const json* cohorts = top.array("cohorts", Need::optional, "cohorts", 0);
    if (!cohorts) return;
    UniqueIds ids(p_, "cohort id");
    for (std::size_t i = 0; i < cohorts->size(); ++i) {
      Fields f(p_, (*cohorts)[i], item("cohorts", i), {"id", "name", "opens", "after"});
      Cohort c;
      c.id = f.id("id");
      c.name = f.text("name");
      c.opens_by_decision = f.choice("opens", Need::optional, kCohortOpenings).value_or(false);
      c.after = f.id("after", Need::optional);
      ids.check(c.id, f.at("id"));
      if (!c.after.empty()) {
        auto before = std::find_if(s_.cohorts.begin(), s_.cohorts.end(), [&](const Cohort& o) { return o.id == c.after; });
        if (!c.opens_by_decision)
          p_.add(f.at("after"), "only a cohort that opens by decision waits for another; add \"opens\": "
                                "\"by_decision\" or remove \"after\"");
        else if (before == s_.cohorts.end())
          p_.add(f.at("after"), "'" + c.after + "' is not a cohort listed before this one; name an earlier cohort "
                                "(cohorts open in the order they are listed)");
        else if (!before->opens_by_decision)
          p_.add(f.at("after"), "cohort '" + c.after + "' is open from the start and is never closed by a decision; "
                                "give it \"opens\": \"by_decision\" too, or remove \"after\"");
      }
      s_.cohorts.push_back(c);
    }
  }

  void read_countries(const Fields& top) {
    const json* countries = top.array("countries", Need::required, "countries", 1);
    if (!countries) return;
    UniqueIds ids(p_, "country code");
    for (std::size_t i = 0; i < countries->size(); ++i) {
      Fields f(p_, (*countries)[i], item("countries", i), {"code", "name", "expected_rate_per_day", "activation_date"});
      Country c;
      c.code = f.country_code("code");
      c.name = f.text("name");
      c.expected = read_expected(f);
      ids.check(c.code, f.at("code"));
      s_.countries.push_back(c);
    }
  }

  void check_country(const std::string& code, const std::string& path) {
    if (!code.empty() && !contains_id(s_.countries, &Country::code, code))
      p_.add(path, unknown("country", code, ids_of(s_.countries, &Country::code)) +
                       ", or add it to \"countries\"");
  }

  void read_sites(const Fields& top) {
    const json* sites = top.array("sites", Need::required, "sites", 1);
    if (!sites) return;
    UniqueIds ids(p_, "site id");
    for (std::size_t i = 0; i < sites->size(); ++i) {
      Fields f(p_, (*sites)[i], item("sites", i),
               {"id", "name", "country", "active", "node_kinds", "expected_rate_per_day", "activation_date"});
      Site site;
      site.id = f.id("id");
      site.name = f.text("name");
      site.expected = read_expected(f);
      site.country = f.country_code("country");
      check_country(site.country, f.at("country"));
      site.active = f.boolean("active", Need::optional).value_or(true);
      if (f.has("node_kinds")) {
        site.node_kinds.clear();
        std::string what = "one of " + names_of(kNodeKinds);
        for (const auto& k : f.strings("node_kinds", Need::required, "node kinds", what, 1, [](const std::string& k) {
               return value_of(kNodeKinds, k).has_value();
             }))
          site.node_kinds.push_back(*value_of(kNodeKinds, k));
      }
      ids.check(site.id, f.at("id"));
      s_.sites.push_back(site);
    }
  }

  // A site's or country's expected enrollment (docs/study-config.md, "enrollment").
  ExpectedEnrollment read_expected(const Fields& f) {
    ExpectedEnrollment e;
    e.rate_per_day = expected_rate(f);
    if (const json* v = f.find("activation_date", Need::optional, "")) {
      e.activation_date = v->is_string() ? parse_date(v->get_ref<const std::string&>()) : std::nullopt;
      if (!e.activation_date) f.bad("activation_date", "a date \"YYYY-MM-DD\" (the planned activation)", *v);
    }
    return e;
  }

  static std::optional<double> expected_rate(const Fields& f) {
    return f.number("expected_rate_per_day", Need::optional,
                    "a positive number of participants per day, at most " + std::to_string(kMaxExpectedRate),
                    [](double r) { return r > 0 && r <= kMaxExpectedRate; });
  }

  void read_enrollment(const Fields& top) {
    const json* doc = top.find("enrollment", Need::optional, "");
    if (!doc) return;
    Fields f(p_, *doc, "enrollment", {"target_participants", "expected_rate_per_day", "prior_weight_days"});
    s_.enrollment.target_participants =
        f.integer("target_participants", Need::optional, 1, "a positive number of participants").value_or(0);
    s_.enrollment.expected_rate_per_day = expected_rate(f);
    s_.enrollment.prior_weight_days =
        f.number("prior_weight_days", Need::optional, "a number of days above 0, at most 3650",
                 [](double d) { return d > 0 && d <= 3650; })
            .value_or(s_.enrollment.prior_weight_days);
  }

  void read_depots(const Fields& top) {
    const json* depots = top.array("depots", Need::required, "depots", 1);
    if (!depots) return;
    UniqueIds ids(p_, "depot id");
    for (std::size_t i = 0; i < depots->size(); ++i) {
      Fields f(p_, (*depots)[i], item("depots", i), {"id", "name", "countries"});
      Depot d;
      d.id = f.id("id");
      d.name = f.text("name");
      d.countries = f.strings("countries", Need::required, "country codes", "an ISO 3166-1 alpha-2 country code", 1,
                              [](const std::string& c) { return is_country_code(c); });
      for (std::size_t c = 0; c < d.countries.size(); ++c) check_country(d.countries[c], item(f.at("countries"), c));
      ids.check(d.id, f.at("id"));
      s_.depots.push_back(d);
    }
    // A site in a country no depot serves could never receive a kit.
    std::set<std::string> reported;
    for (const auto& site : s_.sites) {
      if (site.country.empty() || reported.count(site.country) ||
          !contains_id(s_.countries, &Country::code, site.country))
        continue;
      bool served = std::any_of(s_.depots.begin(), s_.depots.end(), [&](const Depot& d) {
        return std::find(d.countries.begin(), d.countries.end(), site.country) != d.countries.end();
      });
      if (!served) {
        reported.insert(site.country);
        p_.add("depots", "no depot serves country " + quote(site.country) + ", where site " + quote(site.id) +
                             " is; add " + quote(site.country) + " to a depot's \"countries\"");
      }
    }
  }

  void add_derived_factors() {
    Factor site{std::string(kSiteFactor), "Site", ids_of(s_.sites, &Site::id)};
    Factor country{std::string(kCountryFactor), "Country", ids_of(s_.countries, &Country::code)};
    s_.factors.push_back(site);
    s_.factors.push_back(country);
  }

  bool check_factor(const std::string& id, const std::string& path) {
    if (id.empty()) return false;
    if (s_.find_factor(id)) return true;
    p_.add(path, unknown("factor", id, factor_ids()) + ", or define it in \"factors\"");
    return false;
  }

  // Which keys of "randomization" each method reads; any other is an error,
  // so a parameter for another method is never silently ignored.
  static std::vector<std::string> keys_for(Method m) {
    switch (m) {
      case Method::simple: return {};
      case Method::permuted_blocks: return {"block_sizes", "strata"};
      case Method::minimization:
        return {"minimization_factors", "measure", "preferred_probability", "initial_random"};
      case Method::biased_coin: return {"coin_probability"};
      case Method::max_tolerated_imbalance: return {"max_tolerated_imbalance"};
    }
    return {};
  }

  void read_randomization(const Fields& top) {
    const json* r = top.find("randomization", Need::required, "an object with at least \"method\"");
    if (!r) return;
    Fields f(p_, *r, "randomization",
             {"method", "block_sizes", "strata", "minimization_factors", "measure", "preferred_probability",
              "initial_random", "coin_probability", "max_tolerated_imbalance"});
    if (!f.is_object()) return;
    Randomization& rz = s_.randomization;
    auto method = f.choice("method", Need::required, kMethods);
    if (!method) return;
    rz.method = *method;
    std::vector<std::string> allowed = keys_for(rz.method);
    for (const auto& [key, v] : r->items()) {
      if (key == "method") continue;
      bool known = false;
      for (Method m : {Method::simple, Method::permuted_blocks, Method::minimization, Method::biased_coin,
                       Method::max_tolerated_imbalance}) {
        auto k = keys_for(m);
        if (std::find(k.begin(), k.end(), key) != k.end()) known = true;
      }
      if (known && std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        p_.add(f.at(key), "not used by method " + to_string(rz.method) + "; remove it" +
                              (allowed.empty() ? std::string() : " (this method reads: " + join(allowed) + ")"));
    }

    switch (rz.method) {
      case Method::simple: break;
      case Method::permuted_blocks: read_blocks(f); break;
      case Method::minimization: read_minimization(f); break;
      case Method::biased_coin:
      case Method::max_tolerated_imbalance: read_two_arm_design(f); break;
    }
  }

  void read_blocks(const Fields& f) {
    Randomization& rz = s_.randomization;
    const json* sizes = f.array("block_sizes", Need::required, "block sizes", 1);
    long long total = 0;
    for (const auto& a : s_.arms) total += a.ratio;
    std::vector<std::string> ratio;
    for (const auto& a : s_.arms) ratio.push_back(std::to_string(a.ratio));
    if (sizes) {
      std::set<long long> seen;
      for (std::size_t i = 0; i < sizes->size(); ++i) {
        const json& v = (*sizes)[i];
        std::string path = item(f.at("block_sizes"), i);
        if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > INT_MAX) {
          p_.add(path, "must be a positive integer (got " + got(v) + ")");
          continue;
        }
        long long size = v.get<std::int64_t>();
        if (size > kMaxBlockSize) {
          p_.add(path, "block size " + std::to_string(size) + " is more than " + std::to_string(kMaxBlockSize) +
                           "; blocks are a few times the ratio total (" + std::to_string(total) + ")");
          continue;
        }
        if (!seen.insert(size).second) {
          p_.add(path, "duplicate block size " + std::to_string(size) + "; list each size once");
          continue;
        }
        // A block must hold each arm a whole number of times for the ratio to hold in it.
        if (ratios_valid_ && total > 0 && size % total != 0) {
          p_.add(path, "block size " + std::to_string(size) + " cannot honour the ratio " + join(ratio, ":") +
                           "; use a multiple of " + std::to_string(total));
          continue;
        }
        rz.block_sizes.push_back(static_cast<int>(size));
      }
    }
    rz.strata = f.strings("strata", Need::optional, "factor ids", "a factor id", 0,
                          [](const std::string& s) { return is_id(s); });
    for (std::size_t i = 0; i < rz.strata.size(); ++i) check_factor(rz.strata[i], item(f.at("strata"), i));
  }

  void read_minimization(const Fields& f) {
    Randomization& rz = s_.randomization;
    const json* factors = f.array("minimization_factors", Need::required, "factors with weights", 1);
    if (factors) {
      UniqueIds ids(p_, "minimization factor");
      for (std::size_t i = 0; i < factors->size(); ++i) {
        Fields mf(p_, (*factors)[i], item(f.at("minimization_factors"), i), {"factor", "weight"});
        MinimizationFactor m;
        m.factor = mf.id("factor");
        check_factor(m.factor, mf.at("factor"));
        m.weight = mf.number("weight", Need::optional, "a positive number", [](double w) {
                       return w > 0 && w < 1e9;
                     }).value_or(1.0);
        ids.check(m.factor, mf.at("factor"));
        rz.minimization_factors.push_back(m);
      }
    }
    rz.measure = f.choice("measure", Need::optional, kMeasures).value_or(ImbalanceMeasure::range);
    // p = 0.5 would be simple randomization in disguise; p > 1 is not a probability.
    rz.preferred_probability =
        f.number("preferred_probability", Need::optional, "a number greater than 0.5 and at most 1", [](double p) {
           return p > 0.5 && p <= 1.0;
         }).value_or(rz.preferred_probability);
    rz.initial_random =
        f.integer("initial_random", Need::optional, 0, "a non-negative integer").value_or(rz.initial_random);
  }

  void read_two_arm_design(const Fields& f) {
    Randomization& rz = s_.randomization;
    std::string method = to_string(rz.method);
    if (s_.arms.size() != 2) {
      p_.add("randomization.method", method + " needs exactly two arms (got " + std::to_string(s_.arms.size()) +
                                         "); use permuted_blocks or minimization for more arms");
    } else if (ratios_valid_ && s_.arms[0].ratio != s_.arms[1].ratio) {
      p_.add("randomization.method", method + " needs a 1:1 ratio (got " + std::to_string(s_.arms[0].ratio) + ":" +
                                         std::to_string(s_.arms[1].ratio) +
                                         "); use permuted_blocks or minimization for unequal ratios");
    }
    if (rz.method == Method::biased_coin) {
      rz.coin_probability = f.number("coin_probability", Need::optional, "a number greater than 0.5 and at most 1",
                                     [](double p) { return p > 0.5 && p <= 1.0; })
                                .value_or(rz.coin_probability);
    } else {
      rz.max_tolerated_imbalance = f.integer("max_tolerated_imbalance", Need::optional, 1, "a positive integer")
                                       .value_or(rz.max_tolerated_imbalance);
    }
  }

  void read_caps(const Fields& top) {
    const json* caps = top.array("caps", Need::optional, "caps", 0);
    if (!caps) return;
    std::map<std::string, std::string> targets;  // "arm A" -> path of the first cap on it
    for (std::size_t i = 0; i < caps->size(); ++i) {
      std::string path = item("caps", i);
      Fields f(p_, (*caps)[i], path, {"scope", "stratum", "arm", "cohort", "limit"});
      Cap cap;
      auto scope = f.choice("scope", Need::required, kCapScopes);
      cap.limit = f.integer("limit", Need::required, 1, "a positive integer").value_or(0);
      if (!scope) {
        s_.caps.push_back(cap);
        continue;
      }
      cap.scope = *scope;
      std::string target_key = to_string(cap.scope);
      for (const char* key : {"stratum", "arm", "cohort"})
        if (key != target_key && f.has(key))
          p_.add(f.at(key), "not used by a cap with scope " + quote(target_key) + "; remove it");
      std::string target;
      if (cap.scope == CapScope::arm) {
        cap.arm = f.id("arm");
        if (!cap.arm.empty() && !s_.find_arm(cap.arm)) p_.add(f.at("arm"), unknown("arm", cap.arm, arm_ids()));
        target = "arm " + cap.arm;
      } else if (cap.scope == CapScope::cohort) {
        cap.cohort = f.id("cohort");
        if (!cap.cohort.empty() && !contains_id(s_.cohorts, &Cohort::id, cap.cohort))
          p_.add(f.at("cohort"), unknown("cohort", cap.cohort, ids_of(s_.cohorts, &Cohort::id)) +
                                     ", or define it in \"cohorts\"");
        target = "cohort " + cap.cohort;
      } else if (const json* st = f.find("stratum", Need::required,
                                         "an object naming a level for each factor, e.g. {\"site\": \"101\"}")) {
        read_cap_stratum(*st, f.at("stratum"), cap);
        target = "stratum";
        for (const auto& [k, v] : cap.stratum) target += " " + k + "=" + v;
      }
      if (!target.empty()) {
        auto [it, inserted] = targets.emplace(target, path);
        if (!inserted) p_.add(path, "caps the same " + target + " as " + it->second + "; keep one cap per target");
      }
      s_.caps.push_back(cap);
    }
  }

  // A cohort opened by decision is held across offline nodes by the allowances
  // the hub grants under its cap while it is open (docs/randomization.md, "Cohorts").
  void check_decided_cohorts_capped() {
    for (std::size_t i = 0; i < s_.cohorts.size(); ++i) {
      const auto& c = s_.cohorts[i];
      if (!c.opens_by_decision || c.id.empty()) continue;
      if (std::none_of(s_.caps.begin(), s_.caps.end(),
                       [&](const Cap& cap) { return cap.scope == CapScope::cohort && cap.cohort == c.id; }))
        p_.add(item("cohorts", i) + ".opens",
               "cohort '" + c.id + "' opens by decision and needs a cap: add {\"scope\": \"cohort\", \"cohort\": \"" +
                   c.id + "\", \"limit\": N} to \"caps\" (the hub grants nodes places under it while it is open)");
    }
  }

  void read_cap_stratum(const json& st, const std::string& path, Cap& cap) {
    if (!st.is_object() || st.empty()) {
      p_.add(path, "must be an object naming a level for each factor, e.g. {\"site\": \"101\"} (got " + got(st) + ")");
      return;
    }
    for (const auto& [factor_id, level] : st.items()) {
      std::string at = child(path, key_in_path(factor_id));
      const Factor* factor = s_.find_factor(factor_id);
      if (!factor) {
        p_.add(at, unknown("factor", factor_id, factor_ids()));
        continue;
      }
      if (!level.is_string()) {
        p_.add(at, "must be a level name (got " + got(level) + ")");
        continue;
      }
      const auto& name = level.get_ref<const std::string&>();
      if (std::find(factor->levels.begin(), factor->levels.end(), name) == factor->levels.end()) {
        p_.add(at, "unknown level " + quote(name) + " of factor " + quote(factor_id) + "; use one of: " +
                       join(factor->levels));
        continue;
      }
      cap.stratum[factor_id] = name;
    }
  }

  void read_kit_types(const Fields& top) {
    const json* kits = top.array("kit_types", Need::required, "kit types", 1);
    if (!kits) return;
    UniqueIds ids(p_, "kit type id");
    for (std::size_t i = 0; i < kits->size(); ++i) {
      Fields f(p_, (*kits)[i], item("kit_types", i),
               {"id", "name", "blinded_label", "arm", "units_per_kit", "storage", "expiry_windows"});
      expiry_docs_.push_back({f.find("expiry_windows", Need::optional, ""), f.at("expiry_windows")});
      KitType k;
      k.id = f.id("id");
      k.name = f.text("name");
      k.blinded_label = f.text("blinded_label");
      k.arm = f.id("arm");
      if (!k.arm.empty() && !s_.find_arm(k.arm)) {
        p_.add(f.at("arm"), unknown("arm", k.arm, arm_ids()));
        k.arm.clear();
      }
      k.units_per_kit = f.integer("units_per_kit", Need::required, 1, "a positive integer").value_or(0);
      if (const json* st = f.find("storage", Need::required,
                                  "an object with min_celsius, max_celsius and description")) {
        Fields sf(p_, *st, f.at("storage"), {"min_celsius", "max_celsius", "description"});
        auto plausible = [](double c) { return c >= -273.15 && c <= 100; };
        auto lo = sf.number("min_celsius", Need::required, "a temperature in degrees Celsius", plausible);
        auto hi = sf.number("max_celsius", Need::required, "a temperature in degrees Celsius", plausible);
        if (lo && hi && *lo > *hi)
          p_.add(sf.at("min_celsius"), "is above max_celsius (" + json(*lo).dump() + " > " + json(*hi).dump() +
                                           "); swap them");
        k.storage.min_celsius = lo.value_or(k.storage.min_celsius);
        k.storage.max_celsius = hi.value_or(k.storage.max_celsius);
        k.storage.description = sf.text("description", Need::optional);
      }
      ids.check(k.id, f.at("id"));
      s_.kit_types.push_back(k);
    }
    if (s_.blinding == Blinding::open) return;
    // Blinded roles see kit labels; a label only one arm's kits carry names the arm.
    std::set<std::string> arms_with_kits;
    for (const auto& k : s_.kit_types)
      if (!k.arm.empty()) arms_with_kits.insert(k.arm);
    std::set<std::string> reported;
    for (std::size_t i = 0; i < s_.kit_types.size(); ++i) {
      const auto& label = s_.kit_types[i].blinded_label;
      if (label.empty() || s_.kit_types[i].arm.empty() || reported.count(label)) continue;
      std::vector<std::string> missing;
      for (const auto& arm : arms_with_kits) {
        bool has = std::any_of(s_.kit_types.begin(), s_.kit_types.end(),
                               [&](const KitType& k) { return k.arm == arm && k.blinded_label == label; });
        if (!has) missing.push_back(arm);
      }
      if (!missing.empty()) {
        reported.insert(label);
        p_.add(item("kit_types", i) + ".blinded_label",
               quote(label) + " is not used by any kit type of arm(s) " + join(missing) +
                   "; in a blinded study every arm needs a kit type with the same label, or the label reveals the arm");
      }
    }
  }

  void read_visits(const Fields& top) {
    const json* visits = top.array("visits", Need::required, "visits", 1);
    if (!visits) return;
    UniqueIds ids(p_, "visit id");
    std::optional<std::size_t> randomization_visit;
    // Without any randomization visit, "dispenses before randomization" would
    // repeat one mistake for every visit; the missing visit is reported instead.
    has_randomization_visit_ = std::any_of(visits->begin(), visits->end(), [](const json& v) {
      return v.is_object() && v.contains("randomization") && v["randomization"] == true;
    });
    for (std::size_t i = 0; i < visits->size(); ++i) {
      std::string path = item("visits", i);
      Fields f(p_, (*visits)[i], path,
               {"id", "name", "day", "window_before", "window_after", "randomization", "dispense"});
      Visit v;
      v.id = f.id("id");
      v.name = f.text("name");
      auto day = f.integer("day", Need::required, -3650, "a day offset from randomization (an integer)", 3650 * 3);
      v.day = day.value_or(0);
      v.window_before = f.integer("window_before", Need::optional, 0, "a non-negative number of days").value_or(0);
      v.window_after = f.integer("window_after", Need::optional, 0, "a non-negative number of days").value_or(0);
      v.randomization = f.boolean("randomization", Need::optional).value_or(false);
      ids.check(v.id, f.at("id"));
      if (v.randomization) {
        if (randomization_visit) {
          p_.add(f.at("randomization"), "a second randomization visit (the first is " +
                                            item("visits", *randomization_visit) +
                                            "); exactly one visit randomizes");
        } else {
          randomization_visit = i;
          if (day && v.day != 0)
            p_.add(f.at("day"), "the randomization visit is day 0 by definition (got " + std::to_string(v.day) +
                                    "); count the other visits' days from it");
        }
      }
      if (day && last_day_valid_ && !s_.visits.empty() && v.day <= s_.visits.back().day)
        p_.add(f.at("day"), "must come after the previous visit's day " + std::to_string(s_.visits.back().day) +
                                " (got " + std::to_string(v.day) + "); list visits in schedule order");
      last_day_valid_ = day.has_value();
      read_dispense(f, v, randomization_visit.has_value());
      s_.visits.push_back(v);
    }
    if (!randomization_visit)
      p_.add("visits", "no visit has \"randomization\": true; mark the visit at which participants are randomized");
  }

  void read_dispense(const Fields& f, Visit& v, bool randomized) {
    const json* dispense = f.array("dispense", Need::optional, "kit dispensings", 0);
    if (!dispense || dispense->empty()) return;
    if (!randomized && !has_randomization_visit_) return;
    if (!randomized && has_randomization_visit_) {
      p_.add(f.at("dispense"), "a visit before randomization cannot dispense by arm; move the dispensing to the "
                               "randomization visit or later");
      return;
    }
    std::set<std::pair<std::string, std::string>> seen;
    std::map<std::string, int> kits_per_arm;
    for (std::size_t j = 0; j < dispense->size(); ++j) {
      Fields d(p_, (*dispense)[j], item(f.at("dispense"), j), {"arm", "kit_type", "count"});
      VisitDispense vd;
      vd.arm = d.id("arm");
      vd.kit_type = d.id("kit_type");
      vd.count = d.integer("count", Need::required, 1, "a positive number of kits", 1000).value_or(0);
      bool arm_ok = !vd.arm.empty() && s_.find_arm(vd.arm);
      if (!vd.arm.empty() && !arm_ok) p_.add(d.at("arm"), unknown("arm", vd.arm, arm_ids()));
      const KitType* kit = vd.kit_type.empty() ? nullptr : s_.find_kit_type(vd.kit_type);
      if (!vd.kit_type.empty() && !kit)
        p_.add(d.at("kit_type"), unknown("kit type", vd.kit_type, ids_of(s_.kit_types, &KitType::id)) +
                                     ", or define it in \"kit_types\"");
      if (arm_ok && kit && !kit->arm.empty() && kit->arm != vd.arm)
        p_.add(d.at("kit_type"), "kit type " + quote(kit->id) + " treats arm " + quote(kit->arm) + ", not " +
                                     quote(vd.arm) + "; use a kit type of arm " + quote(vd.arm));
      if (arm_ok && kit && !seen.insert({vd.arm, vd.kit_type}).second)
        p_.add(d.path(), "repeats arm " + quote(vd.arm) + " with kit type " + quote(vd.kit_type) +
                             "; list each pair once and set its count");
      if (arm_ok) kits_per_arm[vd.arm] += vd.count;
      v.dispense.push_back(vd);
    }
    for (const auto& arm : s_.arms)
      if (!arm.id.empty() && !kits_per_arm.count(arm.id))
        p_.add(f.at("dispense"), "no entry for arm " + quote(arm.id) +
                                     "; a dispensing visit must dispense to every arm, or participants of that arm "
                                     "get nothing and the difference reveals the arm");
    if (s_.blinding == Blinding::open || kits_per_arm.size() < 2) return;
    // Blinded staff count the kits they hand out.
    auto first = kits_per_arm.begin();
    for (auto it = std::next(first); it != kits_per_arm.end(); ++it)
      if (it->second != first->second && first->second > 0 && it->second > 0) {
        p_.add(f.at("dispense"), "arm " + quote(first->first) + " receives " + std::to_string(first->second) +
                                     " kit(s) and arm " + quote(it->first) + " " + std::to_string(it->second) +
                                     "; in a blinded study every arm receives the same number of kits");
        break;
      }
  }

  // kit_types[i].expiry_windows, once supply.do_not_dispense_days (the
  // default) is known: {"do_not_ship_days", "do_not_count_days",
  // "do_not_dispense_days", "countries": {"DE": {...}}}; an absent number
  // takes the kit type's value (for a country) or the default.
  void read_expiry_windows() {
    const int d = s_.supply.do_not_dispense_days;
    const ExpiryWindows fallback{d, d, d};
    auto read_windows = [&](const Fields& f, const ExpiryWindows& base) {
      ExpiryWindows w = base;
      auto days = [&](const char* key, int& out) {
        if (auto v = f.integer(key, Need::optional, 0, "a non-negative number of days", 3650)) out = *v;
      };
      days("do_not_ship_days", w.do_not_ship_days);
      days("do_not_count_days", w.do_not_count_days);
      days("do_not_dispense_days", w.do_not_dispense_days);
      if (w.do_not_ship_days < w.do_not_count_days)
        p_.add(f.at("do_not_ship_days"), "must be at least do_not_count_days (got " +
                                             std::to_string(w.do_not_ship_days) + " < " +
                                             std::to_string(w.do_not_count_days) +
                                             "); a kit stops being shipped before it stops counting as stock");
      else if (w.do_not_count_days < w.do_not_dispense_days)
        p_.add(f.at("do_not_count_days"), "must be at least do_not_dispense_days (got " +
                                              std::to_string(w.do_not_count_days) + " < " +
                                              std::to_string(w.do_not_dispense_days) +
                                              "); a kit that can no longer be dispensed must not count as stock");
      return w;
    };
    for (std::size_t i = 0; i < s_.kit_types.size() && i < expiry_docs_.size(); ++i) {
      KitType& k = s_.kit_types[i];
      k.expiry = fallback;
      const auto& [doc, path] = expiry_docs_[i];
      if (!doc) continue;
      Fields f(p_, *doc, path, {"do_not_ship_days", "do_not_count_days", "do_not_dispense_days", "countries"});
      if (!f.is_object()) continue;
      k.expiry = read_windows(f, fallback);
      const json* countries = f.find("countries", Need::optional, "");
      if (!countries) continue;
      if (!countries->is_object()) {
        f.bad("countries", "an object of country codes to windows", *countries);
        continue;
      }
      for (const auto& [code, windows] : countries->items()) {
        const std::string at = child(f.at("countries"), key_in_path(code));
        if (!contains_id(s_.countries, &Country::code, code)) {
          p_.add(at, unknown("country", code, ids_of(s_.countries, &Country::code)));
          continue;
        }
        Fields c(p_, windows, at, {"do_not_ship_days", "do_not_count_days", "do_not_dispense_days"});
        if (c.is_object()) k.country_expiry[code] = read_windows(c, k.expiry);
      }
    }
    if (s_.blinding == Blinding::open) return;
    // A blinded role sees kit labels and which kits are dispensed; kit types
    // that share a label but not their windows would tell the arms apart.
    for (std::size_t i = 0; i < s_.kit_types.size(); ++i)
      for (std::size_t j = 0; j < i; ++j) {
        const auto& a = s_.kit_types[j];
        const auto& b = s_.kit_types[i];
        if (a.blinded_label.empty() || a.blinded_label != b.blinded_label) continue;
        if (a.expiry == b.expiry && a.country_expiry == b.country_expiry) continue;
        p_.add(item("kit_types", i) + ".expiry_windows",
               "differ from those of kit type " + quote(a.id) + ", which carries the same blinded label " +
                   quote(a.blinded_label) + "; in a blinded study they would reveal the arm, so give both the same windows");
        break;
      }
  }

  void read_supply(const Fields& top) {
    const json* supply = top.find("supply", Need::required, "an object with lead_times, initial_shipment and levels");
    if (!supply) return;
    Fields f(p_, *supply, "supply",
             {"lead_times", "do_not_dispense_days", "initial_shipment", "trigger_level", "max_level",
              "predictive_horizon_days", "offline_days", "resupply", "shipment_approval"});
    if (!f.is_object()) return;
    Supply& s = s_.supply;
    if (const json* leads = f.array("lead_times", Need::required, "depot-to-country lead times", 1)) {
      std::size_t problems_before = p_.size();
      std::set<std::pair<std::string, std::string>> seen;
      for (std::size_t i = 0; i < leads->size(); ++i) {
        Fields l(p_, (*leads)[i], item(f.at("lead_times"), i), {"depot", "country", "days"});
        LeadTime lt;
        lt.depot = l.id("depot");
        lt.country = l.country_code("country");
        lt.days = l.integer("days", Need::required, 0, "a non-negative number of days", 365).value_or(0);
        const Depot* depot = lt.depot.empty() ? nullptr : find_by(s_.depots, &Depot::id, lt.depot);
        if (!lt.depot.empty() && !depot)
          p_.add(l.at("depot"), unknown("depot", lt.depot, ids_of(s_.depots, &Depot::id)));
        bool country_ok = !lt.country.empty() && contains_id(s_.countries, &Country::code, lt.country);
        if (!lt.country.empty() && !country_ok)
          p_.add(l.at("country"), unknown("country", lt.country, ids_of(s_.countries, &Country::code)));
        if (depot && country_ok &&
            std::find(depot->countries.begin(), depot->countries.end(), lt.country) == depot->countries.end())
          p_.add(l.path(), "depot " + quote(lt.depot) + " does not serve " + quote(lt.country) + "; add " +
                               quote(lt.country) + " to the depot's \"countries\" or remove this lead time");
        if (depot && country_ok && !seen.insert({lt.depot, lt.country}).second)
          p_.add(l.path(), "a second lead time from " + quote(lt.depot) + " to " + quote(lt.country) +
                               "; keep one");
        s.lead_times.push_back(lt);
      }
      // Planning a shipment to a site needs a lead time from a depot serving
      // its country. Checked only over valid entries, so that one mistyped depot
      // is not reported a second time as a missing lead time.
      std::set<std::string> reported;
      for (const auto& site : s_.sites) {
        if (p_.size() != problems_before) break;
        if (site.country.empty() || reported.count(site.country)) continue;
        bool served = false, timed = false;
        for (const auto& d : s_.depots) {
          if (std::find(d.countries.begin(), d.countries.end(), site.country) == d.countries.end()) continue;
          served = true;
          for (const auto& lt : s.lead_times)
            if (lt.depot == d.id && lt.country == site.country) timed = true;
        }
        if (served && !timed) {
          reported.insert(site.country);
          p_.add(f.at("lead_times"), "no lead time to " + quote(site.country) + " (site " + quote(site.id) +
                                         ") from a depot serving it; add one");
        }
      }
    }
    s.do_not_dispense_days =
        f.integer("do_not_dispense_days", Need::required, 0, "a non-negative number of days").value_or(0);
    if (const json* initial = f.array("initial_shipment", Need::required, "kit types with counts", 1)) {
      UniqueIds ids(p_, "kit type in initial_shipment");
      for (std::size_t i = 0; i < initial->size(); ++i) {
        Fields is(p_, (*initial)[i], item(f.at("initial_shipment"), i), {"kit_type", "count"});
        InitialShipment sh;
        sh.kit_type = is.id("kit_type");
        sh.count = is.integer("count", Need::required, 1, "a positive number of kits").value_or(0);
        if (!sh.kit_type.empty() && !s_.find_kit_type(sh.kit_type))
          p_.add(is.at("kit_type"), unknown("kit type", sh.kit_type, ids_of(s_.kit_types, &KitType::id)));
        ids.check(sh.kit_type, is.at("kit_type"));
        s.initial_shipment.push_back(sh);
      }
    }
    // Either the old study-wide levels or a "resupply" object, never both.
    const bool resupply = f.has("resupply");
    for (const char* old : {"trigger_level", "max_level", "predictive_horizon_days"})
      if (resupply && f.has(old))
        p_.add(f.at(old), "cannot be given with supply.resupply; remove it and give the levels in supply.resupply");
    const Need levels_need = resupply ? Need::optional : Need::required;
    auto trigger = resupply ? std::nullopt
                            : f.integer("trigger_level", levels_need, 0, "a non-negative number of kits (or supply.resupply)");
    auto max = resupply ? std::nullopt : f.integer("max_level", levels_need, 1, "a positive number of kits (or supply.resupply)");
    s.trigger_level = trigger.value_or(0);
    s.max_level = max.value_or(0);
    if (trigger && max && *trigger >= *max)
      p_.add(f.at("trigger_level"), "must be below max_level (got " + std::to_string(*trigger) +
                                        ", max_level " + std::to_string(*max) +
                                        "); resupply triggers at trigger_level and fills up to max_level");
    if (!resupply)
      s.predictive_horizon_days =
          f.integer("predictive_horizon_days", Need::optional, 0, "a non-negative number of days").value_or(0);
    s.offline_days = f.integer("offline_days", Need::optional, 1, "a positive number of days", 365)
                         .value_or(s.offline_days);
    // Read by the hub from the study's document (hub/shipments.h shipments_need_approval).
    f.boolean("shipment_approval", Need::optional);
    read_resupply(f);
  }

  // supply.resupply, or the old trigger_level / max_level as min/max levels for every kit type.
  void read_resupply(const Fields& supply) {
    Supply& s = s_.supply;
    ResupplyParameters& r = s.resupply;
    const json* doc = supply.find("resupply", Need::optional, "");
    if (!doc) {
      for (const auto& k : s_.kit_types) r.levels.push_back({k.id, 0, s.trigger_level, s.max_level});
    } else {
      Fields f(p_, *doc, supply.at("resupply"),
               {"strategy", "levels", "trigger_window_days", "resupply_window_days", "min_buffer", "max_buffer",
                "shipment_minimum"});
      if (!f.is_object()) return;
      auto strategy = f.choice("strategy", Need::required, kResupplyStrategies);
      r.strategy = strategy.value_or(ResupplyStrategy::min_max);
      r.shipment_minimum =
          f.integer("shipment_minimum", Need::optional, 0, "a non-negative number of kits", 1000).value_or(1);
      if (strategy == ResupplyStrategy::min_max) {
        for (const char* k : {"trigger_window_days", "resupply_window_days", "min_buffer", "max_buffer"})
          if (f.has(k)) p_.add(f.at(k), "belongs to the predictive strategy; remove it or use \"strategy\": \"predictive\"");
        read_levels(f);
      } else if (strategy == ResupplyStrategy::predictive) {
        if (f.has("levels")) p_.add(f.at("levels"), "belongs to the min_max strategy; remove it or use \"strategy\": \"min_max\"");
        r.predictive = read_predictive(p_, f);
        for (const auto& k : s_.kit_types) r.levels.push_back({k.id, 0, 0, 0});
      }
      // The old fields stay meaningful for readers of them (kit_inventory sizes depots by max_level).
      for (const auto& l : r.levels) {
        s.max_level = std::max(s.max_level, l.up_to);
        s.trigger_level = std::max(s.trigger_level, l.trigger);
      }
    }
    for (auto& l : r.levels)
      for (const auto& i : s.initial_shipment)
        if (i.kit_type == l.kit_type) l.initial = i.count;
  }

  void read_levels(const Fields& f) {
    ResupplyParameters& r = s_.supply.resupply;
    const json* levels = f.array("levels", Need::required, "levels per kit type", 1);
    if (!levels) return;
    UniqueIds ids(p_, "kit type in levels");
    for (std::size_t i = 0; i < levels->size(); ++i) {
      Fields l(p_, (*levels)[i], item(f.at("levels"), i), {"kit_type", "trigger", "up_to"});
      KitLevels k;
      k.kit_type = l.id("kit_type");
      auto trigger = l.integer("trigger", Need::required, 0, "a non-negative number of kits");
      auto up_to = l.integer("up_to", Need::required, 1, "a positive number of kits");
      if (!k.kit_type.empty() && !s_.find_kit_type(k.kit_type))
        p_.add(l.at("kit_type"), unknown("kit type", k.kit_type, ids_of(s_.kit_types, &KitType::id)));
      ids.check(k.kit_type, l.at("kit_type"));
      if (trigger && up_to && *trigger >= *up_to)
        p_.add(l.at("trigger"), "must be below up_to (got " + std::to_string(*trigger) + ", up_to " +
                                    std::to_string(*up_to) + "); a review orders at the trigger, up to up_to");
      k.trigger = trigger.value_or(0);
      k.up_to = up_to.value_or(0);
      r.levels.push_back(k);
    }
    for (const auto& kt : s_.kit_types)
      if (!kt.id.empty() && !r.find_levels(kt.id))
        p_.add(f.at("levels"), "no levels for kit type " + quote(kt.id) + "; add { \"kit_type\": " + quote(kt.id) +
                                   ", \"trigger\": T, \"up_to\": U }");
  }

  void read_roles(const Fields& top) {
    const json* roles = top.array("roles", Need::required, "roles", 1);
    if (!roles) return;
    UniqueIds ids(p_, "role id");
    for (std::size_t i = 0; i < roles->size(); ++i) {
      Fields f(p_, (*roles)[i], item("roles", i), {"id", "name", "blinded", "permissions"});
      Role r;
      r.id = f.id("id");
      r.name = f.text("name");
      auto blinded = f.boolean("blinded", Need::required);
      r.blinded = blinded.value_or(true);
      std::string what = "one of " + names_of(kPermissions);
      for (const auto& name : f.strings("permissions", Need::required, "permissions", what, 0, [](const std::string& p) {
             return value_of(kPermissions, p).has_value();
           }))
        r.permissions.push_back(*value_of(kPermissions, name));
      if (blinded && r.blinded && r.can(Permission::view_unblinded))
        p_.add(f.at("permissions"), "a blinded role cannot hold view_unblinded; remove it or set \"blinded\": false");
      if (blinded && r.blinded && r.id == "unblinded-statistician")
        p_.add(f.at("blinded"), "the unblinded-statistician role is unblinded by definition; set \"blinded\": false");
      ids.check(r.id, f.at("id"));
      s_.roles.push_back(r);
    }
    for (const char* id : kMandatoryRoles)
      if (!s_.find_role(id))
        p_.add("roles", "missing mandatory role " + quote(id) + "; add it (every study defines " +
                            std::to_string(std::size(kMandatoryRoles)) + " roles: " + mandatory_list() + ")");
  }

  static std::string mandatory_list() {
    std::vector<std::string> names(std::begin(kMandatoryRoles), std::end(kMandatoryRoles));
    return join(names);
  }

  Problems& p_;
  Study s_;
  std::vector<std::pair<const json*, std::string>> expiry_docs_;  // kit_types[i].expiry_windows and its path
  bool ratios_valid_ = true;
  bool last_day_valid_ = false;
  bool has_randomization_visit_ = false;
};

// Rejects duplicate keys while parsing: the JSON library would keep only the
// last one, silently dropping the other value.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(Problems& problems) : p_(problems) {}

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        enter_value();
        frames_.push_back(Frame{event == E::object_start, {}, {}, -1});
        break;
      case E::object_end:
      case E::array_end: frames_.pop_back(); break;
      case E::key: {
        Frame& f = frames_.back();
        std::string k = parsed.get<std::string>();
        if (!f.keys.insert(k).second)
          p_.add(child(path(), key_in_path(k)), "duplicate key; an object may hold each key once, "
                                                         "remove one of them");
        f.key = k;
        break;
      }
      case E::value: enter_value(); break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;
    long index;
  };

  void enter_value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }

  std::string path() const {
    std::string out;
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      out = f.object ? child(out, key_in_path(f.key)) : out + "[" + std::to_string(f.index) + "]";
    }
    return out;
  }

  Problems& p_;
  std::vector<Frame> frames_;
};

// The JSON library's description of a parse failure ("syntax error while
// parsing object - ..."), without its own prefix and byte position, which the
// line and column replace. It may quote the document, so it is cut short and
// kept to printable ASCII: a message must stay one valid line.
std::string library_description(const json::exception& e) {
  std::string what = e.what();
  if (auto prefix = what.find("] "); prefix != std::string::npos) what = what.substr(prefix + 2);
  if (what.rfind("parse error", 0) == 0)
    if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
  if (what.size() > 200) what = what.substr(0, 200) + "...";
  for (char& c : what)
    if (c < 0x20 || c > 0x7e) c = '?';
  return what;
}

std::optional<json> parse(std::string_view text, Problems& problems) {
  DuplicateKeyCheck duplicates(problems);
  json::parser_callback_t callback = [&duplicates](int depth, json::parse_event_t event, json& parsed) {
    return duplicates(depth, event, parsed);
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::parse_error& e) {
    // The library reports a byte offset; people fix files by line and column.
    std::size_t line = 1, column = 1;
    std::size_t end = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    for (std::size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    problems.add("document", "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(column) +
                                 ": " + library_description(e) + "; fix the syntax there");
    return std::nullopt;
  } catch (const json::exception& e) {
    // A number too large for any type ("1e999") is refused without a position.
    problems.add("document", "invalid JSON: " + library_description(e) + "; fix the value");
    return std::nullopt;
  }
}

}  // namespace

bool Role::can(Permission p) const { return std::find(permissions.begin(), permissions.end(), p) != permissions.end(); }

bool reads_blinded(const Study& study, const Role* role) {
  if (!role) return true;
  bool unblinded_role = !role->blinded && role->can(Permission::view_unblinded);
  switch (study.blinding) {
    case Blinding::open: return false;
    case Blinding::single: return !unblinded_role && !role->can(Permission::dispense);
    case Blinding::double_blind: return !unblinded_role;
  }
  return true;
}

bool ArmClosure::matches(const std::map<std::string, std::string>& factors) const {
  if (strata.empty()) return true;
  return std::any_of(strata.begin(), strata.end(), [&](const auto& entry) {
    return std::all_of(entry.begin(), entry.end(), [&](const auto& fl) {
      auto it = factors.find(fl.first);
      return it != factors.end() && it->second == fl.second;
    });
  });
}

bool ArmClosure::covers(const ArmClosure& other) const {
  if (from && (!other.from || *from > *other.from)) return false;
  if (strata.empty()) return true;
  // Each of other's entries is at least as narrow as one of these.
  return !other.strata.empty() && std::all_of(other.strata.begin(), other.strata.end(), [&](const auto& narrow) {
    return std::any_of(strata.begin(), strata.end(), [&](const auto& wide) {
      return std::all_of(wide.begin(), wide.end(), [&](const auto& fl) {
        auto it = narrow.find(fl.first);
        return it != narrow.end() && it->second == fl.second;
      });
    });
  });
}

std::string ArmClosure::text() const {
  if (everywhere()) return "true";
  json j = json::object();
  if (from) j["from"] = format_date(*from);
  if (!strata.empty()) j["strata"] = strata;
  return j.dump();
}

const Arm* Study::find_arm(std::string_view id) const { return find_by(arms, &Arm::id, id); }
const Cohort* Study::find_cohort(std::string_view id) const { return find_by(cohorts, &Cohort::id, id); }
const Site* Study::find_site(std::string_view id) const { return find_by(sites, &Site::id, id); }
const KitType* Study::find_kit_type(std::string_view id) const { return find_by(kit_types, &KitType::id, id); }
const Role* Study::find_role(std::string_view id) const { return find_by(roles, &Role::id, id); }
const Visit* Study::find_visit(std::string_view id) const { return find_by(visits, &Visit::id, id); }
const Factor* Study::find_factor(std::string_view id) const { return find_by(factors, &Factor::id, id); }

ExpiryWindows Study::expiry_windows(std::string_view kit_type, std::string_view country) const {
  const KitType* k = find_kit_type(kit_type);
  if (!k) return {supply.do_not_dispense_days, supply.do_not_dispense_days, supply.do_not_dispense_days};
  auto it = k->country_expiry.find(std::string(country));
  return it == k->country_expiry.end() ? k->expiry : it->second;
}

std::string Study::country_of(std::string_view site_id) const {
  const Site* s = find_site(site_id);
  return s ? s->country : std::string();
}

ExpectedEnrollment Study::expected_enrollment(std::string_view site_id) const {
  ExpectedEnrollment out;
  const Site* site = find_site(site_id);
  if (!site) return out;
  out = site->expected;
  const Country* country = find_by(countries, &Country::code, site->country);
  if (country && !out.rate_per_day) out.rate_per_day = country->expected.rate_per_day;
  if (country && !out.activation_date) out.activation_date = country->expected.activation_date;
  if (!out.rate_per_day) out.rate_per_day = enrollment.expected_rate_per_day;
  return out;
}

StudyLoad load_study(std::string_view json_text) {
  Problems problems;
  std::optional<json> doc = parse(json_text, problems);
  if (!doc) return StudyLoad{std::nullopt, problems.take()};
  StudyReader reader(problems);
  Study study = reader.read(*doc);
  if (!problems.empty()) return StudyLoad{std::nullopt, problems.take()};
  return StudyLoad{std::move(study), {}};
}

StudyLoad load_study_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return StudyLoad{std::nullopt, {file.string() + ": no such file; check the path"}};
  if (std::filesystem::is_directory(file, ec))
    return StudyLoad{std::nullopt, {file.string() + ": is a directory; name the study's JSON file"}};
  std::ifstream in(file, std::ios::binary);
  if (!in) return StudyLoad{std::nullopt, {file.string() + ": cannot be opened for reading; check its permissions"}};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return StudyLoad{std::nullopt, {file.string() + ": read failed; check the disk and retry"}};
  return load_study(text.str());
}

std::string to_string(Method m) { return name_of(kMethods, m); }
std::string to_string(Blinding b) { return name_of(kBlindings, b); }
std::string to_string(Permission p) { return name_of(kPermissions, p); }
std::string to_string(ImbalanceMeasure m) { return name_of(kMeasures, m); }
std::string to_string(NodeKind k) { return name_of(kNodeKinds, k); }
std::string to_string(CapScope s) { return name_of(kCapScopes, s); }
std::string to_string(ResupplyStrategy s) { return name_of(kResupplyStrategies, s); }

// ---- The supply simulation scenario (shared/supply_simulator.h) --------------
// Read with the study's field reader, so that its problems read the same way.

namespace {

constexpr Named<SupplyAllocation> kAllocations[] = {
    {SupplyAllocation::node_slices, "node_slices"}, {SupplyAllocation::central_list, "central_list"}};
constexpr Named<SiteRule> kSiteRules[] = {{SiteRule::assigned_arm, "assigned_arm"}, {SiteRule::all_arms, "all_arms"}};
constexpr Named<Arrivals> kArrivals[] = {{Arrivals::poisson, "poisson"}, {Arrivals::regular, "regular"}};

class ScenarioReader {
 public:
  ScenarioReader(Problems& problems, const Study& study) : p_(problems), study_(study) {}

  SupplyScenario read(const json& doc) {
    Fields top(p_, doc, "",
               {"participants", "sites", "arrivals", "allocation", "review_every_days", "lead_time_days", "strategy",
                "site_rule", "dropout", "lots", "costs"});
    if (!top.is_object()) return s_;
    s_.participants = top.integer("participants", Need::required, 1, "a positive number of participants").value_or(0);
    read_sites(top);
    s_.arrivals = top.choice("arrivals", Need::optional, kArrivals).value_or(Arrivals::poisson);
    s_.allocation = top.choice("allocation", Need::required, kAllocations).value_or(SupplyAllocation::node_slices);
    s_.review_every_days = top.integer("review_every_days", Need::required, 1, "a number of days, 1 to 365", 365).value_or(7);
    s_.lead_time_days = top.integer("lead_time_days", Need::required, 0, "a number of days, 0 to 365", 365).value_or(3);
    read_strategies(top);
    s_.site_rule = top.choice("site_rule", Need::required, kSiteRules).value_or(SiteRule::assigned_arm);
    if (const json* d = top.find("dropout", Need::optional, "")) {
      Fields f(p_, *d, "dropout", {"fraction", "by_day"});
      s_.dropout_fraction = f.number("fraction", Need::required, "a fraction from 0 up to (not including) 1",
                                     [](double x) { return x >= 0 && x < 1; }).value_or(0);
      s_.dropout_by_day = f.integer("by_day", Need::required, 1, "a positive number of days").value_or(1);
    }
    if (const json* lots = top.array("lots", Need::optional, "lots, one per kit type", 0)) {
      for (std::size_t i = 0; i < lots->size(); ++i) {
        Fields f(p_, (*lots)[i], item("lots", i), {"kit_type", "expiry_day"});
        std::string kit = kit_type(f, "kit_type");
        auto day = f.integer("expiry_day", Need::required, 0, "a day number from 0 (the first site's activation)");
        if (kit.empty() || !day) continue;
        if (!s_.expiry_day.emplace(kit, *day).second)
          p_.add(f.at("kit_type"), "a second lot of kit type " + quote(kit) + "; the simulation takes one lot per kit type");
      }
    }
    if (const json* c = top.find("costs", Need::optional, "")) {
      Fields f(p_, *c, "costs", {"kit", "shipment"});
      auto non_negative = [](double x) { return x >= 0; };
      s_.cost_per_kit = f.number("kit", Need::optional, "a non-negative number", non_negative).value_or(0);
      s_.cost_per_shipment = f.number("shipment", Need::optional, "a non-negative number", non_negative).value_or(0);
    }
    return s_;
  }

 private:
  std::string kit_type(const Fields& f, std::string_view key) {
    std::string id = f.id(key);
    if (!id.empty() && !study_.find_kit_type(id)) {
      p_.add(f.at(key), unknown("kit type", id, ids_of(study_.kit_types, &KitType::id)));
      return {};
    }
    return id;
  }

  void read_sites(const Fields& top) {
    const json* sites = top.find("sites", Need::required, "an object with count, activation_days and rate_per_day, "
                                                          "or a list of sites with their rates");
    if (!sites) return;
    if (sites->is_array()) {
      if (sites->empty()) p_.add("sites", "must list at least 1 site (got 0)");
      for (std::size_t i = 0; i < sites->size(); ++i) {
        Fields f(p_, (*sites)[i], item("sites", i), {"activation_day", "rate_per_day"});
        ScenarioSite site;
        site.activation_day = f.integer("activation_day", Need::optional, 0, "a day number from 0").value_or(0);
        site.rate_per_day = f.number("rate_per_day", Need::required, "a non-negative number of participants per day",
                                     [](double x) { return x >= 0; }).value_or(0);
        s_.sites.push_back(site);
      }
      return;
    }
    Fields f(p_, *sites, "sites", {"count", "activation_days", "rate_per_day"});
    if (!f.is_object()) return;
    s_.site_count = f.integer("count", Need::required, 1, "a positive number of sites").value_or(0);
    if (const json* days = f.array("activation_days", Need::required, "activation days", 1))
      for (std::size_t i = 0; i < days->size(); ++i) {
        const json& d = (*days)[i];
        if (!d.is_number_integer() || d.get<std::int64_t>() < 0 || d.get<std::int64_t>() > kMaxScenarioDay) {
          p_.add(item(f.at("activation_days"), i), "must be a day number from 0 to " + std::to_string(kMaxScenarioDay) +
                                                       " (got " + got(d) + ")");
          continue;
        }
        s_.activation_days.push_back(static_cast<int>(d.get<std::int64_t>()));
      }
    if (const json* rate = f.find("rate_per_day", Need::required, "{\"gamma\": {\"shape\": S, \"rate\": R}}")) {
      Fields r(p_, *rate, f.at("rate_per_day"), {"gamma"});
      if (const json* g = r.find("gamma", Need::required, "{\"shape\": S, \"rate\": R}")) {
        Fields gf(p_, *g, r.at("gamma"), {"shape", "rate"});
        auto positive = [](double x) { return x > 0 && std::isfinite(x); };
        s_.gamma_shape = gf.number("shape", Need::required, "a positive number", positive).value_or(1);
        s_.gamma_rate = gf.number("rate", Need::required, "a positive number (per day: mean rate = shape / rate)",
                                  positive).value_or(1);
      }
    }
  }

  void read_strategies(const Fields& top) {
    const json* doc = top.find("strategy", Need::optional, "");
    if (!doc) {
      s_.strategies.push_back({"the study's: " + describe_strategy(study_.supply.resupply), study_.supply.resupply});
      return;
    }
    if (!doc->is_array()) {
      read_strategy(*doc, "strategy");
      return;
    }
    if (doc->empty()) p_.add("strategy", "must list at least 1 strategy (got 0)");
    for (std::size_t i = 0; i < doc->size(); ++i) read_strategy((*doc)[i], item("strategy", i));
  }

  void read_strategy(const json& doc, const std::string& path) {
    Fields f(p_, doc, path,
             {"kind", "name", "initial", "trigger", "up_to", "trigger_window_days", "resupply_window_days",
              "min_buffer", "max_buffer", "shipment_minimum"});
    if (!f.is_object()) return;
    SupplyStrategy s;
    auto kind = f.choice("kind", Need::required, kResupplyStrategies);
    ResupplyParameters& r = s.parameters;
    r.strategy = kind.value_or(ResupplyStrategy::min_max);
    r.shipment_minimum =
        f.integer("shipment_minimum", Need::optional, 0, "a non-negative number of kits", 1000).value_or(1);
    if (kind == ResupplyStrategy::min_max) {
      for (const char* k : {"trigger_window_days", "resupply_window_days", "min_buffer", "max_buffer"})
        if (f.has(k)) p_.add(f.at(k), "belongs to the predictive kind; remove it or use \"kind\": \"predictive\"");
      auto trigger = levels(f, "trigger", Need::required, 0);
      auto up_to = levels(f, "up_to", Need::required, 1);
      auto initial = levels(f, "initial", Need::optional, 0);
      for (const auto& k : study_.kit_types) {
        KitLevels l{k.id, 0, trigger.count(k.id) ? trigger[k.id] : 0, up_to.count(k.id) ? up_to[k.id] : 0};
        l.initial = initial.count(k.id) ? initial[k.id] : l.up_to;
        if (trigger.count(k.id) && up_to.count(k.id) && l.trigger >= l.up_to)
          p_.add(f.at("trigger"), "must be below up_to for kit type " + quote(k.id) + " (got " +
                                      std::to_string(l.trigger) + ", up_to " + std::to_string(l.up_to) +
                                      "); a review orders at the trigger, up to up_to");
        r.levels.push_back(l);
      }
    } else if (kind == ResupplyStrategy::predictive) {
      for (const char* k : {"initial", "trigger", "up_to"})
        if (f.has(k)) p_.add(f.at(k), "belongs to the min_max kind; remove it or use \"kind\": \"min_max\"");
      r.predictive = read_predictive(p_, f);
      for (const auto& k : study_.kit_types) r.levels.push_back({k.id, 0, 0, 0});
    }
    s.name = f.has("name") ? f.text("name") : describe_strategy(r);
    s_.strategies.push_back(std::move(s));
  }

  // A level per kit type: one integer for every kit type, or {"KA": 2, "KB": 3} naming each.
  std::map<std::string, int> levels(const Fields& f, std::string_view key, Need need, int min) {
    std::map<std::string, int> out;
    const std::string what = "an integer of at least " + std::to_string(min) + ", or one per kit type";
    const json* v = f.find(key, need, what);
    if (!v) return out;
    auto valid = [&](const json& x) { return x.is_number_integer() && x.get<std::int64_t>() >= min && x.get<std::int64_t>() <= 100000; };
    if (!v->is_object()) {
      if (!valid(*v)) {
        f.bad(key, what, *v);
        return out;
      }
      for (const auto& k : study_.kit_types) out[k.id] = static_cast<int>(v->get<std::int64_t>());
      return out;
    }
    for (const auto& [id, x] : v->items()) {
      std::string path = child(f.at(key), key_in_path(id));
      if (!study_.find_kit_type(id)) {
        p_.add(path, unknown("kit type", id, ids_of(study_.kit_types, &KitType::id)));
        continue;
      }
      if (!valid(x)) {
        p_.add(path, "must be an integer of at least " + std::to_string(min) + " (got " + got(x) + ")");
        continue;
      }
      out[id] = static_cast<int>(x.get<std::int64_t>());
    }
    for (const auto& k : study_.kit_types)
      if (!out.count(k.id) && !v->contains(k.id))
        p_.add(f.at(key), "no level for kit type " + quote(k.id) + "; add it, or give one number for every kit type");
    return out;
  }

  static constexpr int kMaxScenarioDay = 36500;
  Problems& p_;
  const Study& study_;
  SupplyScenario s_;
};

}  // namespace

ScenarioLoad load_supply_scenario(std::string_view json_text, const Study& study) {
  Problems problems;
  std::optional<json> doc = parse(json_text, problems);
  if (!doc) return ScenarioLoad{std::nullopt, problems.take()};
  ScenarioReader reader(problems, study);
  SupplyScenario scenario = reader.read(*doc);
  if (!problems.empty()) return ScenarioLoad{std::nullopt, problems.take()};
  return ScenarioLoad{std::move(scenario), {}};
}

ScenarioLoad load_supply_scenario_file(const std::string& file, const Study& study) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return ScenarioLoad{std::nullopt, {file + ": cannot be opened for reading; check the path"}};
  std::ostringstream text;
  text << in.rdbuf();
  return load_supply_scenario(text.str(), study);
}

}  // namespace irt::shared
