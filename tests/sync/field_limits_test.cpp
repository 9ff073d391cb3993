#include "sync/field_limits.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "sync/event.h"

using namespace irt;
using nlohmann::json;

namespace {

// A field of `chars` characters, each as large as JSON can make one: a
// control character, written "\u0001".
std::string worst_text(std::size_t chars) { return std::string(chars, '\x01'); }

}  // namespace

TEST_CASE("the worst-case event built from maximal fields fits the record limit the hub enforces") {
  // The shape sync/field_limits.h derives its bound from: 3 free texts, 2 lists
  // of maximal items of 2 ids, 32 more ids, and an e-signature.
  json list_a = json::array(), list_b = json::array();
  for (std::size_t i = 0; i < sync::kMaxListItems; ++i) {
    list_a.push_back({{"kit", worst_text(sync::kMaxIdChars)}, {"condition", worst_text(sync::kMaxIdChars)}});
    list_b.push_back({{"k", worst_text(sync::kMaxIdChars)}, {"v", worst_text(sync::kMaxIdChars)}});
  }
  json payload = {{"reason", worst_text(sync::kMaxTextChars)},
                  {"override_reason", worst_text(sync::kMaxTextChars)},
                  {"screen_failure_reason", worst_text(sync::kMaxTextChars)},
                  {"kits", list_a},
                  {"factors", list_b},
                  {"esignature",
                   {{"signer", worst_text(sync::kMaxIdChars)},
                    {"role", worst_text(sync::kMaxIdChars)},
                    {"signed_ms", 1764000000000},
                    {"meaning", "I confirm receipt of shipment " + worst_text(sync::kMaxIdChars) +
                                    ": 500 received, 0 damaged, 0 missing"}}}};
  for (int i = 0; i < 32; ++i) payload["id" + std::to_string(i)] = worst_text(sync::kMaxIdChars);
  auto text = payload.dump();
  CHECK(text.size() <= sync::kWorstPayloadBytes);

  auto key = crypto::SigningKey::generate();
  sync::EventBody body{.node_id = std::string(sync::kMaxIdLength, 'n'), .seq = 1, .prev_hash = {}, .hlc = 1,
                       .device_time_ms = 0, .actor = std::string(sync::kMaxActorLength, 'a'),
                       .type = std::string(sync::kMaxIdLength, 't'), .directive_seq = 0,
                       .payload = crypto::Bytes(text.begin(), text.end())};
  CHECK(sync::check_event_limits(body).ok());
  auto e = sync::sign_event(body, key);
  auto parsed = sync::parse_event(e.record);
  REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? "" : parsed.error().message));
  CHECK(sync::verify_event(*parsed, key.public_key()));
  MESSAGE("worst-case payload " << text.size() << " bytes; bound " << sync::kWorstPayloadBytes << "; hub limit "
                                << sync::kMaxPayload);
}

TEST_CASE("the hub's parser names an oversized payload with its size and the limit") {
  auto key = crypto::SigningKey::generate();
  sync::EventBody body{.node_id = "101-N1", .seq = 7, .prev_hash = {}, .hlc = 1, .device_time_ms = 0,
                       .actor = "carla", .type = "participant.screen_failed", .directive_seq = 0,
                       .payload = crypto::Bytes(sync::kMaxPayload + 1, ' ')};
  auto e = sync::sign_event(body, key);
  auto parsed = sync::parse_event(e.record);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().message == "the event's payload is " + std::to_string(sync::kMaxPayload + 1) +
                                      " bytes, over the limit of " + std::to_string(sync::kMaxPayload) +
                                      " bytes that the hub accepts");
  auto loose = sync::parse_event(e.record, sync::EventLimits::ignored);
  REQUIRE(loose.ok());
  CHECK(loose->body.seq == 7);
}
