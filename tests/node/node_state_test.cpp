#include "node/node_state.h"

#include <doctest/doctest.h>

#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;

TEST_CASE("an opened node bounds SQLite's page cache of node.db to kPageCacheKiB") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  auto state = fixture.open();
  auto st = state->db().prepare("PRAGMA cache_size");
  REQUIRE(st.step());
  CHECK(st.int64(0) == -node::NodeState::kPageCacheKiB);  // negative: KiB rather than pages
}

TEST_CASE("a node opens a directive's sealed fields, and refuses one whose sealed part does not open, applying nothing") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  auto state = fixture.open();
  auto kit = [](const std::string& number) {
    return shared::ShipmentKit{number, "PBO", "L01", "2030-12-31"};
  };
  auto shipment = [&](const std::string& id, const std::string& number) {
    shared::Shipment s;
    s.shipment_id = id;
    s.kind = "resupply";
    s.kits = {kit(number)};
    return nlohmann::json(s).dump();
  };
  const auto node_key = crypto::box_key_of(state->key().public_key());
  REQUIRE(node_key);

  // Sealed to this node: the kit type is not in the payload, and the node holds it.
  auto sealed = sync::seal_fields(shared::kShipmentDirective, shipment("SHP-S1", "9000001"), node_key);
  CHECK(sealed.find("PBO") == std::string::npos);
  CHECK(sealed.find("\"sealed\"") != std::string::npos);
  REQUIRE(fixture.send_sealed(*state, std::string(shared::kShipmentDirective), sealed).ok());
  REQUIRE(state->domain().find_kit("9000001") != nullptr);
  CHECK(state->domain().find_kit("9000001")->kit_type == "PBO");
  const auto applied = state->log().applied_directive_seq();

  // One byte of the sealed box changed (the hub's signature still holds):
  // refused naming the directive, nothing applied, the cursor where it was.
  auto tampered = nlohmann::json::parse(sync::seal_fields(shared::kShipmentDirective, shipment("SHP-S2", "9000002"),
                                                          node_key));
  auto box = crypto::from_base64(tampered["sealed"].get<std::string>());
  REQUIRE(box);
  (*box)[box->size() / 2] ^= 0x01;
  tampered["sealed"] = crypto::to_base64(*box);
  auto refused = fixture.send_sealed(*state, std::string(shared::kShipmentDirective), tampered.dump());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::integrity);
  CHECK(refused.error().message.find("sealed fields do not open with this node's key") != std::string::npos);
  CHECK(refused.error().message.find("shipment") != std::string::npos);
  CHECK(state->domain().find_kit("9000002") == nullptr);
  CHECK(state->domain().shipments().count("SHP-S2") == 0);
  CHECK(state->log().applied_directive_seq() == applied);

  // Sealed to another node's key: refused alike.
  auto other = crypto::box_key_of(crypto::SigningKey::generate().public_key());
  auto elsewhere = fixture.send_sealed(*state, std::string(shared::kShipmentDirective),
                                       sync::seal_fields(shared::kShipmentDirective, shipment("SHP-S3", "9000003"), other));
  REQUIRE_FALSE(elsewhere.ok());
  CHECK(state->domain().find_kit("9000003") == nullptr);
  CHECK(state->log().applied_directive_seq() == applied);
}
