#include "shared/directive_payloads.h"

#include <doctest/doctest.h>

#include "shared/civil_date.h"
#include "shared/numbering.h"

using namespace irt::shared;

TEST_CASE("a shipment round-trips through its JSON and keeps every field") {
  Shipment s{"SHP-0001", "initial", "2025-03-01", {{"4821907", "VLC25", "24L101", "2026-05-31"}}};
  nlohmann::json j = s;
  CHECK(j.dump() == R"({"kind":"initial","kits":[{"expiry":"2026-05-31","kit_number":"4821907","kit_type":"VLC25",)"
                    R"("lot":"24L101"}],"shipment_id":"SHP-0001","shipped_on":"2025-03-01"})");
  auto back = parse_shipment(j.dump());
  REQUIRE(back.ok());
  CHECK(back->kits[0].kit_type == "VLC25");
  CHECK(back->kits[0].expiry == "2026-05-31");
}

TEST_CASE("a shipment with a bad expiry or a repeated kit names the field") {
  auto bad_date = parse_shipment(R"({"shipment_id":"S1","kits":[{"kit_number":"1","kit_type":"A","expiry":"2025-02-30"}]})");
  REQUIRE_FALSE(bad_date.ok());
  CHECK(bad_date.error().message.rfind("shipment.kits[0].expiry: not a date YYYY-MM-DD", 0) == 0);
  auto repeated = parse_shipment(
      R"({"shipment_id":"S1","kits":[{"kit_number":"1","kit_type":"A","expiry":"2025-02-28"},)"
      R"({"kit_number":"1","kit_type":"A","expiry":"2025-02-28"}]})");
  CHECK(repeated.error().message.rfind("shipment.kits[1].kit_number: repeated", 0) == 0);
  CHECK_FALSE(parse_shipment("[1]").ok());
}

TEST_CASE("slot grants reuse the slice ledger's grant shape") {
  GrantSlots g{1, {{"101-N1", 3, 1, "site=101;diabetes=no", {{1, 1, 4, "A"}, {2, 1, 4, "B"}}}}, {}};
  nlohmann::json j = g;
  auto back = parse_grant_slots(j.dump());
  REQUIRE(back.ok());
  CHECK(back->grants == g.grants);
  auto dup = j;
  dup["grants"][0]["slots"][1]["slot"] = 1;
  CHECK_FALSE(parse_grant_slots(dup.dump()).ok());
}

TEST_CASE("number ranges format participant numbers with the site prefix") {
  auto r = parse_number_range(R"({"range_id":1,"prefix":"101","first":4,"last":50})");
  REQUIRE(r.ok());
  CHECK(format_participant_number(r->prefix, r->digits, 4) == "101-004");
  CHECK_FALSE(parse_number_range(R"({"range_id":1,"prefix":"101","first":5,"last":4})").ok());
}

TEST_CASE("a minimization stream needs a 32-byte hex seed") {
  MinimizationStreamGrant g{1, std::string(64, 'a'), 10, 0, {{{0, 0}, {0, 0}}}};
  nlohmann::json j = g;
  CHECK(parse_minimization_stream(j.dump()).ok());
  j["seed"] = "abc";
  CHECK_FALSE(parse_minimization_stream(j.dump()).ok());
}

TEST_CASE("cap allowances round-trip and refuse a stratum scope, a bad id or a cap named twice") {
  CapAllowanceGrant g{{{CapScope::arm, "B", 3}, {CapScope::cohort, "pk", 5}}};
  nlohmann::json j = g;
  CHECK(j.dump() == R"({"allowances":[{"granted":3,"id":"B","scope":"arm"},{"granted":5,"id":"pk","scope":"cohort"}]})");
  auto back = parse_cap_allowance(j.dump());
  REQUIRE(back.ok());
  REQUIRE(back->allowances.size() == 2);
  CHECK(back->allowances[0].scope == CapScope::arm);
  CHECK(back->allowances[1].granted == 5);
  auto stratum = parse_cap_allowance(R"({"allowances":[{"scope":"stratum","id":"x","granted":1}]})");
  CHECK(stratum.error().message.rfind("grant.cap_allowance.allowances[0].scope: must be arm or cohort", 0) == 0);
  auto twice = parse_cap_allowance(
      R"({"allowances":[{"scope":"arm","id":"B","granted":1},{"scope":"arm","id":"B","granted":2}]})");
  CHECK(twice.error().message.rfind("grant.cap_allowance.allowances[1]: names the same cap twice", 0) == 0);
  auto bad_id = parse_cap_allowance(R"({"allowances":[{"scope":"arm","id":"a b","granted":1}]})");
  CHECK(bad_id.error().message.find("a b") == std::string::npos);  // an arm field's value is never quoted back
  CHECK_FALSE(parse_cap_allowance(R"({"allowances":[{"scope":"arm","id":"B","granted":-1}]})").ok());
  CHECK_FALSE(parse_cap_allowance(R"({"allowances":{}})").ok());
}

TEST_CASE("kit decisions list kit numbers") {
  CHECK(parse_kit_decision(R"({"decision_id":1,"kits":["123"],"reason":"ok"})").ok());
  CHECK_FALSE(parse_kit_decision(R"({"kits":[]})").ok());
  CHECK_FALSE(parse_kit_decision(R"({"kits":["12a"]})").ok());
}

TEST_CASE("civil dates convert both ways and refuse impossible days") {
  CHECK(parse_date("1970-01-01") == 0);
  CHECK(parse_date("2024-02-29").has_value());
  CHECK_FALSE(parse_date("2023-02-29").has_value());
  CHECK(format_date(*parse_date("2031-12-31") + 1) == "2032-01-01");
  CHECK(day_of_millis(-1) == -1);
}

TEST_CASE("a kits.handover answer round-trips, and a malformed one is refused naming the field") {
  KitHandover h{42, "402-N2", {"4821907", "5133068"}, "moved", ""};
  nlohmann::json j = h;
  auto back = parse_kit_handover(j.dump());
  REQUIRE(back.ok());
  CHECK(back->request_seq == 42);
  CHECK(back->to_node == "402-N2");
  CHECK(back->kits == h.kits);
  CHECK(back->outcome == "moved");
  j["outcome"] = "lost";
  CHECK(parse_kit_handover(j.dump()).error().message.find("kits.handover.outcome") != std::string::npos);
  j["outcome"] = "refused";
  j["kits"] = nlohmann::json::array();
  CHECK(parse_kit_handover(j.dump()).error().message.find("kits.handover.kits") != std::string::npos);
  j["kits"] = {"A1"};
  CHECK_FALSE(parse_kit_handover(j.dump()).ok());
  j.erase("request_seq");
  CHECK_FALSE(parse_kit_handover(j.dump()).ok());
}

TEST_CASE("a kits.at_depot report round-trips, and a condition other than received, damaged or missing is refused") {
  KitsAtDepot d{"RET-301-N1-57", "DE-FRA", {{"4821907", KitStatus::received}, {"5133068", KitStatus::missing}}};
  nlohmann::json j = d;
  auto back = parse_kits_at_depot(j.dump());
  REQUIRE_MESSAGE(back.ok(), back.error().message);
  CHECK(back->shipment_id == "RET-301-N1-57");
  CHECK(back->depot == "DE-FRA");
  REQUIRE(back->kits.size() == 2);
  CHECK(back->kits[1].kit == "5133068");
  CHECK(back->kits[1].condition == KitStatus::missing);
  j["kits"][0]["condition"] = "dispensed";
  CHECK(parse_kits_at_depot(j.dump()).error().message.find("kits.at_depot.kits[].condition") == 0);
  j["kits"] = nlohmann::json::array();
  CHECK(parse_kits_at_depot(j.dump()).error().message.find("kits.at_depot.kits") == 0);
  j["kits"] = {{{"kit", "A1"}, {"condition", "received"}}};
  CHECK_FALSE(parse_kits_at_depot(j.dump()).ok());
  j.erase("depot");
  CHECK_FALSE(parse_kits_at_depot(j.dump()).ok());
}

TEST_CASE("a lease round-trips, and a lease without an id or with a time that is not an integer is refused") {
  RandomizationLease l{2, 1768435200000, "renewed at sync"};
  nlohmann::json j = l;
  CHECK(j.dump() == R"({"lease_id":2,"reason":"renewed at sync","until_ms":1768435200000})");
  auto back = parse_lease(j.dump());
  REQUIRE(back.ok());
  CHECK(back->lease_id == 2);
  CHECK(back->until_ms == 1768435200000);
  CHECK(back->reason == "renewed at sync");
  CHECK(parse_lease(R"({"lease_id":0,"until_ms":1})").error().message.find("grant.lease.lease_id") == 0);
  CHECK(parse_lease(R"({"until_ms":1})").error().message.find("grant.lease") == 0);
  CHECK(parse_lease(R"({"lease_id":1,"until_ms":"tomorrow"})").error().message.find("grant.lease.until_ms") == 0);
  CHECK(parse_lease(R"({"lease_id":1,"until_ms":1.5})").error().code == Errc::invalid_input);
  CHECK(parse_lease("[]").error().code == Errc::invalid_input);
}

TEST_CASE("a participant.transfer decision round-trips, and a malformed one is refused naming the field") {
  ParticipantTransferDecision d{3, 57, "101-004", "102", "approved", "102-N1", {"4821907"}, "agreed", "manager.ines"};
  nlohmann::json j = d;
  auto back = parse_participant_transfer(j.dump());
  REQUIRE(back.ok());
  CHECK(back->transfer_id == 3);
  CHECK(back->request_seq == 57);
  CHECK(back->participant == "101-004");
  CHECK(back->to_node == "102-N1");
  CHECK(back->kits == d.kits);
  CHECK(back->decided_by == "manager.ines");
  j["to_node"] = "";
  CHECK(parse_participant_transfer(j.dump()).error().message.find("participant.transfer.to_node") != std::string::npos);
  j["outcome"] = "rejected";
  CHECK(parse_participant_transfer(j.dump()).ok());
  j["outcome"] = "maybe";
  CHECK(parse_participant_transfer(j.dump()).error().message.find("participant.transfer.outcome") != std::string::npos);
  j["outcome"] = "rejected";
  j["kits"] = {"A1"};
  CHECK_FALSE(parse_participant_transfer(j.dump()).ok());
}

TEST_CASE("a participant.transfer_in record round-trips, and names the field it refuses, never a value") {
  ParticipantTransferIn t;
  t.transfer_id = 3;
  t.participant = "101-004";
  t.from_site = "101";
  t.from_node = "101-N1";
  t.status = ParticipantStatus::randomized;
  t.factors = {{"diabetes", "yes"}};
  t.eligibility = {"yes", "yes"};
  t.screened_on = "2026-03-02";
  t.study_version = 2;
  t.randomization_number = "R01-0003";
  t.randomized_on = "2026-03-16";
  t.arm = "A";
  t.stratum = 1;
  t.visits = {{"V1", "2026-03-16", {"4821907"}, "", "", "ana"}, {"V2", "2026-04-13", {}, "", "ill", "ana"}};
  t.kits = {{"4821907", "VLC25", "L01", "2027-12-31", "V1"}};
  nlohmann::json j = t;
  auto back = parse_participant_transfer_in(j.dump());
  REQUIRE(back.ok());
  CHECK(back->arm == "A");
  CHECK(back->stratum == 1u);
  CHECK(back->study_version == 2);
  REQUIRE(back->visits.size() == 2);
  CHECK(back->visits[1].missed_reason == "ill");
  REQUIRE(back->kits.size() == 1);
  CHECK(back->kits[0].kit_type == "VLC25");
  CHECK(back->kits[0].visit == "V1");

  auto bad = j;
  bad["arm"] = "";
  auto refused = parse_participant_transfer_in(bad.dump());
  CHECK(refused.error().message.find("participant.transfer_in.arm") != std::string::npos);
  bad = j;
  bad["status"] = "withdrawn";
  CHECK(parse_participant_transfer_in(bad.dump()).error().message.find("participant.transfer_in.status") !=
        std::string::npos);
  bad = j;
  bad["kits"][0]["expiry"] = "VLC25";
  refused = parse_participant_transfer_in(bad.dump());
  CHECK(refused.error().message.find("participant.transfer_in.kits[0].expiry") != std::string::npos);
  CHECK(refused.error().message.find("VLC25") == std::string::npos);
}

TEST_CASE("a directive's whole numbers are refused as fractions, negative or out of range, never wrapped") {
  // 4294967297 read as a uint32_t was 1; 2e89 was undefined behaviour (the fuzz harness found it).
  for (const char* last : {"4294967297", "2.0333e89", "-1", "12.5", "\"12\""}) {
    auto r = parse_number_range(std::string(R"({"range_id":1,"prefix":"101","first":1,"last":)") + last + "}");
    REQUIRE_FALSE_MESSAGE(r.ok(), last);
    CHECK(r.error().code == Errc::invalid_input);
    CHECK(r.error().message.rfind("grant.numbers: missing or mistyped field", 0) == 0);
  }
  CHECK(parse_number_range(R"({"range_id":1,"prefix":"101","first":1,"last":4294967295})").ok());
  for (const char* slot : {"1e300", "-2", "4294967296"}) {
    auto g = parse_grant_slots(std::string(R"({"study_version":1,"grants":[{"node":"101-N1","grant_id":7,"stratum":1,)") +
                               R"("stratum_label":"s","slots":[{"slot":)" + slot + R"(,"block":1,"block_size":4,"arm":"A"}]}]})");
    CHECK_FALSE_MESSAGE(g.ok(), slot);
  }
  CHECK_FALSE(parse_grant_slots(R"({"study_version":1,"grants":[],"voids":[{"node":"N","stratum":1,"slots":[1.5]}]})").ok());
  CHECK_FALSE(parse_lease(R"({"lease_id":1,"until_ms":18446744073709551615})").ok());
}
