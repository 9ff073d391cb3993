#include "hub/amendments.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/cohort_decisions.h"
#include "hub/directive_outbox.h"
#include "hub/kit_inventory.h"
#include "shared/block_list.h"
#include "shared/directive_payloads.h"
#include "shared/study_diff.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

using shared::Errc;
using shared::make_error;
using shared::Study;

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Arms participants were allocated to keep what they were allocated.
void check_arms(storage::Database& db, const Study& old, const Study& neu, bool in_use,
                std::vector<std::string>& out) {
  for (const auto& arm : old.arms) {
    const auto* now = neu.find_arm(arm.id);
    const bool allocated = arm_has_allocations(db, arm.id);
    if (!now) {
      if (allocated || in_use)
        out.push_back("arms[" + arm.id + "]: removed, but " +
                      (allocated ? std::string("participants are allocated to it")
                                 : std::string("the randomization in use allocates to it")) +
                      "; keep the arm (an arm cannot be withdrawn mid-study by an amendment)");
      continue;
    }
    if (allocated && now->name != arm.name)
      out.push_back("arms[" + arm.id + "].name: changed, but participants are allocated to it and received what it "
                                       "named; keep the name (a new treatment is a new arm, in a new study version "
                                       "before randomization starts)");
    if (arm.closed && !(now->closed && now->closure.covers(arm.closure)))
      out.push_back("arms[" + arm.id + "].closed: the arm was closed by an earlier amendment and cannot be reopened "
                                       "(randomizations are judged against the design they were made under), not "
                                       "even for some strata or dates; keep \"closed\": " + arm.closure.text() +
                                       " or close it wider");
  }
  // A list design meets a ratio change or an added arm with a new list
  // segment (amend_randomization); minimization takes a new ratio at each
  // node when it applies the version, and the hub replays each decision
  // under the version the event carries (hub/consumption.cpp); an added arm
  // starts a new minimization segment (minimization_segment_start_ms in
  // hub/design_changes.h): each node gets a stream over every arm at its
  // next sync, and minimizes only once it holds one.
}

// Where a factor's levels are written: "sites" and "countries" for the
// derived factors, else the factor's own list.
std::string levels_path(const std::string& factor) {
  if (factor == shared::kSiteFactor) return "sites";
  if (factor == shared::kCountryFactor) return "countries";
  return "factors[" + factor + "].levels";
}

// The levels of each factor, stratification or minimization: an index into
// them is recorded in slots, grants and baselines, so they may only grow at
// the end (and, for strata, only in the first factor, so that no stratum is
// renumbered).
void check_randomization(const Study& old, const Study& neu, std::vector<std::string>& out) {
  const auto& a = old.randomization;
  const auto& b = neu.randomization;
  const std::string keep = "; keep it as in version " + std::to_string(old.version) +
                           " (the randomization is in use: slots granted or participants allocated)";
  if (a.method != b.method) {
    out.push_back("randomization.method: changed from " + shared::to_string(a.method) + " to " +
                  shared::to_string(b.method) + keep);
    return;
  }
  // Block sizes may change with the ratio: the list continues with a segment
  // of the new sizes (amend_randomization).
  if (a.strata != b.strata) {
    out.push_back("randomization.strata: changed from " + shared::join(a.strata, ", ", "(none)") + " to " + shared::join(b.strata, ", ", "(none)") + keep);
  } else {
    for (std::size_t i = 0; i < a.strata.size(); ++i) {
      auto before = shared::factor_levels(old, a.strata[i]);
      auto after = shared::factor_levels(neu, a.strata[i]);
      if (!before || !after) continue;  // load_study checked them
      if (i == 0 ? is_prefix(*before, *after) : *before == *after) continue;
      out.push_back(levels_path(a.strata[i]) + ": the levels of stratification factor '" + a.strata[i] +
                    "' change in a way that renumbers the strata of the list in use; " +
                    (i == 0 ? std::string("only add levels after the existing ones")
                            : std::string("only the first stratification factor (") + a.strata[0] +
                                  ") may gain levels, at its end"));
    }
  }
  bool factors_same = a.minimization_factors.size() == b.minimization_factors.size();
  for (std::size_t i = 0; factors_same && i < a.minimization_factors.size(); ++i)
    factors_same = a.minimization_factors[i].factor == b.minimization_factors[i].factor &&
                   a.minimization_factors[i].weight == b.minimization_factors[i].weight;
  if (!factors_same) {
    out.push_back("randomization.minimization_factors: changed" + keep);
  } else {
    for (const auto& f : a.minimization_factors) {
      auto before = shared::factor_levels(old, f.factor);
      auto after = shared::factor_levels(neu, f.factor);
      if (before && after && !is_prefix(*before, *after))
        out.push_back(levels_path(f.factor) + ": the levels of minimization factor '" + f.factor +
                      "' change; only add levels after the existing ones");
    }
  }
  if (a.measure != b.measure || a.preferred_probability != b.preferred_probability ||
      a.initial_random != b.initial_random || a.coin_probability != b.coin_probability ||
      a.max_tolerated_imbalance != b.max_tolerated_imbalance)
    out.push_back("randomization: the method's settings (measure, probability, initial_random, "
                  "max_tolerated_imbalance) changed" + keep);
}

void check_kit_types(storage::Database& db, const Study& old, const Study& neu, std::vector<std::string>& out) {
  for (const auto& kt : old.kit_types) {
    if (kits_at_nodes(db, kt.id) == 0) continue;
    const auto* now = neu.find_kit_type(kt.id);
    if (!now)
      out.push_back("kit_types[" + kt.id + "]: removed, but kits of this type were shipped to sites; keep it "
                                           "(stop shipping it through the supply settings instead)");
    else if (now->arm != kt.arm)
      out.push_back("kit_types[" + kt.id + "].arm: changed, but kits of this type were shipped to sites for the "
                                           "arm it treated; keep the arm (a new treatment needs a new kit type)");
  }
}

void check_sites(HubState& hub, const Study& old, const Study& neu, std::vector<std::string>& out) {
  auto& db = hub.db();
  auto nodes = hub.ledger().nodes();
  auto held = [&](const std::string& site) {
    return std::any_of(nodes.begin(), nodes.end(), [&](const auto& n) { return n.site_id == site; }) ||
           site_has_participants(db, site);
  };
  std::vector<std::string> held_countries;
  for (const auto& site : old.sites) {
    if (!held(site.id)) continue;
    held_countries.push_back(site.country);
    const auto* now = neu.find_site(site.id);
    if (!now)
      out.push_back("sites[" + site.id + "]: removed, but it holds nodes or participants; keep it and set "
                                         "\"active\": false to stop new enrollments there");
    else if (now->country != site.country)
      out.push_back("sites[" + site.id + "].country: changed from " + site.country + " to " + now->country +
                    ", but it holds nodes or participants; keep its country");
  }
  for (const auto& c : old.countries) {
    if (std::find(held_countries.begin(), held_countries.end(), c.code) == held_countries.end()) continue;
    if (std::none_of(neu.countries.begin(), neu.countries.end(), [&](const auto& n) { return n.code == c.code; }))
      out.push_back("countries[" + c.code + "]: removed, but its sites hold nodes or participants; keep it");
  }
}

// A cohort's "opens" changes only where no node can be caught out: a cohort
// open from the start becomes one opened by decision only while no node
// holds the study (an enrolled node may screen into it offline, and it would
// turn "not opened" under them) and nobody was screened into it; a cohort
// opened by decision becomes open from the start unless a decision closed it
// (closed for good). Added and removed cohorts are judged elsewhere.
void check_cohort_opening(HubState& hub, const Study& old, const Study& neu, std::vector<std::string>& out) {
  const auto nodes = hub.ledger().nodes();
  const bool nodes_hold = std::any_of(nodes.begin(), nodes.end(),
                                      [](const auto& n) { return n.status != sync::NodeStatus::revoked; });
  const auto standing = cohort_standing(hub);
  for (const auto& c : old.cohorts) {
    const auto* now = neu.find_cohort(c.id);
    if (!now || now->opens_by_decision == c.opens_by_decision) continue;
    const std::string path = "cohorts[" + c.id + "].opens: ";
    if (now->opens_by_decision) {
      auto at = std::find_if(standing.begin(), standing.end(), [&](const auto& s) { return s.id == c.id; });
      const bool screened = at != standing.end() && at->screened > 0;
      if (nodes_hold || screened)
        out.push_back(path + "changed to \"by_decision\", but the cohort is open from the start and " +
                      (screened ? std::string("participants are screened into it")
                                : std::string("enrolled nodes hold it open (they may screen into it offline)")) +
                      "; keep it open from the start (stop it with a cohort cap), or add a new cohort that opens "
                      "by decision");
    } else if (cohort_state(hub.db(), c) == CohortState::closed) {
      out.push_back(path + "changed from \"by_decision\", but a decision closed the cohort, and a closed cohort is "
                           "never reopened; keep \"opens\": \"by_decision\"");
    }
  }
}

// One grant.slots directive per node with only its voids, each void audited
// by stratum and count (never an arm).
std::size_t issue_segment_voids(HubState& hub, const Study& neu, const std::vector<shared::SlotVoid>& voids,
                                const std::string& actor, std::int64_t now_ms) {
  std::size_t slots = 0;
  for (std::size_t i = 0; i < voids.size();) {
    shared::GrantSlots g;
    g.study_version = neu.version;
    const std::string node = voids[i].node;
    for (; i < voids.size() && voids[i].node == node; ++i) g.voids.push_back(voids[i]);
    const auto seq = hub.outbox().issue(node, shared::kGrantSlotsDirective, nlohmann::json(g).dump(), now_ms);
    for (const auto& v : g.voids) {
      slots += v.slots.size();
      record_audit(hub.db(), {now_ms, actor, "grant.slots_voided", node,
                              "design change in study version " + std::to_string(neu.version), "granted",
                              std::to_string(v.slots.size()) + " unused slots of stratum " + std::to_string(v.stratum + 1) +
                                  " in blocks not yet started voided, never to be granted again; directive " +
                                  std::to_string(seq)});
    }
  }
  return slots;
}

}  // namespace

std::string study_config_payload(const HubState& hub) {
  nlohmann::json config;
  config["study_id"] = hub.study().id;
  config["version"] = hub.study().version;
  config["document"] = hub.study_document();
  return config.dump();
}

AmendmentPlan plan_amendment(HubState& hub, std::string_view document) {
  AmendmentPlan plan;
  auto load = shared::load_study(document);
  if (!load.study) {
    plan.errors = std::move(load.errors);
    return plan;
  }
  plan.study = std::move(load.study);
  const Study& old = hub.study();
  const Study& neu = *plan.study;
  plan.changes = shared::diff_studies(old, neu);
  if (neu.id != old.id) {
    plan.refusals.push_back("id: this is study " + neu.id + ", the hub runs study " + old.id +
                            "; an amendment keeps the study id");
    return plan;
  }
  if (neu.version != old.version + 1)
    plan.refusals.push_back("version: must be " + std::to_string(old.version + 1) + " (the hub's current version is " +
                            std::to_string(old.version) + ", got " + std::to_string(neu.version) +
                            "); number the amendment as the next version");
  auto& db = hub.db();
  const bool in_use = randomization_in_use(db);
  check_arms(db, old, neu, in_use, plan.refusals);
  if (in_use) check_randomization(old, neu, plan.refusals);
  check_kit_types(db, old, neu, plan.refusals);
  check_sites(hub, old, neu, plan.refusals);
  check_cohort_opening(hub, old, neu, plan.refusals);
  return plan;
}

shared::Result<Amended> amend(HubState& hub, std::string_view document, const std::string& reason,
                              const Signature& signer, std::int64_t now_ms) {
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return make_error(Errc::invalid_input, "give the reason for the amendment (--reason TEXT); the audit trail keeps it");
  if (auto st = hub.refresh_study(); !st) return st.error();
  auto who = check_signature(hub, signer, shared::Permission::manage_study);
  if (!who) return who.error();
  auto& db = hub.db();
  Amended out;
  {
    storage::Transaction tx(db);
    // Planned again inside the transaction: another amendment may have landed since.
    if (auto st = hub.refresh_study(); !st) return st.error();
    auto plan = plan_amendment(hub, document);
    if (!plan.study) {
      std::string all;
      for (const auto& e : plan.errors) all += (all.empty() ? "" : "\n") + e;
      return make_error(Errc::invalid_input, all);
    }
    if (!plan.refusals.empty()) {
      std::string all;
      for (const auto& e : plan.refusals) all += (all.empty() ? "" : "\n") + e;
      return make_error(Errc::conflict, all);
    }
    const Study& old = hub.study();
    const Study& neu = *plan.study;
    out.old_version = old.version;
    out.new_version = neu.version;
    store_study_version(db, {neu.version, neu.id, std::string(document), now_ms, who->name, reason});
    std::vector<shared::SlotVoid> voids;
    auto list = amend_randomization(db, hub.randomization(), old, neu, who->name, now_ms, voids);
    if (!list) return list.error();
    out.list = *list;
    auto kits = extend_kit_inventory(db, old, neu, who->name, now_ms);
    if (!kits) return kits.error();
    out.kits_made = *kits;
    // The values say which versions, not what changed: the diff names arms and
    // kit contents, and blinded roles read the trail.
    record_audit(db, {now_ms, who->name, "study.amended", neu.id, reason, "version " + std::to_string(old.version),
                      "version " + std::to_string(neu.version) + " (" + std::to_string(plan.changes.size()) +
                          (plan.changes.size() == 1 ? " change" : " changes") + ")",
                      "approved"});
    nlohmann::json config{{"study_id", neu.id}, {"version", neu.version}, {"document", std::string(document)}};
    const std::string payload = config.dump();
    for (const auto& node : hub.ledger().nodes()) {
      if (node.status == sync::NodeStatus::revoked) continue;
      auto seq = hub.outbox().issue(node.node_id, kStudyConfigDirective, payload, now_ms);
      record_audit(db, {now_ms, who->name, "directive.issued", node.node_id,
                        "study amended to version " + std::to_string(neu.version), "",
                        "study.config directive seq " + std::to_string(seq)});
      ++out.directives;
    }
    // After the study.config directive: the node learns the new version,
    // then which of its slots the segment voided.
    out.slots_voided = issue_segment_voids(hub, neu, voids, who->name, now_ms);
    tx.commit();
  }
  if (auto st = hub.refresh_study(); !st) return st.error();
  return out;
}

}  // namespace irt::hub

namespace irt::hub {

namespace {
// Whether a line of a diff, refusal or load error concerns arms or kit types.
bool amendment_line_reveals_arms(const std::string& line) {
  return line.rfind("arms", 0) == 0 || line.rfind("kit_types", 0) == 0 ||
         (line.rfind("visits", 0) == 0 && line.find("dispense") != std::string::npos);
}
}  // namespace

std::vector<std::string> amendment_lines_for(const std::vector<std::string>& lines, bool blinded) {
  std::vector<std::string> out;
  std::size_t withheld = 0;
  for (const auto& l : lines)
    for (std::size_t at = 0; at <= l.size();) {
      auto end = l.find('\n', at);
      if (end == std::string::npos) end = l.size();
      std::string line = l.substr(at, end - at);
      if (blinded && amendment_line_reveals_arms(line)) ++withheld;
      else out.push_back(std::move(line));
      at = end + 1;
    }
  if (withheld)
    out.push_back(std::to_string(withheld) + (withheld == 1 ? " line" : " lines") +
                  " about arms or kit types withheld from a blinded role");
  return out;
}

}  // namespace irt::hub
