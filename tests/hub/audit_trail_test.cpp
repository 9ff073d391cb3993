// The audit trail as readers see it (hub/audit_trail.h): what names an arm or
// a kit type is withheld from a blinded reader and shown to an unblinded one.
// The nodes' events in the trail are tested with a real node in
// tests/integration/hub_api_test.cpp.
#include <doctest/doctest.h>

#include "hub/audit_trail.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using test::HubFixture;
using test::kHubNow;

TEST_CASE("an entry naming a kit type or an arm is withheld from a blinded reader only") {
  HubFixture f;
  auto& db = f.hub->db();
  hub::record_audit(db, {kHubNow + 1, "hub", "alert.raised", "101-N1",
                         "could not dispense for want of kits: 1 of 'Placebo matching Velcardin 25 mg, 30 tablets' (PBO)",
                         "", "supply.shortage at seq 9", ""});
  hub::record_audit(db, {kHubNow + 2, "hub", "note", "x", "", "Velcardin 25 mg once daily", "", ""});
  hub::record_audit(db, {kHubNow + 3, "hub", "note", "y", "A visit at site 101 (PBOX is not a kit type)", "", "", ""});
  hub::AuditFilter since{kHubNow + 1, "", ""};

  auto blinded = hub::audit_trail(*f.hub, since, true);
  REQUIRE(blinded.size() == 3);
  CHECK(blinded[0].withheld);
  CHECK(blinded[0].reason.find("withheld") != std::string::npos);
  CHECK(blinded[0].new_value.find("supply.shortage") == std::string::npos);
  CHECK(blinded[0].action == "alert.raised");  // what happened, when and to what stay
  CHECK(blinded[0].object == "101-N1");
  CHECK(blinded[1].withheld);
  CHECK(blinded[1].old_value.find("Velcardin") == std::string::npos);
  CHECK_FALSE(blinded[2].withheld);
  CHECK(blinded[2].reason == "A visit at site 101 (PBOX is not a kit type)");

  auto unblinded = hub::audit_trail(*f.hub, since, false);
  REQUIRE(unblinded.size() == 3);
  CHECK_FALSE(unblinded[0].withheld);
  CHECK(unblinded[0].reason.find("(PBO)") != std::string::npos);
  CHECK(hub::to_json(unblinded[0])["source"] == "hub");
}
