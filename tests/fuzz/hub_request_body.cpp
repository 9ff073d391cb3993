// A request body of the hub's API as its routes read it (hub/api_server.h
// ApiBody): at most kMaxApiRequestBody bytes and a JSON object (the server
// refuses anything else before a route runs), then the reads of each route's
// handler (hub/api_*.cpp) and finish(). A refusal is a clean invalid_input;
// an accepted body gave ids of 1 to kMaxIdChars characters, texts of 1 to
// kMaxTextChars, and no field that was not read.
#include <limits>

#include "hub/api_server.h"
#include "hub/depot_shipments.h"
#include "hub/tuning.h"
#include "sync/field_limits.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;

namespace {

// One route's reads, as "kind:field" (kinds: id, ids, text, optional_text,
// document, flag, whole (1 to INT_MAX), receipts (hub/depot_shipments.h),
// signature): the handlers of hub/api_*.cpp.
const std::vector<std::vector<std::string>> kHubRouteReads = {
    {"id:user", "text:password"},                                                        // login
    {},                                                                                  // logout, versions
    {"document:document", "flag:dry_run", "optional_text:reason", "signature:"},         // amendments
    {"id:format", "text:reason", "signature:"},                                          // unblinded export
    {"ids:kits", "text:reason", "signature:"},                                           // kit decisions
    {"text:reason", "signature:"},                                                       // revoke, transfers, ...
    {"text:comment", "signature:"},                                                      // acknowledge
    {"id:from_depot", "id:to_depot", "ids:kits", "id:kit_type", "whole:count", "optional_text:reason",
     "signature:"},                                                                      // depot transfer
    {"receipts:kits", "optional_text:reason", "signature:"},                             // depot receipt
    {"id:courier", "id:tracking", "optional_text:reason", "signature:"},                 // shipment steps
    {"id:lot", "id:expiry", "optional_text:reason"},                                     // lot add
    {"ids:countries", "text:reason", "signature:"},                                      // lot release
    {"id:expiry", "text:reason", "signature:"},                                          // lot relabel
    {"optional_text:site"},                                                              // supply run
    {"id:name", "id:role", "ids:sites", "text:password"},                                // user add
    {"text:password", "signature:"},                                                     // user password
    {"ids:sites", "signature:"},                                                         // user sites
};

// Characters as the hub counts them: the bytes that start a UTF-8 sequence.
std::size_t hub_char_count(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void check_chars(const std::string& field, const std::string& value, std::size_t max_chars) {
  auto n = hub_char_count(value);
  FUZZ_CHECK(n >= 1 && n <= max_chars, field + ": " + std::to_string(n) + " characters");
}

void check_route_reads(const nlohmann::json& parsed, const std::vector<std::string>& reads) {
  hub::ApiBody body(parsed);
  std::vector<std::pair<std::string, std::size_t>> strings;  // what was read, with its limit
  for (const auto& read : reads) {
    auto colon = read.find(':');
    auto kind = read.substr(0, colon), field = read.substr(colon + 1);
    if (kind == "id") strings.emplace_back(body.id(field), sync::kMaxIdChars);
    else if (kind == "text") strings.emplace_back(body.text(field), sync::kMaxTextChars);
    else if (kind == "optional_text") {
      if (auto t = body.optional_text(field)) strings.emplace_back(*t, sync::kMaxTextChars);
    } else if (kind == "document") strings.emplace_back(body.document(field), hub::kMaxApiRequestBody);
    else if (kind == "flag") (void)body.optional_flag(field);
    else if (kind == "whole") {
      auto n = body.optional_whole(field, 1, std::numeric_limits<int>::max());
      FUZZ_CHECK(!n || (*n >= 1 && *n <= std::numeric_limits<int>::max()), std::to_string(*n));
    } else if (kind == "receipts") {
      const auto* listed = body.optional_value(field);
      auto receipts = hub::depot_receipts_from_json(listed ? *listed : nlohmann::json());
      if (!receipts) fuzz::check_clean_error(receipts.error());
    }
    else if (kind == "signature") strings.emplace_back(body.signature_password(), sync::kMaxTextChars);
    else if (kind == "ids") {
      auto list = body.ids(field);
      FUZZ_CHECK(list.size() <= sync::kMaxListItems, std::to_string(list.size()) + " items");
      for (const auto& item : list) strings.emplace_back(item, sync::kMaxIdChars);
    }
  }
  auto done = body.finish();
  if (!done) {
    fuzz::check_clean_error(done.error());
    FUZZ_CHECK(done.error().code == shared::Errc::invalid_input, done.error().message);
    return;
  }
  for (const auto& [value, limit] : strings) check_chars("a field", value, limit);
  for (const auto& [key, value] : parsed.items()) {
    bool read = false;
    for (const auto& r : reads) read = read || r.substr(r.find(':') + 1) == key || (key == "signature" && r == "signature:");
    FUZZ_CHECK(read || value.is_null(), "finish() accepted the unread field " + key);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > hub::kMaxApiRequestBody) return 0;
  auto parsed = nlohmann::json::parse(fuzz::input_text(data, size), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return 0;
  for (const auto& reads : kHubRouteReads) check_route_reads(parsed, reads);
  return 0;
}
