#include "shared/event_payloads.h"

#include <cmath>
#include <limits>

#include <doctest/doctest.h>

using namespace irt::shared;
using nlohmann::json;

namespace {

ESignature signature() { return {"ana", "coordinator", 1700000000000, "I confirm the randomization of participant 101-001"}; }

template <class T, class Parse>
T round_trip(const T& value, Parse parse) {
  auto parsed = parse(json(value).dump());
  REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? "" : parsed.error().message));
  CHECK(json(*parsed) == json(value));
  return *parsed;
}

// The problem reported for `text`, or "" when it parses.
template <class Parse>
std::string problem(Parse parse, const json& text) {
  auto parsed = parse(text.dump());
  return parsed.ok() ? "" : parsed.error().message;
}

}  // namespace

TEST_CASE("every event payload survives to_json and its parser unchanged") {
  round_trip(NodeEnrolled{"n1", "101", "site", "S1", "http://127.0.0.1:1", "ab", "cd"}, parse_node_enrolled);
  round_trip(DirectiveApplied{7, "grant.slots", "ef"}, parse_directive_applied);
  round_trip(SiteNote{"fridge checked", "coordinator", "101"}, parse_site_note);
  round_trip(Screened{"101-001", ParticipantStatus::screened, {{"site", "101"}}, {"yes", "yes"}, "coordinator", ""},
             parse_screened);
  auto failed = round_trip(
      Screened{"101-002", ParticipantStatus::screen_failed, {}, {"no"}, "coordinator", "exclusion 3"}, parse_screened);
  CHECK(failed.status == ParticipantStatus::screen_failed);
  auto in_cohort = round_trip(
      Screened{"301-001", ParticipantStatus::screened, {{"site", "301"}}, {"yes"}, "coordinator", "", "pk"}, parse_screened);
  CHECK(in_cohort.cohort == "pk");
  CHECK_FALSE(json(failed).contains("cohort"));  // absent when the study has no cohorts
  Randomized block{"101-001", "R01-0001", "V1", {"100001"}, signature(), 0, "diabetes=no", 1, {}, {}, "c2VhbGVk"};
  CHECK(round_trip(block, parse_randomized).slot == 1u);
  Randomized minimized{"101-003", "M1-0001", "V1", {}, signature(), {}, "", {}, 1, 1, "c2VhbGVk"};
  CHECK(round_trip(minimized, parse_randomized).stream_id == 1u);
  OfflineDecisionRecord d{1, 0, 16, 1, 1, false, {0.5, 1.5}};
  CHECK(round_trip(RandomizedSealed{"A", {{"100001", "KA"}}, d}, parse_randomized_sealed).decision->stream_end == 16u);
  CHECK(round_trip(d, parse_decision_record).scores == d.scores);
  round_trip(Dispensed{"101-001", "V2", {"100002"}, 31, 28, 35, "", {}, "c2VhbGVk"}, parse_dispensed);
  round_trip(Dispensed{"101-001", "V3", {"100003"}, 90, 56, 63, "patient travelling", signature(), "c2VhbGVk"},
             parse_dispensed);
  CHECK(round_trip(Dispensed{"101-001", "V4", {"100005"}, 84, 77, 91, "", {}, "c2VhbGVk",
                             "V3 postponed: participant in hospital"},
                   parse_dispensed)
            .order_reason == "V3 postponed: participant in hospital");
  round_trip(KitReplaced{"101-001", "V2", "100002", "100004", KitStatus::lost, "dropped", signature(), "c2VhbGVk"},
             parse_kit_replaced);
  round_trip(KitTypesSealed{{{"100004", "KA"}}}, parse_kit_types_sealed);
  round_trip(Withdrawn{"101-001", "moved away", "coordinator"}, parse_withdrawn);
  auto signed_withdrawal = round_trip(
      Withdrawn{"101-001", "moved away", "coordinator", ESignature{"carla", "coordinator", 1700000000000, "I confirm"}},
      parse_withdrawn);
  REQUIRE(signed_withdrawal.esignature);
  CHECK(signed_withdrawal.esignature->signer == "carla");
  round_trip(Completed{"101-001", "coordinator"}, parse_completed);
  round_trip(TransferRequested{"101-001", "102", "moved", "coordinator"}, parse_transfer_requested);
  round_trip(Unblinded{"101-001", "anaphylaxis", signature(), "c2VhbGVk"}, parse_unblinded);
  round_trip(ArmSealed{"A"}, parse_arm_sealed);
  round_trip(
      ShipmentReceived{"SHP-1", {{"100001", KitStatus::received}, {"100002", KitStatus::damaged}}, signature()},
      parse_shipment_received);
  round_trip(KitQuarantined{"100001", "fridge at 11 C", 11.5}, parse_kit_quarantined);
  round_trip(KitReturned{"100001", "101-001", 3}, parse_kit_returned);
  round_trip(KitDestroyed{"100001", "returned", signature()}, parse_kit_destroyed);
  round_trip(SupplyShortage{"101-001", "V2", "dispense", "", "c2VhbGVk"}, parse_supply_shortage);
  round_trip(SupplyShortage{"101-001", "V2", "replace", "100002", "c2VhbGVk"}, parse_supply_shortage);
  round_trip(ShortageSealed{{{"KA", 2, 1}}}, parse_shortage_sealed);
  round_trip(KitHandoverRequested{"402-N2", {"100001", "100002"}, "home visits", "coordinator"},
             parse_kit_handover_requested);
}

TEST_CASE("a payload that is not an object, or lacks or mistypes a field, is refused naming the event and the field") {
  CHECK(problem(parse_withdrawn, "text") == "participant.withdrawn: not a JSON object");
  CHECK(problem(parse_withdrawn, json{{"participant", "101-001"}, {"role", "coordinator"}}) ==
        "participant.withdrawn.reason: is missing");
  CHECK(problem(parse_dispensed, json{{"participant", "101-001"}, {"visit", "V2"}, {"kits", {"100002", 7}},
                                      {"day", 31}, {"window", {28, 35}}, {"sealed", "x"}}) ==
        "kit.dispensed.kits[1]: must be a string");
  CHECK(problem(parse_kit_destroyed, json{{"kit", "1"}, {"reason", "r"}, {"esignature", {{"signer", "ana"}}}}) ==
        "kit.destroyed.esignature.role: is missing");
  CHECK(problem(parse_shipment_received,
                json{{"shipment", "SHP-1"}, {"kits", {{{"kit", "1"}, {"condition", "stolen"}}}}}) ==
        "shipment.received.kits[0].condition: must be received, damaged or missing");
  CHECK(problem(parse_kit_returned, json{{"kit", "1"}, {"units_returned", 1.5}}) ==
        "kit.returned.units_returned: must be a whole number");
}

namespace {

// `field` of `valid` missing, then of the wrong type: both refusals name the
// event (or sealed part) and the field.
template <class Parse>
void check_field(Parse parse, const json& valid, const std::string& where, const std::string& field,
                 const json& wrong = true) {
  CAPTURE(where);
  CAPTURE(field);
  REQUIRE(problem(parse, valid) == "");
  json missing = valid;
  missing.erase(field);
  CHECK(problem(parse, missing) == where + "." + field + ": is missing");
  json mistyped = valid;
  mistyped[field] = wrong;
  auto message = problem(parse, mistyped);
  CHECK(message.rfind(where + "." + field + ": must be", 0) == 0);
}

}  // namespace

TEST_CASE("every parser names the event and the field that is missing or of the wrong type") {
  const json sig = signature();
  check_field(parse_node_enrolled, NodeEnrolled{"n1", "101", "site", "S1", "http://127.0.0.1:1", "ab", "cd"},
              "node.enrolled", "hub_url");
  check_field(parse_directive_applied, DirectiveApplied{7, "grant.slots", "ef"}, "directive.applied",
              "directive_seq", "7");
  check_field(parse_site_note, SiteNote{"fridge checked", "coordinator", "101"}, "site.note", "text");
  const json screened = Screened{"101-001", ParticipantStatus::screened, {{"site", "101"}}, {"yes"}, "coordinator", ""};
  check_field(parse_screened, screened, "participant.screened", "factors");
  check_field(parse_screened, screened, "participant.screened", "status");
  const json randomized =
      Randomized{"101-001", "R01-0001", "V1", {"100001"}, signature(), 0, "diabetes=no", 1, {}, {}, "c2VhbGVk"};
  check_field(parse_randomized, randomized, "participant.randomized", "randomization_number");
  check_field(parse_randomized, randomized, "participant.randomized", "esignature");
  check_field(parse_randomized, randomized, "participant.randomized", "stratum_label");
  const OfflineDecisionRecord d{1, 0, 16, 1, 1, false, {0.5, 1.5}};
  check_field(parse_randomized_sealed, RandomizedSealed{"A", {{"100001", "KA"}}, d},
              "participant.randomized sealed part", "arm");
  check_field(parse_decision_record, d, "minimization decision record", "stream_end");
  check_field(parse_decision_record, d, "minimization decision record", "random_phase", "yes");
  const json dispensed = Dispensed{"101-001", "V2", {"100002"}, 31, 28, 35, "", {}, "c2VhbGVk"};
  check_field(parse_dispensed, dispensed, "kit.dispensed", "day");
  check_field(parse_dispensed, dispensed, "kit.dispensed", "window");
  check_field(parse_kit_replaced,
              KitReplaced{"101-001", "V2", "100002", "100004", KitStatus::lost, "dropped", signature(), "c2VhbGVk"},
              "kit.replaced", "new_kit");
  check_field(parse_kit_types_sealed, KitTypesSealed{{{"100004", "KA"}}}, "kit types sealed part", "kit_types");
  check_field(parse_withdrawn, Withdrawn{"101-001", "moved away", "coordinator"}, "participant.withdrawn", "reason");
  check_field(parse_completed, Completed{"101-001", "coordinator"}, "participant.completed", "role");
  check_field(parse_transfer_requested, TransferRequested{"101-001", "102", "moved", "coordinator"},
              "participant.transfer_requested", "to_site");
  check_field(parse_unblinded, Unblinded{"101-001", "anaphylaxis", signature(), "c2VhbGVk"}, "participant.unblinded",
              "sealed");
  check_field(parse_arm_sealed, ArmSealed{"A"}, "participant.unblinded sealed part", "arm");
  check_field(parse_shipment_received, ShipmentReceived{"SHP-1", {{"100001", KitStatus::received}}, {}},
              "shipment.received", "kits");
  check_field(parse_kit_quarantined, KitQuarantined{"100001", "fridge at 11 C", 11.5}, "kit.quarantined", "kit");
  check_field(parse_kit_returned, KitReturned{"100001", "101-001", 3}, "kit.returned", "units_returned");
  check_field(parse_kit_destroyed, KitDestroyed{"100001", "returned", signature()}, "kit.destroyed", "esignature");
  check_field(parse_supply_shortage, SupplyShortage{"101-001", "V2", "dispense", "", "c2VhbGVk"}, "supply.shortage",
              "operation");
  check_field(parse_shortage_sealed, ShortageSealed{{{"KA", 2, 1}}}, "supply.shortage sealed part", "shortages");
  const json handover = KitHandoverRequested{"402-N2", {"100001"}, "", "coordinator"};
  check_field(parse_kit_handover_requested, handover, "kit.handover_requested", "to_node");
  check_field(parse_kit_handover_requested, handover, "kit.handover_requested", "kits");
  CHECK(problem(parse_kit_handover_requested,
                json{{"to_node", "402-N2"}, {"kits", json::array()}, {"role", "nurse"}}) ==
        "kit.handover_requested.kits: must list at least one kit");
}

TEST_CASE("a malformed decision record in a sealed part is refused naming the nested field") {
  const OfflineDecisionRecord d{1, 0, 16, 1, 1, false, {0.5, 1.5}};
  json sealed = RandomizedSealed{"A", {}, d};
  sealed["decision"]["scores"][1] = "high";
  CHECK(problem(parse_randomized_sealed, sealed) ==
        "participant.randomized sealed part.decision.scores[1]: must be a number or null");
  sealed["decision"] = 3;
  CHECK(problem(parse_randomized_sealed, sealed) == "participant.randomized sealed part.decision: must be an object");
  // A closed arm's +inf score travels as null and comes back.
  OfflineDecisionRecord closed = d;
  closed.scores[0] = std::numeric_limits<double>::infinity();
  auto back = parse_decision_record(json(closed).dump());
  REQUIRE(back.ok());
  CHECK(std::isinf(back->scores[0]));
}

TEST_CASE("a randomization names either a list slot or a minimization decision, never both or neither") {
  json base = {{"participant", "101-001"}, {"randomization_number", "R01-0001"},
               {"esignature", signature()}, {"sealed", "x"}};
  CHECK(problem(parse_randomized, base).find("must name either a list slot") != std::string::npos);
  json both = base;
  both.update(
      {{"stratum", 0}, {"stratum_label", "diabetes=no"}, {"slot", 1}, {"stream_id", 1}, {"decision_sequence", 1}});
  CHECK(problem(parse_randomized, both).find("must name either a list slot") != std::string::npos);
  json slot_only = base;
  slot_only["slot"] = 1;
  CHECK(problem(parse_randomized, slot_only) == "participant.randomized.slot: comes with stratum");
}

TEST_CASE("a refused sealed part names the field, never the value it held") {
  auto message = problem(parse_randomized_sealed, json{{"arm", 12345}, {"kit_types", {{"100001", "KA-secret"}}}});
  CHECK(message == "participant.randomized sealed part.arm: must be a string");
  message = problem(parse_kit_types_sealed, json{{"kit_types", {{"100001", 99}}}});
  CHECK(message == "kit types sealed part.kit_types.100001: must be a string");
  CHECK(message.find("99") == std::string::npos);
}

TEST_CASE("kit and participant statuses convert to their names and back") {
  for (auto s : {KitStatus::expected, KitStatus::shipped, KitStatus::received, KitStatus::available,
                 KitStatus::damaged, KitStatus::missing, KitStatus::lost, KitStatus::quarantined, KitStatus::rejected,
                 KitStatus::dispensed, KitStatus::returned, KitStatus::destroyed, KitStatus::lost_with_node})
    CHECK(parse_kit_status(to_string(s)) == s);
  // The names are what databases and payloads hold: they never change.
  CHECK(std::string(to_string(KitStatus::lost_with_node)) == "lost_with_node");
  CHECK(std::string(to_string(ParticipantStatus::screen_failed)) == "screen_failed");
  for (auto s : {ParticipantStatus::screened, ParticipantStatus::screen_failed, ParticipantStatus::randomized,
                 ParticipantStatus::withdrawn, ParticipantStatus::completed, ParticipantStatus::transferred})
    CHECK(parse_participant_status(to_string(s)) == s);
  CHECK_FALSE(parse_kit_status("in_transit").has_value());
  CHECK_FALSE(parse_participant_status("").has_value());
}

TEST_CASE("every event payload may carry the study version it was recorded under, a whole number from 1") {
  const std::string base = R"({"participant":"101-001","reason":"moved","role":"investigator")";
  auto with = irt::shared::parse_withdrawn(base + R"(,"study_version":2})");
  CHECK(with.ok());
  CHECK(irt::shared::parse_event_study_version(base + R"(,"study_version":2})").value() == std::optional<int>(2));
  CHECK(irt::shared::parse_event_study_version(base + "}").value() == std::nullopt);
  for (const char* bad : {R"("2")", "0", "-1", "1.5"}) {
    auto r = irt::shared::parse_withdrawn(base + ",\"study_version\":" + bad + "}");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("participant.withdrawn.study_version") != std::string::npos);
  }
}

TEST_CASE("a temperature excursion carries its kits, location and readings, and refuses readings that cannot be") {
  TemperatureExcursion fridge{{"100001", "100002"}, "FRIDGE-1", 9.5, 14.0, 95, "door left open overnight"};
  auto back = round_trip(fridge, parse_temperature_excursion);
  CHECK(back.location == "FRIDGE-1");
  CHECK(back.duration_minutes == 95);
  TemperatureExcursion listed{{"100003"}, "", 2.0, 30.5, 20, "courier box opened late"};
  CHECK_FALSE(json(listed).contains("location"));
  round_trip(listed, parse_temperature_excursion);
  json j = fridge;
  j["kits"] = json::array();
  CHECK(problem(parse_temperature_excursion, j) == "kit.excursion.kits: must list at least one kit");
  j = fridge;
  j["maximum_celsius"] = 1.0;
  CHECK(problem(parse_temperature_excursion, j) == "kit.excursion.maximum_celsius: must not be below minimum_celsius");
  j = fridge;
  j["duration_minutes"] = 0;
  CHECK(problem(parse_temperature_excursion, j) == "kit.excursion.duration_minutes: must be a whole number of minutes "
                                                   "from 1");
  j = fridge;
  j.erase("minimum_celsius");
  CHECK(problem(parse_temperature_excursion, j) == "kit.excursion.minimum_celsius: is missing");
  round_trip(KitsStored{{"100001"}, "FRIDGE-1"}, parse_kits_stored);
  round_trip(KitRelabelled{"100001", "2027-06-30", "pharmacist"}, parse_kit_relabelled);
  CHECK(problem(parse_kit_relabelled, json{{"kit", "100001"}, {"expiry", "soon"}, {"role", "pharmacist"}}) ==
        "kit.relabelled.expiry: must be a date YYYY-MM-DD");
  CHECK(problem(parse_kits_stored, json{{"kits", {"100001"}}, {"location", ""}}) ==
        "kit.stored.location: must not be empty");
}

TEST_CASE("the fields added to receipts, returns and destructions are optional, so older events still read") {
  auto received = round_trip(ShipmentReceived{"SHP-1", {{"100001", KitStatus::received}}, {}, "FRIDGE-2"},
                             parse_shipment_received);
  CHECK(received.location == "FRIDGE-2");
  CHECK(parse_shipment_received(json{{"shipment", "SHP-1"}, {"kits", json::array()}}.dump())->location.empty());
  auto returned = round_trip(KitReturned{"100001", "101-001", 3, "V3"}, parse_kit_returned);
  CHECK(returned.visit == "V3");
  CHECK(parse_kit_returned(json(KitReturned{"100001", "101-001", 3}).dump())->visit.empty());
  auto witnessed = round_trip(KitDestroyed{"100001", "expired", signature(), signature()}, parse_kit_destroyed);
  CHECK(witnessed.witness.has_value());
  CHECK_FALSE(parse_kit_destroyed(json(KitDestroyed{"100001", "expired", signature()}).dump())->witness.has_value());
  json bad = KitDestroyed{"100001", "expired", signature(), signature()};
  bad["witness"].erase("signer");
  CHECK(problem(parse_kit_destroyed, bad) == "kit.destroyed.witness.signer: is missing");
}
