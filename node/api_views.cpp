#include "node/api_views.h"

namespace irt::node {

using nlohmann::json;

namespace {

std::string kit_label(const KitRecord& k, const DomainStore& store) {
  const auto* kt = store.study() ? store.study()->find_kit_type(k.kit_type) : nullptr;
  return kt ? kt->blinded_label : "Study kit";
}

json arm_json(const std::string& arm, const DomainStore& store) {
  const auto* a = store.study() ? store.study()->find_arm(arm) : nullptr;
  return {{"id", arm}, {"name", a ? a->name : arm}};
}

}  // namespace

json kit_view(const KitRecord& k, const DomainStore& store, bool blinded) {
  json j = {{"kit", k.number},       {"status", k.status}, {"expiry", k.expiry},
            {"shipment", k.shipment}, {"label", kit_label(k, store)}};
  if (const auto* p = store.participant_by_id(k.participant)) j["participant"] = p->number;
  if (!k.visit.empty()) j["visit"] = k.visit;
  if (k.units_returned >= 0) j["units_returned"] = k.units_returned;
  if (!k.note.empty()) j["note"] = k.note;
  if (!k.relabel.empty()) j["relabel_expiry"] = k.relabel;  // the lot's new expiry, to print on the kit
  if (!k.location.empty()) j["location"] = k.location;
  if (!blinded) {
    const auto* kt = store.study() ? store.study()->find_kit_type(k.kit_type) : nullptr;
    j["kit_type"] = k.kit_type;
    j["kit_type_name"] = kt ? kt->name : k.kit_type;
    if (kt) j["arm"] = arm_json(kt->arm, store);
    j["lot"] = k.lot;
  }
  return j;
}

json participant_summary(const ParticipantRecord& p, const DomainStore& store, bool blinded) {
  json j = {{"participant", p.number},
            {"status", p.status},
            {"randomization_number", p.randomization_number},
            {"randomized_on", p.randomized_on},
            {"screened_on", p.screened_on},
            {"unblinded", p.unblinded}};
  if (p.unblinded) {
    j["unblinded_on"] = p.unblinded_on;
    j["unblinded_by"] = p.unblinded_by;
  }
  // A participant that moved away is served at its new site: this node
  // answers where it went, and no arm, whoever asks.
  const bool moved = p.status == ParticipantStatus::transferred;
  if (moved) j["transferred_to"] = p.transfer_to;
  else if (!p.transfer_to.empty()) j["transfer_requested_to"] = p.transfer_to;
  if (!p.transfer_decision.empty()) j["transfer_decision"] = p.transfer_decision;
  if (!p.transferred_from.empty()) j["transferred_from"] = p.transferred_from;
  if (!blinded && !moved && !p.arm.empty()) j["arm"] = arm_json(p.arm, store);
  return j;
}

json participant_view(const ParticipantRecord& p, const DomainStore& store, bool blinded, shared::Days today,
                      bool code_break_reader) {
  json j = participant_summary(p, store, blinded);
  if (blinded && code_break_reader && p.unblinded && !p.arm.empty() && p.status != ParticipantStatus::transferred)
    j["arm"] = arm_json(p.arm, store);
  json factors = json::object();
  for (const auto& [k, v] : p.factors)
    if (!shared::is_derived_factor(k)) factors[k] = v;
  j["factors"] = factors;
  j["eligibility"] = p.eligibility;
  if (!p.cohort.empty()) j["cohort"] = p.cohort;
  j["screened_by"] = p.screened_by;
  if (!p.screen_failure_reason.empty()) j["screen_failure_reason"] = p.screen_failure_reason;
  if (!p.withdrawal_reason.empty()) j["withdrawal_reason"] = p.withdrawal_reason;
  if (!p.withdrawn_on.empty()) {
    j["withdrawn_on"] = p.withdrawn_on;
    j["withdrawn_by"] = p.withdrawn_by;
  }
  if (!p.transfer_reason.empty()) j["transfer_reason"] = p.transfer_reason;
  json visits = json::array();
  for (const auto& v : p.visits) {
    json kits = json::array();
    for (const auto& k : v.kits) {
      const auto* kit = store.find_kit(k);
      kits.push_back(kit ? kit_view(*kit, store, blinded) : json{{"kit", k}});
    }
    json entry = {{"visit", v.visit}, {"date", v.date}, {"kits", kits}, {"by", v.by}};
    if (!v.deviation.empty()) entry["deviation"] = v.deviation;
    if (!v.missed_reason.empty()) entry["missed_reason"] = v.missed_reason;
    if (!v.order_reason.empty()) entry["order_reason"] = v.order_reason;
    visits.push_back(entry);
  }
  j["visits"] = visits;
  json replacements = json::array();
  for (const auto& r : p.replacements)
    replacements.push_back({{"visit", r.visit}, {"old_kit", r.old_kit}, {"new_kit", r.new_kit}, {"reason", r.reason},
                            {"date", r.date}, {"by", r.by}});
  j["replacements"] = replacements;
  j["schedule"] = visit_schedule(p, store, today);
  return j;
}

json visit_schedule(const ParticipantRecord& p, const DomainStore& store, shared::Days today) {
  json schedule = json::array();
  auto randomized = shared::parse_date(p.randomized_on);
  if (!randomized || !store.study()) return schedule;
  for (const auto& v : store.study()->visits) {
    if (v.day < 0) continue;
    auto from = *randomized + v.day - v.window_before, to = *randomized + v.day + v.window_after;
    const auto* rec = p.find_visit(v.id);
    std::string state = rec ? (rec->missed_reason.empty() ? "done" : "missed")
                        : p.status != ParticipantStatus::randomized ? "not_planned"
                        : today > to                                ? "overdue"
                        : today >= from                             ? "due"
                                                                    : "upcoming";
    json entry = {{"visit", v.id},
                  {"name", v.name},
                  {"target", shared::format_date(*randomized + v.day)},
                  {"window_from", shared::format_date(from)},
                  {"window_to", shared::format_date(to)},
                  {"in_window_today", today >= from && today <= to},
                  {"dispenses", !v.dispense.empty()},
                  {"randomization", v.randomization},
                  {"done", rec != nullptr},
                  {"state", state}};
    if (rec) entry["date"] = rec->date;
    if (rec && !rec->missed_reason.empty()) entry["missed_reason"] = rec->missed_reason;
    schedule.push_back(entry);
  }
  return schedule;
}

json study_view(const DomainStore& store, bool blinded) {
  const auto* s = store.study();
  if (!s) return json::object();
  json factors = json::array();
  std::vector<std::string> needed;
  for (const auto& f : s->randomization.strata) needed.push_back(f);
  for (const auto& m : s->randomization.minimization_factors) needed.push_back(m.factor);
  for (const auto& f : s->factors) {
    if (shared::is_derived_factor(f.id)) continue;
    bool required = std::find(needed.begin(), needed.end(), f.id) != needed.end();
    factors.push_back({{"id", f.id}, {"name", f.name}, {"levels", f.levels}, {"required", required}});
  }
  json visits = json::array();
  for (const auto& v : s->visits)
    visits.push_back({{"id", v.id},
                      {"name", v.name},
                      {"day", v.day},
                      {"window_before", v.window_before},
                      {"window_after", v.window_after},
                      {"randomization", v.randomization},
                      {"dispenses", !v.dispense.empty()}});
  json cohorts = json::array();
  for (const auto& c : s->cohorts) cohorts.push_back({{"id", c.id}, {"name", c.name}});
  // Where kits may be sent back: the depots serving the site's country first.
  const auto* site = s->find_site(store.site_id());
  json depots = json::array();
  for (bool serving : {true, false})
    for (const auto& d : s->depots)
      if ((site && std::find(d.countries.begin(), d.countries.end(), site->country) != d.countries.end()) == serving)
        depots.push_back({{"id", d.id}, {"name", d.name}, {"serves_site", serving}});
  json j = {{"id", s->id},          {"name", s->name},       {"version", s->version},
            {"site", store.site_id()}, {"factors", factors},  {"eligibility", s->eligibility},
            {"visits", visits},     {"blinding", shared::to_string(s->blinding)}, {"cohorts", cohorts},
            {"depots", depots}};
  if (!blinded) {
    json arms = json::array();
    for (const auto& a : s->arms) arms.push_back({{"id", a.id}, {"name", a.name}, {"closed", a.closed}});
    json kit_types = json::array();
    for (const auto& k : s->kit_types)
      kit_types.push_back({{"id", k.id}, {"name", k.name}, {"arm", k.arm}, {"units_per_kit", k.units_per_kit}});
    j["arms"] = arms;
    j["kit_types"] = kit_types;
  }
  return j;
}

json shipment_view(const ShipmentRecord& s, const DomainStore& store, bool blinded) {
  json kits = json::array();
  std::map<std::string, int> counts;
  for (const auto& [n, k] : store.kits()) {
    if (k.shipment != s.id) continue;
    ++counts[shared::to_string(k.status)];
    kits.push_back(kit_view(k, store, blinded));
  }
  json j = {{"shipment", s.id},
            {"kind", s.kind},
            {"shipped_on", s.shipped_on},
            {"received", counts.count(shared::to_string(KitStatus::expected)) == 0},
            {"kits_by_status", counts},
            {"kits", kits}};
  // A return shipment this node sent: its kits still in transit are listed,
  // and what the depot reported of the others (kits.at_depot) is counted.
  if (s.kind == kReturnShipmentKind) {
    j["depot"] = s.depot;
    j["courier"] = s.courier;
    j["tracking"] = s.tracking;
    j["at_depot"] = s.at_depot;
  }
  return j;
}

}  // namespace irt::node
