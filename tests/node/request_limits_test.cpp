#include "node/request_limits.h"

#include <doctest/doctest.h>

#include "sync/field_limits.h"

using namespace irt;
using nlohmann::json;

namespace {

std::string refusal(const json& body) {
  auto st = node::check_request_fields(body);
  return st.ok() ? "" : st.error().message;
}

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

TEST_CASE("characters are UTF-8 code points, and a stray byte counts as one") {
  CHECK(node::utf8_length("") == 0);
  CHECK(node::utf8_length("abc") == 3);
  CHECK(node::utf8_length("\xc3\xa9t\xc3\xa9") == 3);           // été
  CHECK(node::utf8_length("\xe2\x82\xac") == 1);                 // €
  CHECK(node::utf8_length("\xf0\x9f\x92\x8a") == 1);             // a four-byte emoji
  CHECK(node::utf8_length(std::string(10, '\x80')) == 10);       // continuation bytes alone
  CHECK(node::utf8_length("\xc3") == 1);                         // a truncated sequence
  CHECK(node::utf8_length(std::string(5, '\xf0')) == 5);         // lead bytes without continuation
}

TEST_CASE("free text, ids and lists are refused over their limits, naming the field, the limit and the size") {
  CHECK(refusal({{"reason", std::string(2000, 'x')}}).empty());
  CHECK(refusal({{"reason", repeat("\xc3\xa9", 2000)}}).empty());  // 4000 bytes, 2000 characters
  CHECK(refusal({{"reason", std::string(2001, 'x')}}) == "reason: at most 2000 characters (got 2001); shorten it");
  // Every password is free text: a witness's as long as the signer's.
  for (const char* password : {"password", "signature_password", "witness_password"})
    CHECK_MESSAGE(refusal({{password, std::string(100, 'x')}}).empty(), password);
  CHECK(refusal({{"screen_failure_reason", std::string(1 << 20, 'x')}}) ==
        "screen_failure_reason: at most 2000 characters (got 1048576); shorten it");
  CHECK(refusal({{"visit", std::string(64, 'v')}}).empty());
  CHECK(refusal({{"visit", std::string(65, 'v')}}) == "visit: at most 64 characters (got 65); shorten it");
  CHECK(refusal({{"factors", {{"diabetes", std::string(65, 'y')}}}}) ==
        "factors.diabetes: at most 64 characters (got 65); shorten it");
  CHECK(refusal({{"factors", {{std::string(65, 'f'), "no"}}}}) == "factors key: at most 64 characters (got 65); shorten it");
  CHECK(refusal({{"kits", {{{"kit", "K1"}, {"condition", std::string(65, 'c')}}}}}) ==
        "kits[0].condition: at most 64 characters (got 65); shorten it");
  CHECK(refusal({{"eligibility", std::vector<std::string>(sync::kMaxListItems, "yes")}}).empty());
  CHECK(refusal({{"eligibility", std::vector<std::string>(sync::kMaxListItems + 1, "yes")}}) ==
        "eligibility: at most 500 items (got 501); send the rest in another request");
  CHECK(refusal(json::parse(R"({"kits": [{"kit": [{"a": [1]}]}]})")) ==
        "kits[0].kit[0]: nested deeper than any request of this API; see docs/openapi.yaml");
  CHECK(refusal({{"units_returned", 3}, {"temperature_celsius", 9.5}}).empty());
}
