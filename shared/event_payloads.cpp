#include "shared/event_payloads.h"

#include <array>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <utility>

#include "shared/civil_date.h"

namespace irt::shared {

namespace {

using nlohmann::json;

constexpr std::array<std::pair<ParticipantStatus, const char*>, 6> kParticipantStatusNames = {{
    {ParticipantStatus::screened, "screened"},
    {ParticipantStatus::screen_failed, "screen_failed"},
    {ParticipantStatus::randomized, "randomized"},
    {ParticipantStatus::withdrawn, "withdrawn"},
    {ParticipantStatus::completed, "completed"},
    {ParticipantStatus::transferred, "transferred"},
}};

constexpr std::array<std::pair<KitStatus, const char*>, 13> kKitStatusNames = {{
    {KitStatus::expected, "expected"},
    {KitStatus::shipped, "shipped"},
    {KitStatus::received, "received"},
    {KitStatus::available, "available"},
    {KitStatus::damaged, "damaged"},
    {KitStatus::missing, "missing"},
    {KitStatus::lost, "lost"},
    {KitStatus::quarantined, "quarantined"},
    {KitStatus::rejected, "rejected"},
    {KitStatus::dispensed, "dispensed"},
    {KitStatus::returned, "returned"},
    {KitStatus::destroyed, "destroyed"},
    {KitStatus::lost_with_node, "lost_with_node"},
}};

template <class Enum, std::size_t N>
const char* name_of(const std::array<std::pair<Enum, const char*>, N>& table, Enum e) {
  for (const auto& [v, name] : table)
    if (v == e) return name;
  return "?";
}

template <class Enum, std::size_t N>
std::optional<Enum> value_of(const std::array<std::pair<Enum, const char*>, N>& table, std::string_view name) {
  for (const auto& [v, n] : table)
    if (n == name) return v;
  return std::nullopt;
}

// Reads the fields of one payload object, remembering the first problem as
// "<event type>.<field>: <what is wrong>". Values are never quoted: a field
// may hold a participant's data or, in a sealed part, an arm.
class Reader {
 public:
  Reader(std::string_view text, std::string_view type) : type_(type) {
    j_ = json::parse(text, nullptr, false);
    if (j_.is_discarded() || !j_.is_object()) {
      fail("", "not a JSON object");
      j_ = json::object();
    }
    // Every domain event may carry the configuration version it was recorded under.
    if (auto v = integer<std::uint32_t>(kEventStudyVersionField, false); v && *v == 0)
      fail(kEventStudyVersionField, "must be a study version from 1");
  }
  Reader(const json& object, std::string where, std::string_view type) : type_(type), prefix_(std::move(where)) {
    if (object.is_object()) j_ = object;
    else {
      fail("", "must be an object");
      j_ = json::object();
    }
  }

  std::string text(const char* field, bool required = true) {
    const json* v = find(field, required);
    if (!v) return "";
    if (!v->is_string()) return fail(field, "must be a string"), "";
    return v->get<std::string>();
  }
  template <class Int>
  std::optional<Int> integer(const char* field, bool required = true) {
    const json* v = find(field, required);
    if (!v) return std::nullopt;
    if constexpr (std::is_unsigned_v<Int>) {
      if (!v->is_number_unsigned() || v->get<std::uint64_t>() > std::numeric_limits<Int>::max())
        return fail(field, "must be a whole number from 0"), std::nullopt;
      return static_cast<Int>(v->get<std::uint64_t>());
    } else {
      if (!v->is_number_integer()) return fail(field, "must be a whole number"), std::nullopt;
      return static_cast<Int>(v->get<std::int64_t>());
    }
  }
  std::optional<bool> boolean(const char* field) {
    const json* v = find(field, true);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return fail(field, "must be true or false"), std::nullopt;
    return v->get<bool>();
  }
  // A status that must be one of `allowed`, by its name.
  template <class Enum>
  Enum one_of(const char* field, std::initializer_list<Enum> allowed) {
    auto name = text(field);
    for (Enum e : allowed)
      if (name == to_string(e)) return e;
    if (ok()) {
      std::string words;
      std::size_t i = 0;
      for (Enum e : allowed) {
        if (i > 0) words += i + 1 == allowed.size() ? " or " : ", ";
        words += to_string(e);
        ++i;
      }
      fail(field, "must be " + words);
    }
    return *allowed.begin();
  }
  std::optional<double> number(const char* field) {
    const json* v = find(field, false);
    if (!v) return std::nullopt;
    if (!v->is_number()) return fail(field, "must be a number"), std::nullopt;
    return v->get<double>();
  }
  std::vector<std::string> texts(const char* field, bool required = true) {
    std::vector<std::string> out;
    const json* v = find(field, required);
    if (!v) return out;
    if (!v->is_array()) return fail(field, "must be a list of strings"), out;
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) return fail(std::string(field) + "[" + std::to_string(i) + "]", "must be a string"), out;
      out.push_back((*v)[i].get<std::string>());
    }
    return out;
  }
  std::map<std::string, std::string> text_map(const char* field, bool required = true) {
    std::map<std::string, std::string> out;
    const json* v = find(field, required);
    if (!v) return out;
    if (!v->is_object()) return fail(field, "must be an object of strings"), out;
    for (const auto& [k, x] : v->items()) {
      if (!x.is_string()) return fail(std::string(field) + "." + k, "must be a string"), out;
      out[k] = x.get<std::string>();
    }
    return out;
  }
  // A nested object, read by its own Reader whose problems become this one's.
  template <class F>
  auto object(const char* field, bool required, F&& read) -> std::optional<decltype(read(std::declval<Reader&>()))> {
    const json* v = find(field, required);
    if (!v) return std::nullopt;
    Reader inner(*v, path(field), type_);
    auto out = read(inner);
    if (!inner.ok()) {
      if (!error_) error_ = inner.error_;
      return std::nullopt;
    }
    return out;
  }
  // A list of objects, each read by its own Reader ("kits[2].condition").
  template <class F>
  auto list(const char* field, bool required, F&& read) -> std::vector<decltype(read(std::declval<Reader&>()))> {
    std::vector<decltype(read(std::declval<Reader&>()))> out;
    const json* v = find(field, required);
    if (!v) return out;
    if (!v->is_array()) return fail(field, "must be a list"), out;
    for (std::size_t i = 0; i < v->size(); ++i) {
      Reader item((*v)[i], path(std::string(field) + "[" + std::to_string(i) + "]"), type_);
      auto x = read(item);
      if (!item.ok()) {
        if (!error_) error_ = item.error_;
        return out;
      }
      out.push_back(std::move(x));
    }
    return out;
  }
  const json* find(const char* field, bool required) {
    auto it = j_.find(field);
    if (it == j_.end() || it->is_null()) {
      if (required) fail(field, "is missing");
      return nullptr;
    }
    return &*it;
  }
  std::string path(const std::string& field) const {
    return prefix_.empty() ? field : field.empty() ? prefix_ : prefix_ + "." + field;
  }
  void fail(const std::string& field, const std::string& what) {
    if (error_) return;
    std::string where = std::string(type_);
    if (auto p = path(field); !p.empty()) where += "." + p;
    error_ = make_error(Errc::invalid_input, where + ": " + what);
  }
  bool ok() const { return !error_.has_value(); }
  template <class T>
  Result<T> done(T value) const {
    if (error_) return *error_;
    return value;
  }

 private:
  json j_;
  std::string_view type_;
  std::string prefix_;
  std::optional<Error> error_;
};

ESignature read_esignature(Reader& r) {
  ESignature s;
  s.signer = r.text("signer");
  s.role = r.text("role");
  s.signed_ms = r.integer<std::int64_t>("signed_ms").value_or(0);
  s.meaning = r.text("meaning");
  return s;
}

std::optional<ESignature> esignature_of(Reader& r, bool required) { return r.object("esignature", required, read_esignature); }

OfflineDecisionRecord read_decision(Reader& r) {
  OfflineDecisionRecord d;
  d.sequence = r.integer<std::uint64_t>("sequence").value_or(0);
  d.stream_start = r.integer<std::uint64_t>("stream_start").value_or(0);
  d.stream_end = r.integer<std::uint64_t>("stream_end").value_or(0);
  d.arm = r.integer<std::size_t>("arm").value_or(0);
  d.preferred = r.integer<std::size_t>("preferred").value_or(0);
  d.random_phase = r.boolean("random_phase").value_or(false);
  // A closed arm scores +inf, which JSON cannot carry: it travels as null.
  if (const json* scores = r.find("scores", true)) {
    if (!scores->is_array()) return r.fail("scores", "must be a list of numbers"), d;
    for (std::size_t i = 0; i < scores->size(); ++i) {
      const auto& x = (*scores)[i];
      if (!x.is_null() && !x.is_number())
        return r.fail("scores[" + std::to_string(i) + "]", "must be a number or null"), d;
      d.scores.push_back(x.is_null() ? std::numeric_limits<double>::infinity() : x.get<double>());
    }
  }
  return d;
}

}  // namespace

const char* to_string(ParticipantStatus s) { return name_of(kParticipantStatusNames, s); }
const char* to_string(KitStatus s) { return name_of(kKitStatusNames, s); }
std::optional<ParticipantStatus> parse_participant_status(std::string_view name) {
  return value_of(kParticipantStatusNames, name);
}
std::optional<KitStatus> parse_kit_status(std::string_view name) { return value_of(kKitStatusNames, name); }

void to_json(json& j, ParticipantStatus s) { j = to_string(s); }
void to_json(json& j, KitStatus s) { j = to_string(s); }
void from_json(const json& j, ParticipantStatus& s) {
  auto v = j.is_string() ? parse_participant_status(j.get_ref<const std::string&>()) : std::nullopt;
  if (!v) throw json::type_error::create(302, "not a participant status", &j);
  s = *v;
}
void from_json(const json& j, KitStatus& s) {
  auto v = j.is_string() ? parse_kit_status(j.get_ref<const std::string&>()) : std::nullopt;
  if (!v) throw json::type_error::create(302, "not a kit status", &j);
  s = *v;
}

// ---- to_json: the field names are the wire format (docs/sync-protocol.md)

void to_json(json& j, const ESignature& v) {
  j = json{{"signer", v.signer}, {"role", v.role}, {"signed_ms", v.signed_ms}, {"meaning", v.meaning}};
}
void to_json(json& j, const NodeEnrolled& v) {
  j = json{{"node_id", v.node_id}, {"site_id", v.site_id},   {"kind", v.kind},
           {"study_id", v.study_id}, {"hub_url", v.hub_url}, {"hub_fingerprint", v.hub_fingerprint},
           {"public_key", v.public_key}};
}
void to_json(json& j, const DirectiveApplied& v) {
  j = json{{"directive_seq", v.directive_seq}, {"type", v.type}, {"hash", v.hash}};
}
void to_json(json& j, const SiteNote& v) { j = json{{"text", v.text}, {"role", v.role}, {"site_id", v.site_id}}; }
void to_json(json& j, const Screened& v) {
  j = json{{"participant", v.participant}, {"status", to_string(v.status)}, {"factors", v.factors},
           {"eligibility", v.eligibility}, {"role", v.role}};
  if (!v.screen_failure_reason.empty()) j["screen_failure_reason"] = v.screen_failure_reason;
  if (!v.cohort.empty()) j["cohort"] = v.cohort;
}
void to_json(json& j, const Randomized& v) {
  j = json{{"participant", v.participant}, {"randomization_number", v.randomization_number}, {"visit", v.visit},
           {"kits", v.kits}, {"esignature", v.esignature}, {"sealed", v.sealed}};
  if (v.stratum) {
    j["stratum"] = *v.stratum;
    j["stratum_label"] = v.stratum_label;
  }
  if (v.slot) j["slot"] = *v.slot;
  if (v.stream_id) j["stream_id"] = *v.stream_id;
  if (v.decision_sequence) j["decision_sequence"] = *v.decision_sequence;
}
void to_json(json& j, const RandomizedSealed& v) {
  j = json{{"arm", v.arm}, {"kit_types", v.kit_types}};
  if (v.decision) j["decision"] = *v.decision;
}
void to_json(json& j, const Dispensed& v) {
  j = json{{"participant", v.participant}, {"visit", v.visit},
           {"kits", v.kits},               {"day", v.day},
           {"window", {v.window_from, v.window_to}}, {"sealed", v.sealed}};
  if (!v.deviation_reason.empty())
    j["deviation"] = {{"kind", "visit_window_override"}, {"reason", v.deviation_reason}};
  if (!v.order_reason.empty()) j["out_of_order"] = {{"reason", v.order_reason}};
  if (v.esignature) j["esignature"] = *v.esignature;
}
void to_json(json& j, const KitReplaced& v) {
  j = json{{"participant", v.participant}, {"visit", v.visit},   {"old_kit", v.old_kit},
           {"new_kit", v.new_kit},         {"condition", to_string(v.condition)}, {"reason", v.reason},
           {"esignature", v.esignature},   {"sealed", v.sealed}};
}
void to_json(json& j, const KitTypesSealed& v) { j = json{{"kit_types", v.kit_types}}; }
void to_json(json& j, const Withdrawn& v) {
  j = json{{"participant", v.participant}, {"reason", v.reason}, {"role", v.role}};
  if (v.esignature) j["esignature"] = *v.esignature;
}
void to_json(json& j, const Completed& v) { j = json{{"participant", v.participant}, {"role", v.role}}; }
void to_json(json& j, const TransferRequested& v) {
  j = json{{"participant", v.participant}, {"to_site", v.to_site}, {"reason", v.reason}, {"role", v.role}};
}
void to_json(json& j, const Unblinded& v) {
  j = json{{"participant", v.participant}, {"reason", v.reason}, {"flag", "code_break"},
           {"esignature", v.esignature},   {"sealed", v.sealed}};
}
void to_json(json& j, const ArmSealed& v) { j = json{{"arm", v.arm}}; }
void to_json(json& j, const ShipmentReceived& v) {
  json kits = json::array();
  for (const auto& k : v.kits) kits.push_back({{"kit", k.kit}, {"condition", to_string(k.condition)}});
  j = json{{"shipment", v.shipment}, {"kits", kits}};
  if (v.esignature) j["esignature"] = *v.esignature;
  if (!v.location.empty()) j["location"] = v.location;
}
void to_json(json& j, const KitQuarantined& v) {
  j = json{{"kit", v.kit}, {"reason", v.reason}};
  if (v.temperature_celsius) j["temperature_celsius"] = *v.temperature_celsius;
}
void to_json(json& j, const KitReturned& v) {
  j = json{{"kit", v.kit}, {"participant", v.participant}, {"units_returned", v.units_returned}};
  if (!v.visit.empty()) j["visit"] = v.visit;
}
void to_json(json& j, const KitDestroyed& v) {
  j = json{{"kit", v.kit}, {"reason", v.reason}, {"esignature", v.esignature}};
  if (v.witness) j["witness"] = *v.witness;
}
void to_json(json& j, const TemperatureExcursion& v) {
  j = json{{"kits", v.kits},
           {"minimum_celsius", v.minimum_celsius},
           {"maximum_celsius", v.maximum_celsius},
           {"duration_minutes", v.duration_minutes},
           {"reason", v.reason}};
  if (!v.location.empty()) j["location"] = v.location;
}
void to_json(json& j, const KitsStored& v) { j = json{{"kits", v.kits}, {"location", v.location}}; }

void to_json(json& j, const SupplyShortage& v) {
  j = json{{"participant", v.participant}, {"visit", v.visit}, {"operation", v.operation}, {"sealed", v.sealed}};
  if (!v.replace_kit.empty()) j["replace_kit"] = v.replace_kit;
}
void to_json(json& j, const ShortageSealed& v) {
  json list = json::array();
  for (const auto& s : v.shortages)
    list.push_back({{"kit_type", s.kit_type}, {"needed", s.needed}, {"dispensable", s.dispensable}});
  j = json{{"shortages", list}};
}

// ---- parse_*

Result<NodeEnrolled> parse_node_enrolled(std::string_view text) {
  Reader r(text, kNodeEnrolledEvent);
  NodeEnrolled v{r.text("node_id"),  r.text("site_id"),         r.text("kind"),      r.text("study_id"),
                 r.text("hub_url"), r.text("hub_fingerprint"), r.text("public_key")};
  return r.done(std::move(v));
}

Result<DirectiveApplied> parse_directive_applied(std::string_view text) {
  Reader r(text, kDirectiveAppliedEvent);
  DirectiveApplied v;
  v.directive_seq = r.integer<std::uint64_t>("directive_seq").value_or(0);
  v.type = r.text("type");
  v.hash = r.text("hash");
  return r.done(std::move(v));
}

Result<SiteNote> parse_site_note(std::string_view text) {
  Reader r(text, kSiteNoteEvent);
  SiteNote v{r.text("text"), r.text("role"), r.text("site_id")};
  return r.done(std::move(v));
}

Result<std::optional<int>> parse_event_study_version(std::string_view text) {
  Reader r(text, "event");
  auto v = r.integer<std::uint32_t>(kEventStudyVersionField, false);
  return r.done(v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt);
}

Result<Screened> parse_screened(std::string_view text) {
  Reader r(text, kScreenedEvent);
  Screened v;
  v.participant = r.text("participant");
  v.status = r.one_of("status", {ParticipantStatus::screened, ParticipantStatus::screen_failed});
  v.factors = r.text_map("factors");
  v.eligibility = r.texts("eligibility");
  v.role = r.text("role");
  v.screen_failure_reason = r.text("screen_failure_reason", false);
  v.cohort = r.text("cohort", false);
  return r.done(std::move(v));
}

Result<Randomized> parse_randomized(std::string_view text) {
  Reader r(text, kRandomizedEvent);
  Randomized v;
  v.participant = r.text("participant");
  v.randomization_number = r.text("randomization_number");
  v.visit = r.text("visit", false);
  v.kits = r.texts("kits", false);
  v.esignature = esignature_of(r, true).value_or(ESignature{});
  v.stratum = r.integer<std::uint32_t>("stratum", false);
  v.stratum_label = r.text("stratum_label", v.stratum.has_value());
  v.slot = r.integer<std::uint32_t>("slot", false);
  v.stream_id = r.integer<std::uint64_t>("stream_id", false);
  v.decision_sequence = r.integer<std::uint64_t>("decision_sequence", false);
  v.sealed = r.text("sealed");
  if (r.ok() && v.slot.has_value() != v.stratum.has_value()) r.fail("slot", "comes with stratum");
  if (r.ok() && v.stream_id.has_value() != v.decision_sequence.has_value())
    r.fail("decision_sequence", "comes with stream_id");
  if (r.ok() && v.slot.has_value() == v.stream_id.has_value())
    r.fail("", "must name either a list slot (stratum, slot) or a minimization decision (stream_id, decision_sequence)");
  return r.done(std::move(v));
}

Result<RandomizedSealed> parse_randomized_sealed(std::string_view text) {
  Reader r(text, "participant.randomized sealed part");
  RandomizedSealed v;
  v.arm = r.text("arm");
  v.kit_types = r.text_map("kit_types", false);
  v.decision = r.object("decision", false, read_decision);
  return r.done(std::move(v));
}

Result<OfflineDecisionRecord> parse_decision_record(std::string_view text) {
  Reader r(text, "minimization decision record");
  auto v = read_decision(r);
  return r.done(std::move(v));
}

Result<Dispensed> parse_dispensed(std::string_view text) {
  Reader r(text, kDispensedEvent);
  Dispensed v;
  v.participant = r.text("participant");
  v.visit = r.text("visit");
  v.kits = r.texts("kits");
  v.day = r.integer<std::int64_t>("day").value_or(0);
  if (const json* w = r.find("window", true)) {
    if (!w->is_array() || w->size() != 2 || !(*w)[0].is_number_integer() || !(*w)[1].is_number_integer())
      r.fail("window", "must be [first day, last day]");
    else {
      v.window_from = (*w)[0].get<std::int64_t>();
      v.window_to = (*w)[1].get<std::int64_t>();
    }
  }
  auto deviation = r.object("deviation", false, [](Reader& d) { return d.text("reason"); });
  v.deviation_reason = deviation.value_or("");
  v.order_reason = r.object("out_of_order", false, [](Reader& o) { return o.text("reason"); }).value_or("");
  v.esignature = esignature_of(r, !v.deviation_reason.empty());
  v.sealed = r.text("sealed");
  return r.done(std::move(v));
}

Result<KitReplaced> parse_kit_replaced(std::string_view text) {
  Reader r(text, kKitReplacedEvent);
  KitReplaced v;
  v.participant = r.text("participant");
  v.visit = r.text("visit");
  v.old_kit = r.text("old_kit");
  v.new_kit = r.text("new_kit");
  v.condition = r.one_of("condition", {KitStatus::damaged, KitStatus::lost});
  v.reason = r.text("reason");
  v.esignature = esignature_of(r, true).value_or(ESignature{});
  v.sealed = r.text("sealed");
  return r.done(std::move(v));
}

Result<KitTypesSealed> parse_kit_types_sealed(std::string_view text) {
  Reader r(text, "kit types sealed part");
  KitTypesSealed v{r.text_map("kit_types")};
  return r.done(std::move(v));
}

Result<Withdrawn> parse_withdrawn(std::string_view text) {
  Reader r(text, kWithdrawnEvent);
  Withdrawn v{r.text("participant"), r.text("reason"), r.text("role"), esignature_of(r, false)};
  return r.done(std::move(v));
}

Result<Completed> parse_completed(std::string_view text) {
  Reader r(text, kCompletedEvent);
  Completed v{r.text("participant"), r.text("role")};
  return r.done(std::move(v));
}

Result<TransferRequested> parse_transfer_requested(std::string_view text) {
  Reader r(text, kTransferRequestedEvent);
  TransferRequested v{r.text("participant"), r.text("to_site"), r.text("reason"), r.text("role")};
  return r.done(std::move(v));
}

Result<Unblinded> parse_unblinded(std::string_view text) {
  Reader r(text, kUnblindedEvent);
  Unblinded v;
  v.participant = r.text("participant");
  v.reason = r.text("reason");
  v.esignature = esignature_of(r, true).value_or(ESignature{});
  v.sealed = r.text("sealed");
  return r.done(std::move(v));
}

Result<ArmSealed> parse_arm_sealed(std::string_view text) {
  Reader r(text, "participant.unblinded sealed part");
  ArmSealed v{r.text("arm")};
  return r.done(std::move(v));
}

Result<ShipmentReceived> parse_shipment_received(std::string_view text) {
  Reader r(text, kShipmentReceivedEvent);
  ShipmentReceived v;
  v.shipment = r.text("shipment");
  v.kits = r.list("kits", true, [](Reader& k) {
    return KitCondition{k.text("kit"), k.one_of("condition", {KitStatus::received, KitStatus::damaged, KitStatus::missing})};
  });
  v.esignature = esignature_of(r, false);
  v.location = r.text("location", false);
  return r.done(std::move(v));
}

Result<KitQuarantined> parse_kit_quarantined(std::string_view text) {
  Reader r(text, kKitQuarantinedEvent);
  KitQuarantined v{r.text("kit"), r.text("reason"), r.number("temperature_celsius")};
  return r.done(std::move(v));
}

Result<KitReturned> parse_kit_returned(std::string_view text) {
  Reader r(text, kKitReturnedEvent);
  KitReturned v;
  v.kit = r.text("kit");
  v.participant = r.text("participant", false);
  v.units_returned = r.integer<std::int64_t>("units_returned").value_or(0);
  v.visit = r.text("visit", false);
  return r.done(std::move(v));
}

Result<KitDestroyed> parse_kit_destroyed(std::string_view text) {
  Reader r(text, kKitDestroyedEvent);
  KitDestroyed v;
  v.kit = r.text("kit");
  v.reason = r.text("reason");
  v.esignature = esignature_of(r, true).value_or(ESignature{});
  v.witness = r.object("witness", false, read_esignature);
  return r.done(std::move(v));
}

Result<SupplyShortage> parse_supply_shortage(std::string_view text) {
  Reader r(text, kSupplyShortageEvent);
  SupplyShortage v;
  v.participant = r.text("participant");
  v.visit = r.text("visit");
  v.operation = r.text("operation");
  if (r.ok() && v.operation != "randomize" && v.operation != "dispense" && v.operation != "replace")
    r.fail("operation", "must be randomize, dispense or replace");
  v.replace_kit = r.text("replace_kit", v.operation == "replace");
  v.sealed = r.text("sealed");
  return r.done(std::move(v));
}

Result<ShortageSealed> parse_shortage_sealed(std::string_view text) {
  Reader r(text, "supply.shortage sealed part");
  ShortageSealed v;
  v.shortages = r.list("shortages", true, [](Reader& k) {
    return KitShortage{k.text("kit_type"), k.integer<std::int64_t>("needed").value_or(0),
                       k.integer<std::int64_t>("dispensable").value_or(0)};
  });
  return r.done(std::move(v));
}

void to_json(json& j, const VisitRecorded& v) {
  j = json{{"participant", v.participant}, {"visit", v.visit}, {"outcome", v.outcome}, {"role", v.role}};
  if (!v.reason.empty()) j["reason"] = v.reason;
}

Result<VisitRecorded> parse_visit_recorded(std::string_view text) {
  Reader r(text, kVisitRecordedEvent);
  VisitRecorded v;
  v.participant = r.text("participant");
  v.visit = r.text("visit");
  v.outcome = r.text("outcome");
  if (r.ok() && v.outcome != "done" && v.outcome != "missed") r.fail("outcome", "must be done or missed");
  v.reason = r.text("reason", v.outcome == "missed");
  v.role = r.text("role");
  return r.done(std::move(v));
}

Result<TemperatureExcursion> parse_temperature_excursion(std::string_view text) {
  Reader r(text, kTemperatureExcursionEvent);
  TemperatureExcursion v;
  v.kits = r.texts("kits");
  if (r.ok() && v.kits.empty()) r.fail("kits", "must list at least one kit");
  v.location = r.text("location", false);
  auto low = r.number("minimum_celsius"), high = r.number("maximum_celsius");
  if (r.ok() && (!low || !high)) r.fail(!low ? "minimum_celsius" : "maximum_celsius", "is missing");
  v.minimum_celsius = low.value_or(0);
  v.maximum_celsius = high.value_or(0);
  if (r.ok() && v.maximum_celsius < v.minimum_celsius) r.fail("maximum_celsius", "must not be below minimum_celsius");
  v.duration_minutes = r.integer<std::int64_t>("duration_minutes").value_or(0);
  if (r.ok() && v.duration_minutes < 1) r.fail("duration_minutes", "must be a whole number of minutes from 1");
  v.reason = r.text("reason");
  return r.done(std::move(v));
}

Result<KitsStored> parse_kits_stored(std::string_view text) {
  Reader r(text, kKitsStoredEvent);
  KitsStored v;
  v.kits = r.texts("kits");
  if (r.ok() && v.kits.empty()) r.fail("kits", "must list at least one kit");
  v.location = r.text("location");
  if (r.ok() && v.location.empty()) r.fail("location", "must not be empty");
  return r.done(std::move(v));
}

void to_json(json& j, const KitHandoverRequested& v) {
  j = json{{"to_node", v.to_node}, {"kits", v.kits}, {"reason", v.reason}, {"role", v.role}};
}

void to_json(json& j, const KitRelabelled& v) { j = json{{"kit", v.kit}, {"expiry", v.expiry}, {"role", v.role}}; }

Result<KitRelabelled> parse_kit_relabelled(std::string_view text) {
  Reader r(text, kKitRelabelledEvent);
  KitRelabelled v{r.text("kit"), r.text("expiry"), r.text("role")};
  if (r.ok() && !parse_date(v.expiry)) r.fail("expiry", "must be a date YYYY-MM-DD");
  return r.done(std::move(v));
}

Result<KitHandoverRequested> parse_kit_handover_requested(std::string_view text) {
  Reader r(text, kKitHandoverRequestedEvent);
  KitHandoverRequested v;
  v.to_node = r.text("to_node");
  v.kits = r.texts("kits");
  if (r.ok() && v.kits.empty()) r.fail("kits", "must list at least one kit");
  v.reason = r.text("reason", false);
  v.role = r.text("role");
  return r.done(std::move(v));
}

void to_json(json& j, const KitsReturnShipped& v) {
  j = json{{"depot", v.depot},     {"kits", v.kits},         {"reason", v.reason},
           {"courier", v.courier}, {"tracking", v.tracking}, {"role", v.role}};
  if (v.esignature) j["esignature"] = *v.esignature;
}

Result<KitsReturnShipped> parse_kits_return_shipped(std::string_view text) {
  Reader r(text, kKitsReturnShippedEvent);
  KitsReturnShipped v;
  v.depot = r.text("depot");
  v.kits = r.texts("kits");
  if (r.ok() && v.kits.empty()) r.fail("kits", "must list at least one kit");
  v.reason = r.text("reason", false);
  v.courier = r.text("courier", false);
  v.tracking = r.text("tracking", false);
  v.role = r.text("role");
  v.esignature = esignature_of(r, false);
  return r.done(std::move(v));
}

}  // namespace irt::shared
