#include "node/request_body.h"

#include <doctest/doctest.h>

#include <limits>

using namespace irt;

namespace {

// The refusal of a body's whole number `field`, "" when it reads as `expected`.
std::string whole_number_refusal(const std::string& body, const char* field, std::optional<std::int64_t> expected) {
  node::RequestBody b(body);
  auto n = b.whole_number(field, 0, std::numeric_limits<int>::max());
  if (!b.ok()) return b.error().message;
  CHECK(n == expected);
  return "";
}

}  // namespace

TEST_CASE("a whole number field refuses a fraction and a number outside its range, naming the field") {
  CHECK(whole_number_refusal(R"({"units_returned": 3})", "units_returned", 3) == "");
  CHECK(whole_number_refusal(R"({"units_returned": 0})", "units_returned", 0) == "");
  CHECK(whole_number_refusal("{}", "units_returned", std::nullopt) == "");
  CHECK(whole_number_refusal(R"({"units_returned": null})", "units_returned", std::nullopt) == "");
  const std::string range = "units_returned: must be a whole number from 0 to 2147483647";
  CHECK(whole_number_refusal(R"({"units_returned": 2.5})", "units_returned", std::nullopt) == range);
  CHECK(whole_number_refusal(R"({"units_returned": -1})", "units_returned", std::nullopt) == range);
  CHECK(whole_number_refusal(R"({"units_returned": 2147483648})", "units_returned", std::nullopt) == range);
  // Far outside any integer type: converting it would be undefined behaviour
  // (the sanitizer build stops on it), so it is refused before.
  CHECK(whole_number_refusal(R"({"units_returned": 1e300})", "units_returned", std::nullopt) == range);
  CHECK(whole_number_refusal(R"({"units_returned": -1e19})", "units_returned", std::nullopt) == range);
  CHECK(whole_number_refusal(R"({"units_returned": "3"})", "units_returned", std::nullopt) ==
        "units_returned: must be a number");
}

TEST_CASE("a request body reads kit lists and strings, and keeps the first problem") {
  node::RequestBody good(R"({"kits": ["4821907", "5133068"], "location": "fridge 2"})");
  CHECK(good.kits("kits") == std::vector<std::string>{"4821907", "5133068"});
  CHECK(good.text("location") == "fridge 2");
  CHECK(good.text("reason").empty());
  CHECK(good.ok());

  node::RequestBody bad(R"({"kits": ["4821907", 7], "location": 3})");
  CHECK(bad.kits("kits").empty());
  CHECK(bad.text("location").empty());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "kits: must be a list of kit numbers");

  for (const char* body : {"[1]", "not json", "\"text\""}) {
    node::RequestBody b(body);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message == "the request body must be a JSON object");
  }
  CHECK(node::RequestBody("").ok());
}
