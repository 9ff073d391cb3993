#include "shared/directive_payloads.h"

#include <cstdio>
#include <set>

#include "shared/civil_date.h"
#include "shared/identifier.h"
#include "shared/json_numbers.h"

namespace irt::shared {

namespace {

using nlohmann::json;

Error bad(const std::string& where, const std::string& what) {
  return make_error(Errc::invalid_input, where + ": " + what + "; the hub sent a directive this node cannot read, "
                                                               "report it to the central team");
}

Result<json> parse_object(std::string_view text, const std::string& what) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad(what, "not a JSON object");
  return j;
}

bool is_digits(const std::string& s) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// A list of kit numbers: each all digits, and none at all only where allowed.
Status check_kit_numbers(const std::vector<std::string>& kits, const std::string& where, bool may_be_empty = false) {
  if (kits.empty() && !may_be_empty) return bad(where, "empty");
  for (const auto& k : kits)
    if (!is_digits(k)) return bad(where, "each must be a kit number");
  return {};
}

}  // namespace

void to_json(json& j, const GrantSlots& g) {
  j = json{{"study_version", g.study_version}, {"grants", g.grants}, {"voids", g.voids}};
}
void to_json(json& j, const NumberRangeGrant& g) {
  j = json{{"range_id", g.range_id}, {"prefix", g.prefix}, {"first", g.first}, {"last", g.last},
           {"digits", g.digits}};
}
void to_json(json& j, const MinimizationStreamGrant& g) {
  j = json{{"stream_id", g.stream_id},
           {"seed", g.seed_hex},
           {"allowance", g.allowance},
           {"synced_participants", g.synced_participants},
           {"baseline", g.baseline}};
}
void to_json(json& j, const CapAllowanceGrant& g) {
  j = json{{"allowances", json::array()}};
  for (const auto& a : g.allowances)
    j["allowances"].push_back({{"scope", to_string(a.scope)}, {"id", a.id}, {"granted", a.granted}});
}
void to_json(json& j, const ShipmentKit& k) {
  j = json{{"kit_number", k.kit_number}, {"kit_type", k.kit_type}, {"lot", k.lot}, {"expiry", k.expiry}};
}
void to_json(json& j, const Shipment& s) {
  j = json{{"shipment_id", s.shipment_id}, {"kind", s.kind}, {"shipped_on", s.shipped_on}, {"kits", s.kits}};
}
void to_json(json& j, const KitDecision& d) {
  j = json{{"decision_id", d.decision_id}, {"kits", d.kits}, {"reason", d.reason}};
}

Result<GrantSlots> parse_grant_slots(std::string_view text) {
  auto j = parse_object(text, "grant.slots");
  if (!j) return j.error();
  GrantSlots g;
  try {
    g.study_version = whole_number<int>(j->at("study_version"));
    g.grants = j->at("grants").get<std::vector<SlotGrant>>();
    if (j->contains("voids")) g.voids = j->at("voids").get<std::vector<SlotVoid>>();
  } catch (const json::exception& e) {
    return bad("grant.slots", std::string("missing or mistyped field (") + e.what() + ")");
  }
  for (std::size_t i = 0; i < g.grants.size(); ++i) {
    const auto& gr = g.grants[i];
    std::string where = "grant.slots.grants[" + std::to_string(i) + "]";
    if (gr.slots.empty()) return bad(where + ".slots", "empty");
    std::set<std::uint32_t> seen;
    for (const auto& s : gr.slots) {
      if (s.slot == 0 || !seen.insert(s.slot).second) return bad(where + ".slots", "slot numbers must be unique and >= 1");
      if (s.arm.empty()) return bad(where + ".slots", "a slot has no arm");
    }
  }
  return g;
}

Result<NumberRangeGrant> parse_number_range(std::string_view text) {
  auto j = parse_object(text, "grant.numbers");
  if (!j) return j.error();
  NumberRangeGrant g;
  try {
    g.range_id = whole_number<std::uint64_t>(j->at("range_id"));
    g.prefix = j->at("prefix").get<std::string>();
    g.first = whole_number<std::uint32_t>(j->at("first"));
    g.last = whole_number<std::uint32_t>(j->at("last"));
    g.digits = j->contains("digits") ? whole_number<int>(j->at("digits")) : 3;
  } catch (const json::exception& e) {
    return bad("grant.numbers", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (!is_id(g.prefix)) return bad("grant.numbers.prefix", "must be a site id");
  if (g.first == 0 || g.last < g.first) return bad("grant.numbers", "needs 1 <= first <= last");
  if (g.digits < 1 || g.digits > 9) return bad("grant.numbers.digits", "must be 1 to 9");
  return g;
}

Result<MinimizationStreamGrant> parse_minimization_stream(std::string_view text) {
  auto j = parse_object(text, "grant.minimization_stream");
  if (!j) return j.error();
  MinimizationStreamGrant g;
  try {
    g.stream_id = whole_number<std::uint64_t>(j->at("stream_id"));
    g.seed_hex = j->at("seed").get<std::string>();
    g.allowance = whole_number<std::uint64_t>(j->at("allowance"));
    g.synced_participants = j->value("synced_participants", std::uint64_t{0});
    g.baseline = j->at("baseline").get<std::vector<std::vector<std::vector<double>>>>();
  } catch (const json::exception& e) {
    return bad("grant.minimization_stream", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (g.seed_hex.size() != 64) return bad("grant.minimization_stream.seed", "must be 64 hex digits");
  for (char c : g.seed_hex)
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return bad("grant.minimization_stream.seed", "must be 64 hex digits");
  return g;
}

Result<CapAllowanceGrant> parse_cap_allowance(std::string_view text) {
  auto j = parse_object(text, "grant.cap_allowance");
  if (!j) return j.error();
  CapAllowanceGrant g;
  std::set<std::pair<std::string, std::string>> seen;
  try {
    const auto& list = j->at("allowances");
    if (!list.is_array()) return bad("grant.cap_allowance.allowances", "must be a list");
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string where = "grant.cap_allowance.allowances[" + std::to_string(i) + "]";
      CapAllowance a;
      auto scope = list[i].at("scope").get<std::string>();
      if (scope == "arm") a.scope = CapScope::arm;
      else if (scope == "cohort") a.scope = CapScope::cohort;
      else return bad(where + ".scope", "must be arm or cohort");
      a.id = list[i].at("id").get<std::string>();
      const auto& granted = list[i].at("granted");
      if (!granted.is_number_unsigned()) return bad(where + ".granted", "must be an integer >= 0");
      a.granted = whole_number<std::uint64_t>(granted);
      // The id of an arm is never quoted back: it reveals which arm is capped at this node.
      if (!is_id(a.id)) return bad(where + ".id", "must be an arm or cohort id");
      if (!seen.insert({scope, a.id}).second) return bad(where, "names the same cap twice");
      g.allowances.push_back(std::move(a));
    }
  } catch (const json::exception&) {
    return bad("grant.cap_allowance", "missing or mistyped field (allowances[].scope, id or granted)");
  }
  return g;
}

Result<Shipment> parse_shipment(std::string_view text) {
  auto j = parse_object(text, "shipment");
  if (!j) return j.error();
  Shipment s;
  try {
    s.shipment_id = j->at("shipment_id").get<std::string>();
    s.kind = j->value("kind", std::string("initial"));
    s.shipped_on = j->value("shipped_on", std::string());
    const auto& kits = j->at("kits");
    if (!kits.is_array()) return bad("shipment.kits", "must be a list");
    for (const auto& k : kits) {
      ShipmentKit kit;
      kit.kit_number = k.at("kit_number").get<std::string>();
      kit.kit_type = k.at("kit_type").get<std::string>();
      kit.lot = k.value("lot", std::string());
      kit.expiry = k.at("expiry").get<std::string>();
      s.kits.push_back(std::move(kit));
    }
  } catch (const json::exception& e) {
    return bad("shipment", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (!is_id(s.shipment_id)) return bad("shipment.shipment_id", "must be an id");
  if (!s.shipped_on.empty() && !parse_date(s.shipped_on)) return bad("shipment.shipped_on", "not a date YYYY-MM-DD");
  if (s.kits.empty()) return bad("shipment.kits", "empty");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < s.kits.size(); ++i) {
    std::string where = "shipment.kits[" + std::to_string(i) + "]";
    const auto& k = s.kits[i];
    if (!is_digits(k.kit_number)) return bad(where + ".kit_number", "must be 1 to 20 decimal digits");
    if (!seen.insert(k.kit_number).second) return bad(where + ".kit_number", "repeated in the shipment");
    if (!is_id(k.kit_type)) return bad(where + ".kit_type", "must be a kit type id");
    if (!parse_date(k.expiry)) return bad(where + ".expiry", "not a date YYYY-MM-DD");
  }
  return s;
}

Result<KitDecision> parse_kit_decision(std::string_view text) {
  auto j = parse_object(text, "kits decision");
  if (!j) return j.error();
  KitDecision d;
  try {
    d.decision_id = j->value("decision_id", std::uint64_t{0});
    d.kits = j->at("kits").get<std::vector<std::string>>();
    d.reason = j->value("reason", std::string());
  } catch (const json::exception& e) {
    return bad("kits decision", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (auto st = check_kit_numbers(d.kits, "kits decision.kits"); !st) return st.error();
  return d;
}

void to_json(json& j, const KitRelabel& r) {
  j = json{{"lot", r.lot}, {"expiry", r.expiry}, {"kits", r.kits}, {"reason", r.reason}};
}

Result<KitRelabel> parse_kit_relabel(std::string_view text) {
  auto j = parse_object(text, "kits.relabel");
  if (!j) return j.error();
  KitRelabel r;
  try {
    r.lot = j->at("lot").get<std::string>();
    r.expiry = j->at("expiry").get<std::string>();
    r.kits = j->at("kits").get<std::vector<std::string>>();
    r.reason = j->value("reason", std::string());
  } catch (const json::exception& e) {
    return bad("kits.relabel", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (r.lot.empty()) return bad("kits.relabel.lot", "empty");
  if (!parse_date(r.expiry)) return bad("kits.relabel.expiry", "not a date YYYY-MM-DD");
  if (auto st = check_kit_numbers(r.kits, "kits.relabel.kits"); !st) return st.error();
  return r;
}

void to_json(json& j, const KitHandover& h) {
  j = json{{"request_seq", h.request_seq}, {"to_node", h.to_node}, {"kits", h.kits}, {"outcome", h.outcome},
           {"reason", h.reason}};
}

Result<KitHandover> parse_kit_handover(std::string_view text) {
  auto j = parse_object(text, "kits.handover");
  if (!j) return j.error();
  KitHandover h;
  try {
    h.request_seq = whole_number<std::uint64_t>(j->at("request_seq"));
    h.to_node = j->at("to_node").get<std::string>();
    h.kits = j->at("kits").get<std::vector<std::string>>();
    h.outcome = j->at("outcome").get<std::string>();
    h.reason = j->value("reason", std::string());
  } catch (const json::exception& e) {
    return bad("kits.handover", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (auto st = check_kit_numbers(h.kits, "kits.handover.kits"); !st) return st.error();
  if (h.outcome != "moved" && h.outcome != "refused") return bad("kits.handover.outcome", "must be moved or refused");
  return h;
}

void to_json(json& j, const KitsAtDepot& d) {
  json kits = json::array();
  for (const auto& k : d.kits) kits.push_back({{"kit", k.kit}, {"condition", to_string(k.condition)}});
  j = json{{"shipment_id", d.shipment_id}, {"depot", d.depot}, {"kits", kits}};
}

Result<KitsAtDepot> parse_kits_at_depot(std::string_view text) {
  auto j = parse_object(text, "kits.at_depot");
  if (!j) return j.error();
  KitsAtDepot d;
  try {
    d.shipment_id = j->at("shipment_id").get<std::string>();
    d.depot = j->at("depot").get<std::string>();
    for (const auto& k : j->at("kits")) {
      auto condition = parse_kit_status(k.at("condition").get<std::string>());
      if (!condition || (*condition != KitStatus::received && *condition != KitStatus::damaged &&
                         *condition != KitStatus::missing))
        return bad("kits.at_depot.kits[].condition", "must be received, damaged or missing");
      d.kits.push_back({k.at("kit").get<std::string>(), *condition});
    }
  } catch (const json::exception& e) {
    return bad("kits.at_depot", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (d.shipment_id.empty()) return bad("kits.at_depot.shipment_id", "empty");
  if (d.depot.empty()) return bad("kits.at_depot.depot", "empty");
  if (d.kits.empty()) return bad("kits.at_depot.kits", "empty");
  for (const auto& k : d.kits)
    if (!is_digits(k.kit)) return bad("kits.at_depot.kits[].kit", "each must be a kit number");
  return d;
}

void to_json(json& j, const RandomizationLease& l) {
  j = json{{"lease_id", l.lease_id}, {"until_ms", l.until_ms}, {"reason", l.reason}};
}

Result<RandomizationLease> parse_lease(std::string_view text) {
  auto j = parse_object(text, "grant.lease");
  if (!j) return j.error();
  RandomizationLease l;
  try {
    const auto& id = j->at("lease_id");
    if (!id.is_number_unsigned() || id.get<std::uint64_t>() == 0)
      return bad("grant.lease.lease_id", "must be an integer >= 1");
    l.lease_id = id.get<std::uint64_t>();
    const auto& until = j->at("until_ms");
    if (!until.is_number_integer()) return bad("grant.lease.until_ms", "must be an integer (Unix milliseconds)");
    l.until_ms = whole_number<std::int64_t>(until);
    l.reason = j->value("reason", std::string());
  } catch (const json::exception& e) {
    return bad("grant.lease", std::string("missing or mistyped field (") + e.what() + ")");
  }
  return l;
}

void to_json(json& j, const ParticipantTransferDecision& d) {
  j = json{{"transfer_id", d.transfer_id}, {"request_seq", d.request_seq}, {"participant", d.participant},
           {"to_site", d.to_site}, {"outcome", d.outcome}, {"to_node", d.to_node}, {"kits", d.kits},
           {"reason", d.reason}, {"decided_by", d.decided_by}};
}

Result<ParticipantTransferDecision> parse_participant_transfer(std::string_view text) {
  const std::string what(kParticipantTransferDirective);
  auto j = parse_object(text, what);
  if (!j) return j.error();
  ParticipantTransferDecision d;
  try {
    d.transfer_id = whole_number<std::uint64_t>(j->at("transfer_id"));
    d.request_seq = whole_number<std::uint64_t>(j->at("request_seq"));
    d.participant = j->at("participant").get<std::string>();
    d.to_site = j->at("to_site").get<std::string>();
    d.outcome = j->at("outcome").get<std::string>();
    d.to_node = j->at("to_node").get<std::string>();
    d.kits = j->at("kits").get<std::vector<std::string>>();
    d.reason = j->at("reason").get<std::string>();
    d.decided_by = j->at("decided_by").get<std::string>();
  } catch (const json::exception& e) {
    return bad(what, std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (d.participant.empty()) return bad(what + ".participant", "empty");
  if (d.outcome != "approved" && d.outcome != "rejected") return bad(what + ".outcome", "must be approved or rejected");
  if (d.outcome == "approved" && d.to_node.empty()) return bad(what + ".to_node", "empty for an approval");
  if (auto st = check_kit_numbers(d.kits, what + ".kits", true); !st) return st.error();
  return d;
}

void to_json(json& j, const ParticipantTransferIn& t) {
  json visits = json::array();
  for (const auto& v : t.visits)
    visits.push_back({{"visit", v.visit}, {"date", v.date}, {"kits", v.kits}, {"deviation", v.deviation},
                      {"missed_reason", v.missed_reason}, {"by", v.by}, {"order_reason", v.order_reason}});
  json kits = json::array();
  for (const auto& k : t.kits)
    kits.push_back({{"kit_number", k.kit_number}, {"kit_type", k.kit_type}, {"lot", k.lot}, {"expiry", k.expiry},
                    {"visit", k.visit}});
  j = json{{"transfer_id", t.transfer_id},
           {"participant", t.participant},
           {"from_site", t.from_site},
           {"from_node", t.from_node},
           {"status", t.status},
           {"factors", t.factors},
           {"eligibility", t.eligibility},
           {"cohort", t.cohort},
           {"screened_on", t.screened_on},
           {"screened_by", t.screened_by},
           {"study_version", t.study_version},
           {"randomization_number", t.randomization_number},
           {"randomized_on", t.randomized_on},
           {"randomized_by", t.randomized_by},
           {"arm", t.arm},
           {"stratum", t.stratum ? json(*t.stratum) : json()},
           {"visits", visits},
           {"kits", kits},
           {"unblinded", t.unblinded},
           {"unblinded_on", t.unblinded_on},
           {"unblinded_by", t.unblinded_by},
           {"reason", t.reason}};
}

Result<ParticipantTransferIn> parse_participant_transfer_in(std::string_view text) {
  const std::string what(kParticipantTransferInDirective);
  auto j = parse_object(text, what);
  if (!j) return j.error();
  ParticipantTransferIn t;
  try {
    t.transfer_id = whole_number<std::uint64_t>(j->at("transfer_id"));
    t.participant = j->at("participant").get<std::string>();
    t.from_site = j->at("from_site").get<std::string>();
    t.from_node = j->at("from_node").get<std::string>();
    auto status = parse_participant_status(j->at("status").get<std::string>());
    if (!status || (*status != ParticipantStatus::screened && *status != ParticipantStatus::randomized))
      return bad(what + ".status", "must be screened or randomized");
    t.status = *status;
    t.factors = j->at("factors").get<std::map<std::string, std::string>>();
    t.eligibility = j->at("eligibility").get<std::vector<std::string>>();
    t.cohort = j->at("cohort").get<std::string>();
    t.screened_on = j->at("screened_on").get<std::string>();
    t.screened_by = j->at("screened_by").get<std::string>();
    t.study_version = whole_number<int>(j->at("study_version"));
    t.randomization_number = j->at("randomization_number").get<std::string>();
    t.randomized_on = j->at("randomized_on").get<std::string>();
    t.randomized_by = j->at("randomized_by").get<std::string>();
    t.arm = j->at("arm").get<std::string>();
    if (!j->at("stratum").is_null()) t.stratum = whole_number<std::uint32_t>(j->at("stratum"));
    for (const auto& v : j->at("visits"))
      t.visits.push_back({v.at("visit").get<std::string>(), v.at("date").get<std::string>(),
                          v.at("kits").get<std::vector<std::string>>(), v.at("deviation").get<std::string>(),
                          v.at("missed_reason").get<std::string>(), v.at("by").get<std::string>(),
                          v.value("order_reason", "")});
    for (const auto& k : j->at("kits"))
      t.kits.push_back({k.at("kit_number").get<std::string>(), k.at("kit_type").get<std::string>(),
                        k.at("lot").get<std::string>(), k.at("expiry").get<std::string>(),
                        k.at("visit").get<std::string>()});
    t.unblinded = j->at("unblinded").get<bool>();
    t.unblinded_on = j->at("unblinded_on").get<std::string>();
    t.unblinded_by = j->at("unblinded_by").get<std::string>();
    t.reason = j->at("reason").get<std::string>();
  } catch (const json::exception& e) {
    return bad(what, std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (t.participant.empty()) return bad(what + ".participant", "empty");
  if ((t.status == ParticipantStatus::randomized) == t.arm.empty())
    return bad(what + ".arm", "must be given exactly for a randomized participant");
  for (std::size_t i = 0; i < t.kits.size(); ++i) {
    const auto& k = t.kits[i];
    const std::string where = what + ".kits[" + std::to_string(i) + "]";
    if (!is_digits(k.kit_number)) return bad(where + ".kit_number", "must be a kit number");
    if (!parse_date(k.expiry)) return bad(where + ".expiry", "not a date YYYY-MM-DD");
  }
  return t;
}

}  // namespace irt::shared
