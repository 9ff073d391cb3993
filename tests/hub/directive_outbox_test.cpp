// The directive outbox: per-node sequences, signed records, pulls after a seq.
#include <doctest/doctest.h>

#include "hub/directive_outbox.h"
#include "sync/directive.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"

using namespace irt;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;

TEST_CASE("directives are numbered per node from 1, signed by the hub, and ordered by their clock") {
  HubFixture f;
  auto& out = f.hub->outbox();
  CHECK(out.issue("101-N1", "roster", R"({"users":[]})", kHubNow) == 1);
  CHECK(out.issue("101-N1", "roster", R"({"users":[]})", kHubNow) == 2);
  CHECK(out.issue("102-N1", "roster", R"({"users":[]})", kHubNow) == 1);
  // A clock that went backwards still yields a later HLC.
  CHECK(out.issue("101-N1", "study.config", "{}", kHubNow - 5000) == 3);
  auto records = out.after("101-N1", 0, 10);
  REQUIRE(records.size() == 3);
  std::uint64_t last_hlc = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto d = sync::parse_directive(records[i]);
    REQUIRE(d.ok());
    CHECK(d->body.node_id == "101-N1");
    CHECK(d->body.seq == i + 1);
    CHECK(d->body.hlc > last_hlc);
    last_hlc = d->body.hlc;
    CHECK(sync::verify_directive(*d, f.hub->signing_key().public_key()));
  }
}

TEST_CASE("a pull returns only directives after the given seq, up to the limit") {
  HubFixture f;
  auto& out = f.hub->outbox();
  for (int i = 0; i < 5; ++i) out.issue("101-N1", "roster", "{}", kHubNow);
  CHECK(out.after("101-N1", 3, 10).size() == 2);
  CHECK(out.after("101-N1", 5, 10).empty());
  auto two = out.after("101-N1", 0, 2);
  REQUIRE(two.size() == 2);
  CHECK(sync::parse_directive(two[1])->body.seq == 2);
  CHECK(out.after("999-N1", 0, 10).empty());
  CHECK(out.last_seq("101-N1") == 5);
}

TEST_CASE("a node that applied directives the outbox no longer holds gets its next one numbered above them") {
  HubFixture f;
  auto& out = f.hub->outbox();
  for (int i = 0; i < 3; ++i) out.issue("101-N1", "roster", "{}", kHubNow);
  storage::Transaction tx(f.hub->db());
  CHECK(out.continue_above("101-N1", 2) == 3);  // not beyond what it holds: nothing changes
  CHECK(out.last_seq("101-N1") == 3);
  CHECK(out.continue_above("101-N1", 7) == 3);  // 4 to 7 were lost (a restore from an older backup)
  CHECK(out.last_seq("101-N1") == 7);
  CHECK(out.continue_above("101-N1", 7) == 7);
  CHECK(out.issue("101-N1", "roster", "{}", kHubNow) == 8);
  CHECK(out.issue("102-N1", "roster", "{}", kHubNow) == 1);  // other nodes keep their own numbering
  tx.commit();
  auto after = out.after("101-N1", 7, 10);
  REQUIRE(after.size() == 1);
  CHECK(sync::parse_directive(after[0])->body.seq == 8);
}

TEST_CASE("the outbox holds no arm, kit type or password hash: they are sealed to the node, which alone opens them") {
  HubFixture f;
  f.add_user("coordinator.ana", "coordinator", {"101"});
  TestNode n = test::enroll(f, "101");  // study, roster, numbers, slots, initial shipment, lease
  // What an insider reading the table sees.
  auto st = f.hub->db().prepare("SELECT type, record FROM hub_directives WHERE node_id = ?");
  st.bind(1, n.id);
  std::vector<std::string> types;
  while (st.step()) {
    types.push_back(st.text(0));
    auto record = st.blob(1);
    std::string text(record.begin(), record.end());
    std::vector<std::string> secrets = {"\"arm\"", "$argon2id$", "\"document\""};
    for (const auto& kt : f.hub->study().kit_types) secrets.push_back("\"" + kt.id + "\"");
    for (const auto& arm : f.hub->study().arms) secrets.push_back(arm.name);
    for (const auto& secret : secrets) {
      const std::string what = types.back() + ": " + secret;
      CHECK_MESSAGE(text.find(secret) == std::string::npos, what);
    }
  }
  for (const char* sealed : {"study.config", "roster", "grant.slots", "shipment"})
    CHECK(std::find(types.begin(), types.end(), sealed) != types.end());

  // The node's key opens them, with every field back in place.
  auto slots = test::directives(f, n.id, shared::kGrantSlotsDirective);
  REQUIRE(slots.size() == 1);
  for (const auto& slot : slots[0]["grants"][0]["slots"]) CHECK(slot["arm"].is_string());
  auto shipment = test::directives(f, n.id, shared::kShipmentDirective);
  REQUIRE(shipment.size() == 1);
  for (const auto& kit : shipment[0]["kits"]) {
    CHECK(kit["kit_type"].is_string());
    CHECK(kit["lot"].is_string());
    CHECK(kit["kit_number"].is_string());
  }
  auto roster = test::directives(f, n.id, "roster");
  REQUIRE(roster.size() == 1);
  CHECK(roster[0]["users"][0]["password_hash"].get<std::string>().rfind("$argon2id$", 0) == 0);
  CHECK(test::directives(f, n.id, "study.config")[0]["document"] == f.hub->study_document());

  // Another node's key does not.
  auto record = f.hub->outbox().after(n.id, 0, 10).at(1);
  auto roster_directive = sync::parse_directive(record);
  REQUIRE(roster_directive.ok());
  auto other = crypto::BoxKeyPair::from_signing_key(crypto::SigningKey::generate());
  auto refused = sync::open_sealed_fields(crypto::to_string(roster_directive->body.payload), other);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::integrity);
}

TEST_CASE("a directive with fields to seal for a node the hub does not know is not issued") {
  HubFixture f;
  CHECK_THROWS_AS(f.hub->outbox().issue("999-N9", "roster", R"({"users":[{"name":"x","password_hash":"h"}]})", kHubNow),
                  std::invalid_argument);
  CHECK(f.hub->outbox().last_seq("999-N9") == 0);
  // Nothing to seal: issued as given.
  CHECK(f.hub->outbox().issue("999-N9", "roster", R"({"users":[]})", kHubNow) == 1);
}
