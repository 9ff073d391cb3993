// A request body of the node's API as its routes read it (node/request_body.h):
// at most kMaxRequestBody bytes (the server refuses more before reading), then
// every field a route reads, as that route reads it. A refusal is a clean
// invalid_input; an accepted body holds no string over its limit
// (node/request_limits.h) and no whole number outside its range.
#include <limits>
#include <utility>
#include <vector>

#include "node/request_body.h"
#include "node/request_limits.h"
#include "node/tuning.h"
#include "sync/field_limits.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;

namespace {

// The free-text fields (reasons, passwords) and the ids the routes read
// (node/api_server.cpp).
const char* const kNodeTextFields[] = {"reason", "screen_failure_reason", "override_reason", "order_reason",
                                       "password", "signature_password", "witness_password"};
const char* const kNodeIdFields[] = {"user", "cohort", "courier", "depot", "location", "outcome", "replace_condition",
                                     "replace_kit", "to_node", "to_site", "tracking", "visit", "witness"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > node::kMaxRequestBody) return 0;
  node::RequestBody b{std::string(fuzz::input_text(data, size))};
  std::vector<std::pair<std::string, std::size_t>> strings;  // what the routes read, with its limit
  for (const char* field : kNodeTextFields) strings.emplace_back(b.text(field), sync::kMaxTextChars);
  for (const char* field : kNodeIdFields) strings.emplace_back(b.text(field), sync::kMaxIdChars);
  for (const char* field : {"temperature_celsius", "minimum_celsius", "maximum_celsius"}) (void)b.number(field);
  auto units = b.whole_number("units_returned", 0, std::numeric_limits<int>::max());
  FUZZ_CHECK(!units || (*units >= 0 && *units <= std::numeric_limits<int>::max()), std::to_string(*units));
  auto minutes = b.whole_number("duration_minutes", -node::kMaxExactWhole, node::kMaxExactWhole);
  FUZZ_CHECK(!minutes || (*minutes >= -node::kMaxExactWhole && *minutes <= node::kMaxExactWhole),
             std::to_string(*minutes));
  auto kits = b.kits("kits");
  for (const auto& k : kits) strings.emplace_back(k, sync::kMaxIdChars);
  const auto& factors = b.raw("factors");
  if (factors.is_object())
    for (const auto& [id, level] : factors.items()) {
      strings.emplace_back(id, sync::kMaxIdChars);
      if (level.is_string()) strings.emplace_back(level.get<std::string>(), sync::kMaxIdChars);
    }
  if (!b.ok()) {
    fuzz::check_clean_error(b.error());
    FUZZ_CHECK(b.error().code == shared::Errc::invalid_input, b.error().message);
    return 0;
  }
  // Accepted: within the limits of node/request_limits.h.
  FUZZ_CHECK(kits.size() <= sync::kMaxListItems, std::to_string(kits.size()) + " kits");
  for (const auto& [value, limit] : strings)
    FUZZ_CHECK(node::utf8_length(value) <= limit, std::to_string(node::utf8_length(value)) + " characters, over " +
                                                      std::to_string(limit));
  return 0;
}
