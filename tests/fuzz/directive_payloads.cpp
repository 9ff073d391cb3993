// Directive payloads as the node reads them: the first byte picks the
// directive type, the rest is its JSON payload. The payload's sealed fields are
// opened first (sync/directive.h), as the node does: a "sealed" value that is
// not a string is sealed to the node's key here, so the fuzzer reaches the
// opening of the fields as well as the refusal of bytes that do not open.
// Then the type's parse_* refuses cleanly or gives a value that round-trips
// through to_json, and sealing the payload's fields opens to the same payload.
#include <algorithm>

#include "shared/directive_payloads.h"
#include "sync/directive.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;

namespace {

struct DirectiveParser {
  std::string_view type;
  void (*check)(std::string_view);
};

template <class T, shared::Result<T> (*Parse)(std::string_view)>
void round_trip_payload(std::string_view text) {
  fuzz::check_json_round_trip(Parse, text);
}

const DirectiveParser kDirectiveParsers[] = {
    {shared::kGrantSlotsDirective, &round_trip_payload<shared::GrantSlots, shared::parse_grant_slots>},
    {shared::kGrantNumbersDirective, &round_trip_payload<shared::NumberRangeGrant, shared::parse_number_range>},
    {shared::kGrantMinimizationStreamDirective,
     &round_trip_payload<shared::MinimizationStreamGrant, shared::parse_minimization_stream>},
    {shared::kGrantCapAllowanceDirective, &round_trip_payload<shared::CapAllowanceGrant, shared::parse_cap_allowance>},
    {shared::kShipmentDirective, &round_trip_payload<shared::Shipment, shared::parse_shipment>},
    {shared::kKitsReleaseDirective, &round_trip_payload<shared::KitDecision, shared::parse_kit_decision>},
    {shared::kKitsRelabelDirective, &round_trip_payload<shared::KitRelabel, shared::parse_kit_relabel>},
    {shared::kKitsHandoverDirective, &round_trip_payload<shared::KitHandover, shared::parse_kit_handover>},
    {shared::kKitsAtDepotDirective, &round_trip_payload<shared::KitsAtDepot, shared::parse_kits_at_depot>},
    {shared::kGrantLeaseDirective, &round_trip_payload<shared::RandomizationLease, shared::parse_lease>},
    {shared::kParticipantTransferDirective,
     &round_trip_payload<shared::ParticipantTransferDecision, shared::parse_participant_transfer>},
    {shared::kParticipantTransferInDirective,
     &round_trip_payload<shared::ParticipantTransferIn, shared::parse_participant_transfer_in>},
};

const crypto::BoxKeyPair& fuzz_node_key() {
  static const auto key = crypto::BoxKeyPair::from_signing_key(crypto::SigningKey::from_seed(crypto::Bytes(32, 7)));
  return key;
}

// The payload with a non-string "sealed" value sealed to the node's key.
std::string with_fields_sealed_here(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("sealed") || j["sealed"].is_string()) return std::string(text);
  auto plain = j["sealed"].dump();
  j["sealed"] = crypto::to_base64(crypto::seal_to(fuzz_node_key().public_key(), crypto::as_bytes(plain)));
  return j.dump();
}

// Whether an object at any depth of `j` has a key of `names`.
bool holds_field_named(const nlohmann::json& j, const std::vector<std::string_view>& names) {
  if (j.is_object())
    for (const auto& [key, value] : j.items())
      if (std::find(names.begin(), names.end(), key) != names.end() || holds_field_named(value, names)) return true;
  if (j.is_array())
    for (const auto& value : j)
      if (holds_field_named(value, names)) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& parser = kDirectiveParsers[data[0] % std::size(kDirectiveParsers)];
  auto received = with_fields_sealed_here(fuzz::input_text(data + 1, size - 1));
  auto opened = sync::open_sealed_fields(received, fuzz_node_key());
  if (!opened) return fuzz::check_clean_error(opened.error()), 0;
  parser.check(*opened);

  // What the hub sends: the type's secret fields sealed, opening to the same payload.
  auto payload = nlohmann::json::parse(*opened, nullptr, false);
  if (!payload.is_object() || payload.contains("sealed")) return 0;
  auto sealed = sync::seal_fields(parser.type, *opened, fuzz_node_key().public_key());
  auto back = sync::open_sealed_fields(sealed, fuzz_node_key());
  FUZZ_CHECK(back.ok(), back.error().message);
  FUZZ_CHECK(nlohmann::json::parse(*back) == payload, *back + " is not " + payload.dump());
  FUZZ_CHECK(!holds_field_named(nlohmann::json::parse(sealed), sync::sealed_field_names(parser.type)),
             "a secret field left unsealed in " + sealed);
  return 0;
}
