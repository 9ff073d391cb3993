// The study configuration: a versioned JSON document (docs/study-config.md)
// turned into typed, validated C++ values. The hub loads it at init and on each
// amendment; nodes receive the same bytes in a configuration directive, so hub
// and nodes always interpret one version identically.
//
// Every reference inside a Study has been checked by load_study: an arm id in a
// kit type exists, a visit's kit types exist, the block sizes honour the ratio,
// and so on. Code that receives a Study may rely on that.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/civil_date.h"
#include "shared/resupply.h"

namespace irt::shared {

enum class Blinding { open, single, double_blind };

// Where and from when a closed arm takes no one (docs/study-config.md, "arms"):
// `"closed": true` is every stratum at once; `{"from": "YYYY-MM-DD"}` from
// that date by the node's date; `{"strata": [{"diabetes": "yes"}, ...]}` only
// for a participant matching one of the entries (every factor an entry names
// at that level); both combine.
struct ArmClosure {
  std::optional<Days> from;
  std::vector<std::map<std::string, std::string>> strata;

  bool everywhere() const { return !from && strata.empty(); }
  bool matches(const std::map<std::string, std::string>& factors) const;
  // The arm takes no participant with these factor levels on this day.
  bool applies(const std::map<std::string, std::string>& factors, Days day) const {
    return (!from || day >= *from) && matches(factors);
  }
  // Closes at least wherever and whenever `other` does (a closure is never loosened).
  bool covers(const ArmClosure& other) const;
  // "true" or the document's object, for diffs and messages.
  std::string text() const;
  bool operator==(const ArmClosure&) const = default;
};

struct Arm {
  std::string id;             // "A"; stable, used in lists and events (sealed on the wire)
  std::string name;           // "Drug X 10 mg": unblinded roles only
  std::string blinded_label;  // what blinded roles may see instead of the arm ("Treatment")
  int ratio = 1;              // allocation ratio weight (2:1:1 -> 2, 1, 1)
  // Closed by an amendment (a design change, docs/randomization.md): no new
  // participant is allocated to it where and when `closure` says; those on it
  // continue. Unblinded, like the arm.
  bool closed = false;
  ArmClosure closure;
};

// A stratification or minimization factor with its levels. The reserved
// factor ids "site" and "country" take their levels from the study's sites and
// countries, and are filled in by the system, never entered by a user:
// load_study appends them, in that order, after the document's own factors
// (levels in list order), so Study::factors always holds both.
inline constexpr std::string_view kSiteFactor = "site";
inline constexpr std::string_view kCountryFactor = "country";
inline bool is_derived_factor(std::string_view id) { return id == kSiteFactor || id == kCountryFactor; }

struct Factor {
  std::string id;
  std::string name;
  std::vector<std::string> levels;
};

enum class Method {
  simple,                   // complete randomization with the ratio's probabilities
  permuted_blocks,          // blocks, optionally stratified (see Randomization::strata)
  minimization,             // Pocock-Simon
  biased_coin,              // Efron's biased coin (two arms)
  max_tolerated_imbalance,  // big stick design (two arms)
};

enum class ImbalanceMeasure { range, variance, standard_deviation };

struct MinimizationFactor {
  std::string factor;  // a Factor id (or "site" / "country")
  double weight = 1.0;
};

struct Randomization {
  Method method = Method::permuted_blocks;
  std::vector<int> block_sizes;     // one size = fixed; several = drawn at random per block
  std::vector<std::string> strata;  // factor ids that form strata (may include "site", "country")
  // Minimization.
  std::vector<MinimizationFactor> minimization_factors;
  ImbalanceMeasure measure = ImbalanceMeasure::range;
  double preferred_probability = 0.8;  // p; 1 = deterministic
  int initial_random = 0;              // the first N participants are allocated at random
  // Efron's biased coin and big stick.
  double coin_probability = 2.0 / 3.0;
  int max_tolerated_imbalance = 3;
};

enum class CapScope { stratum, arm, cohort };

struct Cap {
  CapScope scope = CapScope::stratum;
  // stratum: factor id -> level ("site" -> "101", "age" -> "old"); arm: arm id; cohort: cohort id.
  std::map<std::string, std::string> stratum;
  std::string arm;
  std::string cohort;
  int limit = 0;
};

// A cohort is open from the start, or opens and closes by a signed decision
// of the study team (hub/cohort_decisions.h): a dose-escalation study opens
// the next cohort after a safety review. `after`: a cohort that must have
// been closed by a decision before this one may open.
struct Cohort {
  std::string id;
  std::string name;
  bool opens_by_decision = false;  // "opens": "by_decision" (default "at_start")
  std::string after;               // a cohort listed before this one, which also opens by decision; "" for none
};

// The enrollment a site is expected to have, for the forecast (shared/forecast.h):
// its randomizations per day and the day it is planned to start. A site's own
// values win over its country's, the country's over the study's "enrollment".
struct ExpectedEnrollment {
  std::optional<double> rate_per_day;  // "expected_rate_per_day", > 0
  std::optional<Days> activation_date;  // "activation_date", "YYYY-MM-DD"
};

struct Country {
  std::string code;  // ISO 3166-1 alpha-2
  std::string name;
  ExpectedEnrollment expected;  // for each of its sites
};

enum class NodeKind { site, nurse };

struct Site {
  std::string id;        // "101": also the prefix of participant numbers
  std::string name;
  std::string country;   // Country::code
  bool active = true;
  std::vector<NodeKind> node_kinds{NodeKind::site};
  ExpectedEnrollment expected;
};

struct Depot {
  std::string id;
  std::string name;
  std::vector<std::string> countries;  // Country::code values it serves
};

struct Storage {
  double min_celsius = 2;
  double max_celsius = 8;
  std::string description;  // "refrigerated, protect from light"
};

// Days before a kit's expiry date (shared/civil_date.h: expiry is the last
// day of use) inside which the kit is never shipped (do_not_ship_days), no
// longer counted as usable stock (do_not_count_days) and never dispensed
// (do_not_dispense_days): a kit with expiry E is inside a window of N days
// on day D when E - D <= N. load_study checks DNS >= DNC >= DND.
struct ExpiryWindows {
  int do_not_ship_days = 0;
  int do_not_count_days = 0;
  int do_not_dispense_days = 0;
  bool operator==(const ExpiryWindows&) const = default;
};

struct KitType {
  std::string id;
  std::string name;           // unblinded name ("Drug X 10 mg, 28 tablets")
  std::string blinded_label;  // shown to blinded roles ("Study drug, 28 tablets")
  std::string arm;            // Arm::id this kit type treats
  int units_per_kit = 1;
  Storage storage;
  // kit_types[i].expiry_windows; absent: all three are supply.do_not_dispense_days.
  ExpiryWindows expiry;
  std::map<std::string, ExpiryWindows> country_expiry;  // Country::code -> its exception
};

struct VisitDispense {
  std::string arm;       // Arm::id
  std::string kit_type;  // KitType::id
  int count = 1;
};

struct Visit {
  std::string id;
  std::string name;
  int day = 0;            // offset from randomization (day 0)
  int window_before = 0;  // days allowed before `day`
  int window_after = 0;   // days allowed after `day`
  bool randomization = false;  // the visit at which participants are randomized
  std::vector<VisitDispense> dispense;
};

struct LeadTime {
  std::string depot;    // Depot::id
  std::string country;  // Country::code
  int days = 1;
};

struct InitialShipment {
  std::string kit_type;
  int count = 0;
};

struct Supply {
  std::vector<LeadTime> lead_times;
  // The default of every kit type's expiry windows (ExpiryWindows); what a
  // kit type or country sets in kit_types[i].expiry_windows wins.
  int do_not_dispense_days = 0;
  std::vector<InitialShipment> initial_shipment;  // per site
  int trigger_level = 0;    // resupply when a kit type's stock at a site falls to this
  int max_level = 0;        // resupply up to this
  int predictive_horizon_days = 0;
  int offline_days = 14;    // longest expected offline period, for sizing node slices
  // The resupply rule (docs/study-config.md, "supply.resupply"): from the
  // document's "resupply" when it has one, else min/max at trigger_level and
  // max_level for every kit type. Every kit type has levels; `initial` is the
  // kit type's initial_shipment count (0 when it has none).
  ResupplyParameters resupply;
};

enum class Permission {
  screen, randomize, dispense, unblind, view_unblinded, receive_shipment, report_excursion,
  return_kits, destroy_kits, withdraw, view_participants, view_inventory, view_audit,
  manage_users, manage_nodes, manage_study, manage_supply, release_quarantine, export_data,
  // The depot's steps at the hub (docs/supply.md, "Depot users"): a role holding it is a depot role,
  // whose users are bound to depots instead of sites.
  manage_depot,
};

struct Role {
  std::string id;       // "investigator", "pharmacist", ...
  std::string name;
  bool blinded = true;  // a blinded role never receives an arm or anything revealing one
  std::vector<Permission> permissions;
  bool can(Permission p) const;
};

// "enrollment" (docs/study-config.md): the participants the study will
// randomize (0: not stated, no completion date is forecast), the expected rate
// per site when neither the site nor its country gives one (nullopt: the
// hub's default, kNodeForecastPerDay), and how many days of observation the
// expected rate weighs against a site's actual enrollment.
struct Enrollment {
  int target_participants = 0;
  std::optional<double> expected_rate_per_day;
  double prior_weight_days = 28;
};

struct Study {
  std::string id;
  std::string name;
  int version = 1;
  Blinding blinding = Blinding::double_blind;
  std::vector<Arm> arms;
  std::vector<Factor> factors;
  std::vector<Cohort> cohorts;
  Randomization randomization;
  std::vector<Cap> caps;
  std::vector<Country> countries;
  std::vector<Site> sites;
  std::vector<Depot> depots;
  std::vector<KitType> kit_types;
  std::vector<Visit> visits;
  Supply supply;
  std::vector<Role> roles;
  std::vector<std::string> eligibility;  // questions; each must be answered "yes" to randomize
  // "site_activation": "at_first_enrollment" (default; the first node's
  // enrollment activates its site) or "manual" (irt-hub site activate).
  bool manual_site_activation = false;
  int session_idle_minutes = 15;          // a hub API session ends after this long unused (1 to 1440)
  Enrollment enrollment;

  const Arm* find_arm(std::string_view id) const;
  // Closed by an amendment (Arm::closed), somewhere or from some date; false
  // for an arm the study does not define.
  bool arm_closed(std::string_view id) const {
    const auto* a = find_arm(id);
    return a && a->closed;
  }
  // The one rule: the arm takes no participant with these factor levels on
  // this day (the node's date).
  bool arm_closed_for(std::string_view id, const std::map<std::string, std::string>& factors, Days day) const {
    const auto* a = find_arm(id);
    return a && a->closed && a->closure.applies(factors, day);
  }
  // Closed for every participant from `day` on: it needs no more places.
  bool arm_closed_everywhere(std::string_view id, Days day) const {
    const auto* a = find_arm(id);
    return a && a->closed && a->closure.strata.empty() && (!a->closure.from || day >= *a->closure.from);
  }
  const Cohort* find_cohort(std::string_view id) const;
  const Site* find_site(std::string_view id) const;
  const KitType* find_kit_type(std::string_view id) const;
  const Role* find_role(std::string_view id) const;
  const Visit* find_visit(std::string_view id) const;
  const Factor* find_factor(std::string_view id) const;  // includes the derived "site" / "country"
  // The windows for kits of `kit_type` in `country` (a country exception
  // wins over the kit type's own); the study default for an unknown kit type.
  ExpiryWindows expiry_windows(std::string_view kit_type, std::string_view country) const;
  // The country of a site, empty when the site is unknown.
  std::string country_of(std::string_view site_id) const;
  // A site's expected enrollment: each value from the site, else its
  // country, else (the rate) the study's "enrollment".
  ExpectedEnrollment expected_enrollment(std::string_view site_id) const;
};

// The outcome of loading a document: a Study, or every problem found, each as
// "path: what is wrong (got X); what to do", e.g.
// "arms[2].ratio: must be a positive integer (got 0)".
struct StudyLoad {
  std::optional<Study> study;
  std::vector<std::string> errors;
};

StudyLoad load_study(std::string_view json_text);
StudyLoad load_study_file(const std::filesystem::path& file);

std::string to_string(Method m);
std::string to_string(Blinding b);
std::string to_string(Permission p);
std::string to_string(ImbalanceMeasure m);
std::string to_string(NodeKind k);
std::string to_string(CapScope s);
std::string to_string(ResupplyStrategy s);

// The blinding decision, the one rule for node and hub: true when a user of
// `role` must not see an arm, a kit type that maps to one arm, or anything that
// reveals either; an unknown role (nullptr) reads blinded. In an open study
// nobody is blinded; otherwise only a role that is not blinded and holds
// view_unblinded reads the allocation (in a single-blind study, a role that
// dispenses too).
bool reads_blinded(const Study& study, const Role* role);

}  // namespace irt::shared
