#include "shared/directive_payloads.h"

#include <cstdio>
#include <set>

#include "shared/civil_date.h"
#include "shared/identifier.h"

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
    g.study_version = j->at("study_version").get<int>();
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
    g.range_id = j->at("range_id").get<std::uint64_t>();
    g.prefix = j->at("prefix").get<std::string>();
    g.first = j->at("first").get<std::uint32_t>();
    g.last = j->at("last").get<std::uint32_t>();
    g.digits = j->value("digits", 3);
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
    g.stream_id = j->at("stream_id").get<std::uint64_t>();
    g.seed_hex = j->at("seed").get<std::string>();
    g.allowance = j->at("allowance").get<std::uint64_t>();
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
      a.granted = granted.get<std::uint64_t>();
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
  if (d.kits.empty()) return bad("kits decision.kits", "empty");
  for (const auto& k : d.kits)
    if (!is_digits(k)) return bad("kits decision.kits", "each must be a kit number");
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
  if (r.kits.empty()) return bad("kits.relabel.kits", "empty");
  for (const auto& k : r.kits)
    if (!is_digits(k)) return bad("kits.relabel.kits", "each must be a kit number");
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
    h.request_seq = j->at("request_seq").get<std::uint64_t>();
    h.to_node = j->at("to_node").get<std::string>();
    h.kits = j->at("kits").get<std::vector<std::string>>();
    h.outcome = j->at("outcome").get<std::string>();
    h.reason = j->value("reason", std::string());
  } catch (const json::exception& e) {
    return bad("kits.handover", std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (h.kits.empty()) return bad("kits.handover.kits", "empty");
  for (const auto& k : h.kits)
    if (!is_digits(k)) return bad("kits.handover.kits", "each must be a kit number");
  if (h.outcome != "moved" && h.outcome != "refused") return bad("kits.handover.outcome", "must be moved or refused");
  return h;
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
    l.until_ms = until.get<std::int64_t>();
    l.reason = j->value("reason", std::string());
  } catch (const json::exception& e) {
    return bad("grant.lease", std::string("missing or mistyped field (") + e.what() + ")");
  }
  return l;
}

}  // namespace irt::shared
