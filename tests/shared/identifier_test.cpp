#include "shared/identifier.h"

#include <doctest/doctest.h>

#include <string>

#include "shared/directive_payloads.h"

using namespace irt::shared;

TEST_CASE("an id is 1 to 64 characters of letters, digits, dot, underscore and hyphen, not led by a symbol") {
  CHECK(is_id("SHP-000123"));
  CHECK(is_id("site_101.b"));
  CHECK(is_id(std::string(64, 'a')));
  CHECK_FALSE(is_id(""));
  CHECK_FALSE(is_id(std::string(65, 'a')));
  CHECK_FALSE(is_id("-101"));
  CHECK_FALSE(is_id(".hidden"));
  CHECK_FALSE(is_id("site 101"));
  CHECK_FALSE(is_id("site/101"));
}

TEST_CASE("directive payloads use the study's id rule") {
  auto shipment = [](const std::string& id) {
    return parse_shipment(R"({"shipment_id":")" + id +
                          R"(","kits":[{"kit_number":"100001","kit_type":"KA","expiry":"2030-01-31"}]})");
  };
  CHECK(shipment("SHP-1").ok());
  auto refused = shipment("-SHP-1");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("shipment.shipment_id") != std::string::npos);
}
